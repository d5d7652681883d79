using System.Collections.Concurrent;

namespace Opterius.Web.Agent;

/// <summary>
/// One change at a time per resource and account: a provision, removal or suspension of a key and username waits
/// until the one running for the same pair has finished. A panel that lost its deletion lease has its call cancelled,
/// but the step may still be running here; the panel that took the lease over then starts the same step, which runs
/// after the first and begins from what it left (a removal finds nothing and says skipped), never beside it.
/// </summary>
/// <remarks>A gate stays once made: one small object per resource of each account this agent process has changed.</remarks>
public sealed class ResourceLocks
{
    private readonly ConcurrentDictionary<(string Key, string Username), SemaphoreSlim> _gates = new();

    /// <summary>Waits (until <paramref name="ct"/>) for the pair's turn; disposing the turn lets the next call in.</summary>
    public async Task<IDisposable> TakeAsync(string key, string username, CancellationToken ct)
    {
        var gate = _gates.GetOrAdd((key, username), _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        return new Turn(gate);
    }

    private sealed class Turn(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) gate.Release();
        }
    }
}
