using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The split for real: the panel (in process) with <c>Opterius:Agent:Socket</c> set and neither the PowerDNS nor the
/// MariaDB admin credentials, and the agent as a child process holding them, the run's root and its commands
/// (the armable ones wrapped exactly as <see cref="ServingApp"/> wraps them).
/// </summary>
public sealed class AgentServingApp : ServingApp, IAsyncLifetime
{
    /// <summary>A host user the agent serves besides root (the tests' stand-in for the panel user); never changed.</summary>
    public const string PanelUser = "daemon";

    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-agent-").FullName;

    public string Socket => Path.Combine(_folder, "agent.sock");

    public BinaryProcess Agent { get; private set; } = default!;

    public override async Task InitializeAsync()
    {
        // Other users must reach the socket itself, so that the agent's own peer check is what refuses them.
        File.SetUnixFileMode(_folder, (UnixFileMode)0b111_101_101);
        await base.InitializeAsync();
        Agent = await BinaryProcess.StartAgentAsync(AgentSettings());
    }

    /// <summary>Starts the agent again (after a test stopped it), with <paramref name="overrides"/> on top.</summary>
    public async Task RestartAgentAsync(IReadOnlyDictionary<string, string?>? overrides = null)
    {
        await Agent.DisposeAsync();
        var settings = AgentSettings();
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>()) settings[key] = value;
        Agent = await BinaryProcess.StartAgentAsync(settings);
    }

    public new async Task DisposeAsync()
    {
        await Agent.DisposeAsync();
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>The agent's configuration: the run's commands file, its databases, root, socket and panel user.</summary>
    public Dictionary<string, string?> AgentSettings()
    {
        var settings = new Dictionary<string, string?>(WrappedCommands())
        {
            ["OPTERIUS_CONFIG"] = PrivateServices.CommandsJson,
            ["ConnectionStrings:PowerDns"] = Databases.PowerDns,
            ["ConnectionStrings:MariaDbAdmin"] = Databases.Admin,
            ["Opterius:Root"] = PrivateServices.SandboxRoot,
            ["Opterius:Agent:Socket"] = Socket,
            ["Opterius:Agent:PanelUser"] = PanelUser,
            ["Opterius:Deletion:BackupPath"] = BackupPath,
        };
        return settings;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureAppConfiguration(config => config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Opterius:Agent:Socket"] = Socket,
            ["ConnectionStrings:PowerDns"] = null,
            ["ConnectionStrings:MariaDbAdmin"] = null,
        }));
    }
}
