using Opterius.Services.Audit;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Services.Accounts;

/// <summary>
/// Suspend: the site answers 503, the pool stops, the shell is nologin, mail login is refused; files and
/// databases stay. Unsuspend restores exactly what was there.
/// </summary>
public sealed class AccountSuspension(AccountStore accounts, IEnumerable<IAccountResource> resources, LicenseService license, AuditLog audit,
    AccountEvents events)
{
    private readonly IReadOnlyList<ISuspendableResource> _suspendable = resources.OfType<ISuspendableResource>().ToList();

    public Task<Account> SuspendAsync(Actor actor, long id, CancellationToken ct) =>
        ChangeAsync(actor, id, "suspend", AccountStatus.Active, AccountStatus.Suspended,
            (r, a) => r.SuspendAsync(a, CancellationToken.None), (r, a) => r.UnsuspendAsync(a, CancellationToken.None), ct);

    public Task<Account> UnsuspendAsync(Actor actor, long id, CancellationToken ct) =>
        ChangeAsync(actor, id, "unsuspend", AccountStatus.Suspended, AccountStatus.Active,
            (r, a) => r.UnsuspendAsync(a, CancellationToken.None), (r, a) => r.SuspendAsync(a, CancellationToken.None), ct);

    private async Task<Account> ChangeAsync(Actor actor, long id, string action, string from, string to,
        Func<ISuspendableResource, AccountIdentity, Task> apply, Func<ISuspendableResource, AccountIdentity, Task> undo, CancellationToken ct)
    {
        license.EnsureValid();
        var viewer = new Viewer(actor.UserId, actor.IsAdmin);
        var account = await accounts.FindAsync(viewer, id, ct) ?? throw new AccountNotFoundException(id);
        // A failed deletion's logins step locked the password and expired the user, and other steps removed parts:
        // restoring the shell alone would give back an account nobody can log in to, so the only way on is the DELETE.
        if (account.Status == AccountStatus.DeletionFailed)
            throw new AccountConflictException($"Account '{account.Username}' is {account.Status}: its deletion already locked its logins and removed "
                + $"parts of it, so it cannot be {action}ed or kept; DELETE /api/v1/accounts/{id} resumes the deletion.");
        if (account.Status != from)
            throw new AccountConflictException($"Account '{account.Username}' is {account.Status}; only a {from} account can be {action}ed.");
        var identity = AccountIdentity.From(account);
        var applied = new List<ISuspendableResource>();
        try
        {
            foreach (var resource in _suspendable)
            {
                await apply(resource, identity);
                applied.Add(resource);
            }
            if (!await accounts.TransitionAsync(id, [from], to, CancellationToken.None))
                throw new AccountConflictException($"Account '{account.Username}' changed while it was being {action}ed; try again.");
        }
        catch (Exception e)
        {
            // All or nothing: put back what already changed, so the account is exactly as it was.
            var notUndone = new List<string>();
            foreach (var resource in applied.AsEnumerable().Reverse())
            {
                try { await undo(resource, identity); }
                catch (Exception u) { notUndone.Add($"{((IAccountResource)resource).Key}: {u.Message}"); }
            }
            var outcome = notUndone.Count == 0 ? "Nothing was changed." : $"Could not put back: {string.Join("; ", notUndone)}.";
            await audit.WriteAsync(actor, action, id, account.Username, "failed", $"{e.Message} {outcome}", CancellationToken.None);
            if (e is AccountConflictException && notUndone.Count == 0) throw;
            throw new ResourceException($"Could not {action} '{account.Username}': {e.Message} {outcome}", e);
        }
        events.Publish(new(id, account.OwnerId, to));
        // Done, so not cancelled by a caller who went away: its retry (Idempotency-Key) must get this answer, not a 409.
        await audit.WriteAsync(actor, action, id, account.Username, to, null, CancellationToken.None);
        // "Unsuspend or cancel before then keeps it" (DESIGN 3.11): the transition to active cleared the schedule.
        if (to == AccountStatus.Active && account.DeletionDueAt is { } due)
            await audit.WriteAsync(actor, "cancel_deletion", id, account.Username, "cancelled",
                $"unsuspended: the deletion due at {due:yyyy-MM-dd HH:mm} UTC will not run", CancellationToken.None);
        return (await accounts.FindAsync(viewer, id, CancellationToken.None))!;
    }
}
