using Dapper;
using Opterius.Services.Accounts;
using Opterius.Services.Data;

namespace Opterius.Services.Backups;

/// <summary>
/// A final backup's row. <see cref="Sha256"/> is null while it is being written; <see cref="PurgedAt"/> is set once its
/// archive is gone (the row stays, for the audit and the erasure record). <see cref="Manifest"/> is the archive's
/// manifest without the per-file lists (JSON). Times are UTC.
/// </summary>
public sealed record FinalBackup(long Id, long AccountId, string Username, string Domain, long OwnerId, long? JobId, string FileName,
    long? Bytes, string? Sha256, string? Manifest, DateTime CreatedAt, DateTime? CompletedAt, DateTime ExpiresAt,
    DateTime? PurgedAt, string? PurgedBy, string? PurgeReason)
{
    public bool Complete => Sha256 is not null;
    public bool Available => Complete && PurgedAt is null;
}

/// <summary>
/// The panel's <c>backups</c> table. Reads take a <see cref="Viewer"/>: a reseller sees only the backups of accounts it
/// owned, anything else is as absent as a backup that never was.
/// </summary>
public sealed class BackupStore(PanelDb db)
{
    private const string Columns = """
        id AS Id, account_id AS AccountId, username AS Username, domain AS Domain, owner_id AS OwnerId, job_id AS JobId,
        file_name AS FileName, bytes AS Bytes, sha256 AS Sha256, manifest AS Manifest, created_at AS CreatedAt,
        completed_at AS CompletedAt, expires_at AS ExpiresAt, purged_at AS PurgedAt, purged_by AS PurgedBy, purge_reason AS PurgeReason
        """;

    private const string Scope = "(@IsAdmin OR owner_id = @UserId)";

    /// <summary>A new row for a backup about to be written (its file name follows from its id); returns the row.</summary>
    public async Task<FinalBackup> InsertAsync(Account account, long? jobId, int keepDays, CancellationToken ct)
    {
        const string sql = """
            INSERT INTO backups (account_id, username, domain, owner_id, job_id, file_name, created_at, expires_at)
            VALUES (@Id, @Username, @Domain, @OwnerId, @jobId, '', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL @keepDays DAY);
            SELECT LAST_INSERT_ID();
            """;
        await using var c = await db.OpenAsync(ct);
        var id = await c.ExecuteScalarAsync<long>(new CommandDefinition(sql, new { account.Id, account.Username, account.Domain, account.OwnerId, jobId, keepDays }, cancellationToken: ct));
        await c.ExecuteAsync(new CommandDefinition("UPDATE backups SET file_name = @name WHERE id = @id",
            new { id, name = FinalBackupWriter.FileName(id) }, cancellationToken: ct));
        return (await FindAsync(new Viewer(0, true), id, ct))!;
    }

    /// <summary>The archive is complete: its size, SHA-256 and manifest.</summary>
    /// <summary>Records the written archive; false when the row was purged (or removed) meanwhile, and nothing changed.</summary>
    public async Task<bool> CompleteAsync(long id, WrittenBackup written, CancellationToken ct)
    {
        const string sql = """
            UPDATE backups SET file_name = @FileName, bytes = @Bytes, sha256 = @Sha256, manifest = @Manifest, completed_at = UTC_TIMESTAMP(6)
            WHERE id = @id AND purged_at IS NULL
            """;
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteAsync(new CommandDefinition(sql, new { id, written.FileName, written.Bytes, written.Sha256, written.Manifest }, cancellationToken: ct)) > 0;
    }

    /// <summary>A backup that was never completed has no archive to list: its row goes.</summary>
    public async Task DeleteIncompleteAsync(long id, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("DELETE FROM backups WHERE id = @id AND sha256 IS NULL", new { id }, cancellationToken: ct));
    }

    /// <summary>Marks the archive gone; false when it already was (a concurrent purge won).</summary>
    public async Task<bool> MarkPurgedAsync(long id, string purgedBy, string reason, CancellationToken ct)
    {
        const string sql = """
            UPDATE backups SET purged_at = UTC_TIMESTAMP(6), purged_by = @purgedBy, purge_reason = @reason
            WHERE id = @id AND purged_at IS NULL
            """;
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteAsync(new CommandDefinition(sql, new { id, purgedBy = Cut(purgedBy, 128), reason = Cut(reason, 255) }, cancellationToken: ct)) > 0;
    }

    public async Task<FinalBackup?> FindAsync(Viewer viewer, long id, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<FinalBackup>(new CommandDefinition(
            $"SELECT {Columns} FROM backups WHERE id = @id AND {Scope}", new { id, viewer.IsAdmin, viewer.UserId }, cancellationToken: ct));
    }

    /// <summary>The viewer's backups, newest first, purged ones included (they say when and by whom).</summary>
    public async Task<(IReadOnlyList<FinalBackup> Items, long Total)> ListAsync(Viewer viewer, int page, int perPage, long? accountId, CancellationToken ct)
    {
        const string filter = $"WHERE {Scope} AND (@accountId IS NULL OR account_id = @accountId)";
        var args = new { viewer.IsAdmin, viewer.UserId, accountId, limit = perPage, offset = (long)(page - 1) * perPage };
        await using var c = await db.OpenAsync(ct);
        var total = await c.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT COUNT(*) FROM backups {filter}", args, cancellationToken: ct));
        var items = await c.QueryAsync<FinalBackup>(new CommandDefinition(
            $"SELECT {Columns} FROM backups {filter} ORDER BY id DESC LIMIT @limit OFFSET @offset", args, cancellationToken: ct));
        return (items.AsList(), total);
    }

    /// <summary>Backups not yet purged whose retention ended (complete or not: an interrupted one's partial file goes too).</summary>
    public async Task<IReadOnlyList<FinalBackup>> ExpiredAsync(int limit, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<FinalBackup>(new CommandDefinition(
            $"SELECT {Columns} FROM backups WHERE purged_at IS NULL AND expires_at <= UTC_TIMESTAMP(6) ORDER BY expires_at LIMIT @limit",
            new { limit }, cancellationToken: ct))).AsList();
    }

    /// <summary>The job's backups that were started and never completed (a crash mid-write): their partial files are purged.</summary>
    public async Task<IReadOnlyList<FinalBackup>> IncompleteOfJobAsync(long jobId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<FinalBackup>(new CommandDefinition(
            $"SELECT {Columns} FROM backups WHERE job_id = @jobId AND sha256 IS NULL", new { jobId }, cancellationToken: ct))).AsList();
    }

    /// <summary>The job's complete final backup (its erasure record says whether it is kept or purged); null when it made none.</summary>
    public async Task<FinalBackup?> CompleteOfJobAsync(long jobId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<FinalBackup>(new CommandDefinition(
            $"SELECT {Columns} FROM backups WHERE job_id = @jobId AND sha256 IS NOT NULL ORDER BY id DESC LIMIT 1", new { jobId }, cancellationToken: ct));
    }

    private static string Cut(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";
}
