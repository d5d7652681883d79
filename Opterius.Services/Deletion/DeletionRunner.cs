using System.Data.Common;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Commands;
using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>
/// Drives one job of <see cref="AccountDeletionService"/>: runs its steps while this process holds the job's lease
/// (<see cref="DeletionLease"/>), follows the journal while another process does, and takes the job over when that
/// holder stops renewing. Also the one place resources are inspected, for the plan and for the check after the last step.
/// </summary>
internal sealed class DeletionRunner(
    IReadOnlyDictionary<string, IAccountResource> resources,
    DeletionJobStore jobs,
    DeletionEvents events,
    AuditLog audit,
    ILogger log,
    Backups.FinalBackups? backups,
    IDeletionsInFlight? inFlight)
{
    public async Task<ResourceInspection[]> InspectAllAsync(AccountIdentity identity, CancellationToken ct) =>
        await Task.WhenAll(DeletionOrder.Keys.Select(key => InspectAsync(key, identity, ct)));

    private async Task<ResourceInspection> InspectAsync(string key, AccountIdentity identity, CancellationToken ct)
    {
        if (!resources.TryGetValue(key, out var resource)) return ResourceInspection.Nothing(key, "not supported on this server");
        try { return await resource.InspectAsync(identity, ct); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new(key, true, [], 0, 0, $"could not be inspected: {e.Message}");
        }
    }

    /// <summary>Runs the job while this process holds its lease, follows it while another does; ends with the finished job.</summary>
    /// <param name="leasedAt">When this process asked for the lease it holds (<see cref="Stopwatch.GetTimestamp"/>); null when another holds it.</param>
    public async Task<DeletionJob> DriveAsync(DeletionJob job, Account account, Actor actor, long? leasedAt)
    {
        string? takenFrom = null; // null: this request opened the job; else the holder whose lease ran out
        while (true)
        {
            var ran = leasedAt is not null;
            if (leasedAt is { } at && await ExecuteAsync(job, account, actor, at, takenFrom) is { } done) return done;
            (job, leasedAt, takenFrom) = await FollowAsync(job, stale: ran);
            if (job.Finished) return job;
        }
    }

    /// <returns>The finished job, or null when this process can no longer be sure it holds the lease (it follows the journal then).</returns>
    private async Task<DeletionJob?> ExecuteAsync(DeletionJob job, Account account, Actor actor, long leasedAt, string? takenFrom)
    {
        var ct = CancellationToken.None; // a deletion, once started, is not abandoned because a caller went away
        await using var lease = new DeletionLease(jobs, job.Id, leasedAt, log);
        // Other deletions' reloads wait for this one's (bounded), here or in the agent: of the steps it has still to run only,
        // so a job resumed past its vhost holds no one's nginx reload.
        using var flight = inFlight?.DeletionInFlight(StagesLeft(job).SelectMany(s => s).Select(s => ServiceReloader.ServiceOfStep.GetValueOrDefault(s.Resource)).OfType<string>());
        var identity = AccountIdentity.From(account);
        try
        {
            await AnnounceAsync(job, account, actor, takenFrom, identity);
            Publish(job, DeletionEvent.JobResource, JobStatus.Running, null);
            foreach (var step in job.Steps) Publish(job, step.Resource, step.Status, step.Detail);

            foreach (var stage in StagesLeft(job))
            {
                // What keeps two executors apart: no step starts unless a renewal arrived within half a lease, so nobody can
                // take the job over before this process notices; a step that loses the lease is cancelled (Lost). A stage's
                // steps start together, in one journal write; subscribers see them start in the order.
                if (!lease.IsFresh || !await jobs.StartStepsAsync(job.Id, stage.Select(s => s.Position).ToList(), ct)) return LeaseLost(job);
                foreach (var step in stage) Publish(job, step.Resource, StepStatus.Running, null);
                var ends = await Task.WhenAll(stage.Select(step => RunStepAsync(job, account, step, identity, lease)));
                if (ends.Any(e => e.Lost)) return LeaseLost(job);
                // A failed step stops the job once the rest of its stage has finished: they were already running, and a
                // step cut short would leave its resource half-removed. Later stages do not start.
                var failed = stage.Zip(ends).Where(x => x.Second.Failure is not null).ToList();
                if (failed.Count > 0)
                {
                    // A final backup that failed (it runs alone, first) stopped the job before anything was removed: the account stays as it was.
                    var untouched = stage is [{ Resource: DeletionOrder.FinalBackup }];
                    if (!await (untouched ? jobs.FailUntouchedAsync(job, ct) : jobs.FailAsync(job, ct))) return LeaseLost(job);
                    Publish(job, DeletionEvent.JobResource, JobStatus.Failed, string.Join("; ", failed.Select(f => $"{f.First.Resource}: {f.Second.Failure}")));
                    return (await jobs.FindAsync(job.Id, ct))!;
                }
            }

            // A step's own word is not enough: only inspecting everything again says nothing is left. Every resource of
            // today's order, whatever steps the journal holds (the store gives a reopened job the steps it lacked).
            var checks = await Task.WhenAll(DeletionOrder.Keys.Select(key => CheckAsync(key, account)));
            if (!await jobs.SaveVerificationAsync(job.Id, checks, ct)) return LeaseLost(job);
            var left = checks.Where(c => c.Status != CheckStatus.Gone).ToList();
            if (left.Count > 0)
            {
                // Failed steps are what the next DELETE runs again: exactly the resources still there.
                foreach (var check in left)
                    if (!await SetStepAsync(job, job.Steps.Single(s => s.Resource == check.Resource), StepStatus.Failed, LeftDetail(check))) return LeaseLost(job);
                if (!await jobs.FailAsync(job, ct)) return LeaseLost(job);
                Publish(job, DeletionEvent.JobResource, JobStatus.Failed,
                    "still there after the last step: " + string.Join("; ", left.Select(c => $"{c.Resource} ({c.Summary})")));
                return (await jobs.FindAsync(job.Id, ct))!;
            }

            if (!await jobs.SucceedAsync(job, ct)) return LeaseLost(job);
            Publish(job, DeletionEvent.JobResource, JobStatus.Succeeded, null);
            return (await jobs.FindAsync(job.Id, ct))!;
        }
        catch (Exception e)
        {
            // The journal itself could not be written: the job stays 'running', resumed by the next DELETE in this
            // process (its lease is still ours) or, once the lease runs out, by a waiting process or the next start.
            log.LogError(e, "Deletion job {Job} stopped: the journal could not be written", job.Id);
            Publish(job, DeletionEvent.JobResource, JobStatus.Failed, $"the deletion journal could not be written: {e.Message}");
            throw;
        }
    }

    /// <summary>How one step of a stage ended: the lease was lost under it, it failed (with the detail), or it is journalled.</summary>
    private readonly record struct StepEnd(bool Lost, string? Failure);

    /// <summary>The steps not done yet, in journal order, cut where the stage changes (a key of no stage runs alone).</summary>
    private static List<List<DeletionStep>> StagesLeft(DeletionJob job)
    {
        var stages = new List<List<DeletionStep>>();
        foreach (var step in job.Steps.Where(s => s.Status is not (StepStatus.Done or StepStatus.Skipped)))
        {
            var stage = DeletionOrder.StageOf(step.Resource);
            if (stages.Count > 0 && stage >= 0 && DeletionOrder.StageOf(stages[^1][0].Resource) == stage) stages[^1].Add(step);
            else stages.Add([step]);
        }
        return stages;
    }

    /// <summary>Runs one step already journalled as running and journals how it ended.</summary>
    private async Task<StepEnd> RunStepAsync(DeletionJob job, Account account, DeletionStep step, AccountIdentity identity, DeletionLease lease)
    {
        RemoveOutcome outcome;
        try
        {
            if (step.Resource == DeletionOrder.FinalBackup)
            {
                var progress = StepProgressOf(job, step);
                outcome = await BackUpAsync(job, account, identity, progress, lease.Lost);
                progress.Flush();
            }
            else if ((resources.GetValueOrDefault(step.Resource)
                ?? throw new ResourceException($"no handler for resource '{step.Resource}' on this server")) is IReportsRemovalProgress reports)
            {
                // A long step says how far it is (the hub and the dialog show it).
                var progress = StepProgressOf(job, step);
                outcome = await reports.RemoveAsync(identity, progress.Report, lease.Lost);
                progress.Flush();
            }
            else outcome = await resources[step.Resource].RemoveAsync(identity, lease.Lost);
        }
        catch (Exception) when (lease.Lost.IsCancellationRequested)
        {
            // Not the step's failure: it stays 'running' in the journal, and whoever holds the lease next runs it again.
            return new(true, null);
        }
        catch (Exception e)
        {
            log.LogError(e, "Deletion job {Job}: {Resource} failed", job.Id, step.Resource);
            return await SetStepAsync(job, step, StepStatus.Failed, Describe(e)) ? new(false, Describe(e)) : new(true, null);
        }
        try { return new(!await SetStepAsync(job, step, outcome.Status, outcome.Detail), null); }
        // Its end could not be journalled because the lease is gone: whoever holds it next runs the step again (idempotent).
        catch (Exception) when (lease.Lost.IsCancellationRequested) { return new(true, null); }
    }

    /// <summary>
    /// The step <see cref="DeletionOrder.FinalBackup"/>: the archive of everything there, its progress counted against what
    /// the home and mail trees hold now.
    /// </summary>
    private async Task<RemoveOutcome> BackUpAsync(DeletionJob job, Account account, AccountIdentity identity, StepProgress progress, CancellationToken ct)
    {
        if (backups is null) throw new ResourceException("final backups are not set up in this process");
        var trees = await Task.WhenAll(new[] { "home_directory", "mailboxes" }.Select(key => InspectAsync(key, identity, ct)));
        var subject = new Backups.BackupSubject(identity, account.Email, account.PackageId, account.OwnerId,
            trees.Sum(t => t.Count), trees.Sum(t => t.Bytes), account.SuspendedAt);
        return await backups.RunAsync(job, account, subject, progress.Report, ct);
    }

    /// <summary>
    /// The audit entry that says who runs the job from here: a request that opened it, with the plan (inspected under the
    /// lease, so only the process that runs the job pays for it), or a takeover naming the holder whose lease ran out.
    /// </summary>
    private async Task AnnounceAsync(DeletionJob job, Account account, Actor actor, string? takenFrom, AccountIdentity identity)
    {
        var ct = CancellationToken.None;
        if (takenFrom is null)
        {
            var plan = await InspectAllAsync(identity, ct);
            await jobs.SavePlanAsync(job.Id, account, actor, plan, ct);
            var summary = string.Join("; ", plan.Where(r => r.Exists).Select(r => $"{r.Resource}: {r.Summary}"));
            await audit.WriteAsync(actor, "delete", account.Id, account.Username, "started", $"job {job.Id}; {summary}", ct);
        }
        else
        {
            var whose = takenFrom == jobs.Holder ? "this process's own, which it could not renew in time" : takenFrom;
            await audit.WriteAsync(actor, "delete", account.Id, account.Username, "resumed",
                $"job {job.Id} taken over after the lease of {whose} ran out", ct);
        }
    }

    private DeletionJob? LeaseLost(DeletionJob job)
    {
        log.LogWarning("Deletion job {Job}: this process no longer holds its lease for sure (taken over, or not renewed in time); following it instead", job.Id);
        return null;
    }

    /// <summary>
    /// Follows a job another process holds: publishes what its journal shows to this process's subscribers, and
    /// returns when it finishes, or when its holder stopped renewing and this process took the lease over (with when
    /// it asked, and whose lease it was). A journal this process cannot read for a while is read again: the job is not
    /// abandoned because this process lost the database for a moment.
    /// </summary>
    /// <param name="stale">The job is as this process read it before running steps itself: its subscribers saw newer
    /// states than it holds, so only what the journal shows from now on is published.</param>
    private async Task<(DeletionJob Job, long? LeasedAt, string? TakenFrom)> FollowAsync(DeletionJob job, bool stale)
    {
        var ct = CancellationToken.None;
        var seen = stale ? job.Steps.ToDictionary(s => s.Resource, s => (s.Status, s.Detail)) : new Dictionary<string, (string, string?)>();
        Publish(job, DeletionEvent.JobResource, JobStatus.Running, null);
        while (true)
        {
            foreach (var step in job.Steps.Where(s => !seen.TryGetValue(s.Resource, out var was) || was != (s.Status, s.Detail)))
            {
                seen[step.Resource] = (step.Status, step.Detail);
                Publish(job, step.Resource, step.Status, step.Detail);
            }
            if (job.Finished)
            {
                Publish(job, DeletionEvent.JobResource, job.Status, job.Status == JobStatus.Failed ? FailureSummary(job) : null);
                return (job, null, null);
            }
            await Task.Delay(jobs.PollInterval, ct);
            try
            {
                var askedAt = Stopwatch.GetTimestamp();
                if (await jobs.TryTakeOverAsync(job.Id, ct))
                {
                    log.LogWarning("Deletion job {Job}: its holder {Holder} stopped renewing the lease; this process takes it over", job.Id, job.LeaseHolder);
                    return ((await jobs.FindAsync(job.Id, ct))!, askedAt, job.LeaseHolder);
                }
                job = await jobs.FindAsync(job.Id, ct) ?? throw new InvalidOperationException($"deletion job {job.Id} vanished from the journal");
            }
            catch (DbException e)
            {
                log.LogWarning(e, "Deletion job {Job}: the journal could not be read; trying again", job.Id);
            }
        }
    }

    private async Task<ResourceCheck> CheckAsync(string key, Account account)
    {
        if (!resources.TryGetValue(key, out var resource)) return new(key, CheckStatus.Unverified, "no handler for this resource on this server");
        try
        {
            var found = await resource.InspectAsync(AccountIdentity.From(account), CancellationToken.None);
            return new(key, found.Exists ? CheckStatus.Left : CheckStatus.Gone, found.Summary);
        }
        catch (Exception e)
        {
            log.LogError(e, "Verifying the deletion of {Username}: {Resource} could not be inspected", account.Username, key);
            return new(key, CheckStatus.Unverified, $"could not be inspected: {Describe(e)}");
        }
    }

    private static string LeftDetail(ResourceCheck check) => check.Status == CheckStatus.Left
        ? $"still there after the last step: {check.Summary}"
        : $"not verified after the last step: {check.Summary}";

    private static string FailureSummary(DeletionJob job) => string.Join("; ", job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}"));

    private async Task<bool> SetStepAsync(DeletionJob job, DeletionStep step, string status, string? detail)
    {
        if (!await jobs.SetStepAsync(job.Id, step.Position, status, detail, CancellationToken.None)) return false;
        Publish(job, step.Resource, status, detail);
        return true;
    }

    private void Publish(DeletionJob job, string resource, string status, string? detail) =>
        events.Publish(new DeletionEvent(job.AccountId, job.Id, resource, status, detail, DateTimeOffset.UtcNow));

    /// <summary>A long step (a removal, the final backup) says how far it is: its counts, and as its running detail.</summary>
    private StepProgress StepProgressOf(DeletionJob job, DeletionStep step) =>
        new(p => events.Publish(new DeletionEvent(job.AccountId, job.Id, step.Resource, StepStatus.Running, p.Describe(), DateTimeOffset.UtcNow, p)));

    private static string Describe(Exception e) => e switch
    {
        ResourceException or Commands.CommandFailedException or InvalidAccountNameException => e.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}
