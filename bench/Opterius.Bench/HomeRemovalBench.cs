using System.Diagnostics;
using Opterius.Services.Deletion;
using Opterius.Services.Files;

namespace Opterius.Bench;

/// <summary>
/// A home of many files in many folders removed by <see cref="SafeTree"/> and by <c>rm -rf</c>, on identical copies
/// of one template, alternating which goes first, with the process's peak RSS during each SafeTree removal; then a
/// third copy removed as a deletion step does, reporting its progress (one statx per file more) to a
/// <see cref="StepProgress"/>.
/// </summary>
internal static class HomeRemovalBench
{
    public static void Run(string work, int rounds, int files, int dirs)
    {
        // Warm-up: the first walk would otherwise pay for JIT compilation.
        var warm = Path.Combine(work, "warm-up");
        Make(warm, 3000, 300);
        SafeTree.Remove(warm);

        var template = Path.Combine(work, "template");
        var made = Make(template, files, dirs);
        Console.WriteLine($"## Home directory removal: {made.Files} files in {made.Directories} folders, {made.Bytes / 1048576.0:0.0} MiB, {rounds} rounds");
        Console.WriteLine();
        Console.WriteLine("| round | first | SafeTree wall (s) | rm -rf wall (s) | wall ratio | SafeTree CPU (s) | rm -rf CPU (s) | CPU ratio | RSS before (MiB) | peak RSS during (MiB) | RSS after (MiB) | allocated (MiB) | with progress wall (s) | with progress CPU (s) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        var safe = new List<double>();
        var rm = new List<double>();
        var peaks = new List<double>();
        var safeCpu = new List<double>();
        var rmCpu = new List<double>();
        var measure = new List<double>();
        var reporting = new List<double>();
        var reportingCpu = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            var a = Path.Combine(work, $"safe{round}");
            var b = Path.Combine(work, $"rm{round}");
            var c = Path.Combine(work, $"progress{round}");
            Shell.Run("cp", "-a", template, a);
            Shell.Run("cp", "-a", template, b);
            Shell.Run("cp", "-a", template, c);
            Shell.Run("sync");

            var clock = Stopwatch.StartNew();
            if (SafeTree.Measure(a) != made) throw new InvalidOperationException("copy differs from the template");
            measure.Add(clock.Elapsed.TotalSeconds);

            var safeFirst = round % 2 == 1;
            double s = 0, r = 0, sc = 0, rc = 0;
            (long Before, long Peak, long After, long Allocated) mem = default;
            if (!safeFirst) (r, rc) = TimeRm(b);
            var cpu = Shell.Cpu(children: false);
            (s, mem) = TimeSafe(a, made);
            sc = (Shell.Cpu(children: false) - cpu).TotalSeconds;
            if (safeFirst) (r, rc) = TimeRm(b);
            cpu = Shell.Cpu(children: false);
            var (p, _) = TimeSafe(c, made, reportProgress: true);
            var pc = (Shell.Cpu(children: false) - cpu).TotalSeconds;
            if (Path.Exists(a) || Path.Exists(b) || Path.Exists(c)) throw new InvalidOperationException("a tree was left behind");
            reporting.Add(p);
            reportingCpu.Add(pc);

            safe.Add(s);
            rm.Add(r);
            safeCpu.Add(sc);
            rmCpu.Add(rc);
            peaks.Add(mem.Peak / 1024.0);
            Console.WriteLine($"| {round} | {(safeFirst ? "SafeTree" : "rm")} | {s:0.000} | {r:0.000} | {s / r:0.00} | {sc:0.000} | {rc:0.000} | {sc / rc:0.00} | {mem.Before / 1024.0:0.0} | {mem.Peak / 1024.0:0.0} | {mem.After / 1024.0:0.0} | {mem.Allocated / 1048576.0:0.0} | {p:0.000} | {pc:0.000} |");
        }
        var ms = Shell.Median(safe);
        var mr = Shell.Median(rm);
        Console.WriteLine();
        Console.WriteLine($"Median wall: SafeTree.Remove {ms:0.000} s, rm -rf {mr:0.000} s, ratio {ms / mr:0.00} (goal <= 1.15). " +
                          $"Median CPU: SafeTree.Remove {Shell.Median(safeCpu):0.000} s, rm -rf {Shell.Median(rmCpu):0.000} s, ratio {Shell.Median(safeCpu) / Shell.Median(rmCpu):0.00}. " +
                          $"Median SafeTree.Measure (inspection) {Shell.Median(measure):0.000} s. Peak RSS during removal: max {peaks.Max():0.0} MiB. " +
                          $"With progress (a deletion step): median wall {Shell.Median(reporting):0.000} s ({Shell.Median(reporting) / ms:0.00}x), CPU {Shell.Median(reportingCpu):0.000} s ({Shell.Median(reportingCpu) / Shell.Median(safeCpu):0.00}x).");
        Console.WriteLine();
        Shell.Run("rm", "-rf", template);
    }

    private static (double Wall, double Cpu) TimeRm(string path)
    {
        var cpu = Shell.Cpu(children: true);
        var wall = Shell.Run("rm", "-rf", path).TotalSeconds;
        return (wall, (Shell.Cpu(children: true) - cpu).TotalSeconds);
    }

    private static (double Seconds, (long, long, long, long) Memory) TimeSafe(string path, TreeMeasure expected, bool reportProgress = false)
    {
        var published = 0;
        var progress = reportProgress ? new StepProgress(_ => published++) : null;
        GC.Collect();
        var before = Shell.StatusKiB("VmRSS");
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        Shell.ResetPeak();
        var clock = Stopwatch.StartNew();
        var removed = SafeTree.Remove(path, progress: progress is null ? null : progress.Report);
        progress?.Flush();
        clock.Stop();
        var peak = Shell.StatusKiB("VmHWM");
        var after = Shell.StatusKiB("VmRSS");
        allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
        if (removed is null || removed.Files != expected.Files || removed.Directories != expected.Directories)
            throw new InvalidOperationException($"removed {removed}, expected {expected}");
        if (reportProgress && published == 0) throw new InvalidOperationException("a removal with progress reported nothing");
        return (clock.Elapsed.TotalSeconds, (before, peak, after, allocated));
    }

    /// <summary>A site-like tree: folders two levels deep, files of a few hundred bytes to a few KiB spread over them.</summary>
    internal static TreeMeasure Make(string top, int files, int dirs)
    {
        var fanout = (int)Math.Ceiling(Math.Sqrt(dirs));
        var leaves = new List<string>();
        for (var i = 0; i < fanout && leaves.Count < dirs; i++)
        for (var j = 0; j < fanout && leaves.Count < dirs; j++)
        {
            var dir = Path.Combine(top, "public_html", $"section{i:000}", $"page{j:000}");
            Directory.CreateDirectory(dir);
            leaves.Add(dir);
        }
        var random = new Random(42);
        var content = new byte[4096];
        random.NextBytes(content);
        for (var f = 0; f < files; f++)
            File.WriteAllBytes(Path.Combine(leaves[f % leaves.Count], $"file{f}.php"), content.AsSpan(0, 200 + random.Next(3800)).ToArray());
        return SafeTree.Measure(top) ?? throw new InvalidOperationException("template missing");
    }
}
