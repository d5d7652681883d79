using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Opterius.Bench.Deletions;
using Opterius.Services;

// dotnet run -c Release --project bench/Opterius.Bench.Deletions -- [--split] [--rounds N] [--accounts N] [--dir PATH] [--keep]
// --split: every round also through the root agent (a child process on a Unix socket), side by side.
// --trace: where one account's time goes (each step, its CPU, every command, SQL statement and gRPC call), per mode.
string Opt(string name, string fallback)
{
    var i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
var rounds = int.Parse(Opt("rounds", "5"));
var batch = int.Parse(Opt("accounts", "50"));
var split = args.Contains("--split");
var folder = Opt("dir", Path.Combine(Path.GetTempPath(), $"opterius-bench-del-{Environment.ProcessId}"));

Console.Error.WriteLine($"starting the private services in {folder}");
using var stack = new PrivateStack(folder, keep: args.Contains("--keep"));
AgentProcess? agent = null;
// SIGTERM ends the process without unwinding the usings: the agent first (it uses the services), then the services.
AppDomain.CurrentDomain.ProcessExit += (_, _) => { agent?.Dispose(); stack.Dispose(); };
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

var (panel, services, admin) = await Panel.StartAsync(stack);
var socket = Path.Combine(folder, "agent.sock");
if (split) agent = await AgentProcess.StartAsync(panel.AgentSettings(stack, socket), Path.Combine(folder, "agent.log"));
var throughAgent = split ? panel.WithAgent(stack, socket) : null;
List<DeletionBench> benches;
try
{
    benches = new List<DeletionBench> { new(DeletionBench.InProcess, services, admin, stack) };
    if (throughAgent is not null) benches.Add(new(DeletionBench.Agent, throughAgent, admin, stack, agent!.Pid));
    Console.Error.WriteLine("warm-up (JIT, connection pools, first reloads, the agent's channel)");
    foreach (var bench in benches) await bench.RunAsync(1);

    var samples = new List<(int Round, Sample Sample)>();
    var floors = new List<(double OneAfterAnother, double AllAtOnce, double AllAtOnceCpu)>();
    for (var round = 1; round <= rounds && !cancel.IsCancellationRequested; round++)
    {
        // Alternate which size and which mode go first, so neither always runs on the warmer (or busier) machine.
        var order = round % 2 == 1 ? benches : Enumerable.Reverse(benches).ToList();
        foreach (var count in round % 2 == 1 ? new[] { 1, batch } : [batch, 1])
            foreach (var bench in order)
            {
                var s = await bench.RunAsync(count);
                samples.Add((round, s));
                Console.Error.WriteLine($"round {round}, {s.Mode}: {count} account(s) in {s.Seconds:0.000} s, {s.Failed} failed" +
                    ", reloads " + string.Join(", ", s.Reloads.Select(kv => $"{kv.Key} {kv.Value}")) +
                    (s.DeadDaemons.Count > 0 ? $"; died: {string.Join(", ", s.DeadDaemons)} (restarted)" : ""));
            }
        floors.Add(await benches[0].UserDatabaseAloneAsync(batch));
        Console.Error.WriteLine($"round {round}: the user database alone, {batch} usermod then {batch} userdel: one after another {floors[^1].OneAfterAnother:0.000} s, all at once {floors[^1].AllAtOnce:0.000} s ({floors[^1].AllAtOnceCpu:0.00} s of CPU)");
    }
    if (samples.Count > 0) Report.PrintUserDatabaseAlone(floors, samples, batch);
    if (samples.Count > 0) Report.Print(samples, batch, stack.Env, services.GetRequiredService<IOptions<OpteriusOptions>>().Value.ReloadCoalesceMilliseconds);
    if (args.Contains("--trace"))
        foreach (var bench in benches)
        {
            List<Trace> Of(int accounts) => samples.Select(s => s.Sample).Where(s => s.Mode == bench.Mode && s.Accounts == accounts && s.Clean && s.Trace is not null).Select(s => s.Trace!).ToList();
            TraceReport.Print(bench.Mode, Of(1), Of(batch), batch);
        }
    if (split)
    {
        // Where the agent's time goes: one call's own cost, apart from the work the resource does.
        Console.WriteLine();
        Console.WriteLine("| one inspection of cron (no such account), mean of 500 | one after the other (ms) | 500 at once (ms a call) |");
        Console.WriteLine("|---|---|---|");
        foreach (var bench in benches)
        {
            await bench.CallCostAsync(100); // warm
            var (one, all) = await bench.CallCostAsync(500);
            Console.WriteLine($"| {bench.Mode} | {one:0.000} | {all:0.000} |");
        }
    }
}
finally
{
    if (throughAgent is not null) await throughAgent.DisposeAsync();
    await services.DisposeAsync();
    agent?.Dispose();
}
