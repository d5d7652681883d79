using System.Diagnostics;
using Dapper;
using MySqlConnector;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Deploy;

/// <summary>
/// <c>deploy/install.sh</c> run twice on a scratch root, as CI can run it: no apt, no systemd, MariaDB users
/// made on the run's private MariaDB under a prefix of its own. The first run publishes the app itself; the
/// second upgrades from a given published folder (a copy of the first one's); a third moves the server to
/// another address. What each run left is kept for the tests to compare.
/// </summary>
public sealed class ScratchInstall : IAsyncLifetime
{
    public const string Hostname = "panel.example.test";
    public const string Address = "192.0.2.10";

    public string Folder { get; } = Path.Combine(PrivateServices.Folder, $"deploy-{Guid.NewGuid():N}"[..20]);
    public string Root => Path.Combine(Folder, "root");
    public string Prefix { get; } = $"d{Environment.ProcessId}";
    public string PanelDatabase => Prefix + "opterius";
    public string PowerDnsDatabase => Prefix + "powerdns";
    public string[] MariaDbUsers => [Prefix + "opterius-panel", Prefix + "opterius-agent", Prefix + "opterius-pdns"];

    /// <summary>The host's own user database and PowerDNS folder, and whether /etc/opterius and /opt/opterius exist: before, and after both runs.</summary>
    public (IReadOnlyDictionary<string, string> Before, IReadOnlyDictionary<string, string> After) Host { get; private set; }

    public InstallRun First { get; private set; } = null!;
    public InstallRun Second { get; private set; } = null!;

    /// <summary>A third run, after the comparison, that moves the server to another address.</summary>
    public InstallRun Moved { get; private set; } = null!;
    public const string NewAddress = "192.0.2.11";

    /// <summary>panel.json and agent.json as the second run left them.</summary>
    public (string Panel, string Agent) BeforeMove { get; private set; }

    /// <summary>A path of the scratch root, given as its production path (<c>/etc/opterius</c>).</summary>
    public string Under(string productionPath) => Path.Join(Root, productionPath);

    public async Task InitializeAsync()
    {
        // What a Debian 12 server has before the install: its user database, and PowerDNS's user (pdns-server's).
        FileResourceSandbox.Run("bash", Path.Combine(PrivateServices.RepoRoot, "scripts", "sandbox.sh"), Root);
        FileResourceSandbox.Run("useradd", "-R", Root, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "pdns");

        var hostBefore = HostState();
        First = await RunAsync();
        var given = Path.Combine(Folder, "published");
        FileResourceSandbox.Run("cp", "-a", Under("/opt/opterius"), given);
        Second = await RunAsync("--app", given);
        Host = (hostBefore, HostState());
        BeforeMove = (Read("/etc/opterius/panel.json"), Read("/etc/opterius/agent.json"));
        Moved = await RunAsync("--app", given, "--address", NewAddress);
    }

    private static Dictionary<string, string> HostState()
    {
        var state = new Dictionary<string, string>();
        foreach (var top in new[] { "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/powerdns" })
            foreach (var (path, what) in FileResourceSandbox.Snapshot(top))
                state[path] = what;
        foreach (var path in new[] { "/etc/opterius", "/opt/opterius", "/etc/systemd/system/opterius-panel.service", "/var/lib/opterius" })
            state[path] = Path.Exists(path) ? "exists" : "absent";
        return state;
    }

    private async Task<InstallRun> RunAsync(params string[] extra)
    {
        var (exitCode, stdout, stderr) = await RunScriptAsync(Root, Prefix, ["--hostname", Hostname, .. extra.Contains("--address") ? extra : [.. extra, "--address", Address]]);
        return new InstallRun(exitCode, stdout, stderr, Snapshot());
    }

    /// <summary>
    /// install.sh on the scratch root <paramref name="root"/> as CI runs it (no apt, no systemd), its MariaDB users and
    /// databases made on the run's private MariaDB under <paramref name="prefix"/>; a failed run throws with its output.
    /// </summary>
    public static async Task<(int ExitCode, string Out, string Error)> RunScriptAsync(string root, string prefix, string[] extra)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[Path.Combine(PrivateServices.RepoRoot, "deploy", "install.sh"), "--root", root, "--no-apt", "--no-systemd",
                     "--mariadb-socket", PrivateServices.MariaDbSocket, "--db-prefix", prefix, .. extra])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"install.sh exited with {p.ExitCode}:\n{await stdout}\n{await stderr}");
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Drops the MariaDB users and databases install.sh made under <paramref name="prefix"/>.</summary>
    public static async Task DropAsync(string prefix)
    {
        await using var c = MariaDbRoot();
        foreach (var user in new[] { "opterius-panel", "opterius-agent", "opterius-pdns" }) await c.ExecuteAsync($"DROP USER IF EXISTS '{prefix}{user}'@'localhost'");
        await c.ExecuteAsync($"DROP DATABASE IF EXISTS `{prefix}opterius`");
        await c.ExecuteAsync($"DROP DATABASE IF EXISTS `{prefix}powerdns`");
    }

    /// <summary>Every file the install owns, with its mode, owner and content hash (FileResourceSandbox's walk).</summary>
    private Dictionary<string, string> Snapshot()
    {
        var state = new Dictionary<string, string>();
        foreach (var top in new[] { "/etc/opterius", "/etc/powerdns", "/etc/systemd/system", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/var/lib/opterius", "/opt/opterius", "/var/backups/opterius" })
            foreach (var (path, what) in FileResourceSandbox.Snapshot(Under(top)))
                state[path] = what;
        return state;
    }

    public string Read(string productionPath) => File.ReadAllText(Under(productionPath));

    public static MySqlConnection MariaDbRoot() => new(PrivateServices.RootConnectionString());

    public async Task DisposeAsync()
    {
        await DropAsync(Prefix);
        Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>One run of install.sh: its exit, its output and what it left (path → mode, owner, hash).</summary>
public sealed record InstallRun(int ExitCode, string Out, string Error, IReadOnlyDictionary<string, string> State);
