using Opterius.Services.Data;
using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Resources;

public sealed class DatabasesResourceTests : IAsyncLifetime
{
    private SqlResourceKit _kit = null!;
    private DatabasesResource _databases = null!;
    private readonly string _bob = SqlResourceKit.UniqueUsername();
    private string Bobby => _bob + "by";
    private string Bob2 => _bob + "2";

    public async Task InitializeAsync()
    {
        _kit = await SqlResourceKit.CreateAsync();
        _databases = new DatabasesResource(_kit.Admin);
    }

    public async Task DisposeAsync()
    {
        await _kit.ExecAsync(_kit.Databases.Admin, $"DROP USER IF EXISTS {SqlNames.Literal(Bobby)}@'%'");
        foreach (var name in await _kit.QueryAsync<string>(_kit.Databases.Admin,
                     "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LOWER(SCHEMA_NAME) LIKE @p", new { p = SqlNames.LikePrefix(_bob) }))
            await _kit.ExecAsync(_kit.Databases.Admin, $"DROP DATABASE IF EXISTS {SqlNames.Identifier(name)}");
    }

    [Fact]
    public async Task ProvisionedDatabasesAreInspectedWithSizesThenDroppedWhileLookalikeDatabasesKeepEveryRow()
    {
        await _databases.ProvisionAsync(SqlResourceKit.NewAccount(_bob), default);
        await _databases.ProvisionAsync(SqlResourceKit.NewAccount(Bobby), default);
        await _databases.ProvisionAsync(SqlResourceKit.NewAccount(Bob2), default);
        // bobxwp is what an unescaped 'bob_%' would catch; BOB_x differs only in case.
        foreach (var name in new[] { $"{Bobby}_x", $"{Bob2}_y", $"{_bob}xwp", $"{_bob.ToUpperInvariant()}_x" })
            await CreateDatabaseWithARowAsync(name);
        var neighboursBefore = await NeighbourSnapshotAsync();

        var plan = await _databases.InspectAsync(SqlResourceKit.Identity(_bob), default);

        Assert.True(plan.Exists);
        Assert.Equal(new[] { $"{_bob}_shop", $"{_bob}_wp" }, plan.Items);
        Assert.Equal(2, plan.Count);
        Assert.True(plan.Bytes > 0);
        Assert.Equal(3, await CountAsync($"SELECT COUNT(*) FROM {SqlNames.Identifier(_bob + "_wp")}.posts"));

        var outcome = await _databases.RemoveAsync(SqlResourceKit.Identity(_bob), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.False((await _databases.InspectAsync(SqlResourceKit.Identity(_bob), default)).Exists);
        Assert.DoesNotContain(await AllDatabasesAsync(), n => n == $"{_bob}_wp" || n == $"{_bob}_shop");
        Assert.Equal(neighboursBefore, await NeighbourSnapshotAsync());
        Assert.Equal(StepStatus.Skipped, (await _databases.RemoveAsync(SqlResourceKit.Identity(_bob), default)).Status);
    }

    [Fact]
    public async Task MoreAccountsAtOnceThanThePoolHasConnectionsAllHaveTheirDatabasesDropped()
    {
        // The tests' pool holds 50 connections; a bulk delete starts every account's step at once. An account that held
        // its own connection while waiting for a drop's would starve the drops until the connect timeout failed them all.
        var accounts = Enumerable.Range(0, 60).Select(i => $"{_bob}p{i:D2}").ToArray();
        foreach (var a in accounts) await CreateDatabaseWithARowAsync($"{a}_db");

        var outcomes = await Task.WhenAll(accounts.Select(a => _databases.RemoveAsync(SqlResourceKit.Identity(a), default)));

        Assert.All(outcomes, o => Assert.Equal((StepStatus.Done, null), (o.Status, (string?)null)));
        Assert.DoesNotContain(await AllDatabasesAsync(), n => accounts.Any(a => n == $"{a}_db"));
    }

    [Fact]
    public async Task AnAccountWithOnlyLookalikeDatabasesHasNothingToRemoveAndTheLookalikesStay()
    {
        await CreateDatabaseWithARowAsync($"{_bob}xwp");
        await CreateDatabaseWithARowAsync($"{Bobby}_x");
        var before = await NeighbourSnapshotAsync();

        var plan = await _databases.InspectAsync(SqlResourceKit.Identity(_bob), default);
        var outcome = await _databases.RemoveAsync(SqlResourceKit.Identity(_bob), default);

        Assert.False(plan.Exists);
        Assert.Equal(StepStatus.Skipped, outcome.Status);
        Assert.Equal(before, await NeighbourSnapshotAsync());
    }

    [Fact]
    public async Task DatabasesTheTenantGaveHostileNamesAreDroppedByTheirExactNames()
    {
        // The tenant's grant lets them create any bob_* name, backquotes and backslashes included.
        string[] hostile = [$"{_bob}_a`b", $"{_bob}_c\\d", $"{_bob}_e'f; DROP DATABASE mysql", $"{_bob}_%"];
        foreach (var name in hostile) await CreateDatabaseWithARowAsync(name);
        await CreateDatabaseWithARowAsync($"{Bobby}_x");
        var before = await NeighbourSnapshotAsync();

        var plan = await _databases.InspectAsync(SqlResourceKit.Identity(_bob), default);
        await _databases.RemoveAsync(SqlResourceKit.Identity(_bob), default);

        Assert.Equal(hostile.Order(StringComparer.Ordinal), plan.Items.Order(StringComparer.Ordinal));
        Assert.Empty((await AllDatabasesAsync()).Intersect(hostile));
        Assert.Contains("mysql", await AllDatabasesAsync());
        Assert.Equal(before, await NeighbourSnapshotAsync());
    }

    [Fact]
    public async Task GrantsOtherUsersHoldOnTheAccountsDatabasesGoWithThemAndTheirOtherGrantsStay()
    {
        await _databases.ProvisionAsync(SqlResourceKit.NewAccount(_bob), default);
        await CreateDatabaseWithARowAsync($"{Bobby}_x");
        await CreateDatabaseWithARowAsync($"{_bob}xwp");
        var (wp, shop) = (SqlNames.Identifier($"{_bob}_wp"), SqlNames.Identifier($"{_bob}_shop"));
        var friend = $"{SqlNames.Literal(Bobby)}@'%'";
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE USER {friend} IDENTIFIED BY 'pw'");
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE PROCEDURE {wp}.p() SELECT 1");
        foreach (var grant in new[]
                 {
                     // On the account's databases: a plain name, its escaped pattern, a table, a column, a routine.
                     $"SELECT ON {wp}.*", $"SELECT ON {SqlNames.Identifier($"{_bob}\\_%")}.*", $"UPDATE ON {wp}.posts",
                     $"SELECT (title) ON {shop}.products", $"EXECUTE ON PROCEDURE {wp}.p",
                     // Not the account's: look-alike names, and a pattern that can match no name of bob's.
                     $"SELECT ON {SqlNames.Identifier($"{Bobby}_x")}.*", $"SELECT ON {SqlNames.Identifier($"{_bob}xwp")}.*",
                     $"UPDATE ON {SqlNames.Identifier($"{_bob}xwp")}.t", $"SELECT ON {SqlNames.Identifier($"{_bob}x%")}.*",
                 })
            await _kit.ExecAsync(_kit.Databases.Admin, $"GRANT {grant} TO {friend}");
        var theirs = new[] { $"{Bobby}_x", $"{_bob}xwp", $"{_bob}x%" };
        var before = await GrantRowsAsync();
        var bob = SqlResourceKit.Identity(_bob);

        var plan = await _databases.InspectAsync(bob, default);
        var outcome = await _databases.RemoveAsync(bob, default);

        Assert.Equal(8, plan.Count); // two databases, six grant rows (a column grant is also a tables_priv row)
        Assert.Contains("other users", plan.Summary);
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Equal(before.Where(r => theirs.Contains(r.Split(' ')[1])), await GrantRowsAsync());
        Assert.Equal(6, before.Count - (await GrantRowsAsync()).Count);
        Assert.False((await _databases.InspectAsync(bob, default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await _databases.RemoveAsync(bob, default)).Status);
    }

    [Fact]
    public async Task AGrantOnAPatternThatAlsoMatchesTheNextAccountsDatabasesFailsTheStepAndIsStillReportedAfterIt()
    {
        await _databases.ProvisionAsync(SqlResourceKit.NewAccount(_bob), default);
        var friend = $"{SqlNames.Literal(Bobby)}@'%'";
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE USER {friend} IDENTIFIED BY 'pw'");
        // The usual way to write "bob's databases": its _ is a wildcard, so it spans bobx... too, and a later bob's bob_new.
        await _kit.ExecAsync(_kit.Databases.Admin, $"GRANT SELECT ON {SqlNames.Identifier($"{_bob}_%")}.* TO {friend}");
        await _kit.ExecAsync(_kit.Databases.Admin, $"GRANT SELECT ON {SqlNames.Identifier($"{_bob}\\_%")}.* TO {friend}");
        var bob = SqlResourceKit.Identity(_bob);
        var expected = $"GRANT SELECT ON `{_bob}_%`.* TO `{Bobby}`@`%` also matches {_bob}'s future databases: remove or narrow it (e.g. `{_bob}\\_%`)";

        var plan = await _databases.InspectAsync(bob, default);
        var failure = await Assert.ThrowsAsync<ResourceException>(() => _databases.RemoveAsync(bob, default));

        Assert.True(plan.Exists);
        Assert.Contains(expected, plan.Summary);
        Assert.Contains(expected, failure.Message);
        // What could go went: the databases and the grant confined to them; the spanning grant is the operator's to change.
        Assert.DoesNotContain(await AllDatabasesAsync(), n => n.StartsWith(_bob + "_", StringComparison.Ordinal));
        Assert.Equal([$"db {_bob}_% {Bobby} % "], await GrantRowsAsync());
        var after = await _databases.InspectAsync(bob, default);
        Assert.True(after.Exists);
        Assert.Contains(expected, after.Summary);

        await _kit.ExecAsync(_kit.Databases.Admin, $"REVOKE SELECT ON {SqlNames.Identifier($"{_bob}_%")}.* FROM {friend}");
        Assert.False((await _databases.InspectAsync(bob, default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await _databases.RemoveAsync(bob, default)).Status);
    }

    [Theory]
    [InlineData("bob_%", true)]
    [InlineData("bob%", true)]
    [InlineData("bo%x", true)]
    [InlineData("b_b__x", true)]
    [InlineData("bob_", true)]
    [InlineData(@"bob\_%", true)]
    [InlineData("bobx%", false)]
    [InlineData("bobby_%", false)]
    [InlineData(@"bob\%", false)]
    [InlineData(@"bob\x_%", false)]
    [InlineData("bob", false)]
    public void ADatabasePatternIsTestedAgainstEveryNameTheAccountCouldHave(string pattern, bool matchesSomeName) =>
        Assert.Equal(matchesSomeName, DatabasesResource.PatternMatchesSomeNameOf("bob", pattern));

    /// <summary>Every grant row of bobby in the four privilege tables: "table db user host [object]".</summary>
    private async Task<List<string>> GrantRowsAsync()
    {
        var rows = new List<string>();
        foreach (var (table, detail) in new[] { ("db", "''"), ("tables_priv", "Table_name"), ("columns_priv", "CONCAT(Table_name, '.', Column_name)"), ("procs_priv", "Routine_name") })
            rows.AddRange(await _kit.QueryAsync<string>(_kit.Databases.Admin,
                $"SELECT CONCAT('{table} ', Db, ' ', User, ' ', Host, ' ', {detail}) FROM mysql.{table} WHERE User = @u ORDER BY Db, 1", new { u = Bobby }));
        return rows;
    }

    private async Task CreateDatabaseWithARowAsync(string name)
    {
        var db = SqlNames.Identifier(name);
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE DATABASE {db}");
        await _kit.ExecAsync(_kit.Databases.Admin, $"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(50))");
        await _kit.ExecAsync(_kit.Databases.Admin, $"INSERT INTO {db}.t VALUES (1, @v)", new { v = "neighbour data " + name });
    }

    private Task<List<string>> AllDatabasesAsync() =>
        _kit.QueryAsync<string>(_kit.Databases.Admin, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA");

    private async Task<long> CountAsync(string sql) => (await _kit.QueryAsync<long>(_kit.Databases.Admin, sql)).Single();

    /// <summary>Every database of this class that is not bob's, with every table's name and checksum.</summary>
    private async Task<string> NeighbourSnapshotAsync()
    {
        var lines = new List<string>();
        foreach (var name in (await AllDatabasesAsync()).Where(n => n.StartsWith(_bob, StringComparison.OrdinalIgnoreCase) && !n.StartsWith(_bob + "_", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var tables = await _kit.QueryAsync<string>(_kit.Databases.Admin,
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = BINARY @name ORDER BY TABLE_NAME", new { name });
            foreach (var table in tables)
                lines.Add($"{name}.{table}: " + await _kit.SnapshotAsync(_kit.Databases.Admin, $"CHECKSUM TABLE {SqlNames.Identifier(name)}.{SqlNames.Identifier(table)}"));
        }
        Assert.NotEmpty(lines);
        return string.Join("\n", lines);
    }
}
