namespace Opterius.Services.Resources;

/// <summary>
/// One read of something the whole machine shares (the process table), made for every caller that asked while the
/// read before it was running. Each caller gets a read that started after it asked, never an older one, so it is as
/// fresh as a read of its own; a burst of fifty deletions looking for their processes makes a few reads, not fifty.
/// </summary>
internal sealed class FreshRead<T>(Func<T> read)
{
    private readonly Lock _gate = new();
    private Task<T>? _running;
    private Task<T>? _next; // starts when _running ends; shared by everyone who asked meanwhile

    public Task<T> GetAsync(CancellationToken ct = default)
    {
        lock (_gate)
        {
            var read = _running is null ? _running = ReadAsync(null) : _next ??= ReadAsync(_running);
            return read.WaitAsync(ct);
        }
    }

    private async Task<T> ReadAsync(Task<T>? after)
    {
        // On the thread pool, never the caller's thread or context (it holds the gate, and may be a UI circuit); after the
        // running read, whatever became of it.
        await (after ?? Task.CompletedTask).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding);
        try { return read(); }
        finally { lock (_gate) (_running, _next) = (_next, null); }
    }
}
