using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Mvc;
using Opterius.Services.Users;

namespace Opterius.Web.Auth;

/// <summary>
/// Cookie sign-in and sign-out. A cookie cannot be set from an interactive circuit, so the sign-in page
/// is a plain server-rendered form posting here (antiforgery checked by the form binding).
/// </summary>
public static class SignInEndpoints
{
    public const string RateLimitPolicy = "sign-in";

    public static IEndpointRouteBuilder MapSignIn(this IEndpointRouteBuilder app)
    {
        app.MapPost("/auth/login", SignIn).RequireRateLimiting(RateLimitPolicy).ExcludeFromDescription();
        app.MapPost("/logout", async (HttpContext http) =>
        {
            await http.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return TypedResults.LocalRedirect("/login");
        }).RequireAuthorization().ExcludeFromDescription();
        return app;
    }

    private static async Task<IResult> SignIn(HttpContext http, PanelUsers users,
        [FromForm] string? username, [FromForm] string? password, [FromForm] string? returnUrl, CancellationToken ct)
    {
        var user = string.IsNullOrEmpty(username) || string.IsNullOrEmpty(password) || password.Length > 256
            ? null
            : await users.CheckPasswordAsync(username, password, ct);
        if (user is null) return TypedResults.LocalRedirect("/login?failed=1");

        var identity = new ClaimsIdentity(
            [
                new Claim(PanelClaims.UserId, user.Id.ToString()),
                new Claim(PanelClaims.Name, user.Username),
                new Claim(PanelClaims.Role, user.Role),
                new Claim(PanelClaims.Kind, "user"),
            ],
            CookieAuthenticationDefaults.AuthenticationScheme, PanelClaims.Name, PanelClaims.Role);
        await http.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity));
        var target = returnUrl is { Length: > 0 } && Uri.IsWellFormedUriString(returnUrl, UriKind.Relative) && returnUrl.StartsWith('/') && !returnUrl.StartsWith("//")
            ? returnUrl
            : "/";
        return TypedResults.LocalRedirect(target);
    }
}
