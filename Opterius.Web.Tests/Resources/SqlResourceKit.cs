using Dapper;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Data;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Resources;

/// <summary>
/// What the database-backed resource tests share: this class's own panel/PowerDNS databases on the run's
/// private MariaDB, the root connection as <see cref="MariaDbAdmin"/>, and account names unique to the class
/// (the MariaDB server and its users are shared by every test class running in parallel).
/// </summary>
public sealed class SqlResourceKit
{
    public required TestDatabases Databases { get; init; }
    public required MariaDbAdmin Admin { get; init; }
    public required PowerDnsDb PowerDns { get; init; }
    public required ServiceReloader Reloader { get; init; }

    public static async Task<SqlResourceKit> CreateAsync(Dictionary<string, string[]>? commands = null, string? powerDnsDatabase = null)
    {
        var dbs = await TestDatabases.CreateAsync(powerDnsDatabase);
        var options = Options.Create(new OpteriusOptions
        {
            Root = Path.GetTempPath(),
            ReloadCoalesceMilliseconds = 0,
            Commands = commands ?? new(StringComparer.OrdinalIgnoreCase),
        });
        return new SqlResourceKit
        {
            Databases = dbs,
            Admin = new MariaDbAdmin(dbs.Admin),
            PowerDns = new PowerDnsDb(dbs.PowerDns),
            Reloader = new ServiceReloader(new CommandRunner(options), options, TimeProvider.System),
        };
    }

    /// <summary>What the zones of these tests point at: the run's own loopback, as the demo's configuration has it.</summary>
    public static IOptions<ProvisioningOptions> Provisioning { get; } = Options.Create(new ProvisioningOptions
    {
        Addresses = ["127.0.0.1"], Nameservers = ["ns1.opterius.test", "ns2.opterius.test"], SoaContact = "hostmaster@opterius.test",
    });

    /// <summary>A valid username nobody else in this run uses: a letter and five random ones.</summary>
    public static string UniqueUsername() =>
        "q" + string.Concat(Enumerable.Range(0, 5).Select(_ => (char)('a' + Random.Shared.Next(26))));

    public static AccountIdentity Identity(string username, string domain = "example.com")
    {
        Assert.True(AccountNames.IsValidUsername(username), username);
        return new(0, username, domain, "8.2", null);
    }

    public static NewAccount NewAccount(string username, string domain = "example.com", string password = "s3cret-pass") =>
        new(Identity(username, domain), $"{username}@{domain}", password);

    public async Task ExecAsync(string connectionString, string sql, object? args = null)
    {
        await using var c = new MySqlConnection(connectionString);
        await c.ExecuteAsync(sql, args);
    }

    public async Task<List<T>> QueryAsync<T>(string connectionString, string sql, object? args = null)
    {
        await using var c = new MySqlConnection(connectionString);
        return (await c.QueryAsync<T>(sql, args)).ToList();
    }

    /// <summary>Every row the query returns, every column, as text: equal snapshots mean identical rows.</summary>
    public async Task<string> SnapshotAsync(string connectionString, string sql, object? args = null)
    {
        await using var c = new MySqlConnection(connectionString);
        await using var reader = await c.ExecuteReaderAsync(sql, args);
        var lines = new List<string>();
        while (await reader.ReadAsync())
            lines.Add(string.Join(" | ", Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i)))));
        return string.Join("\n", lines);
    }

    /// <summary>A connection of its own (no pool) as a tenant's MariaDB user, to prove what that user can do.</summary>
    public static async Task<MySqlConnection> ConnectAsAsync(string user, string password)
    {
        var builder = new MySqlConnectionStringBuilder
        {
            Server = PrivateServices.MariaDbSocket, ConnectionProtocol = MySqlConnectionProtocol.UnixSocket,
            UserID = user, Password = password, Pooling = false,
        };
        var c = new MySqlConnection(builder.ConnectionString);
        await c.OpenAsync();
        return c;
    }
}
