using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>A deletion the caller started or joined; <see cref="Completion"/> ends with the finished job.</summary>
public sealed record DeletionHandle(DeletionJob Job, Task<DeletionJob> Completion, bool Joined);

/// <summary>
/// The one deletion service behind the REST API, the UI and the CLI. It plans (inspects every resource),
/// journals a job with one step per resource, runs the steps in <see cref="DeletionOrder"/>, stops at the
/// first failure (the account becomes <c>deletion_failed</c>; the next request resumes at that step), runs
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
    ILogger<AccountDeletionService> log)
{
    private readonly Dictionary<string, IAccountResource> _resources = resources.ToDictionary(r => r.Key);
    private readonly ConcurrentDictionary<long, Task<DeletionJob>> _running = new();
    private readonly SemaphoreSlim _startGate = new(1, 1);

    /// <summary>What a deletion would remove; changes nothing. Throws <see cref="AccountNotFoundException"/>.</summary>
    public async Task<DeletionPlan> PlanAsync(Viewer viewer, long accountId, CancellationToken ct)
    {
        var account = await accounts.FindAsync(viewer, accountId, ct) ?? throw new AccountNotFoundException(accountId);
        var identity = AccountIdentity.From(account);
        var inspections = await Task.WhenAll(DeletionOrder.Keys.Select(key => InspectAsync(key, identity, ct)));
        return new(account.Id, account.Username, account.Domain, inspections);
    }

    private async Task<ResourceInspection> InspectAsync(string key, AccountIdentity identity, CancellationToken ct)
    {
        if (!_resources.TryGetValue(key, out var resource)) return ResourceInspection.Nothing(key, "not supported on this server");
        try { return await resource.InspectAsync(identity, ct); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new(key, true, [], 0, 0, $"could not be inspected: {e.Message}");
        }
    }

    /// <summary>
    /// Starts the account's deletion, resumes its failed or interrupted one, or joins the one running.
    /// Refused before anything changes when the license is not valid or the account is not the caller's.
    /// </summary>
    public async Task<DeletionHandle> StartAsync(Actor actor, long accountId, CancellationToken ct)
    {
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

        try { return await StartOrJoinAsync(actor, account, ct); }
        catch (Exception e) when (e is AccountConflictException or InvalidAccountNameException)
        {
            await audit.WriteAsync(actor, "delete", account.Id, account.Username, "refused", e.Message, CancellationToken.None);
            throw;
        }
    }

    private async Task<DeletionHandle> StartOrJoinAsync(Actor actor, Account account, CancellationToken ct)
    {
        // Planned outside the gate: inspecting a large home takes a while, and other accounts' starts must not wait.
        var summary = _running.ContainsKey(account.Id) ? null : await PlanSummaryAsync(account, ct);
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
                summary ??= await PlanSummaryAsync(account, ct);
                var job = await jobs.OpenAsync(account, actor.Name, ct);
                if (job is null)
                {
                    // The deletion this request meant to join finished in between: its outcome is the answer.
                    var finished = await jobs.LatestForAccountAsync(account.Id, ct) ?? throw new AccountNotFoundException(account.Id);
                    return new(finished, Task.FromResult(finished), Joined: true);
                }
                // Not ours when another panel process holds a live lease on it: then this request waits for that
                // process's outcome (and takes the job over if its holder stops renewing), never running it twice.
                var held = job.LeaseHolder == jobs.Holder;
                if (held) await audit.WriteAsync(actor, "delete", account.Id, account.Username, "started", $"job {job.Id}; {summary}", ct);
                // Registered before it runs, so the driver's own clean-up always finds its entry.
                var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var completion = Task.Run(async () => { await go.Task; return await DriveAsync(job, account, held); });
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

    /// <summary>Resumes every job a crash or restart left running (called once at start-up).</summary>
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

    private async Task<string> PlanSummaryAsync(Account account, CancellationToken ct)
    {
        var plan = await PlanAsync(new Viewer(0, true), account.Id, ct);
        return string.Join("; ", plan.Resources.Where(r => r.Exists).Select(r => $"{r.Resource}: {r.Summary}"));
    }

    /// <summary>Runs the job while this process holds its lease, follows it while another does; ends with the finished job.</summary>
    private async Task<DeletionJob> DriveAsync(DeletionJob job, Account account, bool held)
    {
        try
        {
            while (true)
            {
                if (held && await ExecuteAsync(job, account) is { } done) return done;
                (job, held) = await FollowAsync(job);
                if (job.Finished) return job;
            }
        }
        finally { _running.TryRemove(account.Id, out _); }
    }

    /// <returns>The finished job, or null when another process took the lease over (it carries on from the journal).</returns>
    private async Task<DeletionJob?> ExecuteAsync(DeletionJob job, Account account)
    {
        var ct = CancellationToken.None; // a deletion, once started, is not abandoned because a caller went away
        using var stop = new CancellationTokenSource();
        var heartbeat = HeartbeatAsync(job.Id, stop.Token);
        try
        {
            Publish(job, DeletionEvent.JobResource, JobStatus.Running, null);
            foreach (var step in job.Steps) Publish(job, step.Resource, step.Status, step.Detail);

            foreach (var step in job.Steps.Where(s => s.Status is not (StepStatus.Done or StepStatus.Skipped)))
            {
                if (!await SetStepAsync(job, step, StepStatus.Running, null)) return LeaseLost(job);
                RemoveOutcome outcome;
                try
                {
                    var identity = AccountIdentity.From(account);
                    var resource = _resources.GetValueOrDefault(step.Resource)
                        ?? throw new ResourceException($"no handler for resource '{step.Resource}' on this server");
                    if (resource is IReportsRemovalProgress reports)
                    {
                        // A long step says how far it is as its running detail (the hub and the dialog show it).
                        var progress = new StepProgress(detail => Publish(job, step.Resource, StepStatus.Running, detail));
                        outcome = await reports.RemoveAsync(identity, progress.Report, ct);
                        progress.Flush();
                    }
                    else outcome = await resource.RemoveAsync(identity, ct);
                }
                catch (Exception e)
                {
                    log.LogError(e, "Deletion job {Job}: {Resource} failed", job.Id, step.Resource);
                    if (!await SetStepAsync(job, step, StepStatus.Failed, Describe(e)) || !await jobs.FailAsync(job, ct)) return LeaseLost(job);
                    Publish(job, DeletionEvent.JobResource, JobStatus.Failed, $"{step.Resource}: {Describe(e)}");
                    return (await jobs.FindAsync(job.Id, ct))!;
                }
                if (!await SetStepAsync(job, step, outcome.Status, outcome.Detail)) return LeaseLost(job);
            }

            // A step's own word is not enough: only inspecting everything again says nothing is left.
            var checks = await Task.WhenAll(job.Steps.Select(s => CheckAsync(s.Resource, account)));
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
        finally
        {
            await stop.CancelAsync();
            await heartbeat;
        }
    }

    private DeletionJob? LeaseLost(DeletionJob job)
    {
        log.LogWarning("Deletion job {Job}: another panel process took its lease over; following it instead", job.Id);
        return null;
    }

    /// <summary>Renews the lease while the job runs here; never throws (a missed renewal is retried at the next beat).</summary>
    private async Task HeartbeatAsync(long jobId, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(jobs.HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    if (await jobs.RenewLeaseAsync(jobId, stop)) continue;
                    log.LogWarning("Deletion job {Job}: the lease is no longer this process's", jobId);
                    return;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.LogWarning(e, "Deletion job {Job}: could not renew the lease; trying again", jobId);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>
    /// Follows a job another process holds: publishes what its journal shows to this process's subscribers, and
    /// returns when it finishes or when its holder stopped renewing and this process took the lease over.
    /// </summary>
    private async Task<(DeletionJob Job, bool Held)> FollowAsync(DeletionJob job)
    {
        var ct = CancellationToken.None;
        var seen = new Dictionary<string, (string, string?)>();
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
                return (job, false);
            }
            await Task.Delay(jobs.PollInterval, ct);
            if (await jobs.TryTakeOverAsync(job.Id, ct))
            {
                log.LogWarning("Deletion job {Job}: its holder {Holder} stopped renewing the lease; this process takes it over", job.Id, job.LeaseHolder);
                return ((await jobs.FindAsync(job.Id, ct))!, true);
            }
            job = await jobs.FindAsync(job.Id, ct) ?? throw new InvalidOperationException($"deletion job {job.Id} vanished from the journal");
        }
    }

    private async Task<ResourceCheck> CheckAsync(string key, Account account)
    {
        if (!_resources.TryGetValue(key, out var resource)) return new(key, CheckStatus.Unverified, "no handler for this resource on this server");
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

    private static string Describe(Exception e) => e switch
    {
        ResourceException or Commands.CommandFailedException or InvalidAccountNameException => e.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    private static string FailureText(Task<DeletionJob> t) =>
        t.IsCompletedSuccessfully
            ? string.Concat(t.Result.FailedSteps.Select(s => $"; {s.Resource} failed: {s.Detail}"))
            : $"; {t.Exception?.GetBaseException().Message}";
}
