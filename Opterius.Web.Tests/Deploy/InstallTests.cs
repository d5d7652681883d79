using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Dapper;
using MySqlConnector;
using Opterius.Services.Data;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Deploy;

/// <summary>
/// The production install as CI can run it (<see cref="ScratchInstall"/>): the files, modes, owners and users it
/// promises, secrets kept by a second run, and MariaDB users with exactly their grants, used for real.
/// </summary>
public sealed partial class InstallTests(ScratchInstall install) : IClassFixture<ScratchInstall>
{
    private string Passwd(string name) =>
        File.ReadLines(install.Under("/etc/passwd")).Single(l => l.StartsWith(name + ":"));

    private int IdOf(string file, string name) =>
        int.Parse(File.ReadLines(install.Under(file)).Single(l => l.StartsWith(name + ":")).Split(':')[2]);

    private JsonNode Json(string productionPath) => JsonNode.Parse(install.Read(productionPath))!;

    private string AgentConnection => (string)Json("/etc/opterius/agent.json")["ConnectionStrings"]!["MariaDbAdmin"]!;

    [Fact]
    public void AScratchRootInstallLeavesTheHostsUsersAndFilesAlone()
    {
        Assert.Equal("absent", install.Host.Before["/etc/opterius"]);
        Assert.Equal(install.Host.Before, install.Host.After);
    }

    [Fact]
    public void TheOpteriusUserIsASystemUserWithNoLoginWhoseHomeIsItsStateFolder()
    {
        var fields = Passwd("opterius").Split(':');
        Assert.InRange(int.Parse(fields[2]), 100, 999); // login.defs' SYS_UID range
        Assert.Equal(fields[3], IdOf("/etc/group", "opterius").ToString());
        Assert.Equal("/var/lib/opterius/panel", fields[5]);
        Assert.Equal("/usr/sbin/nologin", fields[6]);
        Assert.Single(File.ReadLines(install.Under("/etc/passwd")), l => l.StartsWith("opterius:"));
    }

    [Fact]
    public void EveryFileHasThePromisedModeAndOwner()
    {
        var (uid, gid, pdns) = (IdOf("/etc/passwd", "opterius"), IdOf("/etc/group", "opterius"), IdOf("/etc/group", "pdns"));
        var expected = new Dictionary<string, string>
        {
            ["/etc/opterius"] = $"750 0:{gid}",
            ["/etc/opterius/panel.json"] = $"600 {uid}:{gid}",
            ["/etc/opterius/agent.json"] = "600 0:0",
            ["/etc/opterius/license.json"] = $"640 0:{gid}",
            ["/etc/opterius/license-signing.pem"] = "600 0:0",
            ["/etc/opterius/license-signing.pem.pub"] = "644 0:0",
            ["/etc/powerdns/pdns.d/opterius.conf"] = $"640 0:{pdns}",
            ["/etc/systemd/system/opterius-panel.service"] = "644 0:0",
            ["/etc/systemd/system/opterius-agent.service"] = "644 0:0",
            ["/var/lib/opterius"] = "755 0:0",
            ["/var/lib/opterius/panel"] = $"750 {uid}:{gid}",
            ["/var/backups/opterius"] = "700 0:0",
            ["/var/backups/opterius/final"] = "700 0:0",
            ["/opt/opterius"] = "755 0:0",
            ["/opt/opterius/Opterius.Web.dll"] = "644 0:0",
            ["/var/log/php8.2-fpm.log"] = "600 0:0",
        };
        var actual = expected.Keys.ToDictionary(p => p, p => FileResourceSandbox.Stat(install.Under(p)));
        Assert.Equal(expected, actual);
        // Nothing else appears in /etc/opterius (a leftover temp file would hold a secret).
        Assert.Equal(["agent.json", "license-signing.pem", "license-signing.pem.pub", "license.json", "panel.json"],
            Directory.GetFileSystemEntries(install.Under("/etc/opterius")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var unit in new[] { "opterius-panel.service", "opterius-agent.service" })
            Assert.Equal(File.ReadAllText(Path.Combine(PrivateServices.RepoRoot, "deploy", unit)), install.Read($"/etc/systemd/system/{unit}"));
    }

    [Fact]
    public void TheAppIsOwnedByRootAndWritableByNobodyElse()
    {
        var entries = install.First.State.Keys.Where(p => p.StartsWith(install.Under("/opt/opterius"))).ToList();
        Assert.Contains(install.Under("/opt/opterius/Opterius.Web.dll"), entries);
        Assert.Contains(install.Under("/opt/opterius/appsettings.json"), entries);
        foreach (var path in entries)
        {
            var mode = FileResourceSandbox.Stat(path).Split(' ');
            Assert.True(mode[1] == "0:0" && (Convert.ToInt32(mode[0], 8) & 0b010_010) == 0, $"{path} is {string.Join(' ', mode)}");
        }
    }

    [Fact]
    public void ASecondRunChangesNothingButKeepsEverySecretUserAndFile()
    {
        // The whole tree the install owns, mode, owner and content hash of every file: identical.
        Assert.Equal(install.First.State, install.Second.State);
        Assert.Equal(0, install.Second.ExitCode);
        Assert.Contains("already has an admin", install.Second.Out);
        Assert.DoesNotContain("Password:", install.Second.Out);
    }

    [Fact]
    public void ARunWithAnotherAddressMovesTheZonesThereAndKeepsEverySecret()
    {
        foreach (var file in new[] { "/etc/opterius/panel.json", "/etc/opterius/agent.json" })
        {
            Assert.Equal([ScratchInstall.NewAddress],
                Json(file)["Opterius"]!["Provisioning"]!["Addresses"]!.AsArray().Select(a => (string)a!));
            Assert.Equal(ScratchInstall.Hostname, (string)Json(file)["Opterius"]!["Provisioning"]!["Hostname"]!);
        }
        var kept = new[] { "/etc/opterius/license-signing.pem", "/etc/opterius/license.json", "/etc/powerdns/pdns.d/opterius.conf", "/etc/passwd" }.Select(install.Under);
        Assert.All(kept, path => Assert.Equal(install.Second.State[path], install.Moved.State[path]));
        var (panel, agent) = (JsonNode.Parse(install.BeforeMove.Panel)!, JsonNode.Parse(install.BeforeMove.Agent)!);
        Assert.Equal(panel["Opterius"]!["Jwt"]!.ToJsonString(), Json("/etc/opterius/panel.json")["Opterius"]!["Jwt"]!.ToJsonString());
        Assert.Equal(panel["ConnectionStrings"]!.ToJsonString(), Json("/etc/opterius/panel.json")["ConnectionStrings"]!.ToJsonString());
        Assert.Equal(agent["ConnectionStrings"]!.ToJsonString(), Json("/etc/opterius/agent.json")["ConnectionStrings"]!.ToJsonString());
    }

    [Fact]
    public void TheSecretsAreGeneratedStrongAndEachProcessGetsOnlyItsOwn()
    {
        var panel = Json("/etc/opterius/panel.json");
        var key = Convert.FromBase64String((string)panel["Opterius"]!["Jwt"]!["SigningKey"]!);
        Assert.True(key.Length >= 32, $"the JWT key has {key.Length} bytes");
        Assert.Equal(["Panel"], panel["ConnectionStrings"]!.AsObject().Select(p => p.Key));
        var panelDb = new MySqlConnectionStringBuilder((string)panel["ConnectionStrings"]!["Panel"]!);
        Assert.Equal((install.Prefix + "opterius-panel", install.PanelDatabase, PrivateServices.MariaDbSocket),
            (panelDb.UserID, panelDb.Database, panelDb.Server));
        Assert.Equal("/run/opterius/agent.sock", (string)panel["Opterius"]!["Agent"]!["Socket"]!);
        Assert.Equal("/etc/opterius/license.json", (string)panel["Opterius"]!["License"]!["Path"]!);
        Assert.Null(panel["Opterius"]!["Commands"]);

        var agent = Json("/etc/opterius/agent.json");
        Assert.Equal(["MariaDbAdmin", "PowerDns"], agent["ConnectionStrings"]!.AsObject().Select(p => p.Key).Order());
        Assert.Null(agent["Opterius"]!["Jwt"]);
        Assert.Equal("/", (string)agent["Opterius"]!["Root"]!);
        Assert.Equal("opterius", (string)agent["Opterius"]!["Agent"]!["PanelUser"]!);
        Assert.Equal("/run/opterius/agent.sock", (string)agent["Opterius"]!["Agent"]!["Socket"]!);

        var passwords = new[]
        {
            panelDb.Password, new MySqlConnectionStringBuilder(AgentConnection).Password,
            PdnsSetting("gmysql-password"),
        };
        Assert.All(passwords, p => Assert.Matches("^[A-Za-z0-9]{32}$", p));
        Assert.Equal(3, passwords.Distinct().Count());
    }

    [Fact]
    public void TheAgentGetsDebiansWholeCommandSet()
    {
        var commands = Json("/etc/opterius/agent.json")["Opterius"]!["Commands"]!.AsObject()
            .ToDictionary(p => p.Key, p => string.Join(' ', p.Value!.AsArray().Select(a => (string)a!)));
        Assert.Equal(new Dictionary<string, string>
        {
            ["NginxTest"] = "/usr/sbin/nginx -t -q",
            ["NginxReload"] = "/usr/bin/systemctl reload nginx",
            ["PhpFpmTest"] = "/usr/sbin/php-fpm8.2 -t",
            ["PhpFpmReload"] = "/usr/bin/systemctl reload php8.2-fpm",
            ["Postmap"] = "/usr/sbin/postmap hash:/etc/postfix/vmailbox",
            ["PdnsPurge"] = "/usr/bin/pdns_control purge",
            ["UserAdd"] = "/usr/sbin/useradd -M -d /home/{username} -s /bin/bash -U -u {uid} {username}",
            ["UserDel"] = "/usr/sbin/userdel {username}",
            ["UserMod"] = "/usr/sbin/usermod -s {shell} {username}",
            ["UserLock"] = "/usr/sbin/usermod -L -e 1 -s /usr/sbin/nologin {username}",
            ["GroupDel"] = "/usr/sbin/groupdel {username}",
            ["KillProcesses"] = "/usr/bin/kill -s KILL {pid}",
            ["MariaDbDump"] = "/usr/bin/mariadb-dump --defaults-file={defaults_file} --single-transaction --routines --triggers --events "
                + "--result-file={result_file} --databases {database}",
            ["MariaDbClient"] = "/usr/bin/mariadb --defaults-file={defaults_file} --batch --binary-mode",
        }, commands);
        // Debian's binaries, where the commands name them (this machine is a Debian 12 too).
        foreach (var program in commands.Values.Select(c => c.Split(' ')[0]))
            Assert.True(File.Exists(program), $"{program} does not exist");
    }

    [Fact]
    public async Task TheMariaDbUsersHaveExactlyThePromisedGrants()
    {
        var (p, panelDb, pdnsDb) = (install.Prefix, install.PanelDatabase, install.PowerDnsDatabase);
        Assert.Equal(
            [$"GRANT ALL PRIVILEGES ON `{panelDb}`.* TO `{p}opterius-panel`@`localhost`",
             $"GRANT USAGE ON *.* TO `{p}opterius-panel`@`localhost`"],
            await GrantsAsync($"{p}opterius-panel"));
        Assert.Equal(
            [$"GRANT ALL PRIVILEGES ON `%\\_%`.* TO `{p}opterius-agent`@`localhost` WITH GRANT OPTION",
             $"GRANT ALL PRIVILEGES ON `{pdnsDb}`.* TO `{p}opterius-agent`@`localhost`",
             $"GRANT RELOAD, CREATE USER ON *.* TO `{p}opterius-agent`@`localhost`",
             $"GRANT SELECT ON `mysql`.* TO `{p}opterius-agent`@`localhost`",
             $"GRANT SELECT, DELETE ON `mysql`.`columns_priv` TO `{p}opterius-agent`@`localhost`",
             $"GRANT SELECT, DELETE ON `mysql`.`db` TO `{p}opterius-agent`@`localhost`",
             $"GRANT SELECT, DELETE ON `mysql`.`procs_priv` TO `{p}opterius-agent`@`localhost`",
             $"GRANT SELECT, DELETE ON `mysql`.`tables_priv` TO `{p}opterius-agent`@`localhost`"],
            await GrantsAsync($"{p}opterius-agent"));
        Assert.Equal(
            [$"GRANT SELECT, INSERT, UPDATE, DELETE ON `{pdnsDb}`.* TO `{p}opterius-pdns`@`localhost`",
             $"GRANT USAGE ON *.* TO `{p}opterius-pdns`@`localhost`"],
            await GrantsAsync($"{p}opterius-pdns"));
    }

    [Fact]
    public async Task TheAgentsMariaDbUserDoesATenantsDatabaseWorkAndCannotTouchThePanelDatabase()
    {
        // The real resources, as the agent runs them, over the agent's own credentials.
        var admin = new MariaDbAdmin(AgentConnection);
        var (databases, users) = (new DatabasesResource(admin), new DatabaseUsersResource(admin));
        var tenant = FileResourceSandbox.NewAccount($"{install.Prefix}bob", $"{install.Prefix}bob.example");
        await using (var c = new MySqlConnection(AgentConnection))
            await c.ExecuteAsync($"CREATE DATABASE `{tenant.Identity.Username}_site`");
        await databases.ProvisionAsync(tenant, default);
        await users.ProvisionAsync(tenant, default);
        Assert.True((await databases.InspectAsync(tenant.Identity, default)).Exists);
        Assert.True((await users.InspectAsync(tenant.Identity, default)).Exists);

        Assert.Equal("done", (await databases.RemoveAsync(tenant.Identity, default)).Status);
        Assert.Equal("done", (await users.RemoveAsync(tenant.Identity, default)).Status);
        Assert.False((await databases.InspectAsync(tenant.Identity, default)).Exists);
        Assert.False((await users.InspectAsync(tenant.Identity, default)).Exists);

        await using var agent = new MySqlConnection(AgentConnection);
        Assert.Equal(1142, (await Assert.ThrowsAsync<MySqlException>(() => agent.ExecuteScalarAsync($"SELECT COUNT(*) FROM `{install.PanelDatabase}`.panel_users"))).Number);
        Assert.Equal(1044, (await Assert.ThrowsAsync<MySqlException>(() => agent.ExecuteAsync($"DROP DATABASE `{install.PanelDatabase}`"))).Number);
        Assert.Equal(1044, (await Assert.ThrowsAsync<MySqlException>(() => agent.ExecuteAsync($"GRANT ALL ON `{install.PanelDatabase}`.* TO `{tenant.Identity.Username}`@`localhost`"))).Number);
    }

    [Fact]
    public async Task ThePanelsMariaDbUserReachesItsDatabaseOnlyAndPowerDnsReadsItsZones()
    {
        var panelCs = (string)Json("/etc/opterius/panel.json")["ConnectionStrings"]!["Panel"]!;
        await using var panel = new MySqlConnection(panelCs);
        Assert.Equal(1, await panel.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM panel_users WHERE role = 'admin'"));
        Assert.Equal(1142, (await Assert.ThrowsAsync<MySqlException>(() => panel.ExecuteScalarAsync($"SELECT COUNT(*) FROM `{install.PowerDnsDatabase}`.domains"))).Number);
        Assert.Equal(1227, (await Assert.ThrowsAsync<MySqlException>(() => panel.ExecuteAsync("CREATE USER 'x'@'localhost'"))).Number);

        Assert.Equal("gmysql", PdnsSetting("launch"));
        var pdns = new MySqlConnectionStringBuilder
        {
            Server = PdnsSetting("gmysql-socket"), ConnectionProtocol = MySqlConnectionProtocol.UnixSocket,
            UserID = PdnsSetting("gmysql-user"), Password = PdnsSetting("gmysql-password"), Database = PdnsSetting("gmysql-dbname"),
        };
        await using var dns = new MySqlConnection(pdns.ConnectionString);
        Assert.Equal(0, await dns.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM domains"));
        Assert.Equal(1142, (await Assert.ThrowsAsync<MySqlException>(() => dns.ExecuteAsync("DROP TABLE domains"))).Number);
    }

    [Fact]
    public async Task TheFirstRunMigratesAndMakesOneAdminWhosePasswordItPrintsOnce()
    {
        var password = PrintedPassword().Match(install.First.Out).Groups[1].Value;
        Assert.Matches("^[A-Za-z0-9]{20}$", password);
        var panelCs = (string)Json("/etc/opterius/panel.json")["ConnectionStrings"]!["Panel"]!;
        var users = new PanelUsers(new PanelDb(panelCs));
        Assert.NotNull(await users.CheckPasswordAsync("admin", password, default));

        await using var root = ScratchInstall.MariaDbRoot();
        Assert.Equal(1, await root.ExecuteScalarAsync<int>($"SELECT COUNT(*) FROM `{install.PanelDatabase}`.panel_users"));
        Assert.True(await root.ExecuteScalarAsync<int>($"SELECT COUNT(*) FROM `{install.PanelDatabase}`.schema_migrations") > 0);
        Assert.True(await root.ExecuteScalarAsync<int>($"SELECT COUNT(*) FROM `{install.PowerDnsDatabase}`.schema_migrations") > 0);
    }

    [Fact]
    public void PowerDnsReadingDebiansConfigurationAndOursLaunchesOnlyGmysql()
    {
        // Debian's pdns.conf and bind.conf (pdns-server's), with our file beside them, read by the real pdns_server.
        var dir = Path.Combine(install.Folder, "pdns-check");
        Directory.CreateDirectory(Path.Combine(dir, "pdns.d"));
        File.WriteAllText(Path.Combine(dir, "pdns.conf"),
            File.ReadAllText("/etc/powerdns/pdns.conf").Replace("include-dir=/etc/powerdns/pdns.d", $"include-dir={dir}/pdns.d"));
        File.Copy("/etc/powerdns/pdns.d/bind.conf", Path.Combine(dir, "pdns.d", "bind.conf"));
        File.Copy(install.Under("/etc/powerdns/pdns.d/opterius.conf"), Path.Combine(dir, "pdns.d", "opterius.conf"));

        var current = FileResourceSandbox.Run("pdns_server", $"--config-dir={dir}", "--config=current").Split('\n')
            .Where(l => l.StartsWith("launch="));

        // Debian's bind backend is gone; the gmysql settings themselves are proven by logging in with them.
        Assert.Equal(["launch=gmysql"], current);
    }

    [Fact]
    public async Task TheInstalledPanelSignsInTheFirstAdminWhileRunningUnprivilegedWithoutCapabilitiesOnAReadOnlySystem()
    {
        var password = PrintedPassword().Match(install.First.Out).Groups[1].Value;
        await using var panel = await SandboxedPanel.StartAsync(install);
        Assert.Equal((SandboxedPanel.Uid.ToString(), "0000000000000000", "0000000000000000", "1"),
            (panel.Status("Uid").Split('\t')[0], panel.Status("CapEff"), panel.Status("CapBnd"), panel.Status("NoNewPrivs")));

        using var client = panel.Client();
        var token = AntiforgeryToken().Match(await client.GetStringAsync("/login")).Groups[1].Value;
        FormUrlEncodedContent Form(string pw) => new([new("username", "admin"), new("password", pw), new("__RequestVerificationToken", token)]);
        var wrong = await client.PostAsync("/auth/login", Form(password + "x"));
        Assert.Equal("/login?failed=1", wrong.Headers.Location?.OriginalString);
        var right = await client.PostAsync("/auth/login", Form(password));
        Assert.Equal("/", right.Headers.Location?.OriginalString);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);
    }

    private string PdnsSetting(string key) =>
        File.ReadLines(install.Under("/etc/powerdns/pdns.d/opterius.conf")).Single(l => l.StartsWith(key + "="))[(key.Length + 1)..];

    /// <summary>SHOW GRANTS without the password hash, sorted.</summary>
    private static async Task<string[]> GrantsAsync(string user)
    {
        await using var c = ScratchInstall.MariaDbRoot();
        var rows = await c.QueryAsync<string>($"SHOW GRANTS FOR '{user}'@'localhost'");
        return rows.Select(r => PasswordHash().Replace(r, "")).Order(StringComparer.Ordinal).ToArray();
    }

    [GeneratedRegex(" IDENTIFIED BY PASSWORD '[^']*'")]
    private static partial Regex PasswordHash();

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryToken();

    [GeneratedRegex(@"Password: (\S+)")]
    private static partial Regex PrintedPassword();
}
