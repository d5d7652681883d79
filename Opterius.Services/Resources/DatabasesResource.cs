using Dapper;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Data;

namespace Opterius.Services.Resources;

/// <summary>A tenant database and its size on disk (data + indexes, as information_schema reports it).</summary>
public sealed record TenantDatabase(string Name, long Bytes);

/// <summary>
/// The account's MariaDB databases: every database named <c>{username}_*</c>, and the grants other users hold on
/// them (a later account of the same name would otherwise hand its new <c>bob_wp</c> to them). Names are matched by
/// exact prefix, never LIKE (whose escape character depends on the server's sql_mode), and every name the server
/// returns is checked again with an ordinal prefix test: <c>bobby_x</c> or <c>bobxwp</c> never belong to <c>bob</c>.
/// The account's own users' grants go with those users (database_users).
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
        IReadOnlyList<ForeignGrant> grants;
        await using (var c = await admin.OpenAsync(ct)) grants = await ForeignGrantsAsync(c, account, ct);
        if (databases.Count == 0 && grants.Count == 0) return ResourceInspection.Nothing(Key, "no databases");
        var summary = $"{databases.Count} database(s): " + string.Join(", ", databases.Select(d => $"{d.Name} ({d.Bytes} bytes)"));
        if (grants.Count > 0) summary += $"; {grants.Count} grant(s) other users hold on them: {string.Join(", ", grants)}";
        return new(Key, true, [.. databases.Select(d => d.Name), .. grants.Select(g => g.ToString())], databases.Sum(d => d.Bytes),
            databases.Count + grants.Count, summary);
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        var names = await NamesAsync(c, account, ct);
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
        IReadOnlyList<ForeignGrant> grants;
        try
        {
            // DROP DATABASE keeps every grant on it: deleted here, as rows, then loaded by FLUSH PRIVILEGES.
            grants = await ForeignGrantsAsync(c, account, ct);
            foreach (var g in grants)
                await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {g.Table} WHERE Host = @Host AND Db = @Db AND User = @User", g, cancellationToken: ct));
            if (grants.Count > 0) await c.ExecuteAsync(new CommandDefinition("FLUSH PRIVILEGES", cancellationToken: ct));
        }
        catch (MySqlException e)
        {
            throw new ResourceException($"cannot remove other users' grants on the databases of {account.Username}: {e.Message}", e);
        }
        if (names.Count == 0 && grants.Count == 0) return RemoveOutcome.Skipped("no databases");
        var detail = names.Count > 0 ? $"dropped {string.Join(", ", names)}" : "no databases";
        return RemoveOutcome.Done(grants.Count > 0 ? $"{detail}; removed {grants.Count} grant(s) of other users: {string.Join(", ", grants)}" : detail);
    }

    private const string NamesSql =
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(@Prefix)) = @Prefix ORDER BY SCHEMA_NAME";

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
        var rows = await c.QueryAsync<string>(new CommandDefinition(NamesSql, new { Prefix = prefix }, cancellationToken: ct));
        // The server's comparison may ignore case; ownership is decided here, byte for byte.
        return rows.Where(name => name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    /// <summary>A grant row of a user who is not the account's, on one of the account's databases.</summary>
    private sealed record ForeignGrant(string Table, string Host, string Db, string User)
    {
        public override string ToString() => $"{User}@{Host} on {Db} ({Table})";
    }

    private sealed record GrantRow(string Host, string Db, string User);

    // A cheap superset (every Db starting with the username, escaped or not); ownership is decided in C#.
    private const string GrantRowsSql = "SELECT DISTINCT Host, Db, User FROM {0} WHERE LEFT(Db, CHAR_LENGTH(@Username)) = @Username ORDER BY User, Host, Db";

    private static async Task<IReadOnlyList<ForeignGrant>> ForeignGrantsAsync(MySqlConnection c, AccountIdentity account, CancellationToken ct)
    {
        var grants = new List<ForeignGrant>();
        foreach (var table in DatabaseUsersResource.GrantTables)
        {
            var rows = await c.QueryAsync<GrantRow>(new CommandDefinition(string.Format(GrantRowsSql, table), new { account.Username }, cancellationToken: ct));
            grants.AddRange(rows
                .Where(r => !DatabaseUsersResource.Owns(account.Username, r.User) && IsAccountsDatabase(account.Username, r.Db, isPattern: table == "mysql.db"))
                .Select(r => new ForeignGrant(table, r.Host, r.Db, r.User)));
        }
        return grants;
    }

    /// <summary>
    /// Whether a grant's database is the account's. tables_priv, columns_priv and procs_priv name one database;
    /// mysql.db holds a pattern (<c>_</c>, <c>%</c> wildcards, <c>\</c> escape). A pattern is the account's when it
    /// can only match <c>{username}_*</c> names (<c>bob\_%</c>, <c>bob\_wp</c>), or when it is one of those names
    /// written without escapes or <c>%</c> (<c>GRANT ... ON bob_wp.*</c>). A pattern that also spans other accounts'
    /// names (<c>bob_%</c>, <c>bob%</c>) is an operator's grant across tenants and stays.
    /// </summary>
    internal static bool IsAccountsDatabase(string username, string db, bool isPattern)
    {
        var prefix = username + "_";
        if (!isPattern) return db.StartsWith(prefix, StringComparison.Ordinal);
        if (!db.Contains('%') && !db.Contains('\\')) return db.StartsWith(prefix, StringComparison.Ordinal);
        var literal = new System.Text.StringBuilder();
        for (var i = 0; i < db.Length && db[i] is not ('_' or '%'); i++)
            literal.Append(db[i] == '\\' && i + 1 < db.Length ? db[++i] : db[i]);
        return literal.ToString().StartsWith(prefix, StringComparison.Ordinal);
    }
}
