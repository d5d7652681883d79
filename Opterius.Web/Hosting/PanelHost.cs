using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using MudBlazor.Services;
using Opterius.Services;
using Opterius.Services.Tokens;
using Opterius.Web.Agent;
using Opterius.Web.Api;
using Opterius.Web.Auth;
using Opterius.Web.Components;
using Opterius.Web.Hubs;
using Microsoft.AspNetCore.Authorization;

namespace Opterius.Web.Hosting;

/// <summary>The wiring Program.cs reads as a table of contents.</summary>
public static class PanelHost
{
    /// <summary>
    /// The builder the server and the CLI share: content root beside the binaries (appsettings.json is
    /// copied there), plus the optional JSON settings file named by OPTERIUS_CONFIG (the demo points it at
    /// its private services' commands).
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var extra = Environment.GetEnvironmentVariable("OPTERIUS_CONFIG");
        if (!string.IsNullOrEmpty(extra))
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(extra), optional: false);
            builder.Configuration.AddEnvironmentVariables(); // the environment still wins over the file
        }
        return builder;
    }

    public static readonly JsonSerializerOptions Json = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions o)
    {
        o.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        return o;
    }

    public static IServiceCollection AddPanelServices(this IServiceCollection services)
    {
        services.AddOpteriusServices();
        // With Opterius:Agent:Socket set, every resource is the root agent's, reached over its socket.
        services.AddAgentClientsWhenConfigured();
        services.AddOpteriusTokensAndLicensing();
        services.AddPanelAuth();
        return services;
    }

    public static IServiceCollection AddPanelApi(this IServiceCollection services)
    {
        services.ConfigureHttpJsonOptions(o => Configure(o.SerializerOptions));
        // A request the framework cannot bind is the caller's 400, in Development too (which would throw it as a 500).
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = false);
        services.AddProblemDetails();
        services.AddPanelOpenApi();
        services.AddRateLimiter(o =>
        {
            o.AddPolicy(SignInEndpoints.RateLimitPolicy, http => RateLimitPartition.GetFixedWindowLimiter(
                http.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => new FixedWindowRateLimiterOptions { PermitLimit = 10, Window = TimeSpan.FromMinutes(1) }));
            // Writes per token; the rejection body (429 rate_limited) and its audit row for every policy.
            o.AddWriteLimits();
        });
        // Writes a token lacks the scope for are audited like every other refused write.
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, AuditingAuthorizationResults>();
        services.AddSignalR()
            .AddJsonProtocol(o => Configure(o.PayloadSerializerOptions));
        return services;
    }

    public static WebApplication UsePanelPipeline(this WebApplication app)
    {
        // Any unexpected failure under /api still answers with the error body, never an HTML page.
        app.UseExceptionHandler(e => e.Run(http => ApiErrors.WriteAsync(http, 500, "internal_error",
            "The panel hit an unexpected error; the server log has the details.")));
        app.UseStatusCodePages(async c =>
        {
            var http = c.HttpContext;
            if (!http.Request.Path.StartsWithSegments("/api") || http.Response.HasStarted || http.Response.ContentLength > 0) return;
            var (code, message) = http.Response.StatusCode switch
            {
                404 => ("not_found", "No such endpoint."),
                405 => ("method_not_allowed", "This endpoint does not take that HTTP method."),
                413 => ("payload_too_large", "The request body is too large."),
                415 => ("unsupported_media_type", "Send the body as application/json."),
                _ => ("bad_request", "The request could not be understood."),
            };
            await http.Response.WriteAsJsonAsync(new ApiError(code, message));
        });
        app.UseHttpsRedirection();
        app.UseStaticFiles();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        app.UseAntiforgery();
        // After authentication and the rate limits: a key is its caller's, and a refused request never claims one.
        app.UseIdempotencyKeys();
        return app;
    }

    public static WebApplication MapPanelApi(this WebApplication app)
    {
        var api = app.MapGroup("/api/v1");
        api.MapAccountsApi();
        api.MapAccountWritesApi();
        api.MapDeletionsApi();
        api.MapScheduledDeletionsApi();
        api.MapErasureRecordsApi();
        api.MapBackupsApi();
        api.MapRestoresApi();
        api.MapPackagesApi();
        app.MapServerApi(api);
        app.MapOpenApi("/api/openapi.json").RequireAuthorization(ApiAuth.Read);
        app.MapApiReference();
        app.MapHub<DeletionsHub>(DeletionsHub.Path);
        return app;
    }

    public static WebApplication MapPanelUi(this WebApplication app)
    {
        app.MapSignIn();
        app.MapErasureRecordDownload();
        app.MapStaticAssets();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        return app;
    }

    public static IServiceCollection AddPanelUi(this IServiceCollection services)
    {
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddCascadingAuthenticationState();
        services.AddMudServices();
        return services;
    }
}
