using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Opterius.Services;
using Opterius.Services.Data;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;
using Opterius.Services.Users;

namespace Opterius.Bench.Deletions;

/// <summary>
/// The panel's own services (the container <c>PanelHost</c> builds, minus the web parts) on fresh migrated
/// databases of the private MariaDB, the sandbox root and private daemons, and a freshly signed license.
/// </summary>
internal static class Panel
{
    public static async Task<(ServiceProvider Services, PanelUser Admin)> StartAsync(PrivateStack stack)
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

        var configuration = new ConfigurationBuilder()
            .AddJsonFile(stack.CommandsJson)
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Panel"] = panelDb,
                ["ConnectionStrings:PowerDns"] = pdnsDb,
                ["ConnectionStrings:MariaDbAdmin"] = stack.ConnectionString(),
                ["Opterius:Root"] = stack.SandboxRoot,
                ["Opterius:Jwt:SigningKey"] = JwtOptions.NewSigningKey(),
                ["Opterius:License:Path"] = license,
                ["Opterius:License:PublicKey"] = LicenseIssuer.PublicKeyFileFor(signingKey),
            })
            .Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging(l => l.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning))
            .AddOpteriusServices()
            .AddOpteriusTokensAndLicensing()
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });

        await services.GetRequiredService<Migrator>().MigrateAsync(default);
        var admin = await services.GetRequiredService<PanelUsers>().CreateAsync($"bench{Environment.ProcessId}", "bench-password-1", Roles.Admin, default);
        return (services, admin);
    }
}
