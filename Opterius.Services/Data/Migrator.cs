using Dapper;
using MySqlConnector;

namespace Opterius.Services.Data;

/// <summary>
/// Creates or upgrades the panel and PowerDNS schemas from the versioned .sql files under <c>db/</c>
/// (embedded in this assembly). Idempotent: each file is applied once and recorded.
/// </summary>
public sealed class Migrator(PanelDb panel, PowerDnsDb powerDns)
{
    private const string PanelPrefix = "Opterius.Services.db.";
    private const string PowerDnsPrefix = "Opterius.Services.db.powerdns.";

    /// <summary>Creates the database named in a connection string when it does not exist yet.</summary>
    public static async Task EnsureDatabaseAsync(string connectionString, CancellationToken ct)
    {
        var builder = new MySqlConnectionStringBuilder(connectionString);
        var name = builder.Database;
        if (string.IsNullOrEmpty(name)) throw new InvalidOperationException("the connection string names no database");
        builder.Database = "";
        await using var c = new MySqlConnection(builder.ConnectionString);
        await c.OpenAsync(ct);
        await c.ExecuteAsync($"CREATE DATABASE IF NOT EXISTS `{name.Replace("`", "``")}` CHARACTER SET utf8mb4");
    }

    /// <summary>Applies every file not applied yet; returns the names it applied.</summary>
    public async Task<IReadOnlyList<string>> MigrateAsync(CancellationToken ct)
    {
        var applied = new List<string>();
        await using (var c = await panel.OpenAsync(ct)) applied.AddRange(await ApplyAsync(c, Scripts(PanelPrefix), ct));
        await using (var c = await powerDns.OpenAsync(ct)) applied.AddRange(await ApplyAsync(c, Scripts(PowerDnsPrefix), ct));
        return applied;
    }

    private const string CreateLedger = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version    VARCHAR(128) PRIMARY KEY,
          applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))
        """;

    private static async Task<IEnumerable<string>> ApplyAsync(MySqlConnection c, IEnumerable<(string Name, string Sql)> scripts, CancellationToken ct)
    {
        await c.ExecuteAsync(new CommandDefinition(CreateLedger, cancellationToken: ct));
        var done = (await c.QueryAsync<string>(new CommandDefinition("SELECT version FROM schema_migrations", cancellationToken: ct))).ToHashSet();
        var applied = new List<string>();
        foreach (var (name, sql) in scripts.Where(s => !done.Contains(s.Name)))
        {
            await c.ExecuteAsync(new CommandDefinition(sql, cancellationToken: ct));
            await c.ExecuteAsync(new CommandDefinition("INSERT INTO schema_migrations (version) VALUES (@name)", new { name }, cancellationToken: ct));
            applied.Add(name);
        }
        return applied;
    }

    private static IEnumerable<(string Name, string Sql)> Scripts(string prefix)
    {
        var assembly = typeof(Migrator).Assembly;
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix) && n.EndsWith(".sql")).Order(StringComparer.Ordinal))
        {
            var name = resource[prefix.Length..];
            if (name.Contains('.') && name.IndexOf('.') < name.Length - 4) continue; // a file of a sub-folder
            using var reader = new StreamReader(assembly.GetManifestResourceStream(resource)!);
            yield return (name, reader.ReadToEnd());
        }
    }
}
