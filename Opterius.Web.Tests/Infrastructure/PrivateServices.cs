using System.Diagnostics;

namespace Opterius.Web.Tests.Infrastructure;

/// <summary>
/// The private services of this test run, started once per process by <c>scripts/services.sh</c> under a
/// temp folder and stopped, by pid, when the process exits: MariaDB always; nginx, PowerDNS and php-fpm
/// when installed, serving the vhosts and pools of <see cref="SandboxRoot"/>.
/// </summary>
public static class PrivateServices
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Env = new(Start);

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Folder { get; } = Path.Combine(Path.GetTempPath(), $"opterius-tests-{Environment.ProcessId}");

    /// <summary>The sandbox server root the private nginx and php-fpm include vhosts and pools from.</summary>
    public static string SandboxRoot { get; } = Path.Combine(Folder, "root");

    public static string MariaDbSocket => Env.Value["MARIADB_SOCKET"];

    /// <summary>
    /// The run's <c>Opterius</c> section as JSON (Root, MinUid, PoolUser/PoolGroup and every command bound
    /// to these private daemons), for <c>AddJsonFile</c>.
    /// </summary>
    public static string CommandsJson => Env.Value["COMMANDS_JSON"];

    /// <summary>The gmysql database the private PowerDNS serves, or null when PowerDNS is not installed.</summary>
    public static string? PowerDnsDatabase => Get("PDNS_DATABASE");

    /// <summary>A value from services.env (e.g. NGINX_PORT), or null when that service is not running.</summary>
    public static string? Get(string key) => Env.Value.GetValueOrDefault(key);

    /// <summary>Connection string for the MariaDB root account, optionally to one database.</summary>
    public static string RootConnectionString(string database = "") =>
        $"Server={MariaDbSocket};Protocol=Unix;User ID=root;Database={database};Pooling=true;Maximum Pool Size=50;Default Command Timeout=60";

    private static IReadOnlyDictionary<string, string> Start()
    {
        // Registered first: a start that fails half-way still stops what it had started.
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            Run("stop");
            // Keep the folder (daemon logs, sandbox) when asked, e.g. to read why a test failed.
            if (Environment.GetEnvironmentVariable("OPTERIUS_KEEP_TEST_FOLDER") != "1") Directory.Delete(Folder, recursive: true);
        };
        Run("start");
        var env = File.ReadAllLines(Path.Combine(Folder, "services.env"))
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1]);
        // services.sh starts a daemon only when it is installed, and leaves its commands out otherwise: every test would
        // then run with those steps unconfigured. Fail, naming what is missing, instead of testing less than it says.
        var missing = new[] { ("NGINX_PORT", "nginx"), ("FPM_CONF", "php8.2-fpm"), ("PDNS_PORT", "pdns-server and pdns-backend-mysql") }
            .Where(d => !env.ContainsKey(d.Item1)).Select(d => d.Item2).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"The test run's private daemons are incomplete: {string.Join(", ", missing)} not installed (scripts/install.sh installs them).");
        return env;
    }

    private static void Run(string verb)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add(Path.Combine(RepoRoot, "scripts", "services.sh"));
        psi.ArgumentList.Add(verb);
        psi.ArgumentList.Add(Folder);
        if (verb == "start") psi.ArgumentList.Add(SandboxRoot);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"services.sh {verb} failed: {err.Result}");
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Opterius.sln"))) return d.FullName;
        throw new InvalidOperationException("Opterius.sln not found above the test binaries");
    }
}
