using System.Security.Claims;
using Opterius.Services.Audit;
using Opterius.Services.Users;

namespace Opterius.Web.Auth;

/// <summary>Reads who is calling from the cookie or token principal (both carry the same claims).</summary>
public static class PanelClaims
{
    public const string UserId = "sub";
    public const string Name = "name";
    public const string Role = "role";
    public const string Kind = "opterius_kind"; // "user" (cookie) or "token" (API)

    public static long UserIdOf(this ClaimsPrincipal user) =>
        long.TryParse(user.FindFirst(UserId)?.Value, out var id) ? id : 0;

    public static bool IsAdmin(this ClaimsPrincipal user) => user.FindFirst(Role)?.Value == Roles.Admin;

    public static Services.Accounts.Viewer Viewer(this ClaimsPrincipal user) => new(user.UserIdOf(), user.IsAdmin());

    public static Actor Actor(this ClaimsPrincipal user, string? sourceIp) =>
        new(user.FindFirst(Name)?.Value ?? "unknown", user.FindFirst(Kind)?.Value ?? (user.HasClaim(c => c.Type == "jti") ? "token" : "user"),
            sourceIp, user.UserIdOf(), user.IsAdmin());

    public static Actor Actor(this HttpContext http) => http.User.Actor(http.Connection.RemoteIpAddress?.ToString());
}
