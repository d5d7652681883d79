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

    private readonly ConcurrentDictionary<string, ServiceReloader.Deletion> _open = new();

    /// <summary>A deletion in flight until disposed.</summary>
    public Flight Open()
    {
        var id = Guid.NewGuid().ToString("N");
        var deletion = reloader.DeletionAnnounced();
        _open[id] = deletion;
        return new(id, () =>
        {
            _open.TryRemove(id, out _);
            deletion.Dispose();
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
