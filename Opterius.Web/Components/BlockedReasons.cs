using System.Security.Claims;
using System.Text.RegularExpressions;
using Opterius.Web.Auth;

namespace Opterius.Web.Components;

/// <summary>
/// Why a due deletion could not start, as the viewer may read it: an admin gets the scheduler's own reason; a reseller
/// gets one meant for them, never an exception's text or the host's license details.
/// </summary>
public static partial class BlockedReasons
{
    public static string For(ClaimsPrincipal user, string reason) =>
        user.IsAdmin() ? reason
        : reason.StartsWith("license_required:", StringComparison.Ordinal) ? "the host's panel license must be renewed first"
        : InternalReason().IsMatch(reason) ? "a problem on the server, which the host has been told of"
        : reason;

    // The scheduler's reason for a failure that is no refusal: "SomeException: its message".
    [GeneratedRegex(@"^[A-Za-z.]*Exception: ")]
    private static partial Regex InternalReason();
}
