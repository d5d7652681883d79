using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;
using Opterius.Services.Users;

namespace Opterius.Web.Tests.Infrastructure;

/// <summary>
/// The real panel in process (WebApplicationFactory) on this class's own databases, the run's sandbox root
/// and private daemons, a freshly signed license, and a real JWT signing key. Tokens are minted by the
/// panel's own token service, exactly as `tokens create` does.
/// </summary>
public class PanelApp : WebApplicationFactory<Program>, IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-app-").FullName;

    public TestDatabases Databases { get; private set; } = default!;
    public string LicensePath => Path.Combine(_folder, "license.json");
    public string SigningKeyPath => Path.Combine(_folder, "license-signing.pem");
    /// <summary>This app's own final backups: each test class has its own panel database, so its own backup ids.</summary>
    public virtual string BackupPath => Path.Combine(_folder, "backups");
    public PanelUser Admin { get; private set; } = default!;

    /// <summary>The PowerDNS database to use; the private PowerDNS daemon's by default tests of serving.</summary>
    protected virtual bool UseServedPowerDnsDatabase => false;

    public virtual async Task InitializeAsync()
    {
        PrivateServices.Get("MARIADB_SOCKET"); // start the run's services before the host reads its configuration
        Databases = await TestDatabases.CreateAsync(UseServedPowerDnsDatabase ? PrivateServices.PowerDnsDatabase : null);
        IssueLicense(maxAccounts: null, expiresDays: 30);
        Admin = await Users.CreateAsync($"admin{Guid.NewGuid():N}"[..20], "admin-password-1", Roles.Admin, default);
    }

    public new async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    public void IssueLicense(int? maxAccounts, int expiresDays) =>
        new LicenseIssuer(TimeProvider.System).Issue(SigningKeyPath, LicensePath, "test", maxAccounts, expiresDays);

    public PanelUsers Users => Services.GetRequiredService<PanelUsers>();

    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        builder.ConfigureAppConfiguration(config =>
        {
            config.AddJsonFile(PrivateServices.CommandsJson);
            config.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Panel"] = Databases.Panel,
                ["ConnectionStrings:PowerDns"] = Databases.PowerDns,
                ["ConnectionStrings:MariaDbAdmin"] = Databases.Admin,
                ["Opterius:Root"] = PrivateServices.SandboxRoot,
                ["Opterius:Https:Port"] = "0",
                ["Opterius:Jwt:SigningKey"] = JwtOptions.NewSigningKey(),
                ["Opterius:License:Path"] = LicensePath,
                ["Opterius:License:PublicKey"] = LicenseIssuer.PublicKeyFileFor(SigningKeyPath),
                ["Opterius:Deletion:BackupPath"] = BackupPath,
            });
        });
    }

    /// <summary>An HTTP client carrying a freshly minted token.</summary>
    public async Task<HttpClient> ClientAsync(string role = Roles.Admin, long? ownerId = null, IReadOnlyList<string>? scopes = null)
    {
        var token = await TokenAsync(role, ownerId, scopes);
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public async Task<string> TokenAsync(string role = Roles.Admin, long? ownerId = null, IReadOnlyList<string>? scopes = null)
    {
        var minted = await Get<TokenService>().CreateAsync($"t{Guid.NewGuid():N}", role, ownerId ?? Admin.Id, scopes ?? TokenScopes.All, null, default);
        return minted.Token;
    }

    /// <summary>A reseller panel user of its own.</summary>
    public Task<PanelUser> NewResellerAsync() =>
        Users.CreateAsync($"res{Guid.NewGuid():N}"[..20], "reseller-password-1", Roles.Reseller, default);
}
