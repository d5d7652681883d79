using System.Collections.Concurrent;
using System.Diagnostics;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Deletion.DeletionTesting;

namespace Opterius.Web.Tests.Deletion;

/// <summary>
/// One executor per job across panel processes: the lease in the journal, its heartbeat, takeover and start-up resume,
/// and the one lock order of the journal's writes.
/// </summary>
public sealed class DeletionLeaseTests(PanelApp app) : IClassFixture<PanelApp>
{
    private static readonly Viewer Admin = new(0, true);

    private AccountDeletionService Service => app.Get<AccountDeletionService>();

    [Fact]
    public async Task AJobLeftRunningByAPanelThatCrashedSecondsAgoIsResumedAtStartUpOnceItsLeaseRunsOut()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        // What a crash and a quick restart leave: a journal opened, the account deleting, a step running, and the dead
        // process's lease still live for a few seconds (systemd restarts the panel well within a lease).
        var job = await store.OpenAsync(account, "crashed panel", default) ?? throw new InvalidOperationException("account row missing");
        await store.SetStepAsync(job.Id, job.Steps[0].Position, StepStatus.Running, null, default);
        await app.LeaseToAsync(job.Id, "crashed-host/4242/gone", TimeSpan.FromSeconds(3));

        await Service.ResumeInterruptedAsync(default); // once, as start-up does

        var finished = await app.WaitForJobAsync(job.Id);
        Assert.Equal(JobStatus.Succeeded, finished.Status);
        Assert.Equal(store.Holder, finished.LeaseHolder);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
        Assert.All((await app.InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
    }

    [Fact]
    public async Task StartUpLeavesAJobWithALiveLeaseToItsHolderAndTakesItOverOnceTheLeaseRunsOutWithoutBeingAskedAgain()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        var job = await store.OpenAsync(account, "another panel process", default) ?? throw new InvalidOperationException("account row missing");
        await app.LeaseToAsync(job.Id, "other-host/77/alive", TimeSpan.FromSeconds(4));
        var removals = new ConcurrentDictionary<string, int>();
        var service = ServiceOf(app.Services, r => new CountingResource(r, removals));

        await service.ResumeInterruptedAsync(default);

        await Task.Delay(TimeSpan.FromSeconds(2));
        var untouched = (await store.FindAsync(job.Id, default))!;
        Assert.Equal(JobStatus.Running, untouched.Status);
        Assert.Equal("other-host/77/alive", untouched.LeaseHolder);
        Assert.All(untouched.Steps, s => Assert.Equal(StepStatus.Pending, s.Status));
        Assert.Empty(removals);
        Assert.True(Directory.Exists(Path.Combine(PrivateServices.SandboxRoot, "home", account.Username)));

        var finished = await app.WaitForJobAsync(job.Id);

        Assert.Equal(JobStatus.Succeeded, finished.Status);
        Assert.Equal(store.Holder, finished.LeaseHolder);
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
    }

    [Fact]
    public async Task TwoPanelProcessesDeletingOneAccountAtTheSameMomentRunOneExecutorAndBothGetItsOutcome()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        await using var second = app.SecondPanel();
        Assert.NotEqual(app.Get<DeletionJobStore>().Holder, second.GetRequiredService<DeletionJobStore>().Holder);
        var removals = new ConcurrentDictionary<string, int>();
        // Each process holds its cron step until both requests are in, so the two deletions overlap for sure.
        var gates = new List<GatedResource>();
        IAccountResource Wrap(IAccountResource r)
        {
            if (r.Key != "cron") return new CountingResource(r, removals);
            var gated = new GatedResource(new CountingResource(r, removals));
            lock (gates) gates.Add(gated);
            return gated;
        }
        var first = ServiceOf(app.Services, Wrap);
        var other = ServiceOf(second, Wrap);

        var handles = await Task.WhenAll(
            Task.Run(() => first.StartAsync(app.AdminActor(), account.Id, default)),
            Task.Run(() => other.StartAsync(app.AdminActor(), account.Id, default)));
        foreach (var g in gates) g.Gate.SetResult();
        var results = await Task.WhenAll(handles.Select(h => h.Completion));

        Assert.Single(handles, h => !h.Joined);
        Assert.Equal(handles[0].Job.Id, handles[1].Job.Id);
        Assert.All(results, r => Assert.Equal(JobStatus.Succeeded, r.Status));
        Assert.All(results, r => Assert.Equal(handles[0].Job.Id, r.Id));
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM deletion_jobs WHERE account_id = @id", new { id = account.Id }));
        Assert.All((await app.InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
    }

    [Fact]
    public async Task AHolderBusyWithOneLongStepKeepsItsLeaseAliveAndTheOtherProcessWaitsWithoutPlanningOrTakingOver()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        // The holder's lease lasts 3 s without a heartbeat; its processes step is held for three times that.
        await using var holderPanel = app.SecondPanel(leaseSeconds: 3);
        var removals = new ConcurrentDictionary<string, int>();
        var waiterInspections = new ConcurrentDictionary<string, int>();
        var gated = new GatedResource(new CountingResource(holderPanel.GetServices<IAccountResource>().Single(r => r.Key == "processes"), removals));
        var holder = ServiceOf(holderPanel, r => r.Key == "processes" ? gated : new CountingResource(r, removals));
        var waiter = ServiceOf(app.Services, r => new CountingResource(r, removals, waiterInspections));

        var running = await holder.StartAsync(app.AdminActor(), account.Id, default);
        await gated.Entered.Task;
        var expiresAtFirst = (await app.Get<DeletionJobStore>().FindAsync(running.Job.Id, default))!.LeaseExpiresAt;
        var joined = await waiter.StartAsync(app.AdminActor(), account.Id, default);
        await Task.Delay(TimeSpan.FromSeconds(9));

        var midway = (await app.Get<DeletionJobStore>().FindAsync(running.Job.Id, default))!;
        Assert.Equal(holderPanel.GetRequiredService<DeletionJobStore>().Holder, midway.LeaseHolder);
        Assert.True(midway.LeaseExpiresAt > expiresAtFirst!.Value.AddSeconds(5), $"the lease was not renewed: {expiresAtFirst} then {midway.LeaseExpiresAt}");
        Assert.Equal(StepStatus.Running, midway.Steps.Single(s => s.Resource == "processes").Status);
        Assert.False(joined.Completion.IsCompleted);
        Assert.True(waiterInspections.IsEmpty, $"a request joining another process's job planned it: {string.Join(", ", waiterInspections.Keys)}");
        gated.Gate.SetResult();
        var results = await Task.WhenAll(running.Completion, joined.Completion);

        Assert.False(running.Joined);
        Assert.True(joined.Joined);
        Assert.All(results, r => Assert.Equal(JobStatus.Succeeded, r.Status));
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
    }

    [Fact]
    public async Task AHolderThatCannotRenewItsLeaseStopsItsStepBeforeAnotherProcessTakesOverSoTheStepRunsOnce()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        // The holder reaches the panel database through a link the test cuts while the holder is inside its processes step
        // (a stage of its own, so no other step of the holder's is running to journal its end through the cut link):
        // from then on none of its renewals arrive (a network split, or a process frozen longer than its lease).
        await using var link = new DatabaseLink(PrivateServices.MariaDbSocket);
        var throughLink = new MySqlConnectionStringBuilder(app.Databases.Panel) { Server = link.Path }.ConnectionString;
        await using var holderPanel = app.SecondPanel(leaseSeconds: 3, panelConnection: throughLink);
        var removals = new ConcurrentDictionary<string, int>();
        var gated = new GatedResource(new CountingResource(holderPanel.GetServices<IAccountResource>().Single(r => r.Key == "processes"), removals));
        var holder = ServiceOf(holderPanel, r => r.Key == "processes" ? gated : new CountingResource(r, removals));
        var waiter = ServiceOf(app.Services, r => new CountingResource(r, removals));

        var running = await holder.StartAsync(app.AdminActor(), account.Id, default);
        await gated.Entered.Task;
        link.Cut();
        var joined = await waiter.StartAsync(app.AdminActor(), account.Id, default);
        Assert.True(joined.Joined, "the holder's lease was live when the other process asked");
        var taken = await joined.Completion.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.Equal(JobStatus.Succeeded, taken.Status);
        Assert.Equal(app.Get<DeletionJobStore>().Holder, taken.LeaseHolder);
        Assert.True(gated.Cancelled.Task.IsCompleted, "the holder's step was not cancelled when its lease could no longer be renewed");
        // The holder's link comes back and its step would go on now: it must have stopped, and it ends with the outcome.
        link.Restore();
        gated.Gate.SetResult();
        var followed = await running.Completion.WaitAsync(TimeSpan.FromMinutes(1));

        Assert.Equal(JobStatus.Succeeded, followed.Status);
        Assert.Equal(taken.Id, followed.Id);
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
    }

    [Fact]
    public async Task AJobWhoseHolderStoppedRenewingIsWaitedForUntilItsLeaseAndAGraceRunOutThenTakenOverRunOnceAndAudited()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        // What a panel that died mid-step leaves: its lease, still live for a few seconds, on a running step.
        var job = await store.OpenAsync(account, "a panel that died", default) ?? throw new InvalidOperationException("account row missing");
        await store.SetStepAsync(job.Id, job.Steps[0].Position, StepStatus.Running, null, default);
        await app.LeaseToAsync(job.Id, "gone-host/4242/dead", TimeSpan.FromSeconds(3));
        var removals = new ConcurrentDictionary<string, int>();
        var service = ServiceOf(app.Services, r => new CountingResource(r, removals));
        var clock = Stopwatch.StartNew();

        var handle = await service.StartAsync(app.AdminActor(), account.Id, default);

        Assert.True(handle.Joined, "a job another process holds a live lease on is waited for, not run");
        // Past the lease itself: a holder that cannot renew stops by half its lease, so half a lease more is its grace.
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        Assert.Empty(removals);
        var waiting = (await store.FindAsync(job.Id, default))!;
        Assert.Equal("gone-host/4242/dead", waiting.LeaseHolder);
        Assert.Equal(StepStatus.Running, waiting.Steps[0].Status);

        var done = await handle.Completion;

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(4), $"taken over after {clock.Elapsed}, before the lease and its grace ran out");
        Assert.Equal(JobStatus.Succeeded, done.Status);
        Assert.Equal(job.Id, done.Id);
        Assert.Equal(store.Holder, done.LeaseHolder);
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
        Assert.True(done.Verification!.Passed);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
        var audit = await app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username, Action: "delete"), default);
        Assert.Contains(audit.Items, e => e.Outcome == "resumed" && e.Detail!.Contains($"job {job.Id}") && e.Detail.Contains("gone-host/4242/dead"));
    }

    [Fact]
    public async Task RecordingAStepWaitsBehindATakeOverOfTheSameJobInsteadOfDeadlockingWithIt()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        var job = await store.OpenAsync(account, "a holder recording a step", default) ?? throw new InvalidOperationException("account row missing");
        var step = job.Steps[0];
        Assert.True(await store.SetStepAsync(job.Id, step.Position, StepStatus.Running, null, default));
        // Another process's takeover, holding its locks in the order a takeover takes them: the job, then its steps.
        await using var other = new MySqlConnection(app.Databases.Panel);
        await other.OpenAsync();
        await using var takeover = await other.BeginTransactionAsync();
        await other.ExecuteAsync("SELECT id FROM deletion_jobs WHERE id = @Id FOR UPDATE", new { job.Id }, takeover);

        var recording = store.SetStepAsync(job.Id, step.Position, StepStatus.Done, null, default);
        await WaitForAsync(async () => recording.IsCompleted
            || await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'") > 0);
        await other.ExecuteAsync("UPDATE deletion_steps SET updated_at = UTC_TIMESTAMP(6) WHERE job_id = @Id AND status = 'running'", new { job.Id }, takeover);
        await takeover.CommitAsync();

        Assert.True(await recording.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal(StepStatus.Done, (await store.FindAsync(job.Id, default))!.Steps[0].Status);
        Assert.Equal(JobStatus.Succeeded, (await (await Service.StartAsync(app.AdminActor(), account.Id, default)).Completion).Status);
    }

    [Fact]
    public async Task AProcessWhoseJobAnotherTookOverWritesNothingOfItsJournalAndIsToldItLostTheLease()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        var job = await store.OpenAsync(account, "a holder about to lose its lease", default) ?? throw new InvalidOperationException("account row missing");
        var (first, second) = (job.Steps[0].Position, job.Steps[1].Position);
        Assert.True(await store.StartStepsAsync(job.Id, [first, second], default));
        Assert.True(await store.SetStepAsync(job.Id, first, StepStatus.Done, null, default));
        // What a takeover by another process leaves: the job leased to it; this process's writes come after.
        await app.LeaseToAsync(job.Id, "other-host/99/took-over", TimeSpan.FromMinutes(5));
        try
        {
            var before = await JournalAsync(job);
            string[] statuses = [StepStatus.Done, StepStatus.Running, .. job.Steps.Skip(2).Select(_ => StepStatus.Pending)];
            Assert.Equal(statuses, (await store.FindAsync(job.Id, default))!.Steps.Select(s => s.Status));

            Assert.False(await store.SetStepAsync(job.Id, second, StepStatus.Done, "written without the lease", default));
            Assert.False(await store.StartStepsAsync(job.Id, [job.Steps[2].Position, job.Steps[3].Position], default));
            Assert.False(await store.SaveVerificationAsync(job.Id, [new ResourceCheck(job.Steps[0].Resource, CheckStatus.Gone, "written without the lease")], default));
            Assert.False(await store.FailAsync(job, default));

            Assert.Equal(before, await JournalAsync(job));
        }
        finally
        {
            // Nothing left running: the foreign lease would outlive the test, and another test's start-up resume would
            // have a follower take the job over and delete the account for real once it ran out.
            await EndAsync(store, job);
        }
    }

    [Fact]
    public async Task StartingAStageOfNoStepsIsRefusedAsACallersBugNotReadAsALostLease()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        var job = await store.OpenAsync(account, "a holder starting an empty stage", default) ?? throw new InvalidOperationException("account row missing");
        try
        {
            var before = await JournalAsync(job);

            await Assert.ThrowsAsync<ArgumentException>(() => store.StartStepsAsync(job.Id, [], default));

            Assert.Equal(before, await JournalAsync(job));
        }
        finally
        {
            await EndAsync(store, job);
        }
    }

    /// <summary>The job leased back to this process and failed, so that no test leaves a running job behind.</summary>
    private async Task EndAsync(DeletionJobStore store, DeletionJob job)
    {
        await app.LeaseToAsync(job.Id, store.Holder, TimeSpan.FromMinutes(1));
        if (!await store.FailAsync(job, default)) throw new InvalidOperationException($"job {job.Id} could not be ended: it is left running");
    }

    /// <summary>Every column of the job's row, its steps, its checks and its account's row, as text to compare.</summary>
    private async Task<string> JournalAsync(DeletionJob job)
    {
        await using var c = new MySqlConnection(app.Databases.Panel);
        await c.OpenAsync();
        var lines = new List<string>();
        foreach (var sql in new[] { "SELECT * FROM deletion_jobs WHERE id = @Id", "SELECT * FROM deletion_steps WHERE job_id = @Id ORDER BY position",
                     "SELECT * FROM deletion_checks WHERE job_id = @Id ORDER BY position", "SELECT * FROM accounts WHERE id = @AccountId" })
        {
            await using var reader = await c.ExecuteReaderAsync(sql, new { job.Id, job.AccountId });
            while (await reader.ReadAsync())
                lines.Add(string.Join(", ", Enumerable.Range(0, reader.FieldCount).Select(i => $"{reader.GetName(i)}={Text(reader.GetValue(i))}")));
        }
        return string.Join("\n", lines);
        // To the microsecond: a write in the same second as the one before must show too.
        static string? Text(object value) => value is DateTime at ? at.ToString("O") : value.ToString();
    }

    [Fact]
    public async Task FinishingAJobWaitsBehindARequestOpeningItInsteadOfDeadlockingWithIt()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        var job = await store.OpenAsync(account, "a holder finishing its job", default) ?? throw new InvalidOperationException("account row missing");
        // A second DELETE opening the job at that moment, holding its locks in the order an open takes them: the account, then the job.
        await using var other = new MySqlConnection(app.Databases.Panel);
        await other.OpenAsync();
        await using var opening = await other.BeginTransactionAsync();
        await other.ExecuteAsync("SELECT status FROM accounts WHERE id = @AccountId FOR UPDATE", new { job.AccountId }, opening);

        var finishing = store.FailAsync(job, default);
        await WaitForAsync(async () => finishing.IsCompleted
            || await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'") > 0);
        await other.ExecuteAsync("SELECT id FROM deletion_jobs WHERE account_id = @AccountId FOR UPDATE", new { job.AccountId }, opening);
        await opening.CommitAsync();

        Assert.True(await finishing.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal(JobStatus.Failed, (await store.FindAsync(job.Id, default))!.Status);
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);
        Assert.Equal(JobStatus.Succeeded, (await (await Service.StartAsync(app.AdminActor(), account.Id, default)).Completion).Status);
    }
}
