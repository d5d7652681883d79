using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Opterius.Services.Commands;

/// <summary>How a coalesced reload ended for one caller; <see cref="NotConfigured"/> is "not configured: set Opterius:Commands:X".</summary>
public sealed record ReloadOutcome(bool Ran, string? NotConfigured)
{
    public static readonly ReloadOutcome Success = new(true, null);
}

/// <summary>
/// Tests and reloads a shared service (nginx, php-fpm, the Postfix map, the PowerDNS cache) once for a
/// burst of callers, so a batch of terminations does not reload nginx once per account. A batch waits only
/// when there is someone to wait for: while other callers announced with <see cref="Expect"/> have not reached
/// the reload yet, or while a burst is going on (the latest run was shared), at most the coalescing window; and
/// while the service's previous run holds its gate (callers arriving meanwhile all share the next run). A lone
/// caller reloads at once.
/// Files a service includes change only under <see cref="EditAsync"/>, which excludes a running test and
/// reload: nginx and php-fpm list their include folders and then open each file, so a file removed in
/// between fails the test, and a php-fpm master re-reading its configuration exits (every site down).
/// </summary>
public sealed class ServiceReloader(CommandRunner commands, IOptions<OpteriusOptions> options, TimeProvider time) : IDeletionsInFlight
{
    /// <summary>Each service: the commands run in order (a test first, then the reload).</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Services = new Dictionary<string, string[]>
    {
        ["nginx"] = ["NginxTest", "NginxReload"],
        ["php-fpm"] = ["PhpFpmTest", "PhpFpmReload"],
        ["postmap"] = ["Postmap"],
        ["pdns"] = ["PdnsPurge"],
    };

    /// <summary>The deletion step whose removal reloads each service: a deletion with that step still to run is on its way to it.</summary>
    public static readonly IReadOnlyDictionary<string, string> ServiceOfStep = new Dictionary<string, string>
    {
        ["nginx_vhost"] = "nginx",
        ["php_fpm_pool"] = "php-fpm",
        ["mail_routes"] = "postmap",
        ["dns_zone"] = "pdns",
    };

    /// <summary>How many windows a batch waits at most while callers keep coming.</summary>
    public const int MaxWindows = 8;

    private readonly ConcurrentDictionary<string, Queue> _queues = new();

    // The deletion this flow runs (DeletionInFlight): its reloads arrive through whatever resource makes them.
    private static readonly AsyncLocal<Deletion?> InFlight = new();
    private readonly ConcurrentDictionary<string, int> _runs = new();

    /// <summary>How many times each service was actually reloaded since start (for benchmarks and tests).</summary>
    public int RunCount(string service) => _runs.GetValueOrDefault(service);

    /// <summary><see cref="RunCount"/> of every service (the agent's <c>Services</c> reply, the benchmark).</summary>
    public Dictionary<string, long> RunCounts() => Services.Keys.ToDictionary(s => s, s => (long)RunCount(s));

    /// <summary>
    /// Says this caller is on its way to <see cref="ReloadAsync"/> of <paramref name="service"/> (it is changing what
    /// the service reads): a batch opened meanwhile waits for it, up to the window. Dispose when done, reloaded or not.
    /// </summary>
    public Approach Expect(string service) => new(QueueOf(service));

    /// <summary>
    /// Says a deletion runs in this flow (until disposed) and will reach the reloads of <paramref name="services"/>: a batch
    /// of one of them opened meanwhile waits for it as for an <see cref="Expect"/>ed caller, and its own reloads, made by
    /// whichever resource in this flow, count as its arrival. A lone deletion reloads at once; several running together share reloads.
    /// </summary>
    public IDisposable DeletionInFlight(IEnumerable<string> services)
    {
        var deletion = DeletionAnnounced(services);
        deletion.RunsHere();
        return deletion;
    }

    /// <summary>
    /// Says a deletion runs (until disposed) whose flows are elsewhere, as <see cref="DeletionInFlight"/> does: the agent's
    /// for a job the panel runs, whose removals come as separate calls, each joining it with <see cref="Deletion.RunsHere"/>.
    /// </summary>
    public Deletion DeletionAnnounced(IEnumerable<string> services) => new(this, services.Distinct().ToDictionary(s => s, Expect));

    /// <summary>A deletion on its way to its services' reloads; it has reached them all, or will not, once disposed.</summary>
    public sealed class Deletion : IDisposable
    {
        private readonly ServiceReloader _owner;
        private readonly Dictionary<string, Approach> _ahead;

        internal Deletion(ServiceReloader owner, Dictionary<string, Approach> ahead) => (_owner, _ahead) = (owner, ahead);

        /// <summary>This flow runs part of the deletion (until it ends): its reloads count as the deletion's arrival.</summary>
        public void RunsHere() => InFlight.Value = this;

        internal ServiceReloader Owner => _owner;
        internal void Arrive(string service) { if (_ahead.TryGetValue(service, out var approach)) approach.Dispose(); }
        public void Dispose() { foreach (var a in _ahead.Values) a.Dispose(); }
    }

    public async Task<ReloadOutcome> ReloadAsync(string service, CancellationToken ct, Approach? approach = null)
    {
        var names = Services[service];
        var missing = names.Where(n => !commands.IsConfigured(n)).ToArray();
        if (missing.Length > 0)
        {
            approach?.Dispose();
            return new(false, "not configured: set " + string.Join(", ", missing.Select(n => $"Opterius:Commands:{n}")));
        }

        var queue = QueueOf(service);
        TaskCompletionSource batch;
        var opens = false;
        lock (queue)
        {
            // Join the batch that has not started running yet, or open a new one.
            if (queue.Pending is null) (queue.Pending, opens) = (new(TaskCreationOptions.RunContinuationsAsynchronously), true);
            batch = queue.Pending;
            queue.PendingCallers++;
        }
        // Arrived: joined first, so a batch that stops waiting for it still takes it in.
        approach?.Dispose();
        if (InFlight.Value is { } deletion && deletion.Owner == this) deletion.Arrive(service);
        // The batch's callers own it: the run never throws, it ends the batch with its outcome (awaited below).
        if (opens) _ = RunBatchAsync(service, queue, batch);
        await batch.Task.WaitAsync(ct);
        return ReloadOutcome.Success;
    }

    private async Task RunBatchAsync(string service, Queue queue, TaskCompletionSource batch)
    {
        try
        {
            var opened = time.GetTimestamp();
            var window = TimeSpan.FromMilliseconds(options.Value.ReloadCoalesceMilliseconds);
            // A burst is going on when the run before this one, running or just ended, was shared: then more callers are
            // on their way than have announced themselves, and the window is worth its wait.
            bool burst;
            lock (queue) burst = queue.LastCallers > 1 && (queue.Running || time.GetElapsedTime(queue.LastEnded) < window);
            // While callers are coming, each one that arrives keeps the batch open another window; a window with no
            // arrival, or MaxWindows of them in all, closes it (a caller stuck in a long step does not hold the others).
            var lastArrival = opened;
            while (queue.Ahead() is var someoneComing && (someoneComing is not null || burst))
            {
                var left = TimeSpan.FromTicks(Math.Min((window * MaxWindows - time.GetElapsedTime(opened)).Ticks, (window - time.GetElapsedTime(lastArrival)).Ticks));
                if (left <= TimeSpan.Zero) break;
                var delay = Task.Delay(left, time);
                if (someoneComing is null) { await delay; continue; }
                if (await Task.WhenAny(someoneComing, delay) == someoneComing) lastArrival = time.GetTimestamp();
            }

            var gate = Gate(service);
            await gate.WaitAsync();
            try
            {
                // From here on, new callers open the next batch: they may change files after this run reads them. Until
                // here they joined this one: what they changed, they changed before joining, so this run sees it.
                lock (queue) (queue.Pending, queue.LastCallers, queue.PendingCallers, queue.Running) = (null, queue.PendingCallers, 0, true);
                _runs.AddOrUpdate(service, 1, (_, n) => n + 1);
                try { foreach (var name in Services[service]) await commands.RunAsync(name, null, CancellationToken.None); }
                finally { lock (queue) (queue.Running, queue.LastEnded) = (false, time.GetTimestamp()); }
                batch.SetResult();
            }
            finally { gate.Release(); }
        }
        catch (Exception e) { batch.TrySetException(e); }
    }

    /// <summary>Holds the service's gate while its files change; dispose to release.</summary>
    public async Task<IDisposable> EditAsync(string service, CancellationToken ct)
    {
        var gate = Gate(service);
        await gate.WaitAsync(ct);
        return new Release(gate);
    }

    private sealed class Release(SemaphoreSlim gate) : IDisposable
    {
        private int _done;
        public void Dispose() { if (Interlocked.Exchange(ref _done, 1) == 0) gate.Release(); }
    }

    private Queue QueueOf(string service) =>
        Services.ContainsKey(service) ? _queues.GetOrAdd(service, _ => new Queue()) : throw new ArgumentException($"unknown service '{service}'", nameof(service));

    /// <summary>One service's batch not yet running, its latest run, and the callers announced but not arrived (guarded by itself).</summary>
    internal sealed class Queue
    {
        private int _coming;
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource? Pending { get; set; }
        public int PendingCallers { get; set; }

        /// <summary>How many callers the latest run (running, or the last one) served, whether it runs, and when it ended.</summary>
        public int LastCallers { get; set; }
        public bool Running { get; set; }
        public long LastEnded { get; set; }

        /// <summary>Null when nobody announced is still coming; else a task that ends when that changes.</summary>
        public Task? Ahead() { lock (this) return _coming > 0 ? _changed.Task : null; }

        public void Add(int n)
        {
            TaskCompletionSource was;
            lock (this) { _coming += n; (was, _changed) = (_changed, new(TaskCreationOptions.RunContinuationsAsynchronously)); }
            was.SetResult();
        }
    }

    /// <summary>A caller on its way to a reload (<see cref="Expect"/>); it has arrived, or will not come, once disposed.</summary>
    public sealed class Approach : IDisposable
    {
        private readonly Queue _queue;
        private int _done;

        internal Approach(Queue queue) { _queue = queue; queue.Add(1); }

        public void Dispose() { if (Interlocked.Exchange(ref _done, 1) == 0) _queue.Add(-1); }
    }

    // Static: the daemons are the machine's, shared by every reloader in this process (one per test host).
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Gates = new();
    private static SemaphoreSlim Gate(string service) => Gates.GetOrAdd(service, _ => new SemaphoreSlim(1, 1));
}
