using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Data;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Resources;

/// <summary>
/// The databases and database_users steps on a server whose global sql_mode has NO_BACKSLASH_ESCAPES (common in
/// hardened configurations). The mode is global, so this class runs alone, and puts the server's mode back.
/// </summary>
[Collection(nameof(NoBackslashEscapesTests))]
public sealed class NoBackslashEscapesTests : IAsyncLifetime
{
    private SqlResourceKit _kit = null!;
    private readonly string _bob = SqlResourceKit.UniqueUsername();
    private string Bobby => _bob + "by";
    private string Bob2 => _bob + "2";
    private string _globalMode = null!;

    public async Task InitializeAsync()
    {
        _kit = await SqlResourceKit.CreateAsync();
        _globalMode = (await _kit.QueryAsync<string>(_kit.Databases.Admin, "SELECT @@GLOBAL.sql_mode")).Single();
        Assert.DoesNotContain("NO_BACKSLASH_ESCAPES", _globalMode);
    }

    public async Task DisposeAsync()
    {
        await RestoreModeAsync();
        var users = await _kit.QueryAsync<(string, string)>(_kit.Databases.Admin,
            "SELECT User, Host FROM mysql.global_priv WHERE LEFT(User, CHAR_LENGTH(@p)) = @p", new { p = _bob });
        foreach (var (user, host) in users)
            await _kit.ExecAsync(_kit.Databases.Admin, $"DROP USER IF EXISTS {SqlNames.Literal(user)}@{SqlNames.Literal(host)}");
        foreach (var name in await DatabasesOfThisClassAsync())
            await _kit.ExecAsync(_kit.Databases.Admin, $"DROP DATABASE IF EXISTS {SqlNames.Identifier(name)}");
    }

    [Fact]
    public async Task UnderNoBackslashEscapesTheAccountsDatabasesAndUsersAreRemovedAndLookalikesSurvive()
    {
        var (databases, users) = (new DatabasesResource(_kit.Admin), new DatabaseUsersResource(_kit.Admin));
        await databases.ProvisionAsync(SqlResourceKit.NewAccount(_bob), default);
        await users.ProvisionAsync(SqlResourceKit.NewAccount(_bob), default);
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE USER {SqlNames.Literal(_bob + "_ro")}@'%' IDENTIFIED BY 'pw'");
        await databases.ProvisionAsync(SqlResourceKit.NewAccount(Bobby), default);
        await users.ProvisionAsync(SqlResourceKit.NewAccount(Bobby), default);
        foreach (var lookAlike in new[] { _bob + "xwp", Bobby + "_x" })
        {
            await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE DATABASE {SqlNames.Identifier(lookAlike)}");
            await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE TABLE {SqlNames.Identifier(lookAlike)}.t (id INT PRIMARY KEY)");
            await _kit.ExecAsync(_kit.Databases.Admin, $"INSERT INTO {SqlNames.Identifier(lookAlike)}.t VALUES (7)");
        }
        var neighboursBefore = await NeighboursAsync();

        await SetNoBackslashEscapesAsync();
        // The trap itself: a LIKE pattern escaped with backslashes, sent as a parameter, now matches nothing.
        Assert.Empty(await _kit.QueryAsync<string>(_kit.Databases.Admin,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE @p", new { p = SqlNames.LikePrefix(_bob + "_") }));
        var admin = new MariaDbAdmin(_kit.Databases.Admin);
        (databases, users) = (new DatabasesResource(admin), new DatabaseUsersResource(admin));
        var bob = SqlResourceKit.Identity(_bob);

        var databasesPlan = await databases.InspectAsync(bob, default);
        var usersPlan = await users.InspectAsync(bob, default);
        var databasesOutcome = await databases.RemoveAsync(bob, default);
        var usersOutcome = await users.RemoveAsync(bob, default);

        Assert.Equal([$"{_bob}_shop", $"{_bob}_wp"], databasesPlan.Items);
        Assert.Equal([$"{_bob}@localhost", $"{_bob}_ro@%"], usersPlan.Items);
        Assert.Equal(StepStatus.Done, databasesOutcome.Status);
        Assert.Equal(StepStatus.Done, usersOutcome.Status);
        await RestoreModeAsync();
        Assert.DoesNotContain(await DatabasesOfThisClassAsync(), n => n.StartsWith(_bob + "_", StringComparison.Ordinal));
        Assert.Empty(await _kit.QueryAsync<string>(_kit.Databases.Admin,
            "SELECT User FROM mysql.global_priv WHERE User = @bob OR User = @ro", new { bob = _bob, ro = _bob + "_ro" }));
        Assert.Empty(await _kit.QueryAsync<string>(_kit.Databases.Admin, "SELECT User FROM mysql.db WHERE User = @bob", new { bob = _bob }));
        Assert.Equal(neighboursBefore, await NeighboursAsync());
    }

    [Fact]
    public async Task UnderNoBackslashEscapesAProvisionedUserGetsExactlyItsPasswordAndOnlyItsOwnDatabases()
    {
        const string password = @"back\slash, 'quote' and \' both";
        await SetNoBackslashEscapesAsync();
        var users = new DatabaseUsersResource(new MariaDbAdmin(_kit.Databases.Admin));

        await users.ProvisionAsync(SqlResourceKit.NewAccount(Bob2, password: password), default);

        await using var c = await SqlResourceKit.ConnectAsAsync(Bob2, password);
        await new MySqlCommand($"CREATE DATABASE {SqlNames.Identifier(Bob2 + "_new")}", c).ExecuteNonQueryAsync();
        var denied = await Assert.ThrowsAsync<MySqlException>(() => new MySqlCommand($"CREATE DATABASE {SqlNames.Identifier(Bob2 + "xnew")}", c).ExecuteNonQueryAsync());
        Assert.Equal(MySqlErrorCode.DatabaseAccessDenied, denied.ErrorCode);
    }

    [Fact]
    public async Task UnderNoBackslashEscapesAnAccountSearchWithAnUnderscoreFindsExactlyTheAccountsItPrefixes()
    {
        // _ is a LIKE wildcard: the search must escape it, and the escape must reach the server as written.
        foreach (var (n, email) in new[] { ("1", $"{_bob}_sales@example.net"), ("2", $"{_bob}xsales@example.net") })
            await _kit.ExecAsync(_kit.Databases.Panel, """
                INSERT INTO accounts (username, domain, email, package_id, owner_id, php_version, status)
                VALUES (@username, @domain, @email, 1, 1, '8.2', 'active')
                """, new { username = _bob + n, domain = $"{_bob}{n}.example", email });
        await SetNoBackslashEscapesAsync();
        var store = new AccountStore(new PanelDb(_kit.Databases.Panel));

        var page = await store.ListAsync(new Viewer(1, IsAdmin: true), new AccountQuery(Search: $"{_bob}_sal"), default);

        Assert.Equal([_bob + "1"], page.Items.Select(a => a.Username));
        Assert.Equal(1, page.Total);
    }

    [Fact]
    public async Task UnderNoBackslashEscapesAZoneIsStoredWithItsSoaContactExactlyAsWritten()
    {
        var provisioning = Options.Create(new ProvisioningOptions
        {
            Addresses = ["127.0.0.1"], Nameservers = ["ns1.opterius.test"], SoaContact = "host.master@opterius.test",
        });
        await SetNoBackslashEscapesAsync();
        var zones = new DnsZoneResource(new PowerDnsDb(_kit.Databases.PowerDns), _kit.Reloader, provisioning);

        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, $"{_bob}.example"), default);

        await RestoreModeAsync();
        var soa = (await _kit.QueryAsync<string>(_kit.Databases.PowerDns,
            "SELECT content FROM records WHERE name = @name AND type = 'SOA'", new { name = $"{_bob}.example" })).Single();
        Assert.StartsWith(@"ns1.opterius.test host\.master.opterius.test ", soa);
    }

    private async Task SetNoBackslashEscapesAsync()
    {
        await _kit.ExecAsync(_kit.Databases.Admin, "SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')");
        // Pooled connections keep the session mode they were opened with.
        MySqlConnection.ClearAllPools();
        var mode = (await _kit.QueryAsync<string>(_kit.Databases.Admin, "SELECT @@SESSION.sql_mode")).Single();
        Assert.Contains("NO_BACKSLASH_ESCAPES", mode);
    }

    private async Task RestoreModeAsync()
    {
        await _kit.ExecAsync(_kit.Databases.Admin, "SET GLOBAL sql_mode = @mode", new { mode = _globalMode });
        MySqlConnection.ClearAllPools();
    }

    private Task<List<string>> DatabasesOfThisClassAsync() => _kit.QueryAsync<string>(_kit.Databases.Admin,
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(@p)) = @p ORDER BY SCHEMA_NAME", new { p = _bob });

    /// <summary>bobby's and bobxwp's databases (every table's checksum) and bobby's users with their grants.</summary>
    private async Task<string> NeighboursAsync()
    {
        var lines = new List<string>();
        foreach (var name in (await DatabasesOfThisClassAsync()).Where(n => !n.StartsWith(_bob + "_", StringComparison.Ordinal)))
            foreach (var table in await _kit.QueryAsync<string>(_kit.Databases.Admin,
                         "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = BINARY @name ORDER BY TABLE_NAME", new { name }))
                lines.Add($"{name}.{table}: " + await _kit.SnapshotAsync(_kit.Databases.Admin, $"CHECKSUM TABLE {SqlNames.Identifier(name)}.{SqlNames.Identifier(table)}"));
        lines.Add(await _kit.SnapshotAsync(_kit.Databases.Admin, $"SHOW GRANTS FOR {SqlNames.Literal(Bobby)}@'localhost'"));
        Assert.Equal(5, lines.Count); // bobby_shop.products, bobby_wp.posts, bobby_x.t, bobxwp.t and the grants
        return string.Join("\n", lines);
    }

}

[CollectionDefinition(nameof(NoBackslashEscapesTests), DisableParallelization = true)]
public sealed class NoBackslashEscapesCollection;
