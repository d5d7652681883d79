using MySqlConnector;
using Opterius.Services.Data;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Resources;

public sealed class DatabaseUsersResourceTests : IAsyncLifetime
{
    private SqlResourceKit _kit = null!;
    private DatabaseUsersResource _users = null!;
    private readonly string _bob = SqlResourceKit.UniqueUsername();
    private string Bobby => _bob + "by";
    private string Bob2 => _bob + "2";

    public async Task InitializeAsync()
    {
        _kit = await SqlResourceKit.CreateAsync();
        _users = new DatabaseUsersResource(_kit.Admin);
    }

    public async Task DisposeAsync()
    {
        foreach (var (user, host) in await _kit.QueryAsync<(string, string)>(_kit.Databases.Admin,
                     "SELECT User, Host FROM mysql.global_priv WHERE User LIKE @p", new { p = SqlNames.LikePrefix(_bob) }))
            await _kit.ExecAsync(_kit.Databases.Admin, $"DROP USER IF EXISTS {SqlNames.Literal(user)}@{SqlNames.Literal(host)}");
        foreach (var table in new[] { "mysql.db", "mysql.tables_priv" })
            await _kit.ExecAsync(_kit.Databases.Admin, $"DELETE FROM {table} WHERE User LIKE @p", new { p = SqlNames.LikePrefix(_bob) });
        await _kit.ExecAsync(_kit.Databases.Admin, "FLUSH PRIVILEGES");
        foreach (var name in await _kit.QueryAsync<string>(_kit.Databases.Admin,
                     "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE @p", new { p = SqlNames.LikePrefix(_bob) }))
            await _kit.ExecAsync(_kit.Databases.Admin, $"DROP DATABASE IF EXISTS {SqlNames.Identifier(name)}");
    }

    [Fact]
    public async Task TheProvisionedUserLogsInWithTheAccountPasswordAndMayCreateOnlyItsOwnDatabases()
    {
        const string password = "it's a \\ \"hostile\"'; DROP USER root@localhost; -- pass";
        await _users.ProvisionAsync(SqlResourceKit.NewAccount(_bob, password: password), default);

        await using var c = await SqlResourceKit.ConnectAsAsync(_bob, password);
        await new MySqlCommand($"CREATE DATABASE {SqlNames.Identifier(_bob + "_new")}", c).ExecuteNonQueryAsync();
        // `_` in the grant pattern is escaped: bobxwp and bobby_x are somebody else's names.
        foreach (var foreign in new[] { $"{_bob}xwp", $"{Bobby}_x" })
        {
            var denied = await Assert.ThrowsAsync<MySqlException>(() => new MySqlCommand($"CREATE DATABASE {SqlNames.Identifier(foreign)}", c).ExecuteNonQueryAsync());
            Assert.Equal(MySqlErrorCode.DatabaseAccessDenied, denied.ErrorCode);
        }
        Assert.Single(await _kit.QueryAsync<string>(_kit.Databases.Admin, "SELECT User FROM mysql.global_priv WHERE User = 'root' AND Host = 'localhost'"));
    }

    [Fact]
    public async Task RemovingDropsTheAccountsUsersAtEveryHostWithTheirGrantsAndLeavesLookalikeUsersAsTheyWere()
    {
        await _users.ProvisionAsync(SqlResourceKit.NewAccount(_bob), default);
        await CreateUserAsync($"{_bob}_ro", "%", $"{_bob}_wp");
        await CreateUserAsync(_bob, "127.0.0.1", $"{_bob}_shop");
        await _users.ProvisionAsync(SqlResourceKit.NewAccount(Bobby), default);
        await CreateUserAsync($"{Bob2}_ro", "%", $"{Bob2}_y");
        await CreateUserAsync($"{_bob}xro", "localhost", $"{_bob}xwp");
        var neighboursBefore = await GrantsSnapshotAsync(u => u != _bob && !u.StartsWith(_bob + "_", StringComparison.Ordinal));

        var plan = await _users.InspectAsync(SqlResourceKit.Identity(_bob), default);

        Assert.Equal(new[] { $"{_bob}@127.0.0.1", $"{_bob}@localhost", $"{_bob}_ro@%" }, plan.Items);
        Assert.Equal(3, plan.Count);

        var outcome = await _users.RemoveAsync(SqlResourceKit.Identity(_bob), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.False((await _users.InspectAsync(SqlResourceKit.Identity(_bob), default)).Exists);
        foreach (var table in new[] { "mysql.global_priv", "mysql.db", "mysql.tables_priv" })
            Assert.Empty(await _kit.QueryAsync<string>(_kit.Databases.Admin, $"SELECT User FROM {table} WHERE User = @bob OR User = @ro", new { bob = _bob, ro = $"{_bob}_ro" }));
        Assert.Equal(neighboursBefore, await GrantsSnapshotAsync(u => u != _bob && !u.StartsWith(_bob + "_", StringComparison.Ordinal)));
        Assert.Equal(StepStatus.Skipped, (await _users.RemoveAsync(SqlResourceKit.Identity(_bob), default)).Status);
    }

    [Fact]
    public async Task GrantRowsLeftWithoutTheirUserAreCleanedForTheAccountOnly()
    {
        // Rows written straight into mysql.db, as an old server or a manual edit can leave them.
        await _kit.ExecAsync(_kit.Databases.Admin, """
            INSERT INTO mysql.db (Host, Db, User, Select_priv) VALUES
              ('%', @ownDb, @own, 'Y'), ('%', @otherDb, @other, 'Y')
            """, new { own = $"{_bob}_ghost", ownDb = $"{_bob}\\_%", other = $"{Bobby}_ghost", otherDb = $"{Bobby}\\_%" });
        await _kit.ExecAsync(_kit.Databases.Admin, "FLUSH PRIVILEGES");

        var outcome = await _users.RemoveAsync(SqlResourceKit.Identity(_bob), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Contains("leftover", outcome.Detail);
        var left = await _kit.QueryAsync<string>(_kit.Databases.Admin, "SELECT User FROM mysql.db WHERE User LIKE @p", new { p = SqlNames.LikePrefix(_bob) });
        Assert.Equal(new[] { $"{Bobby}_ghost" }, left);
    }

    [Fact]
    public async Task AnAccountWithoutDatabaseUsersIsSkippedAndLookalikesStay()
    {
        await CreateUserAsync(Bobby, "localhost", $"{Bobby}_x");
        await CreateUserAsync($"{Bob2}_ro", "%", $"{Bob2}_y");
        var before = await GrantsSnapshotAsync(_ => true);

        Assert.False((await _users.InspectAsync(SqlResourceKit.Identity(_bob), default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await _users.RemoveAsync(SqlResourceKit.Identity(_bob), default)).Status);
        Assert.Equal(before, await GrantsSnapshotAsync(_ => true));
    }

    private async Task CreateUserAsync(string user, string host, string database)
    {
        var who = $"{SqlNames.Literal(user)}@{SqlNames.Literal(host)}";
        var db = SqlNames.Identifier(database);
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE USER {who} IDENTIFIED BY 'pw'");
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE DATABASE IF NOT EXISTS {db}");
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE TABLE IF NOT EXISTS {db}.t (id INT PRIMARY KEY)");
        await _kit.ExecAsync(_kit.Databases.Admin, $"GRANT SELECT, INSERT ON {db}.* TO {who}");
        await _kit.ExecAsync(_kit.Databases.Admin, $"GRANT UPDATE ON {db}.t TO {who}");
    }

    /// <summary>SHOW GRANTS of every user of this class that passes the filter, in a stable order.</summary>
    private async Task<string> GrantsSnapshotAsync(Func<string, bool> include)
    {
        var users = await _kit.QueryAsync<(string User, string Host)>(_kit.Databases.Admin,
            "SELECT User, Host FROM mysql.global_priv WHERE User LIKE @p ORDER BY User, Host", new { p = SqlNames.LikePrefix(_bob) });
        var lines = new List<string>();
        foreach (var (user, host) in users.Where(u => include(u.User)))
            lines.Add(await _kit.SnapshotAsync(_kit.Databases.Admin, $"SHOW GRANTS FOR {SqlNames.Literal(user)}@{SqlNames.Literal(host)}"));
        Assert.NotEmpty(lines);
        return string.Join("\n", lines);
    }

}
