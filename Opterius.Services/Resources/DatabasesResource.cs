using Dapper;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Data;

namespace Opterius.Services.Resources;

/// <summary>A tenant database and its size on disk (data + indexes, as information_schema reports it).</summary>
public sealed record TenantDatabase(string Name, long Bytes);

/// <summary>
/// The account's MariaDB databases: every database named <c>{username}_*</c>. <c>_</c> is a LIKE wildcard,
/// so the pattern is escaped (<c>bob\_%</c>) and every name the server returns is checked again with an exact
/// ordinal prefix test: <c>bobby_x</c> or <c>bobxwp</c> never belong to <c>bob</c>.
/// </summary>
public sealed class DatabasesResource(MariaDbAdmin admin) : IAccountResource
{
    public string Key => "databases";

    // The demo's two sites: a blog and a shop, each with a table and a few rows.
    private static readonly (string Suffix, string Table, string[] Rows)[] Starter =
    [
        ("wp", "posts", ["Hello world", "About us", "Contact"]),
        ("shop", "products", ["Coffee mug", "T-shirt", "Sticker pack"]),
    ];

    /// <summary>
    /// The demo's sample databases. CREATE DATABASE without IF NOT EXISTS: a database of that name that exists is
    /// refused, never filled; a failure half-way drops the databases this call created, and only those.
    /// </summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        var created = new List<string>();
        try
        {
            foreach (var (suffix, table, rows) in Starter)
            {
                var name = $"{account.Identity.Username}_{suffix}";
                var db = SqlNames.Identifier(name);
                var qualified = $"{db}.{SqlNames.Identifier(table)}";
                try { await c.ExecuteAsync(new CommandDefinition($"CREATE DATABASE {db} CHARACTER SET utf8mb4", cancellationToken: ct)); }
                catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DatabaseCreateExists)
                {
                    throw new AlreadyThereException($"a database {name} already exists; it is left as it is");
                }
                created.Add(name);
                await c.ExecuteAsync(new CommandDefinition(
                    $"CREATE TABLE {qualified} (id INT PRIMARY KEY, title VARCHAR(200) NOT NULL) ENGINE=InnoDB", cancellationToken: ct));
                await c.ExecuteAsync(new CommandDefinition(
                    $"INSERT INTO {qualified} (id, title) VALUES (@Id, @Title)",
                    rows.Select((title, i) => new { Id = i + 1, Title = title }), cancellationToken: ct));
            }
        }
        catch
        {
            foreach (var name in created)
                await c.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {SqlNames.Identifier(name)}", cancellationToken: CancellationToken.None));
            throw;
        }
    }

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var databases = await ListAsync(account, ct);
        if (databases.Count == 0) return ResourceInspection.Nothing(Key, "no databases");
        var bytes = databases.Sum(d => d.Bytes);
        return new(Key, true, databases.Select(d => d.Name).ToList(), bytes, databases.Count,
            $"{databases.Count} database(s): " + string.Join(", ", databases.Select(d => $"{d.Name} ({d.Bytes} bytes)")));
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        var names = await NamesAsync(c, account, ct);
        if (names.Count == 0) return RemoveOutcome.Skipped("no databases");
        foreach (var name in names)
        {
            try
            {
                // IF EXISTS: a step resumed after a crash may find some already dropped.
                await c.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {SqlNames.Identifier(name)}", cancellationToken: ct));
            }
            catch (MySqlException e)
            {
                throw new ResourceException($"cannot drop database {name}: {e.Message}", e);
            }
        }
        return RemoveOutcome.Done($"dropped {string.Join(", ", names)}");
    }

    private const string NamesSql = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE @Pattern ORDER BY SCHEMA_NAME";

    // Equality on TABLE_SCHEMA lets the server read one database's tables, not every table on the server;
    // the BINARY test keeps a case twin (BOB_wp beside bob_wp) out of the sum.
    private const string SizeSql = """
        SELECT CAST(COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS SIGNED)
        FROM information_schema.TABLES WHERE TABLE_SCHEMA = @Name AND BINARY TABLE_SCHEMA = BINARY @Name
        """;

    /// <summary>The account's databases with their sizes, exact owners only.</summary>
    public async Task<IReadOnlyList<TenantDatabase>> ListAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        var databases = new List<TenantDatabase>();
        foreach (var name in await NamesAsync(c, account, ct))
            databases.Add(new(name, await c.ExecuteScalarAsync<long>(new CommandDefinition(SizeSql, new { Name = name }, cancellationToken: ct))));
        return databases;
    }

    private static async Task<IReadOnlyList<string>> NamesAsync(MySqlConnection c, AccountIdentity account, CancellationToken ct)
    {
        var prefix = account.Username + "_";
        var rows = await c.QueryAsync<string>(new CommandDefinition(NamesSql, new { Pattern = SqlNames.LikePrefix(prefix) }, cancellationToken: ct));
        // The server's comparison may ignore case; ownership is decided here, byte for byte.
        return rows.Where(name => name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }
}
