using Dapper;
using Opterius.Services.Accounts;
using Opterius.Services.Data;

namespace Opterius.Services.Deletion;

/// <summary>
/// An account whose deletion is scheduled: when (UTC), who asked, with a final backup first or not, and why a due one waits.
/// <see cref="ByOwner"/>: the one who asked is the account's owner (signed in, or one of its reseller tokens), not the host.
/// </summary>
public sealed record ScheduledDeletion(long AccountId, string Username, string Domain, long OwnerId, string Status, DateTime DueAt,
    bool Backup, string? ScheduledBy, string? Blocked, bool ByOwner);

/// <summary>Search is a prefix of the username or the domain, as on the other lists.</summary>
public sealed record ScheduledDeletionQuery(int Page = 1, int PerPage = 25, string? Search = null);

public sealed record ScheduledDeletionPage(IReadOnlyList<ScheduledDeletion> Items, long Total);

/// <summary>
/// The scheduled deletions (DESIGN 3.11) for the Deletions page, soonest first, owner-scoped like the accounts list.
/// A schedule lives on its account row until the scheduler opens its job, which clears it: from then on the deletion
/// is a job of <see cref="DeletionJobList"/>.
/// </summary>
public sealed class ScheduledDeletionList(PanelDb db)
{
    private const string Filter = """
        WHERE deletion_due_at IS NOT NULL AND (@owner IS NULL OR owner_id = @owner)
          AND (@search IS NULL OR username LIKE @search OR domain LIKE @search)
        """;

    private const string Select = $"""
        SELECT id AS AccountId, username AS Username, domain AS Domain, owner_id AS OwnerId, status AS Status, deletion_due_at AS DueAt,
               deletion_backup AS Backup, deletion_scheduled_by AS ScheduledBy, deletion_blocked AS Blocked,
               (deletion_scheduled_by_kind = 'user'
                  AND EXISTS (SELECT 1 FROM panel_users u WHERE u.id = accounts.owner_id AND u.username = accounts.deletion_scheduled_by))
               OR (deletion_scheduled_by_kind = 'token'
                  AND EXISTS (SELECT 1 FROM api_tokens t WHERE t.owner_id = accounts.owner_id AND t.role = 'reseller' AND t.name = accounts.deletion_scheduled_by)) AS ByOwner
        FROM accounts {Filter}
        ORDER BY deletion_due_at, id LIMIT @limit OFFSET @offset
        """;

    // As read: a computed truth value comes back from MariaDB as a number.
    private sealed record Row(long AccountId, string Username, string Domain, long OwnerId, string Status, DateTime DueAt,
        bool Backup, string? ScheduledBy, string? Blocked, int ByOwner);

    private const string Count = $"SELECT COUNT(*) FROM accounts {Filter}";

    public async Task<ScheduledDeletionPage> ListAsync(Viewer viewer, ScheduledDeletionQuery q, CancellationToken ct)
    {
        var perPage = Math.Clamp(q.PerPage, 1, AccountQuery.MaxPerPage);
        var args = new
        {
            owner = viewer.OwnerFilter,
            search = SqlNames.SearchPrefix(q.Search, AccountQuery.MaxSearchLength),
            limit = perPage,
            offset = (long)(Math.Max(q.Page, 1) - 1) * perPage,
        };
        await using var c = await db.OpenAsync(ct);
        var total = await c.ExecuteScalarAsync<long>(new CommandDefinition(Count, args, cancellationToken: ct));
        var rows = await c.QueryAsync<Row>(new CommandDefinition(Select, args, cancellationToken: ct));
        return new(rows.Select(r => new ScheduledDeletion(r.AccountId, r.Username, r.Domain, r.OwnerId, r.Status, r.DueAt, r.Backup,
            r.ScheduledBy, r.Blocked, r.ByOwner == 1)).ToList(), total);
    }

    /// <summary>How many deletions are scheduled of the accounts the viewer may see (the Deletions page's tab).</summary>
    public async Task<long> CountAsync(Viewer viewer, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteScalarAsync<long>(new CommandDefinition(Count, new { owner = viewer.OwnerFilter, search = (string?)null }, cancellationToken: ct));
    }
}
