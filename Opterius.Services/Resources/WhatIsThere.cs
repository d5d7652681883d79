using Opterius.Services.Accounts;

namespace Opterius.Services.Resources;

/// <summary>
/// What already exists on the server for a new account's names, by every resource's own inspection: the create
/// path's check before anything is made, and the agent's before it hands out a uid (so a uid, and with it the right
/// to change things, is never bound to a name or domain whose parts are someone else's).
/// </summary>
public static class WhatIsThere
{
    // Running processes need a uid, and a uid exists only for a user in passwd, which system_user already reports.
    private const string NeedsAUid = "processes";

    public static async Task<IReadOnlyList<string>> FindAsync(IEnumerable<IAccountResource> resources, AccountIdentity identity, CancellationToken ct)
    {
        var found = new List<string>();
        foreach (var resource in resources.Where(r => r.Key != NeedsAUid))
        {
            // A resource that refuses to inspect the names (e.g. a user of that name the account cannot own) found something.
            try
            {
                var inspection = await resource.InspectAsync(identity, ct);
                if (inspection.Exists) found.Add(inspection.Summary);
            }
            catch (ResourceException e) { found.Add($"{resource.Key}: {e.Message}"); }
        }
        return found;
    }
}
