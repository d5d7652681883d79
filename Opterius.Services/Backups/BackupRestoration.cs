using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Services.Backups;

/// <summary>
/// The restores' own event stream: the deletions' publisher (current state first, then every transition), a second
/// instance, so a restore's steps never reach a deletion's subscribers. <see cref="DeletionEvent.JobId"/> is the restore job's.
/// </summary>
public sealed class RestoreEvents(ILogger<DeletionEvents> log)
{
    public DeletionEvents Stream { get; } = new(log);
}

/// <summary>A restore the caller started; <see cref="Completion"/> ends with the finished job.</summary>
public sealed record RestoreHandle(RestoreJob Job, Task<RestoreJob> Completion);

/// <summary>
/// Restores a final backup (POST /backups/{id}/restore, the Backups page, <c>backups restore</c>): the account is made
/// again through the create path, with the create's own checks and refusals before anything changes (409 when the
/// username or domain was taken since, naming who holds it; 403 license and account limit; 404 for a backup the caller
/// may not see or whose archive is gone), then its user (the archived uid when the ledger still binds it to these names,
/// else a new one, the old uid's files given to it), then every part of the archive restored where root is. Each step is
/// journalled and published on the restores' event stream (the same <see cref="DeletionEvents"/> the deletions use, a
/// second instance, <see cref="RestoreEvents"/>); a failure undoes what the restore made through the create path's undo.
/// A restore holds its backup's lock (<see cref="BackupLocks"/>) while it runs: a purge meanwhile is refused, and so is a
/// restore of a backup being purged. A restore whose panel stopped is finished at the next start-up
/// (<see cref="FinishInterruptedAsync"/>).
/// </summary>
public sealed class BackupRestoration(
    BackupStore backups,
    RestoreJobStore jobs,
    BackupLocks locks,
    AccountStore accounts,
    AccountCreation creation,
    IBackupRestorer restorer,
    RestoreEvents restoreEvents,
    LicenseService license,
    AuditLog audit,
    ILogger<BackupRestoration> log) : IAsyncDisposable
{

    /// <summary>The steps of a restore, in the order they run: the user, the archive's verification, then its parts in archive order.</summary>
    public static readonly IReadOnlyList<string> Steps =
    [
        "system_user", RestoreReport.ArchiveStep, "home_directory", "mailboxes", "databases", "database_users", "dns_zone",
        "nginx_vhost", "php_fpm_pool", "cron", "ssl_certificate", "mail_users", "mail_routes",
    ];

    private readonly ConcurrentDictionary<long, Task<RestoreJob>> _running = new();
    private readonly DeletionEvents _events = restoreEvents.Stream;

    public async Task<RestoreHandle> StartAsync(Actor actor, long backupId, CancellationToken ct)
    {
        try { license.EnsureValid(); }
        catch (LicenseRequiredException e)
        {
            await audit.WriteAsync(actor, "restore", null, null, "license_required", $"backup {backupId}: {e.Message}", ct);
            throw;
        }
        var viewer = new Viewer(actor.UserId, actor.IsAdmin);
        var backup = await backups.FindAsync(viewer, backupId, ct);
        BackupLock? held = null;
        if (backup is { Available: true })
        {
            held = await locks.TryTakeAsync(backup.Id, TimeSpan.Zero, ct);
            if (held is null)
            {
                var message = await jobs.RunningOfBackupAsync(backup.Id, ct) is { } running
                    ? $"Backup {backup.Id} is being restored (restore job {running}) right now. Nothing was changed."
                    : $"Backup {backup.Id} is being purged right now. Nothing was changed.";
                await audit.WriteAsync(actor, "restore", backup.AccountId, backup.Username, "refused", message, ct);
                throw new AccountConflictException(message);
            }
            // Read again under the lock: a purge that ended just before it is what counts.
            backup = await backups.FindAsync(viewer, backupId, ct);
        }
        try { return await StartHeldAsync(actor, backupId, backup, held, ct); }
        catch
        {
            if (held is not null) await held.DisposeAsync();
            throw;
        }
    }

    private async Task<RestoreHandle> StartHeldAsync(Actor actor, long backupId, FinalBackup? backup, BackupLock? held, CancellationToken ct)
    {
        var archived = backup is { Available: true } ? await ArchiveOfAsync(backup, ct) : null;
        if (backup is null || archived is null || held is null)
        {
            await audit.WriteAsync(actor, "restore", backup?.AccountId, backup?.Username, "not_found",
                $"backup {backupId}{(backup is null ? "" : backup.PurgedAt is not null ? " was purged" : " has no archive")}", ct);
            throw new BackupNotFoundException(backupId);
        }

        ReservedAccount reserved;
        try
        {
            if (archived.Username != backup.Username || archived.Domain != backup.Domain)
                throw new AccountConflictException($"The archive of backup {backup.Id} is of '{archived.Username}' / '{archived.Domain}', not of '{backup.Username}' / '{backup.Domain}': refusing it.");
            // The account returns to the owner it had; its password is not in the backup (its logins' hashes are).
            reserved = await creation.ReserveAsync(actor, backup.OwnerId,
                new CreateAccountRequest(archived.Username, archived.Domain, archived.Email, RandomPassword(), archived.PackageId), archived.PhpVersion, ct);
        }
        catch (Exception e) when (e is AccountConflictException or AccountLimitReachedException or AccountValidationException or LicenseRequiredException)
        {
            // The create's own refusal names the account holding a name to a caller who may see it.
            await audit.WriteAsync(actor, "restore", backup.AccountId, backup.Username, "refused", $"backup {backup.Id}: {e.Message}", CancellationToken.None);
            throw;
        }

        RestoreJob job;
        try { job = await jobs.OpenAsync(backup, reserved.Account.Identity.Id, actor.Name, Steps, CancellationToken.None); }
        catch (Exception e)
        {
            // Nothing but the reservation was made: it goes, or the names would stay taken by a row no job finishes.
            if (await accounts.FindAsync(new Viewer(0, true), reserved.Account.Identity.Id, CancellationToken.None) is { Status: AccountStatus.Creating } row)
                await creation.AbandonAsync(actor, row, _ => false, "restore", $"backup {backup.Id}: the restore job could not be opened: {e.Message}");
            throw;
        }
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var completion = Task.Run(async () =>
        {
            await go.Task;
            try { return await RunAsync(job, backup, archived, reserved, actor, held); }
            finally
            {
                _running.TryRemove(job.Id, out _);
                await held.DisposeAsync();
            }
        });
        _running[job.Id] = completion;
        go.SetResult();
        return new RestoreHandle(job, completion);
    }

    /// <summary>
    /// What a restore of the backup would make (the Backups page shows it before the user confirms); changes nothing.
    /// <see cref="BackupNotFoundException"/> for a backup the viewer may not see, purged, or whose archive is gone.
    /// </summary>
    public async Task<RestorePreview> PreviewAsync(Viewer viewer, long backupId, CancellationToken ct)
    {
        var (backup, archived) = await FindArchiveAsync(viewer, backupId, ct);
        if (backup is null || archived is null) throw new BackupNotFoundException(backupId);
        return new RestorePreview(backup, archived, RestorePreview.PartsOf(backup.Id, backup.Manifest, log));
    }

    /// <summary>The backup's row and, while it is available, the account its archive names (asked where root is).</summary>
    private async Task<(FinalBackup? Backup, ArchivedAccount? Archived)> FindArchiveAsync(Viewer viewer, long backupId, CancellationToken ct)
    {
        var backup = await backups.FindAsync(viewer, backupId, ct);
        return (backup, backup is { Available: true } ? await ArchiveOfAsync(backup, ct) : null);
    }

    private async Task<ArchivedAccount?> ArchiveOfAsync(FinalBackup backup, CancellationToken ct)
    {
        try { return await restorer.ReadAccountAsync(backup.Id, ct); }
        catch (ArchiveMissingException e)
        {
            log.LogWarning("Backup {Backup} is listed but its archive is gone: {Why}", backup.Id, e.Message);
            return null;
        }
    }

    private async Task<RestoreJob> RunAsync(RestoreJob job, FinalBackup backup, ArchivedAccount archived, ReservedAccount reserved, Actor actor, BackupLock held)
    {
        // A suspended account whose own vhost was never stored has none in its backup (only the 503 one was there): it gets the
        // vhost the create path makes, so the restored account serves.
        var newVhost = archived.Suspended && RestorePreview.PartsOf(backup.Id, backup.Manifest, log).All(p => p.Key != "nginx_vhost");
        // Transitions are journalled in order by one writer; progress reports are only published.
        var journal = Channel.CreateUnbounded<(string Resource, string Status, string? Detail)>(new UnboundedChannelOptions { SingleReader = true });
        var writer = Task.Run(async () =>
        {
            await foreach (var (resource, status, detail) in journal.Reader.ReadAllAsync())
                await jobs.SetStepAsync(job.Id, resource, status, detail, CancellationToken.None);
        });
        void Step(string resource, string status, string? detail)
        {
            if (!Steps.Contains(resource)) return;
            Publish(job, resource, status, detail);
            // A part of the archive is journalled running only once it is made (below): the start-up's undo of a restore
            // whose panel stopped reads the journal, and a part refused by its own checks was never this restore's.
            if (status != StepStatus.Running || (detail is null && (!AccountParts.Restored.Contains(resource) || (newVhost && resource == "nginx_vhost"))))
                journal.Writer.TryWrite((resource, status, detail));
        }

        Publish(job, DeletionEvent.JobResource, JobStatus.Running, null);
        foreach (var s in job.Steps) Publish(job, s.Resource, s.Status, s.Detail);
        string? running = null;
        var parts = new AccountParts("restore", archived.Uid, Provisioned: newVhost ? new HashSet<string> { "nginx_vhost" } : null,
            Restore: async (identity, started, made) =>
            {
                await restorer.RestoreAsync(backup.Id, identity, r =>
                {
                    if (r.Status == RestoreReport.Made)
                    {
                        made(r.Resource);
                        if (Steps.Contains(r.Resource)) journal.Writer.TryWrite((r.Resource, StepStatus.Running, null));
                        return;
                    }
                    if (r.Status == StepStatus.Running) started(r.Resource);
                    running = r.Status == StepStatus.Done ? null : r.Resource;
                    Step(r.Resource, r.Status, r.Detail);
                }, CancellationToken.None);
                // The lock's connection idles for the whole restore: a server restart or a kill frees it silently, and
                // a purge may then have taken the backup. Checked once the archive's parts are written, before the
                // account can become active (the agent's writes are not stopped half-way: what they made is undone).
                if (!await held.IsHeldAsync(CancellationToken.None))
                    throw new ResourceException($"the lock on backup {backup.Id} was lost while it was restored (its connection to the panel's database closed: a restart of MariaDB or a kill), so a purge may have met this restore");
            },
            Step: (key, status, detail) =>
            {
                running = status == StepStatus.Done ? null : key;
                Step(key, status, detail);
            },
            Note: $", from backup {backup.Id}");

        string status, detail;
        try
        {
            var account = await creation.MakeAsync(actor, reserved, parts, CancellationToken.None);
            status = JobStatus.Succeeded;
            detail = $"account {account.Id} restored from backup {backup.Id}; " + (account.Uid == archived.Uid
                ? $"its archived uid {account.Uid} was still its own"
                : $"new uid {account.Uid}: the archived uid {archived.Uid?.ToString() ?? "(none)"} was not free for it, its files are the new uid's")
                + (archived.Suspended
                    ? $"; it was suspended when it was backed up{(archived.SuspendedAt is { } at ? $" (since {at:yyyy-MM-dd HH:mm} UTC)" : "")} and is restored active, with its own {(newVhost ? "pool and mail logins; its vhost was not stored, so it has the vhost a new account gets" : "vhost, pool and mail logins")}"
                    : "");
        }
        catch (Exception e)
        {
            if (running is not null) Step(running, StepStatus.Failed, e.Message);
            status = JobStatus.Failed;
            detail = e is ProvisioningFailedException { KeptAccountId: not null }
                ? e.Message
                : $"{e.Message}; what this restore had made was removed again and the account does not exist; the backup is unchanged";
            log.LogError(e, "Restoring backup {Backup} ({Username}) failed", backup.Id, backup.Username);
        }
        journal.Writer.TryComplete();
        await writer;
        if (!await jobs.FinishAsync(job.Id, status, detail,
            status == JobStatus.Succeeded ? StepStatus.Skipped : StepStatus.Pending,
            status == JobStatus.Succeeded ? "not in the backup" : "not reached", CancellationToken.None))
            log.LogError("Restore job {Job} had already been finished by another panel process; its outcome here ({Status}: {Detail}) is not recorded", job.Id, status, detail);
        var finished = (await jobs.FindAsync(job.Id, CancellationToken.None))!;
        foreach (var s in finished.Steps.Where(s => s.Status is StepStatus.Skipped)) Publish(job, s.Resource, s.Status, s.Detail);
        Publish(job, DeletionEvent.JobResource, status, detail);
        return finished;
    }

    /// <summary>How long the start-up waits for a dead process's lock to be freed by the server before leaving the job to a live holder.</summary>
    private static readonly TimeSpan HolderGone = TimeSpan.FromSeconds(5);

    /// <summary>
    /// At start-up: every restore journalled running that no live process holds (its backup's lock is free: the process
    /// that ran it stopped, and its connection with the lock) is finished honestly. The parts it made, as its journal says
    /// (running or done), are removed through the create path's undo, and only those; its reservation (the row,
    /// <c>creating</c>) goes; the job fails saying to run the restore again, which the unchanged backup allows. Resuming
    /// it instead would mean trusting parts half-written by a process that died mid-write; undoing costs the operator
    /// one more click on an archive that is still there. A restore whose account had already become active succeeded,
    /// and says so. Returns how many were finished.
    /// </summary>
    public async Task<int> FinishInterruptedAsync(CancellationToken ct)
    {
        var finished = 0;
        foreach (var id in await jobs.RunningAsync(ct))
        {
            if (_running.ContainsKey(id) || await jobs.FindAsync(id, ct) is not { Finished: false } job) continue;
            await using var held = await locks.TryTakeAsync(job.BackupId, HolderGone, ct);
            if (held is null)
            {
                log.LogInformation("Restore job {Job} of backup {Backup} is running in another panel process; left to it", job.Id, job.BackupId);
                continue;
            }
            // Read again under the lock: the holder may have finished it just before.
            if (await jobs.FindAsync(id, ct) is not { Finished: false } interrupted) continue;
            await FinishInterruptedAsync(interrupted);
            finished++;
        }
        return finished;
    }

    private async Task FinishInterruptedAsync(RestoreJob job)
    {
        var actor = Actor.System("panel (start-up after an interrupted restore)");
        var account = await accounts.FindAsync(new Viewer(0, true), job.AccountId, CancellationToken.None);
        string status, detail;
        if (account is { Status: AccountStatus.Active })
        {
            status = JobStatus.Succeeded;
            detail = $"account {account.Id} restored from backup {job.BackupId}; the panel stopped before it recorded the end of the restore";
        }
        else
        {
            var step = job.Steps.ToDictionary(s => s.Resource, s => s.Status);
            // The archive's parts as journalled once made; the rest (user, logins, processes, the uid's files) with the user.
            bool Made(string key) => step.GetValueOrDefault(AccountParts.Restored.Contains(key) ? key : "system_user") is StepStatus.Running or StepStatus.Done;
            var undone = account is { Status: AccountStatus.Creating }
                ? await creation.AbandonAsync(actor, account, Made, "restore", $"restore job {job.Id} of backup {job.BackupId} was interrupted by a stop of the panel")
                : account is null ? "its account row was already gone" : $"account {account.Id} is {account.Status} and was left as it is";
            status = JobStatus.Failed;
            detail = $"the panel stopped while this restore ran (a crash or a restart); {undone}; the backup is unchanged: run the restore again";
            foreach (var s in job.Steps.Where(s => s.Status == StepStatus.Running))
                await jobs.SetStepAsync(job.Id, s.Resource, StepStatus.Failed, "the panel stopped while this ran; undone at the next start-up", CancellationToken.None);
        }
        await jobs.FinishAsync(job.Id, status, detail, status == JobStatus.Succeeded ? StepStatus.Skipped : StepStatus.Pending,
            status == JobStatus.Succeeded ? "not in the backup" : "not reached", CancellationToken.None);
        log.LogWarning("Restore job {Job} of {Username} was left running by a stop of the panel: {Status}, {Detail}", job.Id, job.Username, status, detail);
    }

    private void Publish(RestoreJob job, string resource, string status, string? detail) =>
        _events.Publish(new DeletionEvent(job.AccountId, job.Id, resource, status, detail, DateTimeOffset.UtcNow));

    private static string RandomPassword() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace(':', '-');

    /// <summary>Waits for the restores running in this process (the host's shutdown): one never stops half-way unawaited.</summary>
    public async ValueTask DisposeAsync()
    {
        await ((Task)Task.WhenAll(_running.Values)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }
}
