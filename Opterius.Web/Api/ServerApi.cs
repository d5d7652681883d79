using Opterius.Services.Accounts;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

public sealed record ServerStatsDto(long Accounts, bool LicenseValid, string LicensePlan, int? MaxAccounts, DateTimeOffset? LicenseExpiresAt, string LicenseMessage);

public sealed record WhoAmIDto(string Name, string Role, long OwnerId, IReadOnlyList<string> Scopes);

/// <summary>
/// The billing module's connection test (<c>GET /api/server/stats</c>, as Opterius publishes it) and
/// <c>GET /api/v1/whoami</c>, which tells a client what its token is allowed to do.
/// </summary>
public static class ServerApi
{
    public static IEndpointRouteBuilder MapServerApi(this IEndpointRouteBuilder app, RouteGroupBuilder v1)
    {
        app.MapGet("/api/server/stats", async (HttpContext http, AccountStore accounts, LicenseService license, CancellationToken ct) =>
        {
            var status = license.Current;
            var count = (await accounts.ListAsync(http.User.Viewer(), new AccountQuery(PerPage: 1), ct)).Total;
            return TypedResults.Ok(new Envelope<ServerStatsDto>(new(count, status.Valid, status.Plan, status.MaxAccounts, status.ExpiresAt, status.Message)));
        }).WithTags("Server").RequireAuthorization(ApiAuth.Read).WithName("getServerStats").WithSummary("Connection test: the caller's account count and the license");

        v1.MapGet("/whoami", (HttpContext http) =>
        {
            var caller = TokenService.Caller(http.User)!;
            return TypedResults.Ok(new Envelope<WhoAmIDto>(new(caller.Name, caller.Role, caller.OwnerId, caller.Scopes)));
        }).WithTags("Server").RequireAuthorization(ApiAuth.Read).WithName("whoAmI").WithSummary("The calling token's name, role, owner and scopes");
        return app;
    }
}
