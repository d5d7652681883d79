using Dapper;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Data;

namespace Opterius.Services.Resources;

/// <summary>A MariaDB account, <c>user@host</c>.</summary>
public sealed record DatabaseUser(string User, string Host)
{
    public override string ToString() => $"{User}@{Host}";
}

/// <summary>
/// The account's MariaDB users: <c>{username}</c> and <c>{username}_*</c> at every host, with their grants.
/// Names are matched by exact prefix (no LIKE, whose escapes depend on the sql_mode) and checked again byte for
/// byte, so <c>bobby</c> never belongs to <c>bob</c>.
/// </summary>
public sealed class DatabaseUsersResource(MariaDbAdmin admin) : IAccountResource
{
    public string Key => "database_users";

    /// <summary>
    /// The account's MariaDB login, <c>{username}@localhost</c> with the account password, allowed everything on its
    /// own <c>{username}_*</c> databases. CREATE USER without IF NOT EXISTS: an existing user's password and grants are
    /// never changed; a failure after the user was made drops it (DROP USER takes its grants along).
    /// </summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        // Account management statements take no parameters: names and passwords go through SqlNames.Literal.
        var username = account.Identity.Username;
        var user = $"{SqlNames.Literal(username)}@'localhost'";
        var password = SqlNames.Literal(account.Password);
        // The grant pattern is itself a LIKE pattern: bob\_% covers bob_wp but not bobby_x or bobxwp.
        var databases = SqlNames.Identifier(SqlNames.LikePrefix(username + "_"));
        await using var c = await admin.OpenAsync(ct);
        try { await c.ExecuteAsync(new CommandDefinition($"CREATE USER {user} IDENTIFIED BY {password}", cancellationToken: ct)); }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.CannotUser)
        {
            throw new AlreadyThereException($"a database user {username}@localhost already exists; it is left as it is");
        }
        try { await c.ExecuteAsync(new CommandDefinition($"GRANT ALL PRIVILEGES ON {databases}.* TO {user}", cancellationToken: ct)); }
        catch
        {
            await c.ExecuteAsync(new CommandDefinition($"DROP USER IF EXISTS {user}", cancellationToken: CancellationToken.None));
            throw;
        }
    }

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        var users = await UsersAsync(c, account, ct);
        if (users.Count == 0) return ResourceInspection.Nothing(Key, "no database users");
        return new(Key, true, users.Select(u => u.ToString()).ToList(), 0, users.Count,
            $"{users.Count} database user(s): {string.Join(", ", users)}");
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        var users = await UsersAsync(c, account, ct);
        try
        {
            // DROP USER also deletes the user's rows in mysql.db, tables_priv, columns_priv and procs_priv.
            foreach (var u in users)
                await c.ExecuteAsync(new CommandDefinition($"DROP USER IF EXISTS {SqlNames.Literal(u.User)}@{SqlNames.Literal(u.Host)}", cancellationToken: ct));

            // Grant rows without a user (written straight into the tables, or left by an old server) would be
            // inherited by a later account of the same name; DROP USER cannot reach them, so delete them here.
            var orphans = 0;
            var rows = await c.QueryAsync<OrphanRow>(new CommandDefinition(OrphansSql, Filter(account), cancellationToken: ct));
            foreach (var row in rows.Where(r => Owns(account.Username, r.User)))
                orphans += await c.ExecuteAsync(new CommandDefinition($"DELETE FROM {GrantTables.Single(t => t == row.Table)} WHERE User = @User AND Host = @Host", row, cancellationToken: ct));
            if (orphans > 0) await c.ExecuteAsync(new CommandDefinition("FLUSH PRIVILEGES", cancellationToken: ct));

            if (users.Count == 0 && orphans == 0) return RemoveOutcome.Skipped("no database users");
            var detail = users.Count > 0 ? $"dropped {string.Join(", ", users)}" : "no users";
            return RemoveOutcome.Done(orphans > 0 ? $"{detail}; deleted {orphans} leftover grant row(s)" : detail);
        }
        catch (MySqlException e)
        {
            throw new ResourceException($"cannot drop database users of {account.Username}: {e.Message}", e);
        }
    }

    private const string UsersSql = """
        SELECT User, Host FROM mysql.global_priv
        WHERE User = @Username OR LEFT(User, CHAR_LENGTH(@Prefix)) = @Prefix
        ORDER BY User, Host
        """;

    // Every table DROP USER cleans; fixed names, never input.
    internal static readonly string[] GrantTables = ["mysql.db", "mysql.tables_priv", "mysql.columns_priv", "mysql.procs_priv"];

    /// <summary>One query over the four grant tables (a round trip instead of four), table by table in their order, then by <paramref name="orderBy"/>.</summary>
    internal static string AcrossGrantTables(Func<string, string> selectFrom, string orderBy) =>
        string.Join(" UNION ALL ", GrantTables.Select(selectFrom)) +
        $" ORDER BY FIELD(`Table`, {string.Join(", ", GrantTables.Select(t => $"'{t}'"))}), {orderBy}";

    private sealed record OrphanRow(string Table, string User, string Host);

    // Grant rows of the account's names whose user is gone.
    private static readonly string OrphansSql = AcrossGrantTables(t =>
        $"SELECT DISTINCT '{t}' AS `Table`, x.User, x.Host FROM {t} x WHERE (x.User = @Username OR LEFT(x.User, CHAR_LENGTH(@Prefix)) = @Prefix) " +
        "AND NOT EXISTS (SELECT 1 FROM mysql.global_priv g WHERE g.User = x.User AND g.Host = x.Host)", "User, Host");

    private static object Filter(AccountIdentity account) =>
        new { account.Username, Prefix = account.Username + "_" };

    /// <summary>The account's MariaDB users at every host, exact owners only.</summary>
    public async Task<IReadOnlyList<DatabaseUser>> ListAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await admin.OpenAsync(ct);
        return await UsersAsync(c, account, ct);
    }

    private static async Task<IReadOnlyList<DatabaseUser>> UsersAsync(MySqlConnection c, AccountIdentity account, CancellationToken ct)
    {
        var rows = await c.QueryAsync<DatabaseUser>(new CommandDefinition(UsersSql, Filter(account), cancellationToken: ct));
        return rows.Where(r => Owns(account.Username, r.User)).ToList();
    }

    /// <summary>Whether a MariaDB user name is one of the account's: <c>{username}</c> or <c>{username}_*</c>.</summary>
    internal static bool Owns(string username, string user) =>
        user == username || user.StartsWith(username + "_", StringComparison.Ordinal);
}
