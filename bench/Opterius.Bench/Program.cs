using Opterius.Bench;

// dotnet run -c Release --project bench/Opterius.Bench -- [home|lines|backup|restore|all] [--rounds N] [--files N] [--sizes N,N] [--dirs N] [--lines N] [--workers N] [--dir PATH]
var verb = args.FirstOrDefault(a => !a.StartsWith("--")) ?? "all";
string Opt(string name, string fallback)
{
    var i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
var rounds = int.Parse(Opt("rounds", "5"));
var work = Opt("dir", Path.Combine("/var/tmp", $"opterius-bench-{Environment.ProcessId}"));
Directory.CreateDirectory(work);
try
{
    if (verb is "home" or "all")
        HomeRemovalBench.Run(work, rounds, int.Parse(Opt("files", "100000")), int.Parse(Opt("dirs", "10000")), int.Parse(Opt("workers", "4")));
    if (verb is "backup" or "all")
        await FinalBackupBench.RunAsync(work, rounds, int.Parse(Opt("files", "100000")), int.Parse(Opt("dirs", "10000")));
    if (verb is "restore" or "all")
        await RestoreBench.RunAsync(work, Opt("sizes", "10000,100000").Split(',').Select(int.Parse).ToList());
    if (verb is "lines" or "all")
        LineFileBench.Run(work, rounds, int.Parse(Opt("lines", "200000")));
}
finally
{
    Shell.Run("rm", "-rf", "--one-file-system", work);
}
