using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Deletion;

public sealed class DeletionServiceTests(PanelApp app) : IClassFixture<PanelApp>
{
    private static readonly Viewer Admin = new(0, true);

    private AccountDeletionService Service => app.Get<AccountDeletionService>();

    /// <summary>The same service with one real resource wrapped (an injected failure or a gate).</summary>
    private AccountDeletionService ServiceWith(string key, Func<IAccountResource, IAccountResource> wrap) =>
        ServiceOf(app.Services, r => r.Key == key ? wrap(r) : r);

    /// <summary>A deletion service made of one panel's services, every resource passed through <paramref name="wrap"/>.</summary>
    private static AccountDeletionService ServiceOf(IServiceProvider panel, Func<IAccountResource, IAccountResource> wrap) =>
        new(panel.GetRequiredService<AccountStore>(), panel.GetRequiredService<DeletionJobStore>(), panel.GetRequiredService<DeletionEvents>(),
            panel.GetServices<IAccountResource>().Select(wrap).ToList(),
            panel.GetRequiredService<LicenseService>(), panel.GetRequiredService<AuditLog>(), NullLogger<AccountDeletionService>.Instance);

    /// <summary>
    /// A second panel process over the same panel database and server: its own service provider, so its own
    /// connection pools, event stream, in-process registry of running deletions and lease holder.
    /// </summary>
    private ServiceProvider SecondPanel(int? leaseSeconds = null)
    {
        var services = new ServiceCollection();
        var configuration = new ConfigurationBuilder().AddConfiguration(app.Services.GetRequiredService<IConfiguration>());
        if (leaseSeconds is { } seconds)
            configuration.AddInMemoryCollection(new Dictionary<string, string?> { [$"{DeletionOptions.Section}:LeaseSeconds"] = seconds.ToString() });
        services.AddSingleton<IConfiguration>(configuration.Build());
        services.AddLogging();
        services.AddOpteriusServices().AddOpteriusTokensAndLicensing();
        return services.BuildServiceProvider();
    }

    /// <summary>Hands a job's lease to another (made-up) holder until <paramref name="from"/> from now, in the database's clock.</summary>
    private Task LeaseToAsync(long jobId, string holder, TimeSpan from) =>
        app.Databases.PanelScalarAsync<object?>(
            "UPDATE deletion_jobs SET lease_holder = @holder, lease_expires_at = CURRENT_TIMESTAMP(6) + INTERVAL @micros MICROSECOND WHERE id = @jobId",
            new { jobId, holder, micros = (long)from.TotalMicroseconds });

    /// <summary>What each step of a deletion of a freshly created account reports: only its processes were never there.</summary>
    private static string ExpectedStatus(string key) => key is "processes" or "user_files" ? StepStatus.Skipped : StepStatus.Done;

    private async Task<Dictionary<string, ResourceInspection>> InspectAllAsync(Account account)
    {
        var identity = AccountIdentity.From(account);
        var all = await Task.WhenAll(app.Services.GetServices<IAccountResource>().Select(r => r.InspectAsync(identity, default)));
        return all.ToDictionary(i => i.Resource);
    }

    private async Task<DeletionJob> DeleteAsync(Account account, AccountDeletionService? service = null) =>
        await (await (service ?? Service).StartAsync(app.AdminActor(), account.Id, default)).Completion;

    [Fact]
    public async Task CreatingThenDeletingRemovesEveryResourceTheRowAndFinishesTheJob()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var before = await InspectAllAsync(account);
        var made = DeletionOrder.Keys.Where(k => k is not ("processes" or "user_files")).ToList();
        Assert.All(made, k => Assert.True(before[k].Exists, $"{k} should exist after creation: {before[k].Summary}"));

        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        var plan = await Service.PlanAsync(Admin, account.Id, default);
        Assert.Equal(DeletionOrder.Keys, plan.Resources.Select(r => r.Resource));
        Assert.True(plan.Resources.Single(r => r.Resource == "home_directory").Count > 0);

        var job = await DeleteAsync(account);

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.All(job.Steps, s => Assert.Equal((s.Resource, expected[s.Resource]), (s.Resource, s.Status)));
        Assert.NotNull(job.Verification);
        Assert.True(job.Verification.Passed);
        Assert.Equal(DeletionOrder.Keys, job.Verification.Resources.Select(r => r.Resource));
        Assert.All(job.Verification.Resources, r => Assert.Equal(CheckStatus.Gone, r.Status));
        var after = await InspectAllAsync(account);
        Assert.All(after.Values, i => Assert.False(i.Exists, $"{i.Resource} is still there: {i.Summary}"));
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
        var audit = await app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username, Action: "delete"), default);
        Assert.Contains(audit.Items, e => e.Outcome == "started" && e.Detail!.Contains("home_directory"));
        await WaitForAsync(async () => (await app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username, Outcome: JobStatus.Succeeded), default)).Total == 1);
    }

    [Fact]
    public async Task DeletingAnAccountLeavesLookAlikeNeighboursExactlyAsTheyWere()
    {
        var p = TestAccounts.NewPrefix(4);
        var target = await app.CreateAsync($"{p}bob", $"{p}example.test");
        var neighbours = new[]
        {
            await app.CreateAsync($"{p}bobby", $"{p}example.test.au"),   // username has the target's as prefix; domain has it as prefix
            await app.CreateAsync($"{p}bob2", $"sub.{p}example.test"),   // a sub-domain of the target's domain
            await app.CreateAsync($"x{p}bob", $"x{p}example.test"),      // the target's names as a suffix
        };
        var before = new Dictionary<long, Dictionary<string, ResourceInspection>>();
        foreach (var n in neighbours) before[n.Id] = await InspectAllAsync(n);
        var homes = neighbours.ToDictionary(n => n.Id, n => TreeFingerprint(Path.Combine(PrivateServices.SandboxRoot, "home", n.Username)));

        Assert.Equal(JobStatus.Succeeded, (await DeleteAsync(target)).Status);

        foreach (var n in neighbours)
        {
            var after = await InspectAllAsync(n);
            foreach (var (key, was) in before[n.Id])
            {
                var now = after[key];
                Assert.True(was.Exists == now.Exists && was.Bytes == now.Bytes && was.Count == now.Count && was.Items.SequenceEqual(now.Items),
                    $"{n.Username}'s {key} changed: {was.Summary} → {now.Summary}");
            }
            Assert.Equal(homes[n.Id], TreeFingerprint(Path.Combine(PrivateServices.SandboxRoot, "home", n.Username)));
            Assert.NotNull(await app.Get<AccountStore>().FindAsync(Admin, n.Id, default));
        }
    }

    public static TheoryData<string> EveryStep => new(DeletionOrder.Keys);

    [Theory]
    [MemberData(nameof(EveryStep))]
    public async Task AFailureAtAnyStepStopsThereReportsItAndTheNextRequestResumesAndConverges(string key)
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        var service = ServiceWith(key, r => new FailOnceResource(r));

        var failed = await DeleteAsync(account, service);

        Assert.Equal(JobStatus.Failed, failed.Status);
        var step = Assert.Single(failed.FailedSteps);
        Assert.Equal(key, step.Resource);
        Assert.Contains("injected failure", step.Detail);
        var index = DeletionOrder.Keys.ToList().IndexOf(key);
        Assert.All(failed.Steps.Take(index), s => Assert.Equal((s.Resource, expected[s.Resource]), (s.Resource, s.Status)));
        Assert.All(failed.Steps.Skip(index + 1), s => Assert.Equal(StepStatus.Pending, s.Status));
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);

        var resumed = await DeleteAsync(account, service);

        Assert.Equal(failed.Id, resumed.Id);
        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.All(resumed.Steps, s => Assert.Equal(ExpectedStatus(s.Resource), s.Status));
        Assert.True(resumed.Verification!.Passed);
        Assert.All((await InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
    }

    [Fact]
    public async Task AJobLeftRunningByACrashIsResumedAtStartUp()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        // What a crash leaves: a journal opened, the account marked deleting and a lease nobody renews any more.
        var job = await app.Get<DeletionJobStore>().OpenAsync(account, "crashed panel", default) ?? throw new InvalidOperationException("account row missing");
        await app.Get<DeletionJobStore>().SetStepAsync(job.Id, 1, StepStatus.Running, null, default);
        await LeaseToAsync(job.Id, "crashed-host/4242/gone", TimeSpan.FromSeconds(-1));

        await Service.ResumeInterruptedAsync(default);

        var finished = await WaitForJobAsync(job.Id);
        Assert.Equal(JobStatus.Succeeded, finished.Status);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
        Assert.All((await InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
    }

    [Fact]
    public async Task ARequestThatFoundTheAccountJustBeforeItsDeletionFinishedOpensNoSecondJob()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var first = await DeleteAsync(account);

        // What a late request holds: the account as it was read before the deletion finished.
        var late = await app.Get<DeletionJobStore>().OpenAsync(account, "late request", default);

        Assert.Null(late);
        Assert.Equal(first.Id, (await app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default))!.Id);
    }

    [Fact]
    public async Task AnAccountStillBeingCreatedCannotBeDeletedYet()
    {
        var name = TestAccounts.NewPrefix();
        var id = await app.Get<AccountStore>().InsertCheckedAsync(name, $"{name}.test", $"owner@{name}.test", 1, app.Admin.Id, "8.2", _ => { }, default);

        await Assert.ThrowsAsync<AccountConflictException>(() => Service.StartAsync(app.AdminActor(), id, default));

        Assert.Null(await app.Get<DeletionJobStore>().LatestForAccountAsync(id, default));
        Assert.Equal(AccountStatus.Creating, (await app.Get<AccountStore>().FindAsync(Admin, id, default))!.Status);
        await app.Get<AccountStore>().DeleteRowAsync(id, default);
    }

    [Fact]
    public async Task TwoConcurrentDeletionsOfOneAccountRunOneExecutor()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var gated = new GatedResource(app.Services.GetServices<IAccountResource>().Single(r => r.Key == "cron"));
        var service = ServiceWith("cron", _ => gated);
        var runs = new List<string>();
        using var _ = app.Get<DeletionEvents>().Subscribe(account.Id, e =>
        {
            if (e.Status == StepStatus.Running && e.Resource != DeletionEvent.JobResource && !e.IsProgress) lock (runs) runs.Add(e.Resource);
        }, out var _);

        var first = await service.StartAsync(app.AdminActor(), account.Id, default);
        await gated.Entered.Task;
        var second = await service.StartAsync(app.AdminActor(), account.Id, default);
        gated.Gate.SetResult();
        var results = await Task.WhenAll(first.Completion, second.Completion);

        Assert.False(first.Joined);
        Assert.True(second.Joined);
        Assert.Equal(first.Job.Id, second.Job.Id);
        Assert.All(results, r => Assert.Equal(JobStatus.Succeeded, r.Status));
        lock (runs) Assert.Equal(DeletionOrder.Keys, runs); // each step ran exactly once, in order
    }

    [Fact]
    public async Task TwentyAccountsDeletedConcurrentlyAllGoWithFarFewerReloadsThanAccounts()
    {
        var p = TestAccounts.NewPrefix(5);
        var accounts = new List<Account>();
        foreach (var chunk in Enumerable.Range(0, 20).Chunk(5))
            accounts.AddRange(await Task.WhenAll(chunk.Select(i => app.CreateAsync($"{p}n{i}"))));
        var reloader = app.Get<ServiceReloader>();
        var nginxBefore = reloader.RunCount("nginx");

        var handles = await Task.WhenAll(accounts.Select(a => Service.StartAsync(app.AdminActor(), a.Id, default)));
        var jobs = await Task.WhenAll(handles.Select(h => h.Completion));

        Assert.All(jobs, j => Assert.True(j.Status == JobStatus.Succeeded, string.Join("; ", j.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}"))));
        foreach (var a in accounts) Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, a.Id, default));
        var reloads = reloader.RunCount("nginx") - nginxBefore;
        Assert.InRange(reloads, 1, 5);
    }

    [Fact]
    public async Task ASubscriberSeesEveryTransitionInOrderAndALateOneGetsTheCurrentStateFirst()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var gated = new GatedResource(app.Services.GetServices<IAccountResource>().Single(r => r.Key == "mailboxes"));
        var service = ServiceWith("mailboxes", _ => gated);
        var events = app.Get<DeletionEvents>();
        var early = new List<DeletionEvent>();
        using var s1 = events.Subscribe(account.Id, e => { lock (early) early.Add(e); }, out _);

        var handle = await service.StartAsync(app.AdminActor(), account.Id, default);
        await gated.Entered.Task;
        var late = new List<DeletionEvent>();
        using var s2 = events.Subscribe(account.Id, e => { lock (late) late.Add(e); }, out var current);
        gated.Gate.SetResult();
        await handle.Completion;

        // Early: each step goes pending → running → done/skipped, steps one after another, then the job ends.
        var transitions = early.Where(e => e.Resource != DeletionEvent.JobResource && e.Status != StepStatus.Pending && !e.IsProgress).ToList();
        Assert.Equal(DeletionOrder.Keys.SelectMany(k => new[] { k, k }), transitions.Select(e => e.Resource));
        Assert.All(transitions.Where((_, i) => i % 2 == 0), e => Assert.Equal(StepStatus.Running, e.Status));
        Assert.True(early[^1].IsJobEnd);
        Assert.Equal(JobStatus.Succeeded, early[^1].Status);

        // Late: the state at subscription (mailboxes running, the steps before finished, the rest pending), then the rest.
        var state = current.Where(e => e.Resource != DeletionEvent.JobResource).ToDictionary(e => e.Resource, e => e.Status);
        Assert.Equal(StepStatus.Running, state["mailboxes"]);
        Assert.Equal(StepStatus.Pending, state["system_user"]);
        Assert.Equal(StepStatus.Done, state["nginx_vhost"]); // a created account has a vhost
        Assert.Equal("mailboxes", late[0].Resource);
        Assert.True(late[^1].IsJobEnd);
    }

    [Fact]
    public async Task AStepThatSaysDoneButLeavesItsResourceFailsTheJobNamingItAndTheNextRequestRunsOnlyThatStepAgain()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var removals = new ConcurrentDictionary<string, int>();
        var service = ServiceOf(app.Services, r => new CountingResource(r.Key == "cron" ? new LyingOnceResource(r) : r, removals));

        var failed = await DeleteAsync(account, service);

        Assert.Equal(JobStatus.Failed, failed.Status);
        Assert.All(failed.Steps.Where(s => s.Resource != "cron"), s => Assert.Equal(ExpectedStatus(s.Resource), s.Status));
        var step = Assert.Single(failed.FailedSteps);
        Assert.Equal("cron", step.Resource);
        Assert.StartsWith("still there after the last step: ", step.Detail);
        Assert.NotNull(failed.Verification);
        Assert.False(failed.Verification.Passed);
        Assert.Equal(DeletionOrder.Keys, failed.Verification.Resources.Select(r => r.Resource));
        Assert.All(failed.Verification.Resources, r => Assert.Equal(r.Resource == "cron" ? CheckStatus.Left : CheckStatus.Gone, r.Status));
        Assert.True((await InspectAllAsync(account))["cron"].Exists);
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);
        await WaitForAsync(async () => (await app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username, Outcome: JobStatus.Failed), default)).Total == 1);

        var resumed = await DeleteAsync(account, service);

        Assert.Equal(failed.Id, resumed.Id);
        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.All(resumed.Steps, s => Assert.Equal(ExpectedStatus(s.Resource), s.Status));
        Assert.All(DeletionOrder.Keys, k => Assert.Equal(k == "cron" ? 2 : 1, removals.GetValueOrDefault(k)));
        Assert.True(resumed.Verification!.Passed);
        Assert.True(resumed.Verification.CheckedAt >= failed.Verification.CheckedAt);
        Assert.All((await InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there: {i.Summary}"));
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
    }

    [Fact]
    public async Task AResourceThatCannotBeInspectedAfterTheLastStepIsUnverifiedAndTheJobDoesNotSucceed()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var service = ServiceWith("mail_users", r => new BlindOnceAfterRemovalResource(r));

        var failed = await DeleteAsync(account, service);

        Assert.Equal(JobStatus.Failed, failed.Status);
        var step = Assert.Single(failed.FailedSteps);
        Assert.Equal("mail_users", step.Resource);
        Assert.Equal("not verified after the last step: could not be inspected: IOException: injected: mail_users cannot be read", step.Detail);
        Assert.All(failed.Steps.Where(s => s.Resource != "mail_users"), s => Assert.Equal(ExpectedStatus(s.Resource), s.Status));
        Assert.All(failed.Verification!.Resources, r => Assert.Equal(r.Resource == "mail_users" ? CheckStatus.Unverified : CheckStatus.Gone, r.Status));
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);

        var resumed = await DeleteAsync(account, service);

        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.True(resumed.Verification!.Passed);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
    }

    [Fact]
    public async Task AThrowingSubscriberNeitherStopsTheDeletionNorKeepsAnyEventFromAnotherSubscriber()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var events = app.Get<DeletionEvents>();
        using var broken = events.Subscribe(account.Id, _ => throw new InvalidOperationException("a subscriber's own bug"), out _);
        var seen = new List<(string, string)>();
        using var listening = events.Subscribe(account.Id, e => { if (!e.IsProgress) lock (seen) seen.Add((e.Resource, e.Status)); }, out _);

        var job = await DeleteAsync(account);

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
        var expected = new List<(string, string)> { (DeletionEvent.JobResource, JobStatus.Running) };
        expected.AddRange(DeletionOrder.Keys.Select(k => (k, StepStatus.Pending)));
        expected.AddRange(DeletionOrder.Keys.SelectMany(k => new[] { (k, StepStatus.Running), (k, ExpectedStatus(k)) }));
        expected.Add((DeletionEvent.JobResource, JobStatus.Succeeded));
        lock (seen) Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task TwoPanelProcessesDeletingOneAccountAtTheSameMomentRunOneExecutorAndBothGetItsOutcome()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        await using var second = SecondPanel();
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
        Assert.All((await InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
    }

    [Fact]
    public async Task AHolderBusyWithOneLongStepKeepsItsLeaseAliveAndTheOtherProcessWaitsInsteadOfTakingOver()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        // The holder's lease lasts 3 s without a heartbeat; its home step is held for three times that.
        await using var holderPanel = SecondPanel(leaseSeconds: 3);
        var removals = new ConcurrentDictionary<string, int>();
        var gated = new GatedResource(new CountingResource(holderPanel.GetServices<IAccountResource>().Single(r => r.Key == "home_directory"), removals));
        var holder = ServiceOf(holderPanel, r => r.Key == "home_directory" ? gated : new CountingResource(r, removals));
        var waiter = ServiceOf(app.Services, r => new CountingResource(r, removals));

        var running = await holder.StartAsync(app.AdminActor(), account.Id, default);
        await gated.Entered.Task;
        var expiresAtFirst = (await app.Get<DeletionJobStore>().FindAsync(running.Job.Id, default))!.LeaseExpiresAt;
        var joined = await waiter.StartAsync(app.AdminActor(), account.Id, default);
        await Task.Delay(TimeSpan.FromSeconds(9));

        var midway = (await app.Get<DeletionJobStore>().FindAsync(running.Job.Id, default))!;
        Assert.Equal(holderPanel.GetRequiredService<DeletionJobStore>().Holder, midway.LeaseHolder);
        Assert.True(midway.LeaseExpiresAt > expiresAtFirst!.Value.AddSeconds(5), $"the lease was not renewed: {expiresAtFirst} then {midway.LeaseExpiresAt}");
        Assert.Equal(StepStatus.Running, midway.Steps.Single(s => s.Resource == "home_directory").Status);
        Assert.False(joined.Completion.IsCompleted);
        gated.Gate.SetResult();
        var results = await Task.WhenAll(running.Completion, joined.Completion);

        Assert.False(running.Joined);
        Assert.True(joined.Joined);
        Assert.All(results, r => Assert.Equal(JobStatus.Succeeded, r.Status));
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
    }

    [Fact]
    public async Task AJobWhoseHolderStoppedRenewingIsWaitedForUntilItsLeaseRunsOutThenTakenOverAndRunOnce()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        // What a panel that died mid-step leaves: its lease, still live for a few seconds, on a running step.
        var job = await store.OpenAsync(account, "a panel that died", default) ?? throw new InvalidOperationException("account row missing");
        await store.SetStepAsync(job.Id, 1, StepStatus.Running, null, default);
        await LeaseToAsync(job.Id, "gone-host/4242/dead", TimeSpan.FromSeconds(3));
        var removals = new ConcurrentDictionary<string, int>();
        var service = ServiceOf(app.Services, r => new CountingResource(r, removals));
        var clock = Stopwatch.StartNew();

        var handle = await service.StartAsync(app.AdminActor(), account.Id, default);

        Assert.True(handle.Joined, "a job another process holds a live lease on is waited for, not run");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Empty(removals);
        var waiting = (await store.FindAsync(job.Id, default))!;
        Assert.Equal("gone-host/4242/dead", waiting.LeaseHolder);
        Assert.Equal(StepStatus.Running, waiting.Steps[0].Status);

        var done = await handle.Completion;

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"taken over after {clock.Elapsed}, before the lease ran out");
        Assert.Equal(JobStatus.Succeeded, done.Status);
        Assert.Equal(job.Id, done.Id);
        Assert.Equal(store.Holder, done.LeaseHolder);
        Assert.All(DeletionOrder.Keys, k => Assert.True(removals.GetValueOrDefault(k) == 1, $"{k} was removed {removals.GetValueOrDefault(k)} times"));
        Assert.True(done.Verification!.Passed);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
    }

    [Fact]
    public async Task StartUpResumeLeavesAJobWithALiveLeaseToItsHolderAndTakesItOnceTheLeaseRanOut()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<DeletionJobStore>();
        var job = await store.OpenAsync(account, "another panel process", default) ?? throw new InvalidOperationException("account row missing");
        await LeaseToAsync(job.Id, "other-host/77/alive", TimeSpan.FromMinutes(1));

        await Service.ResumeInterruptedAsync(default);

        await Task.Delay(TimeSpan.FromSeconds(1));
        var untouched = (await store.FindAsync(job.Id, default))!;
        Assert.Equal(JobStatus.Running, untouched.Status);
        Assert.Equal("other-host/77/alive", untouched.LeaseHolder);
        Assert.All(untouched.Steps, s => Assert.Equal(StepStatus.Pending, s.Status));
        Assert.True(Directory.Exists(Path.Combine(PrivateServices.SandboxRoot, "home", account.Username)));

        await LeaseToAsync(job.Id, "other-host/77/alive", TimeSpan.FromSeconds(-1));
        await Service.ResumeInterruptedAsync(default);

        var finished = await WaitForJobAsync(job.Id);
        Assert.Equal(JobStatus.Succeeded, finished.Status);
        Assert.Equal(store.Holder, finished.LeaseHolder);
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, account.Id, default));
    }

    private async Task<DeletionJob> WaitForJobAsync(long jobId)
    {
        DeletionJob? job = null;
        await WaitForAsync(async () => (job = await app.Get<DeletionJobStore>().FindAsync(jobId, default))!.Finished);
        return job!;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 600; i++)
        {
            if (await condition()) return;
            await Task.Delay(100);
        }
        throw new TimeoutException("the condition did not become true within a minute");
    }

    /// <summary>Every path under a folder with its type, size and content hash (links by their target text).</summary>
    private static string TreeFingerprint(string root)
    {
        var lines = new List<string>();
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(path);
            var rel = Path.GetRelativePath(root, path);
            if (info.LinkTarget is { } target) lines.Add($"L {rel} -> {target}");
            else if (Directory.Exists(path)) lines.Add($"D {rel}");
            else lines.Add($"F {rel} {info.Length} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)))}");
        }
        return string.Join('\n', lines);
    }
}
