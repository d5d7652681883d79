using Microsoft.Extensions.Logging;

namespace Opterius.Services.Deletion;

/// <summary>
/// Fans deletion transitions out to subscribers (Blazor circuits in process, SignalR hub connections). It
/// keeps the live state of running jobs so a subscriber gets the current state of every step first and
/// then each later transition, with nothing lost or reordered in between (both happen under one lock).
/// Handlers run under that lock: they must only hand the event on (post to a channel or the renderer). A handler
/// that throws is logged and skipped: it is one subscriber's bug, and must neither stop the deletion that
/// published the event nor keep it from the other subscribers.
/// </summary>
public sealed class DeletionEvents(ILogger<DeletionEvents> log)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, Dictionary<string, DeletionEvent>> _live = new();
    private readonly List<Subscription> _subscriptions = [];

    /// <summary>Subscribes to one account (or every account when null); returns the live state known now.</summary>
    public IDisposable Subscribe(long? accountId, Action<DeletionEvent> handler, out IReadOnlyList<DeletionEvent> current)
    {
        var subscription = new Subscription(this, accountId, handler);
        lock (_gate)
        {
            current = accountId is { } id && _live.TryGetValue(id, out var state) ? state.Values.OrderBy(DeletionOrder.Position).ToList() : [];
            _subscriptions.Add(subscription);
        }
        return subscription;
    }

    /// <summary>True while the account has a job running in this process.</summary>
    public bool IsLive(long accountId)
    {
        lock (_gate) return _live.ContainsKey(accountId);
    }

    public void Publish(DeletionEvent e)
    {
        lock (_gate)
        {
            if (e.IsJobEnd) _live.Remove(e.AccountId);
            else
            {
                if (!_live.TryGetValue(e.AccountId, out var state)) _live[e.AccountId] = state = new();
                state[e.Resource] = e;
            }
            foreach (var s in _subscriptions)
            {
                if (s.AccountId is not null && s.AccountId != e.AccountId) continue;
                try { s.Handler(e); }
                catch (Exception error)
                {
                    log.LogError(error, "A deletion subscriber failed on {Resource} {Status} of job {Job}; the others still get it", e.Resource, e.Status, e.JobId);
                }
            }
        }
    }

    private sealed class Subscription(DeletionEvents owner, long? accountId, Action<DeletionEvent> handler) : IDisposable
    {
        public long? AccountId => accountId;
        public Action<DeletionEvent> Handler => handler;

        public void Dispose()
        {
            lock (owner._gate) owner._subscriptions.Remove(this);
        }
    }
}
