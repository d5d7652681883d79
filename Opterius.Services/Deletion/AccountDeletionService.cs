using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Backups;
using Opterius.Services.Commands;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>A deletion the caller started or joined; <see cref="Completion"/> ends with the finished job.</summary>
public sealed record DeletionHandle(DeletionJob Job, Task<DeletionJob> Completion, bool Joined);

/// <summary>
/// The one deletion service behind the REST API, the UI and the CLI. It plans (inspects every resource),
/// journals a job with one step per resource, runs the steps stage by stage in <see cref="DeletionOrder"/>, stops
/// after the stage of a failure (the account becomes <c>deletion_failed</c>; the next request resumes at that step), runs
/// one executor per account (a second request joins it; across panel processes a lease in the journal holds it),
/// checks after the last step that every resource is gone (else the job fails naming what is left), and
/// streams each transition.
/// </summary>
public sealed class AccountDeletionService(
    AccountStore accounts,
    DeletionJobStore jobs,
    DeletionEvents events,
    IEnumerable<IAccountResource> resources,
    LicenseService license,
    AuditLog audit,
    ILogger<AccountDeletionService> log,
    FinalBackups? backups = null,
    IDeletionsInFlight? inFlight = null) // null: reloads do not wait for this service's deletions (a service assembled by hand)
{
    private readonly DeletionRunner _runner = new(resources.ToDictionary(r => r.Key), jobs, events, audit, log, backups, inFlight);
    private readonly ConcurrentDictionary<long, Task<DeletionJob>> _running = new();
    private readonly SemaphoreSlim _startGate = new(1, 1);

    /// <summary>What a deletion would remove; changes nothing. Throws <see cref="AccountNotFoundException"/>.</summary>
    public Task<DeletionPlan> PlanAsync(Viewer viewer, long accountId, CancellationToken ct) => PlanAsync(viewer, accountId, null, ct);

    /// <summary>
    /// What a deletion would remove, with the final backup step first when <paramref name="backup"/> (or the policy) asks
    /// for one; changes nothing. Throws <see cref="AccountNotFoundException"/>, or <see cref="AccountValidationException"/>
    /// for a backup the policy forbids.
    /// </summary>
    public async Task<DeletionPlan> PlanAsync(Viewer viewer, long accountId, bool? backup, CancellationToken ct)
    {
        var withBackup = WantsBackup(backup) == true;
        var account = await accounts.FindAsync(viewer, accountId, ct) ?? throw new AccountNotFoundException(accountId);
        var resources = await _runner.InspectAllAsync(AccountIdentity.From(account), ct);
        return new(account.Id, account.Username, account.Domain, withBackup ? [BackupLine(resources), .. resources] : resources);
    }

    private bool? WantsBackup(bool? requested) => backups?.Wanted(requested)
        ?? (requested == true ? throw new AccountValidationException(new Dictionary<string, string> { ["backup"] = "final backups are not set up in this process" }) : null);

    /// <summary>The plan's line for the final backup: what the archive will hold (the trees, the databases, the rest).</summary>
    private ResourceInspection BackupLine(IReadOnlyList<ResourceInspection> resources)
    {
        var of = resources.Where(r => r.Exists && r.Resource is "home_directory" or "mailboxes" or "databases").ToList();
        var files = of.Where(r => r.Resource != "databases").Sum(r => r.Count);
        var bytes = of.Sum(r => r.Bytes);
        return new(DeletionOrder.FinalBackup, true, [backups!.Folder], bytes, files,
            $"a final backup of the home and mail ({files} files), every database, the zone, the vhost, pool, certificate, cron and mail lines "
            + $"({Files.ByteSize.Human(bytes)} before compression) to {backups.Folder}, kept {backups.KeepDays} days; if it fails, nothing is removed");
    }

    /// <summary>
    /// Starts the account's deletion, resumes its failed or interrupted one, or joins the one running.
    /// Refused before anything changes when the license is not valid or the account is not the caller's.
    /// The scheduler passes its <paramref name="scheduleClaim"/>: then the job opens only while that claim still holds
    /// the account's schedule (<see cref="ScheduleWithdrawnException"/> otherwise).
    /// </summary>
    public Task<DeletionHandle> StartAsync(Actor actor, long accountId, CancellationToken ct) => StartAsync(actor, accountId, null, ct);

    /// <inheritdoc cref="StartAsync(Actor, long, CancellationToken)"/>
    /// <param name="backup">true: keep a final backup first; false: none (a reopened job's backup that has not run is
    /// dropped); null: as the policy says (a reopened job keeps its steps). Refused under the <c>never</c> policy.</param>
    /// <param name="scheduleClaim">The scheduler's claim: the job opens only while it still holds the account's schedule.</param>
    public async Task<DeletionHandle> StartAsync(Actor actor, long accountId, bool? backup, CancellationToken ct, string? scheduleClaim = null)
    {
        bool? withBackup;
        try { withBackup = WantsBackup(backup); }
        catch (AccountValidationException e)
        {
            await audit.WriteAsync(actor, "delete", accountId, null, "validation_failed", e.Message, ct);
            throw;
        }
        try { license.EnsureValid(); }
        catch (LicenseRequiredException e)
        {
            await audit.WriteAsync(actor, "delete", accountId, null, "license_required", e.Message, ct);
            throw;
        }
        var account = await accounts.FindAsync(new Viewer(actor.UserId, actor.IsAdmin), accountId, ct);
        if (account is null)
        {
            await audit.WriteAsync(actor, "delete", accountId, null, "not_found", null, ct);
            throw new AccountNotFoundException(accountId);
        }

        try { return await StartOrJoinAsync(actor, account, withBackup, scheduleClaim, ct); }
        catch (Exception e) when (e is AccountConflictException or InvalidAccountNameException)
        {
            await audit.WriteAsync(actor, "delete", account.Id, account.Username, "refused", e.Message, CancellationToken.None);
            throw;
        }
    }

    private async Task<DeletionHandle> StartOrJoinAsync(Actor actor, Account account, bool? backup, string? scheduleClaim, CancellationToken ct)
    {
        DeletionHandle handle;
        await _startGate.WaitAsync(ct);
        try
        {
            if (_running.TryGetValue(account.Id, out var running))
            {
                var current = await jobs.LatestForAccountAsync(account.Id, ct);
                handle = new(current!, running, Joined: true);
            }
            else
            {
                var leasedAt = Stopwatch.GetTimestamp();
                var job = await jobs.OpenAsync(account, actor.Name, backup, scheduleClaim, ct);
                if (job is null)
                {
                    // The deletion this request meant to join finished in between: its outcome is the answer.
                    var finished = await jobs.LatestForAccountAsync(account.Id, ct) ?? throw new AccountNotFoundException(account.Id);
                    return new(finished, Task.FromResult(finished), Joined: true);
                }
                // Not ours when another panel process holds a live lease on it: then this request waits for that
                // process's outcome (and takes the job over if its holder stops renewing), never running it twice.
                // Only the process that runs the job plans it (the plan goes in the audit), so a join costs no inspection.
                var held = job.LeaseHolder == jobs.Holder;
                // Registered before it runs, so the driver's own clean-up always finds its entry.
                var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var completion = Task.Run(async () =>
                {
                    await go.Task;
                    try { return await _runner.DriveAsync(job, account, actor, held ? leasedAt : null); }
                    finally { _running.TryRemove(account.Id, out _); }
                });
                _running[account.Id] = completion;
                go.SetResult();
                handle = new(job, completion, Joined: !held);
            }
        }
        finally { _startGate.Release(); }

        _ = handle.Completion.ContinueWith(t => audit.WriteAsync(actor, "delete", account.Id, account.Username,
            t.IsCompletedSuccessfully ? t.Result.Status : "failed",
            (handle.Joined ? "joined " : "") + $"job {handle.Job.Id}" + FailureText(t), CancellationToken.None), TaskScheduler.Default).Unwrap();
        return handle;
    }

    /// <summary>
    /// Resumes every job left running (called once at start-up): a job whose holder crashed a moment ago still has a
    /// live lease, so each is followed and taken over once its lease runs out, without anyone asking again.
    /// </summary>
    public async Task<int> ResumeInterruptedAsync(CancellationToken ct)
    {
        var ids = await jobs.RunningAccountIdsAsync(ct);
        var resumed = 0;
        foreach (var id in ids)
        {
            try { resumed += await ResumeAsync(id, ct) ? 1 : 0; }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One account's refusal (license, bad record) must not keep the others half-deleted.
                log.LogError(e, "Could not resume the deletion of account {Account}; the next DELETE of it resumes it", id);
            }
        }
        return resumed;
    }

    private async Task<bool> ResumeAsync(long id, CancellationToken ct)
    {
        var account = await accounts.FindAsync(new Viewer(0, true), id, ct);
        var job = await jobs.LatestForAccountAsync(id, ct);
        if (job is null) return false;
        if (account is null)
        {
            // The row goes in the transaction that finishes a job, so only a change by hand removed it: what the
            // account left on the server can no longer be inspected, and the job must not claim it is gone.
            if (await jobs.TryTakeOverAsync(job.Id, ct) && await jobs.FailAsync(job, ct))
                log.LogError("Deletion job {Job} of {Username} was left running and its account row is gone: marked failed, check the server by hand", job.Id, job.Username);
            return false;
        }
        log.LogWarning("Resuming deletion job {Job} of account {Account} left running by a restart", job.Id, account.Username);
        await StartAsync(Actor.System("panel (resume after restart)"), id, ct);
        return true;
    }

    private static string FailureText(Task<DeletionJob> t) =>
        t.IsCompletedSuccessfully
            ? string.Concat(t.Result.FailedSteps.Select(s => $"; {s.Resource} failed: {s.Detail}"))
            : $"; {t.Exception?.GetBaseException().Message}";
}
