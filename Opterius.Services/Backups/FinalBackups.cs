using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;

namespace Opterius.Services.Backups;

/// <summary>A backup this viewer may not see, or that does not exist. Nothing was changed.</summary>
public sealed class BackupNotFoundException(long id) : Exception($"No backup with id {id} exists.");

/// <summary>
/// The panel's side of final backups: the deletion's first step (a row, then the archive written where root is), the
/// purge (now, or by retention) and the policy. The seam for restore: <see cref="BackupStore"/> for rows,
/// <see cref="IBackupArchives"/> for the archives.
/// </summary>
public sealed class FinalBackups(BackupStore store, IBackupArchives archives, BackupLocks locks, RestoreJobStore restores,
    IOptions<DeletionOptions> options, AuditLog audit, ILogger<FinalBackups> log) : IFinalBackups
{
    /// <summary>A schedule may ask for a final backup unless the policy turned them off.</summary>
    public bool Available => Policy != FinalBackupPolicy.Never;

    /// <summary>What the erasure record says of the job's final backup: none, kept (until when) or purged (when).</summary>
    public async Task<FinalBackupState> OfJobAsync(DeletionJob job, CancellationToken ct) =>
        await store.CompleteOfJobAsync(job.Id, ct) is not { } b ? new FinalBackupState(FinalBackupState.None)
        : b.PurgedAt is { } at ? new FinalBackupState(FinalBackupState.Purged, b.Id, b.ExpiresAt, at)
        : new FinalBackupState(FinalBackupState.Kept, b.Id, b.ExpiresAt);

    public string Policy => options.Value.FinalBackup;
    public int KeepDays => options.Value.FinalBackupDays;
    public string Folder => Path.GetFullPath(options.Value.BackupPath);

    /// <summary>
    /// Whether a deletion asked with <paramref name="requested"/> gets a final backup: <c>always</c> wins over a request
    /// without one; asking under <c>never</c> is refused (422) before anything changes; null (the caller did not say)
    /// stays null, so a resumed job keeps the backup step it was opened with.
    /// </summary>
    public bool? Wanted(bool? requested) => Policy switch
    {
        FinalBackupPolicy.Always => true,
        FinalBackupPolicy.Never when requested == true => throw new AccountValidationException(new Dictionary<string, string>
        {
            ["backup"] = "Final backups are turned off on this server (Opterius:Deletion:FinalBackup is never): delete without backup=true, or change the policy.",
        }),
        _ => requested,
    };

    /// <summary>
    /// The step <c>final_backup</c>: purges what an interrupted earlier attempt of this job left, inserts the row, has the
    /// archive written and completes the row. A failure removes the row and whatever was written, and fails the step
    /// (so the job stops before anything is removed).
    /// </summary>
    public async Task<RemoveOutcome> RunAsync(DeletionJob job, Account account, BackupSubject subject, Action<BackupProgress> progress, CancellationToken ct)
    {
        foreach (var stale in await store.IncompleteOfJobAsync(job.Id, ct))
        {
            await archives.PurgeAsync(stale.Id, ct);
            await store.DeleteIncompleteAsync(stale.Id, ct);
        }
        var row = await store.InsertAsync(account, job.Id, KeepDays, ct);
        // Held until the row is complete or gone: a purge meanwhile is refused instead of removing the file being written.
        await using var writing = await locks.TryTakeAsync(row.Id, TimeSpan.Zero, ct)
            ?? throw new ResourceException($"backup_failed: backup {row.Id} is held by another process; nothing was removed");
        // Read again under the lock: a purge between the insert and the lock marked the row purged, and no archive may
        // be written for it then (nothing would ever remove that file).
        if (await store.FindAsync(new Viewer(0, true), row.Id, ct) is not { PurgedAt: null })
            throw new ResourceException($"backup_failed: backup {row.Id} was purged before its archive was written; nothing was removed");
        WrittenBackup written;
        try { written = await archives.WriteAsync(subject, row.Id, progress, ct); }
        catch (Exception e)
        {
            try
            {
                await archives.PurgeAsync(row.Id, CancellationToken.None);
                await store.DeleteIncompleteAsync(row.Id, CancellationToken.None);
            }
            catch (Exception cleanup) { log.LogError(cleanup, "Backup {Backup}: the failed write's leftovers could not be cleaned up", row.Id); }
            throw e is ResourceException ? new ResourceException($"backup_failed: {e.Message}; nothing was removed", e)
                : new ResourceException($"backup_failed: {e.GetType().Name}: {e.Message}; nothing was removed", e);
        }
        if (!await store.CompleteAsync(row.Id, written, CancellationToken.None))
        {
            // Purged meanwhile (the lock keeps purges out, so only by hand): the archive written for it goes too.
            await archives.PurgeAsync(row.Id, CancellationToken.None);
            throw new ResourceException($"backup_failed: backup {row.Id} was purged while its archive was written; the archive was removed and nothing else was");
        }
        return RemoveOutcome.Done($"backup {row.Id}: {written.FileName}, {Files.ByteSize.Human(written.Bytes)}, sha256 {written.Sha256}, kept until {row.ExpiresAt:yyyy-MM-dd HH:mm} UTC");
    }

    /// <summary>
    /// Purges one backup now (DELETE /backups/{id}, <c>backups purge</c>): the archive goes, the row keeps who and when,
    /// and the audit says so. Throws <see cref="BackupNotFoundException"/> for a backup the viewer may not see.
    /// </summary>
    public async Task<FinalBackup> PurgeAsync(Actor actor, long id, CancellationToken ct)
    {
        var backup = await store.FindAsync(new Viewer(actor.UserId, actor.IsAdmin), id, ct);
        if (backup is null)
        {
            await audit.WriteAsync(actor, "backup_purge", null, null, "not_found", $"backup {id}", ct);
            throw new BackupNotFoundException(id);
        }
        return await PurgeRowAsync(backup, actor, "purged on request", ct);
    }

    /// <summary>Purges every backup past its retention (the background task's round); returns how many.</summary>
    public async Task<int> PurgeExpiredAsync(CancellationToken ct)
    {
        var purged = 0;
        foreach (var backup in await store.ExpiredAsync(100, ct))
        {
            try
            {
                await PurgeRowAsync(backup, Actor.System("retention"), $"retention of {KeepDays} days ended", ct);
                purged++;
            }
            catch (AccountConflictException e)
            {
                log.LogInformation("Backup {Backup} is past its retention but in use ({Why}); the next round purges it", backup.Id, e.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "Backup {Backup} could not be purged at the end of its retention; the next round tries again", backup.Id);
            }
        }
        return purged;
    }

    /// <exception cref="AccountConflictException">The backup is being written, restored or purged by someone else: nothing was changed.</exception>
    private async Task<FinalBackup> PurgeRowAsync(FinalBackup backup, Actor actor, string reason, CancellationToken ct)
    {
        if (backup.PurgedAt is not null) return backup; // purging a purged backup is a no-op: it is gone
        await using var purging = await locks.TryTakeAsync(backup.Id, TimeSpan.Zero, ct);
        if (purging is null)
        {
            var message = await restores.RunningOfBackupAsync(backup.Id, ct) is { } restore
                ? $"Backup {backup.Id} is being restored (restore job {restore}): purge it once that restore has ended. Nothing was changed."
                : !backup.Complete ? $"Backup {backup.Id} is still being written (deletion job {backup.JobId}): purge it once it is written. Nothing was changed."
                : $"Backup {backup.Id} is being purged by another request right now. Nothing was changed.";
            await audit.WriteAsync(actor, "backup_purge", backup.AccountId, backup.Username, "refused", message, ct);
            throw new AccountConflictException(message);
        }
        // Read again under the lock: a purge or a write that ended just before it is what counts.
        backup = await store.FindAsync(new Viewer(0, true), backup.Id, ct) ?? throw new BackupNotFoundException(backup.Id); // a failed write removed its row
        if (backup.PurgedAt is not null) return backup;
        var removed = await archives.PurgeAsync(backup.Id, ct);
        if (await store.MarkPurgedAsync(backup.Id, actor.Name, reason, ct))
            await audit.WriteAsync(actor, "backup_purge", backup.AccountId, backup.Username, "purged",
                $"backup {backup.Id} ({backup.FileName}){(removed ? "" : ", whose archive was already gone")}: {reason}", ct);
        return (await store.FindAsync(new Viewer(0, true), backup.Id, ct))!;
    }
}
