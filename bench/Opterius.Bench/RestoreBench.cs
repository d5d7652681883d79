using System.Diagnostics;
using Opterius.Services.Backups;

namespace Opterius.Bench;

/// <summary>
/// The restore's verification (<see cref="BackupArchive.Verify"/>: every entry read, hashed and checked against the
/// manifest) of a final backup's home part, for homes of several sizes, with the process's peak RSS during it (VmHWM
/// after clear_refs): memory that grows with the file count shows here, whatever the machine's load.
/// </summary>
internal static class RestoreBench
{
    public static async Task RunAsync(string work, IReadOnlyList<int> sizes)
    {
        var warm = Path.Combine(work, "warm-up");
        HomeRemovalBench.Make(warm, 3000, 300);
        await FinalBackupWriter.ArchiveTreeAsync(warm, Path.Combine(work, "warm.tar.zst"));
        BackupArchive.Verify(Path.Combine(work, "warm.tar.zst"));
        Shell.Run("rm", "-rf", warm);

        Console.WriteLine("## Restore verification of a home's archive");
        Console.WriteLine();
        Console.WriteLine("| files | folders | archive (MiB) | entries | verify wall (s) | verify CPU (s) | RSS before (MiB) | peak RSS during (MiB) | peak - before (MiB) | allocated (MiB) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var files in sizes)
        {
            var home = Path.Combine(work, $"home{files}");
            var archive = Path.Combine(work, $"home{files}.tar.zst");
            var made = HomeRemovalBench.Make(home, files, Math.Max(1, files / 10));
            await FinalBackupWriter.ArchiveTreeAsync(home, archive);
            Shell.Run("rm", "-rf", home);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            var before = Shell.StatusKiB("VmRSS");
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            Shell.ResetPeak();
            var cpu = Shell.Cpu(children: false);
            var clock = Stopwatch.StartNew();
            var verified = BackupArchive.Verify(archive);
            clock.Stop();
            var peak = Shell.StatusKiB("VmHWM");
            allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            Console.WriteLine($"| {made.Files:N0} | {made.Directories:N0} | {new FileInfo(archive).Length / 1048576.0:0.0} | {verified.Entries:N0} | {clock.Elapsed.TotalSeconds:0.000} | "
                + $"{(Shell.Cpu(children: false) - cpu).TotalSeconds:0.000} | {before / 1024.0:0.0} | {peak / 1024.0:0.0} | {(peak - before) / 1024.0:0.0} | {allocated / 1048576.0:0.0} |");
            File.Delete(archive);
        }
        Console.WriteLine();
    }
}
