using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Opterius.Services.Tokens;
using Opterius.Web.Api;

namespace Opterius.Web.Auth;

/// <summary>
/// Two ways in: panel users sign in with a cookie (the UI), API clients present a bearer JWT minted by
/// the panel (REST and the hub). Token policies check the scope the endpoint needs.
/// </summary>
public static class ApiAuth
{
    public const string Read = "accounts:read";
    public const string Write = "accounts:write";
    public const string Delete = "accounts:delete";

    public static IServiceCollection AddPanelAuth(this IServiceCollection services)
    {
        services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(o =>
            {
                o.LoginPath = "/login";
                o.LogoutPath = "/logout";
                // Signed in, but the page is not for this role: say so, never show the sign-in form again.
                o.AccessDeniedPath = Components.NotAvailablePage.Path;
                o.Cookie.Name = "opterius.auth";
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.ExpireTimeSpan = TimeSpan.FromHours(8);
                o.SlidingExpiration = true;
            })
            .AddJwtBearer(JwtBearerDefaults.AuthenticationScheme, _ => { });
        services.AddSingleton<IConfigureOptions<JwtBearerOptions>, ConfigureBearer>();
        services.AddSingleton<PasswordRechecks>();

        services.AddAuthorizationBuilder()
            .AddPolicy(Read, p => Scope(p, Read))
            .AddPolicy(Write, p => Scope(p, Write))
            .AddPolicy(Delete, p => Scope(p, Delete));
        return services;
    }

    private static void Scope(AuthorizationPolicyBuilder policy, string scope) =>
        policy.AddAuthenticationSchemes(JwtBearerDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(c => c.User.FindFirst(TokenClaims.Scope)?.Value.Split(' ').Contains(scope) == true);

    /// <summary>Bearer validation pinned by the token service, revocation checked per request, JSON error bodies.</summary>
    private sealed class ConfigureBearer(TokenService tokens) : IConfigureNamedOptions<JwtBearerOptions>
    {
        public void Configure(JwtBearerOptions options) => Configure(JwtBearerDefaults.AuthenticationScheme, options);

        public void Configure(string? name, JwtBearerOptions o)
        {
            if (name != JwtBearerDefaults.AuthenticationScheme) return;
            o.MapInboundClaims = false;
            o.TokenValidationParameters = tokens.ValidationParameters();
            o.Events = new JwtBearerEvents
            {
                // Browsers cannot set headers on WebSockets: the hub also takes the token from the query.
                OnMessageReceived = c =>
                {
                    if (c.HttpContext.Request.Path.StartsWithSegments("/hubs") && c.Request.Query.TryGetValue("access_token", out var t))
                        c.Token = t;
                    return Task.CompletedTask;
                },
                // The stored row, not the signed claims, says what a token may do: claims that differ from it fail.
                OnTokenValidated = async c =>
                {
                    if (c.Principal is null || await tokens.CallerAsync(c.Principal, c.HttpContext.Connection.RemoteIpAddress?.ToString(), c.HttpContext.RequestAborted) is null)
                        c.Fail("the token was revoked, is unknown, or its claims differ from the stored token");
                },
                OnChallenge = async c =>
                {
                    c.HandleResponse();
                    var why = c.AuthenticateFailure is null
                        ? "A bearer token is required: send 'Authorization: Bearer <token>' (Settings → API → New Token)."
                        : "The bearer token is invalid, expired or revoked.";
                    await ApiErrors.WriteAsync(c.HttpContext, 401, "unauthenticated", why);
                },
                OnForbidden = c => ApiErrors.WriteAsync(c.HttpContext, 403, "insufficient_scope",
                    "This token's scopes do not allow this request."),
            };
        }
    }
}
