using Opterius.Services.Audit;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Services.Accounts;

/// <summary>
/// Suspend: the site answers 503, the pool stops, the shell is nologin, mail login is refused; files and
/// databases stay. Unsuspend restores exactly what was there.
/// </summary>
public sealed class AccountSuspension(AccountStore accounts, IEnumerable<IAccountResource> resources, LicenseService license, AuditLog audit)
{
    private readonly IReadOnlyList<ISuspendableResource> _suspendable = resources.OfType<ISuspendableResource>().ToList();

    public Task<Account> SuspendAsync(Actor actor, long id, CancellationToken ct) =>
        ChangeAsync(actor, id, "suspend", AccountStatus.Active, AccountStatus.Suspended, (r, a) => r.SuspendAsync(a, ct), ct);

    public Task<Account> UnsuspendAsync(Actor actor, long id, CancellationToken ct) =>
        ChangeAsync(actor, id, "unsuspend", AccountStatus.Suspended, AccountStatus.Active, (r, a) => r.UnsuspendAsync(a, ct), ct);

    private async Task<Account> ChangeAsync(Actor actor, long id, string action, string from, string to,
        Func<ISuspendableResource, AccountIdentity, Task> apply, CancellationToken ct)
    {
        license.EnsureValid();
        var viewer = new Viewer(actor.UserId, actor.IsAdmin);
        var account = await accounts.FindAsync(viewer, id, ct) ?? throw new AccountNotFoundException(id);
        if (account.Status != from)
            throw new AccountConflictException($"Account '{account.Username}' is {account.Status}; only a {from} account can be {action}ed.");
        var identity = AccountIdentity.From(account);
        foreach (var resource in _suspendable) await apply(resource, identity);
        if (!await accounts.TransitionAsync(id, [from], to, ct))
            throw new AccountConflictException($"Account '{account.Username}' changed while it was being {action}ed; try again.");
        await audit.WriteAsync(actor, action, id, account.Username, to, null, ct);
        return (await accounts.FindAsync(viewer, id, ct))!;
    }
}
