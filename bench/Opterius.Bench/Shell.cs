using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Opterius.Bench;

internal static partial class Shell
{
    [LibraryImport("libc.so.6", EntryPoint = "getrusage")]
    private static unsafe partial int GetRusage(int who, long* usage);

    /// <summary>User + system CPU of this process, or of its finished children: a figure other load on the machine barely moves.</summary>
    public static unsafe TimeSpan Cpu(bool children)
    {
        var usage = stackalloc long[18]; // struct rusage; the first four longs are ru_utime and ru_stime (timeval)
        if (GetRusage(children ? -1 : 0, usage) != 0) throw new InvalidOperationException("getrusage failed");
        return TimeSpan.FromSeconds(usage[0] + usage[1] / 1e6 + usage[2] + usage[3] / 1e6);
    }

    /// <summary>Runs a command with arguments as a list; returns its wall time.</summary>
    public static TimeSpan Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        clock.Stop();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {err}");
        return clock.Elapsed;
    }

    public static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>A field of /proc/self/status in KiB (VmRSS, VmHWM).</summary>
    public static long StatusKiB(string field) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(field + ":"))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    /// <summary>Resets VmHWM to the current RSS, so the next read is the peak since now (Linux 4.0+).</summary>
    public static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");
}
