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
        OtherUsersGrants grants;
        await using (var c = await admin.OpenAsync(ct)) grants = await OtherUsersGrantsAsync(c, account, ct);
        if (databases.Count == 0 && grants.Count == 0) return ResourceInspection.Nothing(Key, "no databases");
        var summary = $"{databases.Count} database(s): " + string.Join(", ", databases.Select(d => $"{d.Name} ({d.Bytes} bytes)"));
        if (grants.Confined.Count > 0) summary += $"; {grants.Confined.Count} grant(s) other users hold on them: {string.Join(", ", grants.Confined)}";
        if (grants.Spanning.Count > 0) summary += "; " + string.Join("; ", grants.Spanning);
        return new(Key, true, [.. databases.Select(d => d.Name), .. grants.Confined.Select(g => g.ToString()), .. grants.Spanning],
            databases.Sum(d => d.Bytes), databases.Count + grants.Count, summary);
    }

    /// <summary>
    /// Drops the databases and the grants other users hold on them. A grant on a pattern that also spans other names
    /// (<c>bob_%</c>) can neither be taken away without changing what its holder sees of other tenants, nor be left
    /// for the next <c>bob</c> to inherit: the step does the rest, then fails naming it until the operator narrows it.
    /// </summary>
    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        IReadOnlyList<string> names;
        // Closed before the drops: a connection held across them would make a burst of accounts hold the whole pool
        // while their drops wait for one of their own.
        await using (var listing = await admin.OpenAsync(ct)) names = await NamesAsync(listing, account, ct);
        // Together, each on its own connection: a DROP spends its time removing its files and flushing the log, not on a
        // core, so an account's databases go in about the time of its largest.
        var drops = names.Select(name => DropAsync(name, ct)).ToArray();
        try { await Task.WhenAll(drops); }
        catch (ResourceException)
        {
            var failed = drops.Where(d => d.IsFaulted).Select(d => d.Exception!.InnerException!.Message).ToArray();
            var dropped = names.Where((_, i) => drops[i].IsCompletedSuccessfully).ToArray();
            throw new ResourceException(string.Join("; ", failed) + (dropped.Length > 0 ? $"; dropped {string.Join(", ", dropped)}" : ""));
        }
        await using var c = await admin.OpenAsync(ct);
        OtherUsersGrants grants;
        try
        {
            // DROP DATABASE keeps every grant on it: deleted here, as rows, then loaded by FLUSH PRIVILEGES.
            grants = await OtherUsersGrantsAsync(c, account, ct);
            foreach (var g in grants.Confined)
                await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {g.Table} WHERE Host = @Host AND Db = @Db AND User = @User", g, cancellationToken: ct));
            if (grants.Confined.Count > 0) await c.ExecuteAsync(new CommandDefinition("FLUSH PRIVILEGES", cancellationToken: ct));
        }
        catch (MySqlException e)
        {
            throw new ResourceException($"cannot remove other users' grants on the databases of {account.Username}: {e.Message}", e);
        }
        var detail = names.Count > 0 ? $"dropped {string.Join(", ", names)}" : "no databases";
        if (grants.Confined.Count > 0) detail += $"; removed {grants.Confined.Count} grant(s) of other users: {string.Join(", ", grants.Confined)}";
        if (grants.Spanning.Count > 0) throw new ResourceException($"{string.Join("; ", grants.Spanning)}; {detail}");
        return names.Count == 0 && grants.Count == 0 ? RemoveOutcome.Skipped("no databases") : RemoveOutcome.Done(detail);
    }

    /// <summary>
    /// At most this many drops at once in the process, whatever the number of accounts and databases: a burst of
    /// terminations must not open more connections than the server allows (<c>max_connections</c>, 151 by default).
    /// </summary>
    public const int DropsAtOnce = 8;

    private static readonly SemaphoreSlim Drops = new(DropsAtOnce, DropsAtOnce);

    private async Task DropAsync(string name, CancellationToken ct)
    {
        await Drops.WaitAsync(ct);
        try
        {
            await using var c = await admin.OpenAsync(ct);
            // IF EXISTS: a step resumed after a crash may find some already dropped.
            await c.ExecuteAsync(new CommandDefinition($"DROP DATABASE IF EXISTS {SqlNames.Identifier(name)}", cancellationToken: ct));
        }
        catch (MySqlException e)
        {
            throw new ResourceException($"cannot drop database {name}: {e.Message}", e);
        }
        finally { Drops.Release(); }
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

    /// <summary>
    /// Other users' grants naming the account: those confined to its databases (they go with them), and descriptions
    /// of database patterns matching its names and others' alike (<c>bob_%</c>, <c>bob%</c>), which only the operator
    /// can narrow.
    /// </summary>
    private sealed record OtherUsersGrants(IReadOnlyList<ForeignGrant> Confined, IReadOnlyList<string> Spanning)
    {
        public int Count => Confined.Count + Spanning.Count;
    }

    private sealed record GrantRow(string Table, string Host, string Db, string User);

    // A cheap superset (every Db starting with the username, escaped or not) of the four tables in one round trip, table by
    // table in GrantTables' order; ownership is decided in C#.
    private static readonly string GrantRowsSql = DatabaseUsersResource.AcrossGrantTables(
        t => $"SELECT DISTINCT '{t}' AS `Table`, Host, Db, User FROM {t} WHERE LEFT(Db, CHAR_LENGTH(@Username)) = @Username", "User, Host, Db");

    private static async Task<OtherUsersGrants> OtherUsersGrantsAsync(MySqlConnection c, AccountIdentity account, CancellationToken ct)
    {
        var (confined, spanning) = (new List<ForeignGrant>(), new List<string>());
        var rows = await c.QueryAsync<GrantRow>(new CommandDefinition(GrantRowsSql, new { account.Username }, cancellationToken: ct));
        foreach (var r in rows.Where(r => !DatabaseUsersResource.Owns(account.Username, r.User)))
        {
            // The table's own constant, never the name as the server echoed it: it goes into a DELETE.
            var table = DatabaseUsersResource.GrantTables.Single(t => t == r.Table);
            var isPattern = table == "mysql.db";
            if (IsAccountsDatabase(account.Username, r.Db, isPattern)) confined.Add(new ForeignGrant(table, r.Host, r.Db, r.User));
            else if (isPattern && PatternMatchesSomeNameOf(account.Username, r.Db))
                spanning.Add($"{await DescribeAsync(c, r, ct)} also matches {account.Username}'s future databases: " +
                             $"remove or narrow it (e.g. `{account.Username}\\_%`)");
        }
        return new(confined, spanning);
    }

    /// <summary>The holder's GRANT statement on that database pattern, as SHOW GRANTS writes it.</summary>
    private static async Task<string> DescribeAsync(MySqlConnection c, GrantRow r, CancellationToken ct)
    {
        var on = $" ON `{r.Db.Replace("`", "``", StringComparison.Ordinal)}`.* TO ";
        try
        {
            var lines = await c.QueryAsync<string>(new CommandDefinition($"SHOW GRANTS FOR {SqlNames.Literal(r.User)}@{SqlNames.Literal(r.Host)}", cancellationToken: ct));
            if (lines.FirstOrDefault(l => l.Contains(on, StringComparison.Ordinal)) is { } line) return line;
        }
        catch (MySqlException) { } // a row whose user is gone: described from the row itself
        return $"the grant on `{r.Db}`.* to {r.User}@{r.Host}";
    }

    /// <summary>
    /// Whether a grant's database is the account's. tables_priv, columns_priv and procs_priv name one database;
    /// mysql.db holds a pattern (<c>_</c>, <c>%</c> wildcards, <c>\</c> escape). A pattern is the account's when it
    /// can only match <c>{username}_*</c> names (<c>bob\_%</c>, <c>bob\_wp</c>), or when it is one of those names
    /// written without escapes or <c>%</c> (<c>GRANT ... ON bob_wp.*</c>). A pattern that also spans other accounts'
    /// names (<c>bob_%</c>, <c>bob%</c>) is not: see <see cref="PatternMatchesSomeNameOf"/>.
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

    /// <summary>
    /// Whether a mysql.db pattern (<c>_</c> one character, <c>%</c> any run, <c>\</c> escape) matches some name
    /// <c>{username}_*</c>: the pattern runs over that prefix as a set of positions, and any position left can be
    /// completed by some suffix.
    /// </summary>
    internal static bool PatternMatchesSomeNameOf(string username, string pattern)
    {
        var tokens = new List<(char Char, bool Literal)>();
        for (var i = 0; i < pattern.Length; i++)
            tokens.Add(pattern[i] == '\\' && i + 1 < pattern.Length ? (pattern[++i], true) : (pattern[i], pattern[i] is not ('_' or '%')));
        bool IsAnyRun(int j) => j < tokens.Count && tokens[j] is ('%', false);
        HashSet<int> Closure(IEnumerable<int> positions)
        {
            var set = new HashSet<int>(positions);
            foreach (var j in set.ToList())
                for (var k = j; IsAnyRun(k); k++) set.Add(k + 1);
            return set;
        }
        var states = Closure([0]);
        foreach (var ch in username + "_")
        {
            states = Closure(states.Where(j => j < tokens.Count).SelectMany(j => tokens[j] switch
            {
                ('%', false) => new[] { j },
                ('_', false) => [j + 1],
                var (c, _) when c == ch => [j + 1],
                _ => Array.Empty<int>(),
            }));
            if (states.Count == 0) return false;
        }
        return true;
    }
}
