using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Opterius.Services;
using Opterius.Services.Data;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Agent;

namespace Opterius.Bench.Deletions;

/// <summary>
/// The panel's own services (the container <c>PanelHost</c> builds, minus the web parts) on fresh migrated
/// databases of the private MariaDB, the sandbox root and private daemons, and a freshly signed license: with every
/// resource in this process, or (<see cref="WithAgentAsync"/>) every resource an agent client, as the split panel runs.
/// </summary>
internal sealed class Panel
{
    private readonly Dictionary<string, string?> _settings;

    private Panel(Dictionary<string, string?> settings) => _settings = settings;

    public static async Task<(Panel Panel, ServiceProvider Services, PanelUser Admin)> StartAsync(PrivateStack stack)
    {
        var name = $"bench{Environment.ProcessId}";
        var panelDb = stack.ConnectionString($"{name}_panel");
        // The PowerDNS daemon's own database, so every purge the deletions ask for is a real one of served zones.
        var pdnsDb = stack.ConnectionString(stack.PowerDnsDatabase ?? $"{name}_pdns");
        await Migrator.EnsureDatabaseAsync(panelDb, default);
        await Migrator.EnsureDatabaseAsync(pdnsDb, default);

        var signingKey = Path.Combine(stack.Folder, "license-signing.pem");
        var license = Path.Combine(stack.Folder, "license.json");
        new LicenseIssuer(TimeProvider.System).Issue(signingKey, license, "bench", maxAccounts: null, expiresDays: 30);

        var panel = new Panel(new()
        {
            ["ConnectionStrings:Panel"] = panelDb,
            ["ConnectionStrings:PowerDns"] = pdnsDb,
            ["ConnectionStrings:MariaDbAdmin"] = stack.ConnectionString(),
            ["Opterius:Root"] = stack.SandboxRoot,
            ["Opterius:Jwt:SigningKey"] = JwtOptions.NewSigningKey(),
            ["Opterius:License:Path"] = license,
            ["Opterius:License:PublicKey"] = LicenseIssuer.PublicKeyFileFor(signingKey),
        });
        var services = panel.Build(stack, new Dictionary<string, string?>());
        await services.GetRequiredService<Migrator>().MigrateAsync(default);
        var admin = await services.GetRequiredService<PanelUsers>().CreateAsync(name, "bench-password-1", Roles.Admin, default);
        return (panel, services, admin);
    }

    /// <summary>The agent's settings: the same root, commands and databases as the in-process container, its socket.</summary>
    public Dictionary<string, string?> AgentSettings(PrivateStack stack, string socket) => new()
    {
        ["OPTERIUS_CONFIG"] = stack.CommandsJson,
        ["ConnectionStrings:PowerDns"] = _settings["ConnectionStrings:PowerDns"],
        ["ConnectionStrings:MariaDbAdmin"] = _settings["ConnectionStrings:MariaDbAdmin"],
        ["Opterius:Root"] = stack.SandboxRoot,
        ["Opterius:Agent:Socket"] = socket,
        // The agent serves its socket only (as deploy's agent.json says).
        ["Opterius:Https:Port"] = "0",
    };

    /// <summary>
    /// The same panel (database, license, admin) with <c>Opterius:Agent:Socket</c> set and neither the PowerDNS nor
    /// the MariaDB admin credentials: every resource is an agent client, as <c>PanelHost.AddPanelServices</c> wires it.
    /// </summary>
    public ServiceProvider WithAgent(PrivateStack stack, string socket) => Build(stack, new Dictionary<string, string?>
    {
        ["ConnectionStrings:PowerDns"] = "",
        ["ConnectionStrings:MariaDbAdmin"] = "",
        ["Opterius:Agent:Socket"] = socket,
    });

    private ServiceProvider Build(PrivateStack stack, IReadOnlyDictionary<string, string?> overrides)
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(stack.CommandsJson)
            .AddInMemoryCollection(_settings)
            .AddInMemoryCollection(overrides)
            .Build();
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging(l => l.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning))
            .AddOpteriusServices()
            // Without Opterius:Agent:Socket the resources stay in process: one container type for both modes.
            .AddAgentClientsWhenConfigured()
            .AddOpteriusTokensAndLicensing()
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }
}
