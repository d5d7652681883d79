using System.Collections.Concurrent;
using Opterius.Services.Commands;

namespace Opterius.Web.Agent;

/// <summary>
/// The panel's deletions in flight as the agent's reloader knows them (the <c>DeletionInFlight</c> call), each by the id
/// the agent gave it: the panel's removals name it, so their reloads count as that deletion's arrival.
/// </summary>
public sealed class DeletionFlights(ServiceReloader reloader, IHostApplicationLifetime lifetime)
{
    /// <summary>Set when the agent stops: its flights end then, so its shutdown waits for no panel's job.</summary>
    public CancellationToken Stopping => lifetime.ApplicationStopping;

    /// <summary>
    /// How many flights may be open at once: far more than a panel runs deletions together, so that only a panel gone
    /// wrong (opening calls it never ends) is refused, before it holds the agent's memory and every reload's window.
    /// </summary>
    public const int MaxOpen = 1024;

    private readonly ConcurrentDictionary<string, ServiceReloader.Deletion> _open = new();
    private int _count;

    /// <summary>Whether <paramref name="id"/> has the form of an id <see cref="TryOpen"/> hands out (32 lowercase hex digits).</summary>
    public static bool IsId(string id) => id.Length == 32 && id.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    /// <summary>A deletion in flight until disposed; null when <see cref="MaxOpen"/> are open already.</summary>
    public Flight? TryOpen(IEnumerable<string> services)
    {
        if (Interlocked.Increment(ref _count) > MaxOpen)
        {
            Interlocked.Decrement(ref _count);
            return null;
        }
        var id = Guid.NewGuid().ToString("N");
        var deletion = reloader.DeletionAnnounced(services);
        _open[id] = deletion;
        return new(id, () =>
        {
            _open.TryRemove(id, out _);
            deletion.Dispose();
            Interlocked.Decrement(ref _count);
        });
    }

    /// <summary>Makes this flow (one removal's call) part of deletion <paramref name="id"/>; false when none is open under it.</summary>
    public bool Join(string id)
    {
        if (!_open.TryGetValue(id, out var deletion)) return false;
        deletion.RunsHere();
        return true;
    }

    public sealed class Flight(string id, Action end) : IDisposable
    {
        private int _ended;

        public string Id => id;

        public void Dispose() { if (Interlocked.Exchange(ref _ended, 1) == 0) end(); }
    }
}
