using System.Diagnostics;
using Opterius.Services.Backups;

namespace Opterius.Bench;

/// <summary>
/// The home part of a final backup (SafeTree.Visit, PAX tar, zstd level 1, per-file SHA-256, the manifest's file list)
/// against <c>tar -C home -cf - . | zstd -1 &gt; x.tar.zst</c> on the same tree in the same run, alternating which goes
/// first, with the process's peak RSS during each backup.
/// </summary>
internal static class FinalBackupBench
{
    public static async Task RunAsync(string work, int rounds, int files, int dirs)
    {
        var warm = Path.Combine(work, "warm-up");
        HomeRemovalBench.Make(warm, 3000, 300);
        await FinalBackupWriter.ArchiveTreeAsync(warm, Path.Combine(work, "warm.tar.zst"));

        var home = Path.Combine(work, "home");
        var made = HomeRemovalBench.Make(home, files, dirs);
        Shell.Run("sync");
        Console.WriteLine($"## Final backup of a home: {made.Files} files in {made.Directories} folders, {made.Bytes / 1048576.0:0.0} MiB, {rounds} rounds");
        Console.WriteLine();
        Console.WriteLine("| round | first | backup wall (s) | tar \\| zstd -1 wall (s) | wall ratio | backup CPU (s) | tar+zstd CPU (s) | backup size (MiB) | tar.zst size (MiB) | RSS before (MiB) | peak RSS during (MiB) | allocated (MiB) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        var ours = new List<double>();
        var theirs = new List<double>();
        var peaks = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            var a = Path.Combine(work, $"backup{round}.tar.zst");
            var b = Path.Combine(work, $"tar{round}.tar.zst");
            var backupFirst = round % 2 == 1;
            (double Wall, double Cpu) t = default;
            if (!backupFirst) t = TimeTar(home, b);
            GC.Collect();
            var before = Shell.StatusKiB("VmRSS");
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            Shell.ResetPeak();
            var cpu = Shell.Cpu(children: false);
            var clock = Stopwatch.StartNew();
            await FinalBackupWriter.ArchiveTreeAsync(home, a);
            clock.Stop();
            var oc = (Shell.Cpu(children: false) - cpu).TotalSeconds;
            var peak = Shell.StatusKiB("VmHWM");
            allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            if (backupFirst) t = TimeTar(home, b);
            var s = clock.Elapsed.TotalSeconds;
            ours.Add(s);
            theirs.Add(t.Wall);
            peaks.Add(peak / 1024.0);
            Console.WriteLine($"| {round} | {(backupFirst ? "backup" : "tar")} | {s:0.000} | {t.Wall:0.000} | {s / t.Wall:0.00} | {oc:0.000} | {t.Cpu:0.000} | "
                + $"{new FileInfo(a).Length / 1048576.0:0.0} | {new FileInfo(b).Length / 1048576.0:0.0} | {before / 1024.0:0.0} | {peak / 1024.0:0.0} | {allocated / 1048576.0:0.0} |");
            File.Delete(a);
            File.Delete(b);
        }
        var mo = Shell.Median(ours);
        var mt = Shell.Median(theirs);
        Console.WriteLine();
        Console.WriteLine($"Median wall: final backup {mo:0.000} s, tar | zstd -1 {mt:0.000} s, ratio {mo / mt:0.00} (goal <= 1.2). Peak RSS during a backup: max {peaks.Max():0.0} MiB.");
        Console.WriteLine();
        Shell.Run("rm", "-rf", home, warm);
    }

    /// <summary>The shell pipeline itself (bash -c), as an operator would type it; CPU of both children.</summary>
    private static (double Wall, double Cpu) TimeTar(string home, string output)
    {
        var cpu = Shell.Cpu(children: true);
        var wall = Shell.Run("bash", "-c", "set -o pipefail; tar -C \"$1\" -cf - . | zstd -q -1 > \"$2\"", "bash", home, output).TotalSeconds;
        return (wall, (Shell.Cpu(children: true) - cpu).TotalSeconds);
    }
}
