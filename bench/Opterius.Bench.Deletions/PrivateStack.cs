using System.Diagnostics;

namespace Opterius.Bench.Deletions;

/// <summary>
/// The private MariaDB, nginx, php-fpm and PowerDNS of this run, started by <c>scripts/services.sh</c> under a temp
/// folder with a sandbox root inside it, and stopped (by the pids the script recorded) on dispose.
/// </summary>
internal sealed class PrivateStack : IDisposable
{
    public string RepoRoot { get; } = FindRepoRoot();
    public string Folder { get; }
    public string SandboxRoot => Path.Combine(Folder, "root");
    public IReadOnlyDictionary<string, string> Env { get; }

    public PrivateStack(string folder)
    {
        Folder = folder;
        try
        {
            Run("start", Folder, SandboxRoot);
            Env = File.ReadAllLines(Path.Combine(Folder, "services.env"))
                .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        }
        catch
        {
            Dispose(); // a start that failed half-way still stops what it had started
            throw;
        }
    }

    public string MariaDbSocket => Env["MARIADB_SOCKET"];
    public string CommandsJson => Env["COMMANDS_JSON"];
    public string? PowerDnsDatabase => Env.GetValueOrDefault("PDNS_DATABASE");

    public string ConnectionString(string database = "") =>
        $"Server={MariaDbSocket};Protocol=Unix;User ID=root;Database={database};Pooling=true;Maximum Pool Size=100;Default Command Timeout=60";

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return; // from both the using and ProcessExit
        Run("stop", Folder);
        // Sandbox homes belong to sandbox uids; never cross into another file system while clearing them.
        Run2("rm", "-rf", "--one-file-system", Folder);
    }

    private void Run(string verb, params string[] args) => Run2("bash", [Path.Combine(RepoRoot, "scripts", "services.sh"), verb, .. args]);

    private static void Run2(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {err.Result}");
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Opterius.sln"))) return d.FullName;
        throw new InvalidOperationException("Opterius.sln not found above the benchmark binaries");
    }
}
