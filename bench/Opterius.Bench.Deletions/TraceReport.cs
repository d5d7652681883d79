using Opterius.Services.Deletion;
using Opterius.Services.Resources;

namespace Opterius.Bench.Deletions;

/// <summary>
/// The Markdown of <c>--trace</c>: for one account alone, each step's start, end and the CPU used meanwhile, and every
/// kind of call made, as medians over the rounds of each mode. Steps of one stage overlap, so their CPU figures share
/// what was used while both ran.
/// </summary>
internal static class TraceReport
{
    public static void Print(string mode, IReadOnlyList<Trace> traces, IReadOnlyList<Trace> batches, int batch)
    {
        if (traces.Count == 0) return;
        Console.WriteLine();
        Console.WriteLine($"**{mode}: wall and CPU of a whole run** (medians of clean rounds; CPU in 10 ms ticks; MariaDB serves the journal too)");
        Console.WriteLine();
        Console.WriteLine("| accounts | wall (s) | CPU of this process (s) | CPU of its commands (s) | CPU of the agent and its commands (s) | CPU of MariaDB (s) | all CPU (s) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (n, runs) in new[] { (1, traces), (batch, batches) })
        {
            var w = runs.Select(t => t.Whole).ToList();
            if (w.Count == 0) continue;
            double M(Func<(Trace.Mark From, Trace.Mark To), double> f) => Median(w.Select(f));
            Console.WriteLine($"| {n} | {M(r => r.To.At - r.From.At):0.000} | {M(r => r.To.Cpu - r.From.Cpu):0.00} | {M(r => r.To.ChildrenCpu - r.From.ChildrenCpu):0.00} | " +
                              $"{M(r => r.To.AgentCpu - r.From.AgentCpu):0.00} | {M(r => r.To.MariaDbCpu - r.From.MariaDbCpu):0.00} | " +
                              $"{M(r => r.To.Cpu - r.From.Cpu + r.To.ChildrenCpu - r.From.ChildrenCpu + r.To.AgentCpu - r.From.AgentCpu + r.To.MariaDbCpu - r.From.MariaDbCpu):0.00} |");
        }
        Calls($"{mode}, {batch} at once: the calls", batches);
        Console.WriteLine();
        Console.WriteLine($"**One account, {mode}: where the time goes** (medians of {traces.Count} rounds; CPU in 10 ms ticks)");
        Console.WriteLine();
        Console.WriteLine("| step | from (s) | to (s) | wall (s) | CPU of this process (s) | CPU of its commands (s) | CPU of the agent and its commands (s) | CPU of MariaDB (s) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var spans = traces.Select(Spans).ToList();
        foreach (var name in spans[0].Keys)
        {
            var rows = spans.Where(s => s.ContainsKey(name)).Select(s => s[name]).ToList();
            double M(Func<(Trace.Mark From, Trace.Mark To), double> f) => Median(rows.Select(f));
            Console.WriteLine($"| {name} | {M(r => r.From.At):0.000} | {M(r => r.To.At):0.000} | {M(r => r.To.At - r.From.At):0.000} | " +
                              $"{M(r => r.To.Cpu - r.From.Cpu):0.00} | {M(r => r.To.ChildrenCpu - r.From.ChildrenCpu):0.00} | {M(r => r.To.AgentCpu - r.From.AgentCpu):0.00} | {M(r => r.To.MariaDbCpu - r.From.MariaDbCpu):0.00} |");
        }

        Calls($"{mode}, one account: the calls", traces);
    }

    private static void Calls(string title, IReadOnlyList<Trace> traces)
    {
        if (traces.Count == 0) return;
        Console.WriteLine();
        Console.WriteLine($"**{title}** (medians of {traces.Count} rounds)");
        Console.WriteLine();
        Console.WriteLine("| call | made per run | each (ms, median) | all of them (ms, median) | first one starts at (s) |");
        Console.WriteLine("|---|---|---|---|---|");
        var kinds = traces.SelectMany(t => t.Calls).Select(c => (c.Source, c.Name)).Distinct()
            .OrderBy(k => Median(traces.Select(t => t.Calls.Where(c => (c.Source, c.Name) == k).Select(c => c.Start).DefaultIfEmpty(double.NaN).Min())));
        foreach (var k in kinds)
        {
            var per = traces.Select(t => t.Calls.Where(c => (c.Source, c.Name) == k).ToList()).Where(l => l.Count > 0).ToList();
            Console.WriteLine($"| {k.Source}: `{k.Name}` | {Median(per.Select(l => (double)l.Count)):0.#} | {Median(per.SelectMany(l => l).Select(c => c.Seconds * 1000)):0.0} | " +
                              $"{Median(per.Select(l => l.Sum(c => c.Seconds) * 1000)):0.0} | {Median(per.Select(l => l.Min(c => c.Start))):0.000} |");
        }
    }

    /// <summary>Each step from its first running mark to its last mark; before them the plan and journal, after them the check and the end.</summary>
    private static Dictionary<string, (Trace.Mark From, Trace.Mark To)> Spans(Trace trace)
    {
        var marks = trace.Marks;
        var steps = marks.Where(m => m.Resource != DeletionEvent.JobResource).ToList();
        var end = marks.LastOrDefault(m => m.Resource == DeletionEvent.JobResource && m.Status is JobStatus.Succeeded or JobStatus.Failed) ?? marks[^1];
        var spans = new Dictionary<string, (Trace.Mark, Trace.Mark)>();
        if (steps.Count == 0) return spans;
        spans["plan and journal"] = (marks[0], steps.First(m => m.Status == StepStatus.Running));
        foreach (var g in steps.GroupBy(m => m.Resource).OrderBy(g => DeletionOrder.Position(new DeletionEvent(0, 0, g.Key, "", null, default))))
            spans[g.Key] = (g.FirstOrDefault(m => m.Status == StepStatus.Running) ?? g.First(), g.Last());
        spans["check and end"] = (steps.Where(m => m.Status != StepStatus.Running).MaxBy(m => m.At)!, end);
        spans["whole deletion"] = (marks[0], end);
        return spans;
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Where(x => !double.IsNaN(x)).Order().ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
