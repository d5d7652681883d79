using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Dapper;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Tokens;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The split as production runs it: the panel as a child process under an unprivileged uid (setpriv), holding only
/// its own database (a MariaDB user with rights on that database only), the JWT key and the license, and every
/// resource on the agent (a child process as root).
/// </summary>
[Collection(nameof(ServingTests))]
public sealed class UnprivilegedPanelTests(AgentServingApp app) : IClassFixture<AgentServingApp>, IAsyncLifetime
{
    private const string PanelUser = AgentServingApp.PanelUser;
    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-panel-").FullName;
    private readonly string _dbUser = $"pnl{Guid.NewGuid():N}"[..16];
    private readonly string _dbPassword = Guid.NewGuid().ToString("N");
    private BinaryProcess _panel = default!;
    private int _port;

    public async Task InitializeAsync()
    {
        // The panel's files: the license and its key, readable by the panel user; its self-signed certificate goes here.
        File.Copy(app.LicensePath, Path.Combine(_folder, "license.json"));
        File.Copy(LicenseKey, Path.Combine(_folder, "license.pub"));
        DaemonKit.Run("chown", "-R", $"{PanelUser}:{PanelUser}", _folder);

        var database = new MySqlConnectionStringBuilder(app.Databases.Panel).Database;
        await using (var root = new MySqlConnection(PrivateServices.RootConnectionString()))
            await root.ExecuteAsync($"CREATE USER '{_dbUser}'@'localhost' IDENTIFIED BY '{_dbPassword}'; GRANT ALL PRIVILEGES ON `{database}`.* TO '{_dbUser}'@'localhost'");

        _port = FreePort();
        var settings = new Dictionary<string, string?>
        {
            ["HOME"] = _folder,
            ["ConnectionStrings:Panel"] = PanelConnectionString,
            ["ConnectionStrings:PowerDns"] = "",
            ["ConnectionStrings:MariaDbAdmin"] = "",
            ["Opterius:Agent:Socket"] = app.Socket,
            ["Opterius:Jwt:SigningKey"] = app.Get<IOptions<JwtOptions>>().Value.SigningKey,
            ["Opterius:License:Path"] = Path.Combine(_folder, "license.json"),
            ["Opterius:License:PublicKey"] = Path.Combine(_folder, "license.pub"),
            ["Opterius:Https:Port"] = _port.ToString(),
            ["Opterius:Https:ListenAddress"] = "127.0.0.1",
            ["Opterius:Https:SelfSignedPath"] = Path.Combine(_folder, "selfsigned.pfx"),
        };
        // The panel decides what a create asks for (starter content, the server's names), so it reads the same Provisioning section as the agent.
        var provisioning = app.Get<IOptions<ProvisioningOptions>>().Value;
        settings[$"{ProvisioningOptions.Section}:SoaContact"] = provisioning.SoaContact;
        settings[$"{ProvisioningOptions.Section}:StarterContent"] = provisioning.StarterContent.ToString();
        settings[$"{ProvisioningOptions.Section}:Hostname"] = provisioning.Hostname;
        for (var i = 0; i < provisioning.Addresses.Count; i++) settings[$"{ProvisioningOptions.Section}:Addresses:{i}"] = provisioning.Addresses[i];
        for (var i = 0; i < provisioning.Nameservers.Count; i++) settings[$"{ProvisioningOptions.Section}:Nameservers:{i}"] = provisioning.Nameservers[i];
        _panel = await BinaryProcess.StartAsync(["setpriv", $"--reuid={PanelUser}", $"--regid={PanelUser}", "--clear-groups"], [], settings, "Now listening on");
    }

    public async Task DisposeAsync()
    {
        await _panel.DisposeAsync();
        await using (var root = new MySqlConnection(PrivateServices.RootConnectionString()))
            await root.ExecuteAsync($"DROP USER IF EXISTS '{_dbUser}'@'localhost'");
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task ThePanelRunningAsAnUnprivilegedUserCreatesSuspendsUnsuspendsAndDeletesAnAccountThroughTheAgent()
    {
        Assert.Equal(DaemonKit.Run("id", "-u", PanelUser).Trim(), RealUid(_panel.Pid));

        using var client = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
        {
            BaseAddress = new Uri($"https://127.0.0.1:{_port}"),
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await app.TokenAsync());

        await ApiLifecycle.RunAsync(app, client);
    }

    [Fact]
    public async Task ThePanelsUserCannotWriteTheServerRootAndItsDatabaseUserReachesOnlyThePanelDatabase()
    {
        // The same credentials as the panel process: its uid, its group, no other groups.
        foreach (var target in new[] { "etc/passwd", "etc/nginx/sites-available/probe.conf", "home/probe" })
        {
            var path = Path.Combine(PrivateServices.SandboxRoot, target);
            var probe = System.Diagnostics.Process.Start("setpriv", [$"--reuid={PanelUser}", $"--regid={PanelUser}", "--clear-groups", "sh", "-c", $"echo x >> '{path}'"]);
            await probe.WaitForExitAsync();
            Assert.NotEqual(0, probe.ExitCode);
        }

        await using var panelDb = new MySqlConnection(PanelConnectionString);
        var visible = (await panelDb.QueryAsync<string>("SHOW DATABASES")).Where(d => d != "information_schema").ToList();
        Assert.Equal([new MySqlConnectionStringBuilder(app.Databases.Panel).Database], visible);
        var e = await Assert.ThrowsAsync<MySqlException>(() => panelDb.ExecuteAsync("CREATE DATABASE probe_opterius_panel"));
        Assert.Equal(MySqlErrorCode.DatabaseAccessDenied, e.ErrorCode);
    }

    private string LicenseKey => Opterius.Services.Licensing.LicenseIssuer.PublicKeyFileFor(app.SigningKeyPath);

    private string PanelConnectionString =>
        $"Server={PrivateServices.MariaDbSocket};Protocol=Unix;User ID={_dbUser};Password={_dbPassword};Database={new MySqlConnectionStringBuilder(app.Databases.Panel).Database}";

    private static string RealUid(int pid) =>
        File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:")).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1];

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
