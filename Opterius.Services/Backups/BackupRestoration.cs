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
/// </summary>
public sealed class BackupRestoration(
    BackupStore backups,
    RestoreJobStore jobs,
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
        var backup = await backups.FindAsync(new Viewer(actor.UserId, actor.IsAdmin), backupId, ct);
        ArchivedAccount? archived = null;
        if (backup is { Available: true })
        {
            try { archived = await restorer.ReadAccountAsync(backup.Id, ct); }
            catch (ArchiveMissingException e) { log.LogWarning("Backup {Backup} is listed but its archive is gone: {Why}", backup.Id, e.Message); }
        }
        if (backup is null || archived is null)
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

        var job = await jobs.OpenAsync(backup, reserved.Account.Identity.Id, actor.Name, Steps, CancellationToken.None);
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var completion = Task.Run(async () =>
        {
            await go.Task;
            try { return await RunAsync(job, backup, archived, reserved, actor); }
            finally { _running.TryRemove(job.Id, out _); }
        });
        _running[job.Id] = completion;
        go.SetResult();
        return new RestoreHandle(job, completion);
    }

    private async Task<RestoreJob> RunAsync(RestoreJob job, FinalBackup backup, ArchivedAccount archived, ReservedAccount reserved, Actor actor)
    {
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
            if (status != StepStatus.Running || detail is null) journal.Writer.TryWrite((resource, status, detail));
        }

        Publish(job, DeletionEvent.JobResource, JobStatus.Running, null);
        foreach (var s in job.Steps) Publish(job, s.Resource, s.Status, s.Detail);
        string? running = null;
        var parts = new AccountParts("restore", archived.Uid,
            Restore: (identity, started) => restorer.RestoreAsync(backup.Id, identity, r =>
            {
                if (r.Status == StepStatus.Running) started(r.Resource);
                running = r.Status == StepStatus.Done ? null : r.Resource;
                Step(r.Resource, r.Status, r.Detail);
            }, CancellationToken.None),
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
                    ? $"; it was suspended when it was backed up{(archived.SuspendedAt is { } at ? $" (since {at:yyyy-MM-dd HH:mm} UTC)" : "")} and is restored active, with its own vhost, pool and mail logins"
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
        await jobs.FinishAsync(job.Id, status, detail,
            status == JobStatus.Succeeded ? StepStatus.Skipped : StepStatus.Pending,
            status == JobStatus.Succeeded ? "not in the backup" : "not reached", CancellationToken.None);
        var finished = (await jobs.FindAsync(job.Id, CancellationToken.None))!;
        foreach (var s in finished.Steps.Where(s => s.Status is StepStatus.Skipped)) Publish(job, s.Resource, s.Status, s.Detail);
        Publish(job, DeletionEvent.JobResource, status, detail);
        return finished;
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
