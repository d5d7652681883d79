using Opterius.Services.Audit;
using Opterius.Services.Tokens;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>Marks an endpoint as a write whose every request is audited under <see cref="Action"/>.</summary>
public sealed record AuditedWrite(string Action);

/// <summary>Who is calling the API, and the audit rows for the refusals the services do not write themselves.</summary>
public static class ApiCaller
{
    /// <summary>
    /// Audits a write the API refused before any service ran (bad body, bad id, conflict, license...).
    /// The services audit what they do themselves; callers use this only for the rest, so each request has one row.
    /// </summary>
    public static Task AuditRefusalAsync(this HttpContext http, string action, long? accountId, string? username, string outcome, string? detail)
    {
        var audit = http.RequestServices.GetRequiredService<AuditLog>();
        // Column limits: a hostile username or message must not turn an audit write into a 500.
        var name = username is { Length: > 0 and <= 32 } ? username : null;
        var text = detail is { Length: > 1000 } ? detail[..1000] + "…" : detail;
        return audit.WriteAsync(http.Actor(), action, accountId, name, outcome, text, CancellationToken.None);
    }
}
