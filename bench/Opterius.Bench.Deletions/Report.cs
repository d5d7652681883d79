namespace Opterius.Bench.Deletions;

/// <summary>
/// The Markdown that goes into docs/benchmarks.md: every round, then medians of the resources in process side by side
/// (1 account, the batch), and with <c>--split</c> the same medians through the agent and what the agent adds.
/// </summary>
internal static class Report
{
    public static void Print(IReadOnlyList<(int Round, Sample Sample)> samples, int batch, IReadOnlyDictionary<string, string> env, int coalesceMs)
    {
        var services = samples[0].Sample.Reloads.Keys.ToList();
        Console.WriteLine($"Daemons: nginx {Has(env, "NGINX_PID")}, php-fpm {Has(env, "FPM_PID")}, PowerDNS {Has(env, "PDNS_PID")}; " +
                          $"reload coalescing window {coalesceMs} ms; {Environment.ProcessorCount} cores; {samples.Max(s => s.Round)} rounds");
        Console.WriteLine();
        Console.WriteLine($"| round | resources | accounts | total (s) | per account (s) | {string.Join(" | ", services.Select(s => $"{s} reloads"))} | failed | daemons that died |");
        Console.WriteLine($"|---|---|---|---|---|{string.Concat(services.Select(_ => "---|"))}---|---|");
        foreach (var (round, s) in samples)
            Console.WriteLine($"| {round} | {s.Mode} | {s.Accounts} | {s.Seconds:0.000} | {s.Seconds / s.Accounts:0.000} | " +
                              $"{string.Join(" | ", services.Select(k => s.Reloads[k].ToString()))} | {s.Failed} | {string.Join(", ", s.DeadDaemons)} |");

        Console.WriteLine();
        // A failed deletion stops early, so its time says nothing about the cost of a deletion: clean rounds only.
        List<Sample> Clean(string mode, int accounts) =>
            samples.Select(s => s.Sample).Where(s => s.Mode == mode && s.Accounts == accounts && s.Clean).ToList();
        var one = Clean(DeletionBench.InProcess, 1);
        var many = Clean(DeletionBench.InProcess, batch);
        Console.WriteLine($"| median of clean rounds, in process | 1 account ({one.Count} rounds) | {batch} accounts at once ({many.Count} rounds) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Row("total time (s)", one.Select(s => s.Seconds), many.Select(s => s.Seconds), "0.000", Ratio);
        Row("time per account (s)", one.Select(s => s.Seconds), many.Select(s => s.Seconds / batch), "0.000", Ratio);
        foreach (var k in services)
            Row($"{k} reloads", one.Select(s => (double)s.Reloads[k]), many.Select(s => (double)s.Reloads[k]), "0.#", Ratio);

        if (samples.Any(s => s.Sample.Mode == DeletionBench.Agent))
        {
            Console.WriteLine();
            // Each round's two runs follow each other: their ratio is less moved by the machine's drift than the medians.
            Console.WriteLine("| median of clean rounds (total time, s) | in process | through the agent | the agent adds | median of each round's agent / in process |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var accounts in new[] { 1, batch })
            {
                var paired = samples.Where(s => s.Sample.Accounts == accounts && s.Sample.Clean).GroupBy(s => s.Round)
                    .Select(g => (In: g.FirstOrDefault(s => s.Sample.Mode == DeletionBench.InProcess).Sample, Agent: g.FirstOrDefault(s => s.Sample.Mode == DeletionBench.Agent).Sample))
                    .Where(p => p.In is not null && p.Agent is not null).Select(p => p.Agent.Seconds / p.In.Seconds);
                Row(accounts == 1 ? "1 account" : $"{batch} accounts at once",
                    Clean(DeletionBench.InProcess, accounts).Select(s => s.Seconds), Clean(DeletionBench.Agent, accounts).Select(s => s.Seconds),
                    "0.000", (a, b) => $"{(b / a - 1) * 100:+0.0;-0.0}% | {Show(Median(paired), "0.00")}x");
            }
            // The agent reloads in its own process: its reloader's counts, the same services as in process.
            foreach (var k in services)
                Row($"{k} reloads, {batch} at once", Clean(DeletionBench.InProcess, batch).Select(s => (double)s.Reloads[k]),
                    Clean(DeletionBench.Agent, batch).Select(s => (double)s.Reloads[k]), "0.#", (a, b) => $"{b - a:+0.#;-0.#;0} | -");
        }

        var failures = samples.SelectMany(s => s.Sample.Failures.Select(f => $"{s.Sample.Mode}: {f}")).Distinct().ToList();
        if (failures.Count == 0) return;
        Console.WriteLine();
        Console.WriteLine($"Deletions that failed: {samples.Sum(s => s.Sample.Failed)} in {samples.Count(s => !s.Sample.Clean)} of {samples.Count} runs; causes:");
        foreach (var f in failures) Console.WriteLine($"- `{f}`");
    }

    /// <summary>
    /// The floor under the batch's time while each account's user is locked and removed by a command of its own, beside
    /// one account and the batch in process, in the same run.
    /// </summary>
    public static void PrintUserDatabaseAlone(IReadOnlyList<(double OneAfterAnother, double AllAtOnce, double AllAtOnceCpu)> floors, IReadOnlyList<(int Round, Sample Sample)> samples, int batch)
    {
        double? Of(int accounts) => Median(samples.Select(s => s.Sample).Where(s => s.Mode == DeletionBench.InProcess && s.Accounts == accounts && s.Clean).Select(s => s.Seconds));
        var (one, many) = (Of(1), Of(batch));
        var (after, atOnce) = (Median(floors.Select(f => f.OneAfterAnother)), Median(floors.Select(f => f.AllAtOnce)));
        string Ratio(double? v) => one is > 0 && v is { } x ? $"{x / one.Value:0.00}x" : "-";
        Console.WriteLine($"| in process, median of {floors.Count} rounds | 1 account | {batch} accounts at once | the user database alone: {batch} usermod + {batch} userdel, one after another | the same, all at once |");
        Console.WriteLine("|---|---|---|---|---|");
        Console.WriteLine($"| total time (s) | {Show(one, "0.000")} | {Show(many, "0.000")} | {Show(after, "0.000")} | {Show(atOnce, "0.000")} |");
        Console.WriteLine($"| ratio to 1 account | {Ratio(one)} | {Ratio(many)} | {Ratio(after)} | {Ratio(atOnce)} |");
        var cpu = Median(floors.Select(f => f.AllAtOnceCpu));
        Console.WriteLine($"| CPU of the commands (s) | | | | {Show(cpu, "0.00")}, {Show(cpu / Environment.ProcessorCount, "0.000")} s on {Environment.ProcessorCount} cores |");
        Console.WriteLine();
    }

    private static string Ratio(double a, double b) => (b / a).ToString("0.00") + "x";

    private static void Row(string what, IEnumerable<double> left, IEnumerable<double> right, string format, Func<double, double, string> compare)
    {
        var (a, b) = (Median(left), Median(right));
        Console.WriteLine($"| {what} | {Show(a, format)} | {Show(b, format)} | {(a is null || b is null || a == 0 ? "-" : compare(a.Value, b.Value))} |");
    }

    private static string Show(double? v, string format) => v?.ToString(format) ?? "-";

    private static string Has(IReadOnlyDictionary<string, string> env, string key) => env.ContainsKey(key) ? "running" : "not installed";

    private static double? Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        if (v.Length == 0) return null;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
