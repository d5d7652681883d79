using Microsoft.Extensions.Logging;

namespace Opterius.Services.Accounts;

/// <summary>
/// An account row appeared, changed status or went away (<see cref="Status"/> is null then), outside a deletion:
/// deletions have their own stream (<see cref="Deletion.DeletionEvents"/>) with every step.
/// </summary>
public sealed record AccountChange(long AccountId, long OwnerId, string? Status);

/// <summary>
/// Tells every open grid and account page (Blazor circuits, in process) that an account was created, suspended or
/// unsuspended, or its deletion scheduled or cancelled, whoever did it (the UI, the API, the CLI). Handlers run under the lock and must only hand the change
/// on (post to the renderer); one that throws is logged and skipped, and never fails the write that published it.
/// </summary>
public sealed class AccountEvents(ILogger<AccountEvents> log)
{
    private readonly Lock _gate = new();
    private readonly List<Action<AccountChange>> _handlers = [];

    public IDisposable Subscribe(Action<AccountChange> handler)
    {
        lock (_gate) _handlers.Add(handler);
        return new Subscription(this, handler);
    }

    public void Publish(AccountChange change)
    {
        lock (_gate)
            foreach (var handler in _handlers)
            {
                try { handler(change); }
                catch (Exception e) { log.LogError(e, "An account subscriber failed on account {Account}; the others still get it", change.AccountId); }
            }
    }

    private sealed class Subscription(AccountEvents owner, Action<AccountChange> handler) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._gate) owner._handlers.Remove(handler);
        }
    }
}
