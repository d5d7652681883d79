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
/// burst of callers: requests arriving within the coalescing window share one run and its outcome, so
/// a batch of terminations does not reload nginx once per account.
/// Files a service includes change only under <see cref="EditAsync"/>, which excludes a running test and
/// reload: nginx and php-fpm list their include folders and then open each file, so a file removed in
/// between fails the test, and a php-fpm master re-reading its configuration exits (every site down).
/// </summary>
public sealed class ServiceReloader(CommandRunner commands, IOptions<OpteriusOptions> options)
{
    /// <summary>Each service: the commands run in order (a test first, then the reload).</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Services = new Dictionary<string, string[]>
    {
        ["nginx"] = ["NginxTest", "NginxReload"],
        ["php-fpm"] = ["PhpFpmTest", "PhpFpmReload"],
        ["postmap"] = ["Postmap"],
        ["pdns"] = ["PdnsPurge"],
    };

    private readonly ConcurrentDictionary<string, Lazy<Task>> _pending = new();
    private readonly ConcurrentDictionary<string, int> _runs = new();

    /// <summary>How many times each service was actually reloaded since start (for benchmarks and tests).</summary>
    public int RunCount(string service) => _runs.GetValueOrDefault(service);

    public async Task<ReloadOutcome> ReloadAsync(string service, CancellationToken ct)
    {
        var names = Services[service];
        var missing = names.Where(n => !commands.IsConfigured(n)).ToArray();
        if (missing.Length > 0)
            return new(false, "not configured: set " + string.Join(", ", missing.Select(n => $"Opterius:Commands:{n}")));

        // Join the batch that has not started running yet, or open a new one.
        var batch = _pending.GetOrAdd(service, s => new Lazy<Task>(() => RunBatchAsync(s)));
        await batch.Value.WaitAsync(ct);
        return ReloadOutcome.Success;
    }

    private async Task RunBatchAsync(string service)
    {
        await Task.Delay(options.Value.ReloadCoalesceMilliseconds);
        // From here on, new callers open the next batch: they may have changed files after this run read them.
        _pending.TryRemove(service, out _);
        await Gate(service).WaitAsync();
        try
        {
            _runs.AddOrUpdate(service, 1, (_, n) => n + 1);
            foreach (var name in Services[service]) await commands.RunAsync(name, null, CancellationToken.None);
        }
        finally { Gate(service).Release(); }
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

    // Static: the daemons are the machine's, shared by every reloader in this process (one per test host).
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Gates = new();
    private static SemaphoreSlim Gate(string service) => Gates.GetOrAdd(service, _ => new SemaphoreSlim(1, 1));
}
