using System.Collections.Concurrent;
using Dapper;
using MySqlConnector;
using Opterius.Services.Data;

namespace Opterius.Services.Accounts;

/// <summary>Who is asking: admins see every account, resellers only those they own.</summary>
public sealed record Viewer(long UserId, bool IsAdmin)
{
    public long? OwnerFilter => IsAdmin ? null : UserId;
}

/// <summary>A page of the accounts list.</summary>
public sealed record AccountQuery(int Page = 1, int PerPage = 25, string? Search = null, string? Status = null, string Sort = "username", bool Descending = false)
{
    public const int MaxPerPage = 100;
    public const int MaxSearchLength = 253;
    public static readonly IReadOnlyList<string> SortColumns = ["id", "username", "domain", "email", "status", "created_at"];
}

public sealed record AccountPage(IReadOnlyList<Account> Items, long Total);

/// <summary>
/// The accounts table. Search is a prefix match on username, domain or email, which the indexes serve.
/// Pages of the list are kept and served again while <c>accounts_version</c> (bumped by triggers in the same
/// transaction as every write, whoever makes it) stands, so a page is exact and usually one tiny read.
/// </summary>
public sealed class AccountStore(PanelDb db)
{
    private const int MaxKeptPages = 2000;
    private readonly ConcurrentDictionary<(long? Owner, AccountQuery Query), (long Version, AccountPage Page)> _pages = new();
    private readonly Lock _pagesGate = new();
    private long _pagesVersion = -1;

    private const string Columns = """
        id AS Id, username AS Username, domain AS Domain, email AS Email, package_id AS PackageId,
        owner_id AS OwnerId, php_version AS PhpVersion, uid AS Uid, status AS Status,
        created_at AS CreatedAt, suspended_at AS SuspendedAt, deletion_due_at AS DeletionDueAt, deletion_blocked AS DeletionBlocked
        """;

    private const string Filter = """
        WHERE (@owner IS NULL OR owner_id = @owner)
          AND (@status IS NULL OR status = @status)
          AND (@search IS NULL OR username LIKE @search OR domain LIKE @search OR email LIKE @search)
        """;

    private const string CountFromTotals = """
        SELECT COALESCE(SUM(n), 0) FROM account_counts
        WHERE (@owner IS NULL OR owner_id = @owner) AND (@status IS NULL OR status = @status)
        """;

    public async Task<AccountPage> ListAsync(Viewer viewer, AccountQuery q, CancellationToken ct)
    {
        if (!AccountQuery.SortColumns.Contains(q.Sort)) throw new ArgumentException($"cannot sort by '{q.Sort}'");
        var args = new
        {
            owner = viewer.OwnerFilter,
            status = q.Status,
            search = string.IsNullOrEmpty(q.Search) ? null : SqlNames.LikePrefix(q.Search),
            limit = q.PerPage,
            offset = (long)(q.Page - 1) * q.PerPage,
        };
        var direction = q.Descending ? "DESC" : "ASC";
        // The sort column comes from the fixed list above, never from the caller's text. Unique columns need no
        // tie-break; the others end in one their index already holds, so a page is an index walk, not a filesort.
        var order = q.Sort switch
        {
            "username" or "domain" or "id" => $"{q.Sort} {direction}",
            "status" => $"status {direction}, username {direction}",
            _ => $"{q.Sort} {direction}, id {direction}",
        };
        // Without a search, the trigger-kept totals answer exactly; a search counts its (prefix-indexed) matches.
        // Both statements travel in one round trip.
        var count = args.search is null ? CountFromTotals : $"SELECT COUNT(*) FROM accounts {Filter}";
        await using var c = await db.OpenAsync(ct);
        var version = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT v FROM accounts_version WHERE id = 1", cancellationToken: ct));
        var key = (viewer.OwnerFilter, q);
        KeepPagesOf(version);
        if (_pages.TryGetValue(key, out var kept) && kept.Version == version) return kept.Page;

        await using var results = await c.QueryMultipleAsync(new CommandDefinition(
            $"{count}; SELECT {Columns} FROM accounts {Filter} ORDER BY {order} LIMIT @limit OFFSET @offset", args, cancellationToken: ct));
        var total = await results.ReadSingleAsync<long>();
        var page = new AccountPage((await results.ReadAsync<Account>()).AsList(), total);
        // Read after the version, so the page is at least as new as it; kept only while that version is the newest.
        lock (_pagesGate)
            if (_pagesVersion == version && _pages.Count < MaxKeptPages) _pages[key] = (version, page);
        return page;
    }

    /// <summary>Drops the kept pages when a newer version is seen.</summary>
    private void KeepPagesOf(long version)
    {
        lock (_pagesGate)
        {
            if (version <= _pagesVersion) return;
            _pages.Clear();
            _pagesVersion = version;
        }
    }

    /// <summary>
    /// Every account the list shows for this search and status (the "all N matching" of a bulk action), by username,
    /// at most <paramref name="limit"/>: the caller refuses a larger batch before acting on any.
    /// </summary>
    public async Task<IReadOnlyList<Account>> MatchingAsync(Viewer viewer, string? search, string? status, int limit, CancellationToken ct)
    {
        var args = new { owner = viewer.OwnerFilter, status, search = string.IsNullOrEmpty(search) ? null : SqlNames.LikePrefix(search), limit };
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<Account>(new CommandDefinition(
            $"SELECT {Columns} FROM accounts {Filter} ORDER BY username LIMIT @limit", args, cancellationToken: ct))).AsList();
    }

    /// <summary>The account, or null when it does not exist or the viewer may not see it.</summary>
    public async Task<Account?> FindAsync(Viewer viewer, long id, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<Account>(new CommandDefinition(
            $"SELECT {Columns} FROM accounts WHERE id = @id AND (@owner IS NULL OR owner_id = @owner)",
            new { id, owner = viewer.OwnerFilter }, cancellationToken: ct));
    }

    public async Task SetUidAsync(long id, int? uid, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("UPDATE accounts SET uid = @uid WHERE id = @id", new { id, uid }, cancellationToken: ct));
    }

    /// <summary>
    /// Moves the account from one status to another; false when it was not in <paramref name="from"/>. Becoming active
    /// cancels a scheduled deletion, and is refused (false) while the scheduler has claimed it to start that deletion.
    /// </summary>
    public async Task<bool> TransitionAsync(long id, string[] from, string to, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteAsync(new CommandDefinition(to == AccountStatus.Active ? ActivateSql : TransitionSql, new { id, from, to }, cancellationToken: ct)) == 1;
    }

    private const string TransitionSql = """
        UPDATE accounts SET status = @to, suspended_at = IF(@to = 'suspended', CURRENT_TIMESTAMP(6), suspended_at)
        WHERE id = @id AND status IN @from
        """;

    // Becoming active ends a schedule and an expired claim on it, never a live claim (the scheduler is starting it now).
    private const string ActivateSql = $"""
        UPDATE accounts SET status = @to, suspended_at = NULL, {Deletion.DeletionSchedule.Cleared}
        WHERE id = @id AND status IN @from
          AND (deletion_claimed_until IS NULL OR deletion_claimed_until <= UTC_TIMESTAMP(6))
        """;

    public async Task DeleteRowAsync(long id, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("DELETE FROM accounts WHERE id = @id", new { id }, cancellationToken: ct));
    }

    /// <summary>What a new account's names would collide with, read without a lock (a quick refusal before any work).</summary>
    public async Task<AccountClaims> ClaimsAsync(string username, string domain, long ownerId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await ReadClaimsAsync(c, username, domain, ownerId, ct);
    }

    // Every insert of an account happens under this named lock (per panel database), so two creates never both
    // see room under the license's limit, or both see a domain free. A named lock, not a row lock: a row lock taken
    // first would reverse the order in which the accounts triggers lock account_counts and accounts_version, and a
    // status change running beside the insert would deadlock with it.
    private const string LockSql = "SELECT GET_LOCK(CONCAT('opterius:create:', DATABASE()), @seconds)";
    private const string UnlockSql = "DO RELEASE_LOCK(CONCAT('opterius:create:', DATABASE()))";
    // Well under MySqlConnector's default command timeout (30 s): a create that waits that long hears the intended
    // conflict, not a timeout of the command that waits.
    private const int LockSeconds = 10;

    /// <summary>
    /// Inserts the row (status <c>creating</c>) with the checks, under the lock every create takes: <paramref name="refuse"/>
    /// sees the claims read under it and throws to refuse; nothing is inserted then.
    /// </summary>
    public async Task<long> InsertCheckedAsync(string username, string domain, string email, long packageId, long ownerId, string phpVersion,
        Action<AccountClaims> refuse, CancellationToken ct)
    {
        const string sql = """
            INSERT INTO accounts (username, domain, email, package_id, owner_id, php_version, status)
            VALUES (@username, @domain, @email, @packageId, @ownerId, @phpVersion, 'creating');
            SELECT LAST_INSERT_ID();
            """;
        await using var c = await db.OpenAsync(ct);
        if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(LockSql, new { seconds = LockSeconds }, cancellationToken: ct)) != 1)
            throw new AccountConflictException($"Other accounts were being created for {LockSeconds} seconds; nothing was changed, try again.");
        try
        {
            // Autocommit reads: each sees every create committed before the lock was granted.
            refuse(await ReadClaimsAsync(c, username, domain, ownerId, ct));
            return await c.ExecuteScalarAsync<long>(new CommandDefinition(sql, new { username, domain, email, packageId, ownerId, phpVersion }, cancellationToken: ct));
        }
        finally
        {
            // Released on this connection before it goes back to the pool (the server also frees it if the connection drops).
            await c.ExecuteAsync(new CommandDefinition(UnlockSql, cancellationToken: CancellationToken.None));
        }
    }

    // The trigger-kept totals (db/002) count every account in every status without reading the accounts.
    private const string CountSql = "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM account_counts";
    private const string UsernameSql = "SELECT id AS Id, username AS Username, domain AS Domain, owner_id AS OwnerId FROM accounts WHERE username = @username";

    // The domain itself and each parent by equality on the unique index; children as one range of the reversed
    // domain's index (db/004). No LIKE: nothing here depends on wildcards or on how backslashes are read. An owner's
    // own parents and children are filtered out here, not after a limit: every row that comes back refuses the create.
    private const string RelatedSql = """
        SELECT id AS Id, username AS Username, domain AS Domain, owner_id AS OwnerId FROM accounts
        WHERE domain IN @parents AND (owner_id <> @ownerId OR domain = @domain)
        UNION ALL
        SELECT id, username, domain, owner_id FROM accounts
        WHERE domain_reversed > @below AND domain_reversed < @above AND owner_id <> @ownerId
        """;

    private static async Task<AccountClaims> ReadClaimsAsync(MySqlConnection c, string username, string domain, long ownerId, CancellationToken ct)
    {
        var labels = domain.Split('.');
        var parents = Enumerable.Range(0, labels.Length).Select(i => string.Join('.', labels[i..])).ToList();
        var reversed = new string(domain.Reverse().ToArray());
        var count = await c.ExecuteScalarAsync<long>(new CommandDefinition(CountSql, cancellationToken: ct));
        var holder = await c.QuerySingleOrDefaultAsync<AccountDomain>(new CommandDefinition(UsernameSql, new { username }, cancellationToken: ct));
        var related = await c.QueryAsync<AccountDomain>(new CommandDefinition(RelatedSql,
            // '/' is the byte after '.': the range holds exactly the reversed names that begin with "{reversed}.".
            new { parents, domain, ownerId, below = reversed + ".", above = reversed + "/" }, cancellationToken: ct));
        return new(count, holder, related.AsList());
    }

    private const string OwnDomainsSql = "SELECT domain FROM accounts WHERE owner_id = @ownerId AND domain IN @domains";

    /// <summary>Those of <paramref name="domains"/> that are the domain of an account of <paramref name="ownerId"/>.</summary>
    public async Task<IReadOnlySet<string>> OwnDomainsAsync(long ownerId, IReadOnlyCollection<string> domains, CancellationToken ct)
    {
        if (domains.Count == 0) return new HashSet<string>();
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<string>(new CommandDefinition(OwnDomainsSql, new { ownerId, domains }, cancellationToken: ct));
        return rows.ToHashSet(StringComparer.Ordinal);
    }
}
