using System.Diagnostics;
using System.Text;
using Opterius.Services.Files;

namespace Opterius.Bench;

/// <summary>
/// Removing one domain from 200,000-line Dovecot users and Postfix vmailbox files: <see cref="LineFile"/> against
/// <c>grep -vF "@domain" f &gt; tmp; sync tmp; mv tmp f; sync dir</c>, each on its own copy, alternating.
/// </summary>
internal static class LineFileBench
{
    private const string Domain = "target-domain.com";

    public static void Run(string work, int rounds, int lines)
    {
        var dir = Path.Combine(work, "lines");
        Directory.CreateDirectory(dir);
        var users = Path.Combine(dir, "users.template");
        var vmailbox = Path.Combine(dir, "vmailbox.template");
        Make(users, vmailbox, lines);
        Console.WriteLine($"## Line file rewrite: {lines} lines each, users {new FileInfo(users).Length / 1048576.0:0.0} MiB, " +
                          $"vmailbox {new FileInfo(vmailbox).Length / 1048576.0:0.0} MiB, {rounds} rounds");
        Console.WriteLine();
        // Warm-up: the first rewrite would otherwise pay for JIT compilation.
        File.Copy(vmailbox, Path.Combine(dir, "warm-up"));
        LineFile.RemoveDomainAsync(Path.Combine(dir, "warm-up"), Domain).GetAwaiter().GetResult();

        Console.WriteLine("| round | file | LineFile.RemoveDomainAsync (ms) | grep -vF + fsync + mv (ms) | ratio |");
        Console.WriteLine("|---|---|---|---|---|");
        var results = new Dictionary<string, (List<double> Ours, List<double> Grep)>();
        for (var round = 1; round <= rounds; round++)
        foreach (var template in new[] { users, vmailbox })
        {
            var name = Path.GetFileNameWithoutExtension(template);
            var ours = Path.Combine(dir, name);
            var theirs = Path.Combine(dir, name + ".grep");
            File.Copy(template, ours, overwrite: true);
            File.Copy(template, theirs, overwrite: true);
            Shell.Run("sync");

            double o = 0, g = 0;
            if (round % 2 == 0) g = Grep(theirs);
            var clock = Stopwatch.StartNew();
            var removed = LineFile.RemoveDomainAsync(ours, Domain).GetAwaiter().GetResult(); // a console run: nothing else waits for this thread
            o = clock.Elapsed.TotalMilliseconds;
            if (round % 2 == 1) g = Grep(theirs);
            if (removed != 2) throw new InvalidOperationException($"removed {removed} lines, expected 2");
            if (!File.ReadAllBytes(ours).AsSpan().SequenceEqual(File.ReadAllBytes(theirs))) throw new InvalidOperationException("outputs differ");

            if (!results.TryGetValue(name, out var r)) results[name] = r = ([], []);
            r.Ours.Add(o);
            r.Grep.Add(g);
            Console.WriteLine($"| {round} | {name} | {o:0.0} | {g:0.0} | {o / g:0.00} |");
        }
        Console.WriteLine();
        foreach (var (name, (o, g)) in results)
            Console.WriteLine($"Median {name}: LineFile {Shell.Median(o):0.0} ms, grep pipeline {Shell.Median(g):0.0} ms, ratio {Shell.Median(o) / Shell.Median(g):0.00} (goal <= 1.5).");
        Console.WriteLine();
    }

    private static double Grep(string file)
    {
        var script = """grep -vF "@$2" "$1" > "$1.tmp"; sync "$1.tmp" && mv "$1.tmp" "$1" && sync "$(dirname "$1")" """;
        return Shell.Run("sh", "-c", script, "sh", file, Domain).TotalMilliseconds;
    }

    /// <summary>Two lines per domain, the target domain in the middle, look-alike domains around it.</summary>
    private static void Make(string users, string vmailbox, int lines)
    {
        using var u = new StreamWriter(users, false, new UTF8Encoding(false), 1 << 20);
        using var v = new StreamWriter(vmailbox, false, new UTF8Encoding(false), 1 << 20);
        var hash = "{SSHA512}" + Convert.ToBase64String(new byte[80]);
        for (var i = 0; i < lines / 2; i++)
        {
            var domain = i == lines / 4 ? Domain : i % 3 == 0 ? $"site{i}.{Domain}.au" : $"site{i}.example.org";
            foreach (var user in new[] { "admin", "info" })
            {
                u.Write($"{user}@{domain}:{hash}:5000:5000::/var/mail/vdomains/{domain}/{user}::\n");
                v.Write($"{user}@{domain}  {domain}/{user}/\n");
            }
        }
    }
}
