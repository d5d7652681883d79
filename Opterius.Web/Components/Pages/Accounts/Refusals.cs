using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// The domain's "nothing was changed" exceptions (and a resource that failed and was put back) that an account page
/// shows as a message: a refusal must never take a circuit down.
/// </summary>
public static class Refusals
{
    public static bool IsRefusal(Exception e) => e is AccountConflictException or AccountNotFoundException or LicenseRequiredException
        or AccountLimitReachedException or AccountValidationException or ResourceException or CommandFailedException or InvalidAccountNameException
        or Opterius.Services.Deletion.DeletionBeingStartedException;
}
