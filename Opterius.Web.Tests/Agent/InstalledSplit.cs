using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Opterius.Web.Tests.Deploy;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The split as the units run it: deploy/install.sh on a scratch root writes panel.json, agent.json, the units and the
/// app (this build's output) and makes its MariaDB users on the run's private MariaDB; the agent (root) and the panel
/// (<see cref="PanelUser"/>, no capability, no_new_privs) are started from the installed units' ExecStart,
/// WorkingDirectory and Environment= lines, with nothing of the test process's environment. What the files say
/// differently from production is only where the test run's server is: the sandbox's layout and commands
/// (<see cref="PrivateServices.CommandsJson"/>'s Root, MinUid, pool user and Commands, and its StarterContent), the
/// agent's socket, the scratch root's paths and a free port.
/// </summary>
public sealed class InstalledSplit : IAsyncLifetime
{
    /// <summary>The host user standing in for `opterius` (which the agent must resolve on the host); never changed.</summary>
    public const string PanelUser = AgentServingApp.PanelUser;

    // Keys of the sandbox's server layout (services.sh's commands.json) that replace the production ones in agent.json.
    private static readonly string[] Layout = ["Root", "MinUid", "PoolUser", "PoolGroup", "Commands", "Deletion"];

    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-installed-").FullName;

    public string Root => Path.Combine(_folder, "root");
    public string Prefix { get; } = $"e{Environment.ProcessId}";
    public string Socket => Path.Combine(_folder, "agent.sock");
    public string PanelDatabase => PrivateServices.RootConnectionString(Prefix + "opterius");
    public int Port { get; private set; }
    public string Token { get; private set; } = "";
    public BinaryProcess Agent { get; private set; } = default!;
    public BinaryProcess Panel { get; private set; } = default!;

    /// <summary>A production path inside the scratch root.</summary>
    public string Under(string productionPath) => Path.Join(Root, productionPath);

    public async Task InitializeAsync()
    {
        // Others (the panel user) must reach the socket and the scratch root's files; what refuses them is the files' own modes.
        File.SetUnixFileMode(_folder, (UnixFileMode)0b111_101_101);
        FileResourceSandbox.Run("bash", Path.Combine(PrivateServices.RepoRoot, "scripts", "sandbox.sh"), Root);
        FileResourceSandbox.Run("useradd", "-R", Root, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", "pdns");

        var sandbox = JsonNode.Parse(File.ReadAllText(PrivateServices.CommandsJson))!["Opterius"]!;
        var provisioning = sandbox["Provisioning"]!;
        string[] args = ["--app", AppContext.BaseDirectory, "--hostname", "panel.opterius.test"];
        foreach (var a in provisioning["Addresses"]!.AsArray()) args = [.. args, "--address", (string)a!];
        foreach (var n in provisioning["Nameservers"]!.AsArray()) args = [.. args, "--nameserver", (string)n!];
        await ScratchInstall.RunScriptAsync(Root, Prefix, args);

        // The run's accounts get the sample databases, mailboxes and cron job (services.sh's choice; off in production),
        // so every resource kind is provisioned and removed through the agent's least-privilege MariaDB user.
        var starter = (bool)provisioning["StarterContent"]!;
        Port = FreePort();
        Rewrite("/etc/opterius/agent.json", agent =>
        {
            foreach (var key in Layout) agent["Opterius"]![key] = sandbox[key]!.DeepClone();
            agent["Opterius"]!["Agent"]!["Socket"] = Socket;
            agent["Opterius"]!["Agent"]!["PanelUser"] = PanelUser;
            agent["Opterius"]!["Provisioning"]!["StarterContent"] = starter;
        });
        Rewrite("/etc/opterius/panel.json", panel =>
        {
            var o = panel["Opterius"]!;
            o["Agent"]!["Socket"] = Socket;
            o["Provisioning"]!["StarterContent"] = starter;
            o["License"]!["Path"] = Under((string)o["License"]!["Path"]!);
            o["License"]!["PublicKey"] = Under((string)o["License"]!["PublicKey"]!);
            o["Https"]!["Port"] = Port;
            o["Https"]!["ListenAddress"] = "127.0.0.1";
            o["Https"]!["SelfSignedPath"] = Under((string)o["Https"]!["SelfSignedPath"]!);
            o["Deletion"]!["RecordSigningKey"] = Under((string)o["Deletion"]!["RecordSigningKey"]!);
        });
        // What install.sh gives `opterius`, given to its stand-in: panel.json (0600), the license (group), its state folder.
        FileResourceSandbox.Run("chown", $"{PanelUser}:{PanelUser}", Under("/etc/opterius/panel.json"), Under("/var/lib/opterius/panel"));
        FileResourceSandbox.Run("chgrp", PanelUser, Under("/etc/opterius"), Under("/etc/opterius/license.json"));

        Token = (await RunAsync("opterius-panel.service", PanelCredentials, "tokens", "create", "--name", $"e2e{Guid.NewGuid():N}"[..20], "--role", "admin", "--owner", "admin"))
            .TrimEnd().Split('\n')[^1];
        Agent = await StartAgentAsync();
        Panel = await StartUnitAsync("opterius-panel.service", PanelCredentials, "Now listening on");
    }

    // User=/Group= of the panel's unit (its stand-in), NoNewPrivileges=yes, an empty CapabilityBoundingSet=.
    private static readonly string[] PanelCredentials =
        ["setpriv", $"--reuid={PanelUser}", $"--regid={PanelUser}", "--clear-groups", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all"];

    /// <summary>Starts the agent (again, after a test stopped it or changed agent.json).</summary>
    public async Task RestartAgentAsync(Action<JsonNode>? change = null)
    {
        await Agent.DisposeAsync();
        Agent = await StartAgentAsync(change);
    }

    private async Task<BinaryProcess> StartAgentAsync(Action<JsonNode>? change = null)
    {
        var file = Under("/etc/opterius/agent.json");
        var saved = File.ReadAllText(file);
        if (change is null) return await StartUnitAsync("opterius-agent.service", [], "Agent listening on");
        // A changed agent.json for this start only: the agent reads its configuration once, at start.
        Rewrite("/etc/opterius/agent.json", change);
        try { return await StartUnitAsync("opterius-agent.service", [], "Agent listening on"); }
        finally { File.WriteAllText(file, saved); }
    }

    /// <summary>The environment systemd gives <paramref name="unit"/>'s ExecStart: its Environment= lines, PATH, and HOME of its user.</summary>
    public IReadOnlyDictionary<string, string> UnitEnvironment(string unit)
    {
        var env = new Dictionary<string, string>
        {
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = unit == "opterius-panel.service" ? Under("/var/lib/opterius/panel") : "/root",
        };
        foreach (var line in UnitLines(unit, "Environment"))
        {
            var (key, value) = (line[..line.IndexOf('=')], line[(line.IndexOf('=') + 1)..]);
            env[key] = key == "OPTERIUS_CONFIG" ? Under(value) : value;
        }
        return env;
    }

    private Task<BinaryProcess> StartUnitAsync(string unit, string[] prefix, string ready) =>
        BinaryProcess.StartCleanAsync([.. prefix, .. ExecStart(unit)], Under(UnitLines(unit, "WorkingDirectory").Single()), UnitEnvironment(unit), ready);

    // ExecStart with the app's path inside the scratch root: `/usr/bin/dotnet /opt/opterius/Opterius.Web.dll [agent]`.
    private string[] ExecStart(string unit) =>
        UnitLines(unit, "ExecStart").Single().Split(' ').Select(a => a.StartsWith("/opt/") ? Under(a) : a).ToArray();

    private IEnumerable<string> UnitLines(string unit, string key) =>
        File.ReadLines(Under($"/etc/systemd/system/{unit}")).Where(l => l.StartsWith(key + "=")).Select(l => l[(key.Length + 1)..]);

    /// <summary>The installed binary with <paramref name="args"/> as <paramref name="unit"/> runs it (through <paramref name="prefix"/>); its stdout.</summary>
    private async Task<string> RunAsync(string unit, string[] prefix, params string[] args)
    {
        string[] argv = [.. prefix, .. ExecStart(unit), .. args];
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Under("/opt/opterius") };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (key, value) in UnitEnvironment(unit)) psi.Environment[key] = value;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{string.Join(' ', args)} exited with {p.ExitCode}:\n{await stderr}");
        return await stdout;
    }

    // Rewrites a file install.sh wrote in place: its mode and owner stay what install.sh gave it.
    private void Rewrite(string productionPath, Action<JsonNode> change)
    {
        var path = Under(productionPath);
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        change(json);
        File.WriteAllText(path, json.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task DisposeAsync()
    {
        if (Panel is not null) await Panel.DisposeAsync();
        if (Agent is not null) await Agent.DisposeAsync();
        await ScratchInstall.DropAsync(Prefix);
        Directory.Delete(_folder, recursive: true);
    }
}
