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
/// one executor per account (a second request joins it) and streams each transition.
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
                await audit.WriteAsync(actor, "delete", account.Id, account.Username, "started", $"job {job.Id}; {summary}", ct);
                // Registered before it runs, so the executor's own clean-up always finds its entry.
                var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var completion = Task.Run(async () => { await go.Task; return await ExecuteAsync(job, account); });
                _running[account.Id] = completion;
                go.SetResult();
                handle = new(job, completion, Joined: false);
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
            // The account row went in the same transaction that finishes a job, so this job had nothing left.
            await jobs.SucceedAsync(job, ct);
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

    private async Task<DeletionJob> ExecuteAsync(DeletionJob job, Account account)
    {
        var ct = CancellationToken.None; // a deletion, once started, is not abandoned because a caller went away
        try
        {
            Publish(job, DeletionEvent.JobResource, JobStatus.Running, null);
            foreach (var step in job.Steps) Publish(job, step.Resource, step.Status, step.Detail);

            foreach (var step in job.Steps.Where(s => s.Status is not (StepStatus.Done or StepStatus.Skipped)))
            {
                await SetStepAsync(job, step, StepStatus.Running, null);
                RemoveOutcome outcome;
                try
                {
                    var identity = AccountIdentity.From(account);
                    var resource = _resources.GetValueOrDefault(step.Resource)
                        ?? throw new ResourceException($"no handler for resource '{step.Resource}' on this server");
                    outcome = await resource.RemoveAsync(identity, ct);
                }
                catch (Exception e)
                {
                    log.LogError(e, "Deletion job {Job}: {Resource} failed", job.Id, step.Resource);
                    await SetStepAsync(job, step, StepStatus.Failed, Describe(e));
                    await jobs.FailAsync(job, ct);
                    Publish(job, DeletionEvent.JobResource, JobStatus.Failed, $"{step.Resource}: {Describe(e)}");
                    return (await jobs.FindAsync(job.Id, ct))!;
                }
                await SetStepAsync(job, step, outcome.Status, outcome.Detail);
            }

            await jobs.SucceedAsync(job, ct);
            Publish(job, DeletionEvent.JobResource, JobStatus.Succeeded, null);
            return (await jobs.FindAsync(job.Id, ct))!;
        }
        catch (Exception e)
        {
            // The journal itself could not be written: the job stays 'running' and is resumed at the next start.
            log.LogError(e, "Deletion job {Job} stopped: the journal could not be written", job.Id);
            Publish(job, DeletionEvent.JobResource, JobStatus.Failed, $"the deletion journal could not be written: {e.Message}");
            throw;
        }
        finally { _running.TryRemove(account.Id, out _); }
    }

    private async Task SetStepAsync(DeletionJob job, DeletionStep step, string status, string? detail)
    {
        await jobs.SetStepAsync(job.Id, step.Position, status, detail, CancellationToken.None);
        Publish(job, step.Resource, status, detail);
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
