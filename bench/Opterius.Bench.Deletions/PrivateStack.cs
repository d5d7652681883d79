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

    private readonly bool _keep;

    public PrivateStack(string folder, bool keep)
    {
        Folder = folder;
        _keep = keep;
        try
        {
            Env = Start();
        }
        catch
        {
            Dispose(); // a start that failed half-way still stops what it had started
            throw;
        }
    }

    /// <summary>Starts whatever is not running (services.sh start is idempotent); returns services.env.</summary>
    public IReadOnlyDictionary<string, string> Start()
    {
        Run("start", Folder, SandboxRoot);
        return File.ReadAllLines(Path.Combine(Folder, "services.env"))
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
    }

    private static readonly (string Name, string EnvKey, string PidFile)[] Daemons =
        [("nginx", "NGINX_PID", "nginx/nginx.pid"), ("php-fpm", "FPM_PID", "php-fpm/php-fpm.pid"), ("pdns", "PDNS_PID", "pdns/pdns.pid")];

    /// <summary>The daemons this run started whose master process is no longer running.</summary>
    public IReadOnlyList<string> Dead() =>
        Daemons.Where(d => Env.ContainsKey(d.EnvKey) && !Alive(Path.Combine(Folder, d.PidFile))).Select(d => d.Name).ToList();

    private static bool Alive(string pidFile) =>
        File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) && Directory.Exists($"/proc/{pid}");

    public string MariaDbSocket => Env["MARIADB_SOCKET"];

    /// <summary>The private MariaDB's pid (its CPU is part of what a deletion costs).</summary>
    public int? MariaDbPid => int.TryParse(File.ReadAllText(Path.Combine(Folder, "mariadb", "mysqld.pid")).Trim(), out var pid) ? pid : null;
    public string CommandsJson => Env["COMMANDS_JSON"];
    public string? PowerDnsDatabase => Env.GetValueOrDefault("PDNS_DATABASE");

    public string ConnectionString(string database = "") =>
        $"Server={MariaDbSocket};Protocol=Unix;User ID=root;Database={database};Pooling=true;Maximum Pool Size=100;Default Command Timeout=60";

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return; // from both the using and ProcessExit
        Run("stop", Folder);
        if (_keep)
        {
            Console.Error.WriteLine($"kept {Folder} (daemon logs and the sandbox root); remove it with rm -rf");
            return;
        }
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
