using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Opterius.Services.Commands;

/// <summary>How a coalesced reload ended for one caller.</summary>
public sealed record ReloadOutcome(bool Ran, string? NotConfigured)
{
    public static readonly ReloadOutcome Success = new(true, null);
}

/// <summary>
/// Tests and reloads a shared service (nginx, php-fpm, the Postfix map, the PowerDNS cache) once for a
/// burst of callers: requests arriving within the coalescing window share one run and its outcome, so
/// a batch of terminations does not reload nginx once per account.
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
            return new(false, string.Join(", ", missing.Select(n => $"Opterius:Commands:{n}")) + " not set");

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

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new();
    private SemaphoreSlim Gate(string service) => _gates.GetOrAdd(service, _ => new SemaphoreSlim(1, 1));
}
