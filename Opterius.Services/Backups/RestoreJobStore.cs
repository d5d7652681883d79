using Dapper;
using Opterius.Services.Data;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;

namespace Opterius.Services.Backups;

/// <summary>A restore and the journal of its steps (<see cref="DeletionStep"/>, as a deletion's); times are UTC.</summary>
public sealed record RestoreJob(long Id, long BackupId, long AccountId, string Username, string Domain, long OwnerId, string Status,
    string RequestedBy, string? Detail, DateTime CreatedAt, DateTime? FinishedAt, IReadOnlyList<DeletionStep> Steps)
{
    public bool Finished => Status != JobStatus.Running;
}

/// <summary>The panel's <c>restore_jobs</c> and <c>restore_steps</c> (db/009_restore.sql).</summary>
public sealed class RestoreJobStore(PanelDb db)
{
    private sealed record JobRow(long Id, long BackupId, long AccountId, string Username, string Domain, long OwnerId, string Status,
        string RequestedBy, string? Detail, DateTime CreatedAt, DateTime? FinishedAt);

    public async Task<RestoreJob> OpenAsync(FinalBackup backup, long accountId, string requestedBy, IReadOnlyList<string> steps, CancellationToken ct)
    {
        const string insertJob = """
            INSERT INTO restore_jobs (backup_id, account_id, username, domain, owner_id, status, requested_by)
            VALUES (@Id, @accountId, @Username, @Domain, @OwnerId, 'running', @requestedBy);
            SELECT LAST_INSERT_ID();
            """;
        const string insertStep = "INSERT INTO restore_steps (job_id, position, resource, status) VALUES (@job, @position, @resource, 'pending')";
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        var id = await c.ExecuteScalarAsync<long>(new CommandDefinition(insertJob,
            new { backup.Id, accountId, backup.Username, backup.Domain, backup.OwnerId, requestedBy = requestedBy.Length <= 128 ? requestedBy : requestedBy[..128] }, tx, cancellationToken: ct));
        await c.ExecuteAsync(new CommandDefinition(insertStep, steps.Select((resource, i) => new { job = id, position = i + 1, resource }), tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return (await FindAsync(id, ct))!;
    }

    public async Task SetStepAsync(long jobId, string resource, string status, string? detail, CancellationToken ct)
    {
        const string sql = "UPDATE restore_steps SET status = @status, detail = @detail, updated_at = UTC_TIMESTAMP(6) WHERE job_id = @jobId AND resource = @resource";
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition(sql, new { jobId, resource, status, detail }, cancellationToken: ct));
    }

    /// <summary>
    /// Ends the job, once: steps never reached become <paramref name="pendingStatus"/> with <paramref name="pendingDetail"/>;
    /// false when it had already ended (a start-up finished the job of a process that stopped answering for it).
    /// </summary>
    public async Task<bool> FinishAsync(long jobId, string status, string detail, string pendingStatus, string pendingDetail, CancellationToken ct)
    {
        const string job = "UPDATE restore_jobs SET status = @status, detail = @detail, finished_at = UTC_TIMESTAMP(6) WHERE id = @jobId AND status = 'running'";
        const string steps = """
            UPDATE restore_steps SET status = @pendingStatus, detail = @pendingDetail, updated_at = UTC_TIMESTAMP(6)
            WHERE job_id = @jobId AND status = 'pending'
            """;
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        if (await c.ExecuteAsync(new CommandDefinition(job, new { jobId, status, detail }, tx, cancellationToken: ct)) == 0) return false;
        await c.ExecuteAsync(new CommandDefinition(steps, new { jobId, pendingStatus, pendingDetail }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>The restores journalled as running, oldest first (at start-up: those a stop of the panel interrupted, or another process runs).</summary>
    public async Task<IReadOnlyList<long>> RunningAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<long>(new CommandDefinition("SELECT id FROM restore_jobs WHERE status = 'running' ORDER BY id", cancellationToken: ct))).AsList();
    }

    /// <summary>The running restore of a backup, if any (what a refused purge names).</summary>
    public async Task<long?> RunningOfBackupAsync(long backupId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT MAX(id) FROM restore_jobs WHERE backup_id = @backupId AND status = 'running'", new { backupId }, cancellationToken: ct));
    }

    public async Task<RestoreJob?> FindAsync(long id, CancellationToken ct)
    {
        const string jobSql = """
            SELECT id AS Id, backup_id AS BackupId, account_id AS AccountId, username AS Username, domain AS Domain, owner_id AS OwnerId,
                   status AS Status, requested_by AS RequestedBy, detail AS Detail, created_at AS CreatedAt, finished_at AS FinishedAt
            FROM restore_jobs WHERE id = @id
            """;
        const string stepsSql = """
            SELECT position AS Position, resource AS Resource, status AS Status, detail AS Detail, updated_at AS UpdatedAt
            FROM restore_steps WHERE job_id = @id ORDER BY position
            """;
        await using var c = await db.OpenAsync(ct);
        var row = await c.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(jobSql, new { id }, cancellationToken: ct));
        if (row is null) return null;
        var steps = (await c.QueryAsync<DeletionStep>(new CommandDefinition(stepsSql, new { id }, cancellationToken: ct))).AsList();
        return new RestoreJob(row.Id, row.BackupId, row.AccountId, row.Username, row.Domain, row.OwnerId, row.Status, row.RequestedBy,
            row.Detail, row.CreatedAt, row.FinishedAt, steps);
    }
}
