using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Opterius.Bench.Deletions;
using Opterius.Services;

// dotnet run -c Release --project bench/Opterius.Bench.Deletions -- [--rounds N] [--accounts N] [--dir PATH] [--keep]
string Opt(string name, string fallback)
{
    var i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
var rounds = int.Parse(Opt("rounds", "5"));
var batch = int.Parse(Opt("accounts", "50"));
var folder = Opt("dir", Path.Combine(Path.GetTempPath(), $"opterius-bench-del-{Environment.ProcessId}"));

Console.Error.WriteLine($"starting the private services in {folder}");
using var stack = new PrivateStack(folder, keep: args.Contains("--keep"));
// SIGTERM ends the process without unwinding the using above; Ctrl-C only stops after the current round.
AppDomain.CurrentDomain.ProcessExit += (_, _) => stack.Dispose();
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

var (services, admin) = await Panel.StartAsync(stack);
await using (services)
{
    var bench = new DeletionBench(services, admin, stack);
    Console.Error.WriteLine("warm-up (JIT, connection pools, first reloads)");
    await bench.RunAsync(1);

    var samples = new List<(int Round, Sample Sample)>();
    for (var round = 1; round <= rounds && !cancel.IsCancellationRequested; round++)
    {
        // Alternate which goes first, so neither always runs on the warmer (or busier) machine.
        foreach (var count in round % 2 == 1 ? new[] { 1, batch } : [batch, 1])
        {
            var s = await bench.RunAsync(count);
            samples.Add((round, s));
            Console.Error.WriteLine($"round {round}: {count} account(s) in {s.Seconds:0.000} s, {s.Failed} failed, reloads " +
                string.Join(", ", s.Reloads.Select(kv => $"{kv.Key} {kv.Value}")) +
                (s.DeadDaemons.Count > 0 ? $"; died: {string.Join(", ", s.DeadDaemons)} (restarted)" : ""));
        }
    }
    Report.Print(samples, batch, stack.Env, services.GetRequiredService<IOptions<OpteriusOptions>>().Value.ReloadCoalesceMilliseconds);
}
