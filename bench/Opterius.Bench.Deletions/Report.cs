namespace Opterius.Bench.Deletions;

/// <summary>The Markdown that goes into docs/benchmarks.md: every round, then medians side by side.</summary>
internal static class Report
{
    public static void Print(IReadOnlyList<(int Round, Sample Sample)> samples, int batch, IReadOnlyDictionary<string, string> env, int coalesceMs)
    {
        var services = samples[0].Sample.Reloads.Keys.ToList();
        Console.WriteLine($"Daemons: nginx {Has(env, "NGINX_PID")}, php-fpm {Has(env, "FPM_PID")}, PowerDNS {Has(env, "PDNS_PID")}, " +
                          $"reload coalescing window {coalesceMs} ms, {Environment.ProcessorCount} cores, {samples.Max(s => s.Round)} rounds");
        Console.WriteLine();
        Console.WriteLine($"| round | accounts | total (s) | per account (s) | {string.Join(" | ", services.Select(s => $"{s} reloads"))} |");
        Console.WriteLine($"|---|---|---|---|{string.Concat(services.Select(_ => "---|"))}");
        foreach (var (round, s) in samples)
            Console.WriteLine($"| {round} | {s.Accounts} | {s.Seconds:0.000} | {s.Seconds / s.Accounts:0.000} | {string.Join(" | ", services.Select(k => s.Reloads[k]))} |");

        Console.WriteLine();
        var one = samples.Where(s => s.Sample.Accounts == 1).Select(s => s.Sample).ToList();
        var many = samples.Where(s => s.Sample.Accounts == batch).Select(s => s.Sample).ToList();
        Console.WriteLine($"| median | 1 account | {batch} accounts at once | ratio |");
        Console.WriteLine("|---|---|---|---|");
        Row("total time (s)", Median(one.Select(s => s.Seconds)), Median(many.Select(s => s.Seconds)), "0.000");
        Row("time per account (s)", Median(one.Select(s => s.Seconds)), Median(many.Select(s => s.Seconds / batch)), "0.000");
        foreach (var k in services)
            Row($"{k} reloads", Median(one.Select(s => (double)s.Reloads[k])), Median(many.Select(s => (double)s.Reloads[k])), "0.#");
        Console.WriteLine($"| reload range over rounds ({batch}) | | {string.Join(", ", services.Select(k => $"{k} {many.Min(s => s.Reloads[k])}-{many.Max(s => s.Reloads[k])}"))} | |");
    }

    private static void Row(string what, double one, double many, string format) =>
        Console.WriteLine($"| {what} | {one.ToString(format)} | {many.ToString(format)} | {(one == 0 ? "-" : (many / one).ToString("0.00") + "x")} |");

    private static string Has(IReadOnlyDictionary<string, string> env, string key) => env.ContainsKey(key) ? "running" : "not installed";

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
