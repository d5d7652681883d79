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
