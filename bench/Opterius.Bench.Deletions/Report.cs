namespace Opterius.Bench.Deletions;

/// <summary>The Markdown that goes into docs/benchmarks.md: every round, then medians side by side.</summary>
internal static class Report
{
    public static void Print(IReadOnlyList<(int Round, Sample Sample)> samples, int batch, IReadOnlyDictionary<string, string> env, int coalesceMs)
    {
        var services = samples[0].Sample.Reloads.Keys.ToList();
        Console.WriteLine($"Daemons: nginx {Has(env, "NGINX_PID")}, php-fpm {Has(env, "FPM_PID")}, PowerDNS {Has(env, "PDNS_PID")}; " +
                          $"reload coalescing window {coalesceMs} ms; {Environment.ProcessorCount} cores; {samples.Max(s => s.Round)} rounds");
        Console.WriteLine();
        Console.WriteLine($"| round | accounts | total (s) | per account (s) | {string.Join(" | ", services.Select(s => $"{s} reloads"))} | failed | daemons that died |");
        Console.WriteLine($"|---|---|---|---|{string.Concat(services.Select(_ => "---|"))}---|---|");
        foreach (var (round, s) in samples)
            Console.WriteLine($"| {round} | {s.Accounts} | {s.Seconds:0.000} | {s.Seconds / s.Accounts:0.000} | " +
                              $"{string.Join(" | ", services.Select(k => s.Reloads[k]))} | {s.Failed} | {string.Join(", ", s.DeadDaemons)} |");

        Console.WriteLine();
        // A failed deletion stops early, so its time says nothing about the cost of a deletion: clean rounds only.
        var one = samples.Select(s => s.Sample).Where(s => s.Accounts == 1 && s.Clean).ToList();
        var many = samples.Select(s => s.Sample).Where(s => s.Accounts == batch && s.Clean).ToList();
        Console.WriteLine($"| median of clean rounds | 1 account ({one.Count} rounds) | {batch} accounts at once ({many.Count} rounds) | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Row("total time (s)", one.Select(s => s.Seconds), many.Select(s => s.Seconds), "0.000");
        Row("time per account (s)", one.Select(s => s.Seconds), many.Select(s => s.Seconds / batch), "0.000");
        foreach (var k in services)
            Row($"{k} reloads", one.Select(s => (double)s.Reloads[k]), many.Select(s => (double)s.Reloads[k]), "0.#");

        var failures = samples.SelectMany(s => s.Sample.Failures).Distinct().ToList();
        if (failures.Count == 0) return;
        Console.WriteLine();
        Console.WriteLine($"Deletions that failed: {samples.Sum(s => s.Sample.Failed)} in {samples.Count(s => !s.Sample.Clean)} of {samples.Count} runs; causes:");
        foreach (var f in failures) Console.WriteLine($"- `{f}`");
    }

    private static void Row(string what, IEnumerable<double> one, IEnumerable<double> many, string format)
    {
        var (a, b) = (Median(one), Median(many));
        Console.WriteLine($"| {what} | {Show(a, format)} | {Show(b, format)} | " +
                          $"{(a is null || b is null || a == 0 ? "-" : (b / a)!.Value.ToString("0.00") + "x")} |");
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
