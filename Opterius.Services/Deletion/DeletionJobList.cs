using Dapper;
using Opterius.Services.Accounts;
using Opterius.Services.Data;

namespace Opterius.Services.Deletion;

/// <summary>One row of the Deletions page: the job, how many steps are finished, and its first failed step.</summary>
public sealed record DeletionJobSummary(long Id, long AccountId, string Username, string Domain, long OwnerId, string Status,
    string RequestedBy, DateTime CreatedAt, DateTime UpdatedAt, DateTime? FinishedAt, long StepsFinished, long StepsTotal,
    string? FailedResource, string? FailedDetail);

/// <summary>Status null means every status; search is a prefix of the username or the domain.</summary>
public sealed record DeletionJobQuery(int Page = 1, int PerPage = 25, string? Status = null, string? Search = null);

public sealed record DeletionJobPage(IReadOnlyList<DeletionJobSummary> Items, long Total);

/// <summary>
/// Reads the deletion journal for lists (the Deletions page, the overview). Owner-scoped like the accounts list: a
/// reseller sees the jobs of its own accounts only, also after the account row is gone (the job keeps its owner).
/// </summary>
public sealed class DeletionJobList(PanelDb db)
{
    private const string Filter = """
        WHERE (@owner IS NULL OR j.owner_id = @owner) AND (@status IS NULL OR j.status = @status)
          AND (@search IS NULL OR j.username LIKE @search OR j.domain LIKE @search)
        """;

    private const string Select = $"""
        SELECT j.id AS Id, j.account_id AS AccountId, j.username AS Username, j.domain AS Domain, j.owner_id AS OwnerId,
               j.status AS Status, j.requested_by AS RequestedBy, j.created_at AS CreatedAt, j.updated_at AS UpdatedAt,
               j.finished_at AS FinishedAt,
               (SELECT COUNT(*) FROM deletion_steps s WHERE s.job_id = j.id AND s.status IN ('done', 'skipped')) AS StepsFinished,
               (SELECT COUNT(*) FROM deletion_steps s WHERE s.job_id = j.id) AS StepsTotal,
               f.resource AS FailedResource, f.detail AS FailedDetail
        FROM deletion_jobs j
        LEFT JOIN deletion_steps f ON f.job_id = j.id
             AND f.position = (SELECT MIN(position) FROM deletion_steps x WHERE x.job_id = j.id AND x.status = 'failed')
        {Filter}
        ORDER BY j.id DESC LIMIT @limit OFFSET @offset
        """;

    private const string Count = $"SELECT COUNT(*) FROM deletion_jobs j {Filter}";

    public async Task<DeletionJobPage> ListAsync(Viewer viewer, DeletionJobQuery q, CancellationToken ct)
    {
        var perPage = Math.Clamp(q.PerPage, 1, AccountQuery.MaxPerPage);
        var args = new
        {
            owner = viewer.OwnerFilter,
            status = string.IsNullOrEmpty(q.Status) ? null : q.Status,
            search = SqlNames.SearchPrefix(q.Search, AccountQuery.MaxSearchLength),
            limit = perPage,
            offset = (long)(Math.Max(q.Page, 1) - 1) * perPage,
        };
        await using var c = await db.OpenAsync(ct);
        var total = await c.ExecuteScalarAsync<long>(new CommandDefinition(Count, args, cancellationToken: ct));
        var items = await c.QueryAsync<DeletionJobSummary>(new CommandDefinition(Select, args, cancellationToken: ct));
        return new(items.AsList(), total);
    }

    private const string CountByStatus = """
        SELECT status AS Status, COUNT(*) AS N FROM deletion_jobs WHERE @owner IS NULL OR owner_id = @owner GROUP BY status
        """;

    /// <summary>How many jobs are in each status (running, failed, succeeded), for the viewer.</summary>
    public async Task<IReadOnlyDictionary<string, long>> CountsAsync(Viewer viewer, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<(string Status, long N)>(new CommandDefinition(CountByStatus, new { owner = viewer.OwnerFilter }, cancellationToken: ct));
        return rows.ToDictionary(r => r.Status, r => r.N);
    }
}
