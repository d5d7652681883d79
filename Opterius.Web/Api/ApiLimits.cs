using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.RateLimiting;
using Opterius.Services.Tokens;

namespace Opterius.Web.Api;

/// <summary>Per-token rate limits on writes, request size limits, and auditing of writes refused before a handler runs.</summary>
public static class ApiLimits
{
    public const string Writes = "api-writes";

    /// <summary>Writes per minute per token; <c>Opterius:Api:WritesPerMinute</c> overrides it.</summary>
    public const int DefaultWritesPerMinute = 60;

    public static void AddWriteLimits(this RateLimiterOptions o)
    {
        o.AddPolicy(Writes, http =>
        {
            // Per token (jti), so one busy billing system cannot starve another; requests without one are
            // refused by authorization before they get here, the IP is only a fallback.
            var key = http.User.FindFirst(TokenClaims.Jti)?.Value ?? "ip:" + http.Connection.RemoteIpAddress;
            var limit = http.RequestServices.GetRequiredService<IConfiguration>().GetValue("Opterius:Api:WritesPerMinute", DefaultWritesPerMinute);
            return RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = Math.Max(1, limit),
                Window = TimeSpan.FromMinutes(1),
                QueueLimit = 0,
            });
        });
        o.OnRejected = async (c, _) =>
        {
            var http = c.HttpContext;
            if (c.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retry))
                http.Response.Headers.RetryAfter = ((int)Math.Ceiling(retry.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (http.GetEndpoint()?.Metadata.GetMetadata<AuditedWrite>() is { } write)
                await http.AuditRefusalAsync(write.Action, RouteId(http), null, "rate_limited", null);
            await ApiErrors.WriteAsync(http, 429, "rate_limited", "Too many requests: wait a minute and try again.");
        };
    }

    /// <summary>Documents the error statuses an endpoint answers with the API's error body.</summary>
    public static RouteHandlerBuilder Fails(this RouteHandlerBuilder builder, params int[] statuses)
    {
        foreach (var status in statuses) builder.Produces<ApiError>(status);
        return builder;
    }

    internal static long? RouteId(HttpContext http) =>
        http.Request.RouteValues.TryGetValue("id", out var raw) && ApiErrors.TryParseId(raw?.ToString() ?? "", out var id) ? id : null;
}

/// <summary>
/// Audits a write that a token is not allowed to make (missing scope). Requests with no valid token are not
/// audited: they have no token name to record, and anyone could fill the log with them.
/// </summary>
public sealed class AuditingAuthorizationResults : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext http, AuthorizationPolicy policy, PolicyAuthorizationResult result)
    {
        if (result.Forbidden && http.GetEndpoint()?.Metadata.GetMetadata<AuditedWrite>() is { } write)
            await http.AuditRefusalAsync(write.Action, ApiLimits.RouteId(http), null, "insufficient_scope", "the token lacks the scope this write needs");
        await _default.HandleAsync(next, http, policy, result);
    }
}
