using Dapper;
using MySqlConnector;
using Opterius.Services.Data;

namespace Opterius.Web.Tests.Infrastructure;

/// <summary>
/// A fresh pair of databases (panel and PowerDNS) on the run's private MariaDB, migrated by the real
/// migrator. Each test class makes its own, so classes never see each other's rows.
/// </summary>
public sealed class TestDatabases
{
    private static int _counter;

    public string Panel { get; }
    public string PowerDns { get; }
    public string Admin { get; }

    private TestDatabases(string name, string? powerDnsDatabase)
    {
        Panel = PrivateServices.RootConnectionString($"{name}_panel");
        PowerDns = PrivateServices.RootConnectionString(powerDnsDatabase ?? $"{name}_pdns");
        Admin = PrivateServices.RootConnectionString();
    }

    /// <summary>New databases; <paramref name="powerDnsDatabase"/> names an existing one to share (the served zone data).</summary>
    public static async Task<TestDatabases> CreateAsync(string? powerDnsDatabase = null)
    {
        var name = $"t{Environment.ProcessId}x{Interlocked.Increment(ref _counter)}";
        var dbs = new TestDatabases(name, powerDnsDatabase);
        await Migrator.EnsureDatabaseAsync(dbs.Panel, default);
        await Migrator.EnsureDatabaseAsync(dbs.PowerDns, default);
        var migrator = new Migrator(new PanelDb(dbs.Panel), new PowerDnsDb(dbs.PowerDns));
        await migrator.MigrateAsync(default);
        return dbs;
    }

    public async Task<T> PanelScalarAsync<T>(string sql, object? args = null)
    {
        await using var c = new MySqlConnection(Panel);
        return (await c.ExecuteScalarAsync<T>(sql, args))!;
    }
}
