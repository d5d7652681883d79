using Dapper;
using Opterius.Services.Accounts;
using Opterius.Services.Data;
using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>The persisted journal: deletion_jobs and one deletion_steps row per resource.</summary>
public sealed class DeletionJobStore(PanelDb db)
{
    private const string JobColumns = """
        id AS Id, account_id AS AccountId, username AS Username, domain AS Domain, owner_id AS OwnerId, status AS Status,
        requested_by AS RequestedBy, created_at AS CreatedAt, finished_at AS FinishedAt
        """;

    private sealed record JobRow(long Id, long AccountId, string Username, string Domain, long OwnerId, string Status,
        string RequestedBy, DateTime CreatedAt, DateTime? FinishedAt);

    /// <summary>
    /// Opens the account's job: its unfinished one (a failed step goes back to pending so it runs again) or a
    /// new one, and marks the account <c>deleting</c>, in one transaction.
    /// </summary>
    /// <returns>The job, or null when the account row is already gone (a deletion just finished it).</returns>
    public async Task<DeletionJob?> OpenAsync(Account account, string requestedBy, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        var status = await c.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT status FROM accounts WHERE id = @Id FOR UPDATE", account, tx, cancellationToken: ct));
        if (status is null) return null;
        if (status == AccountStatus.Creating)
            throw new AccountConflictException($"Account '{account.Username}' is still being created: delete it once it is active.");
        var jobId = await c.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT id FROM deletion_jobs WHERE account_id = @Id AND status IN ('running','failed') ORDER BY id DESC LIMIT 1 FOR UPDATE",
            account, tx, cancellationToken: ct));
        if (jobId is { } existing)
        {
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE deletion_jobs SET status = 'running', finished_at = NULL, updated_at = CURRENT_TIMESTAMP(6) WHERE id = @existing;
                UPDATE deletion_steps SET status = 'pending', updated_at = CURRENT_TIMESTAMP(6) WHERE job_id = @existing AND status IN ('failed','running');
                """, new { existing }, tx, cancellationToken: ct));
        }
        else
        {
            jobId = await c.ExecuteScalarAsync<long>(new CommandDefinition("""
                INSERT INTO deletion_jobs (account_id, username, domain, owner_id, status, requested_by)
                VALUES (@Id, @Username, @Domain, @OwnerId, 'running', @requestedBy);
                SELECT LAST_INSERT_ID();
                """, new { account.Id, account.Username, account.Domain, account.OwnerId, requestedBy }, tx, cancellationToken: ct));
            var steps = DeletionOrder.Keys.Select((key, i) => new { jobId, position = i + 1, key });
            await c.ExecuteAsync(new CommandDefinition(
                "INSERT INTO deletion_steps (job_id, position, resource, status) VALUES (@jobId, @position, @key, 'pending')",
                steps, tx, cancellationToken: ct));
        }
        await c.ExecuteAsync(new CommandDefinition("UPDATE accounts SET status = 'deleting' WHERE id = @Id", account, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return (await FindAsync(jobId.Value, ct))!;
    }

    public async Task<DeletionJob?> FindAsync(long jobId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var job = await c.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(
            $"SELECT {JobColumns} FROM deletion_jobs WHERE id = @jobId", new { jobId }, cancellationToken: ct));
        return job is null ? null : await WithStepsAsync(c, job, ct);
    }

    /// <summary>The account's newest job, finished or not.</summary>
    public async Task<DeletionJob?> LatestForAccountAsync(long accountId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var job = await c.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(
            $"SELECT {JobColumns} FROM deletion_jobs WHERE account_id = @accountId ORDER BY id DESC LIMIT 1", new { accountId }, cancellationToken: ct));
        return job is null ? null : await WithStepsAsync(c, job, ct);
    }

    /// <summary>Jobs a crash or restart left running.</summary>
    public async Task<IReadOnlyList<long>> RunningAccountIdsAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<long>(new CommandDefinition(
            "SELECT DISTINCT account_id FROM deletion_jobs WHERE status = 'running'", cancellationToken: ct))).AsList();
    }

    public async Task SetStepAsync(long jobId, int position, string status, string? detail, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("""
            UPDATE deletion_steps SET status = @status, detail = @detail, updated_at = CURRENT_TIMESTAMP(6) WHERE job_id = @jobId AND position = @position;
            UPDATE deletion_jobs SET updated_at = CURRENT_TIMESTAMP(6) WHERE id = @jobId;
            """, new { jobId, position, status, detail }, cancellationToken: ct));
    }

    /// <summary>The job failed: it and the account say so, together.</summary>
    public async Task FailAsync(DeletionJob job, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("""
            UPDATE deletion_jobs SET status = 'failed', finished_at = CURRENT_TIMESTAMP(6), updated_at = CURRENT_TIMESTAMP(6) WHERE id = @Id;
            UPDATE accounts SET status = 'deletion_failed' WHERE id = @AccountId;
            """, job, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
    }

    /// <summary>Every resource is gone: the account row goes and the job is finished, together.</summary>
    public async Task SucceedAsync(DeletionJob job, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("""
            DELETE FROM accounts WHERE id = @AccountId;
            UPDATE deletion_jobs SET status = 'succeeded', finished_at = CURRENT_TIMESTAMP(6), updated_at = CURRENT_TIMESTAMP(6) WHERE id = @Id;
            """, job, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
    }

    private static async Task<DeletionJob> WithStepsAsync(MySqlConnector.MySqlConnection c, JobRow job, CancellationToken ct)
    {
        var steps = await c.QueryAsync<DeletionStep>(new CommandDefinition(
            "SELECT position AS Position, resource AS Resource, status AS Status, detail AS Detail, updated_at AS UpdatedAt FROM deletion_steps WHERE job_id = @Id ORDER BY position",
            job, cancellationToken: ct));
        return new(job.Id, job.AccountId, job.Username, job.Domain, job.OwnerId, job.Status, job.RequestedBy, job.CreatedAt, job.FinishedAt, steps.AsList());
    }
}
