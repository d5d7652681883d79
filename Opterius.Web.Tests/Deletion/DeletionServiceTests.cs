using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Deletion.DeletionTesting;

namespace Opterius.Web.Tests.Deletion;

public sealed class DeletionServiceTests(PanelApp app) : IClassFixture<PanelApp>
{
    private static readonly Viewer Admin = new(0, true);

    private AccountDeletionService Service => app.Get<AccountDeletionService>();

    /// <summary>The same service with one real resource wrapped (an injected failure or a gate).</summary>
    private AccountDeletionService ServiceWith(string key, Func<IAccountResource, IAccountResource> wrap) =>
        ServiceOf(app.Services, r => r.Key == key ? wrap(r) : r);

    /// <summary>What each step of a deletion of a freshly created account reports: only its processes were never there.</summary>
    private static string ExpectedStatus(string key) => key is "processes" or "user_files" ? StepStatus.Skipped : StepStatus.Done;

    private async Task<DeletionJob> DeleteAsync(Account account, AccountDeletionService? service = null) =>
        await (await (service ?? Service).StartAsync(app.AdminActor(), account.Id, default)).Completion;

    [Fact]
    public async Task CreatingThenDeletingRemovesEveryResourceTheRowAndFinishesTheJob()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var before = await app.InspectAllAsync(account);
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
        var after = await app.InspectAllAsync(account);
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
        foreach (var n in neighbours) before[n.Id] = await app.InspectAllAsync(n);
        var homes = neighbours.ToDictionary(n => n.Id, n => TreeFingerprint(Path.Combine(PrivateServices.SandboxRoot, "home", n.Username)));

        Assert.Equal(JobStatus.Succeeded, (await DeleteAsync(target)).Status);

        foreach (var n in neighbours)
        {
            var after = await app.InspectAllAsync(n);
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
        // The steps of earlier stages and the rest of the failed step's own stage finished; no later stage started.
        var stage = DeletionOrder.StageOf(key);
        Assert.All(failed.Steps.Where(s => s.Resource != key && DeletionOrder.StageOf(s.Resource) <= stage),
            s => Assert.Equal((s.Resource, expected[s.Resource]), (s.Resource, s.Status)));
        Assert.All(failed.Steps.Where(s => DeletionOrder.StageOf(s.Resource) > stage), s => Assert.Equal((s.Resource, StepStatus.Pending), (s.Resource, s.Status)));
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);

        var resumed = await DeleteAsync(account, service);

        Assert.Equal(failed.Id, resumed.Id);
        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.All(resumed.Steps, s => Assert.Equal(ExpectedStatus(s.Resource), s.Status));
        Assert.True(resumed.Verification!.Passed);
        Assert.All((await app.InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
    }

    [Fact]
    public async Task AJobJournalledBeforeNewStepsExistedGainsThemInOrderWhenResumedAndRunsAndVerifiesThem()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        // A failed job as an older panel journalled it: no logins, no user_files; its first step failed, processes skipped.
        var older = DeletionOrder.Keys.Where(k => k is not ("logins" or "user_files")).ToList();
        var jobId = await app.Databases.PanelScalarAsync<long>("""
            INSERT INTO deletion_jobs (account_id, username, domain, owner_id, status, requested_by, created_at, updated_at, finished_at)
            VALUES (@Id, @Username, @Domain, @OwnerId, 'failed', 'admin', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6));
            UPDATE accounts SET status = 'deletion_failed' WHERE id = @Id;
            SELECT LAST_INSERT_ID();
            """, account);
        foreach (var (key, i) in older.Select((k, i) => (k, i)))
            await app.Databases.PanelScalarAsync<object?>(
                "INSERT INTO deletion_steps (job_id, position, resource, status, detail) VALUES (@jobId, @position, @key, @status, @detail)",
                new { jobId, position = i + 1, key, status = i == 0 ? StepStatus.Failed : key == "processes" ? StepStatus.Skipped : StepStatus.Pending,
                      detail = key == "processes" ? "skipped by the older panel" : null });
        var removals = new ConcurrentDictionary<string, int>();

        var resumed = await DeleteAsync(account, ServiceOf(app.Services, r => new CountingResource(r, removals)));

        Assert.Equal(jobId, resumed.Id);
        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.Equal(DeletionOrder.Keys, resumed.Steps.Select(s => s.Resource));
        Assert.Equal(Enumerable.Range(1, DeletionOrder.Keys.Count), resumed.Steps.Select(s => s.Position));
        Assert.All(resumed.Steps.Where(s => s.Resource != "processes"), s => Assert.Equal((s.Resource, expected[s.Resource]), (s.Resource, s.Status)));
        var kept = resumed.Steps.Single(s => s.Resource == "processes");
        Assert.Equal((StepStatus.Skipped, "skipped by the older panel"), (kept.Status, kept.Detail));
        Assert.Equal(1, removals.GetValueOrDefault("logins"));
        Assert.Equal(1, removals.GetValueOrDefault("user_files"));
        Assert.Equal(0, removals.GetValueOrDefault("processes"));
        Assert.Equal(DeletionOrder.Keys, resumed.Verification!.Resources.Select(r => r.Resource));
        Assert.True(resumed.Verification.Passed);
        Assert.All((await app.InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there: {i.Summary}"));
    }

    [Fact]
    public async Task AnAccountWhoseDeletionFailedAfterLockingItsLoginsCannotBeUnsuspendedAndTheRefusalSaysWhy()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var failed = await DeleteAsync(account, ServiceWith("nginx_vhost", r => new FailOnceResource(r)));
        Assert.Equal((JobStatus.Failed, StepStatus.Done), (failed.Status, failed.Steps.Single(s => s.Resource == "logins").Status));
        Assert.False((await app.InspectAllAsync(account))["logins"].Exists); // locked
        var client = await app.ClientAsync();
        var before = await app.SnapshotAsync(account.Id);

        var response = await client.PostAsync($"/api/v1/accounts/{account.Id}/unsuspend", null);

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Conflict, $"expected 409, got {(int)response.StatusCode}: {body}");
        Assert.Equal("conflict", body.Error());
        Assert.Equal(
            $"Account '{account.Username}' is deletion_failed: its deletion already locked its logins and removed parts of it, so it cannot be "
            + $"unsuspended or kept; DELETE /api/v1/accounts/{account.Id} resumes the deletion.",
            body.GetProperty("message").GetString());
        Assert.Equal(before, await app.SnapshotAsync(account.Id));

        Assert.Equal(JobStatus.Succeeded, (await DeleteAsync(account)).Status);
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

        // Early: each step goes pending → running → done/skipped, the steps start in the order (the steps of a stage run
        // together, stages one after another: DeletionStagesTests), then the job ends.
        var transitions = early.Where(e => e.Resource != DeletionEvent.JobResource && e.Status != StepStatus.Pending && !e.IsProgress).ToList();
        Assert.Equal(DeletionOrder.Keys, transitions.Where(e => e.Status == StepStatus.Running).Select(e => e.Resource));
        Assert.All(DeletionOrder.Keys, k => Assert.Equal($"{k}: {StepStatus.Running} {ExpectedStatus(k)}",
            $"{k}: {string.Join(' ', transitions.Where(e => e.Resource == k).Select(e => e.Status))}"));
        Assert.True(early[^1].IsJobEnd);
        Assert.Equal(JobStatus.Succeeded, early[^1].Status);

        // Late: the state at subscription (mailboxes running, earlier stages finished, its stage running or finished, later
        // stages pending), then only what changed after it.
        var state = current.Where(e => e.Resource != DeletionEvent.JobResource).ToDictionary(e => e.Resource, e => e.Status);
        var stage = DeletionOrder.StageOf("mailboxes");
        Assert.Equal(DeletionOrder.Keys, state.Keys);
        Assert.All(DeletionOrder.Keys.Where(k => DeletionOrder.StageOf(k) < stage), k => Assert.Equal((k, ExpectedStatus(k)), (k, state[k])));
        Assert.Equal(StepStatus.Running, state["mailboxes"]);
        Assert.All(DeletionOrder.Stages[stage], k => Assert.Contains(state[k], new[] { StepStatus.Running, ExpectedStatus(k) }));
        Assert.All(DeletionOrder.Keys.Where(k => DeletionOrder.StageOf(k) > stage), k => Assert.Equal((k, StepStatus.Pending), (k, state[k])));
        Assert.DoesNotContain(late, e => e.Resource != DeletionEvent.JobResource && DeletionOrder.StageOf(e.Resource) < stage);
        Assert.Contains(late, e => e.Resource == "mailboxes" && e.Status == ExpectedStatus("mailboxes"));
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
        Assert.True((await app.InspectAllAsync(account))["cron"].Exists);
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);
        await WaitForAsync(async () => (await app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username, Outcome: JobStatus.Failed), default)).Total == 1);

        var resumed = await DeleteAsync(account, service);

        Assert.Equal(failed.Id, resumed.Id);
        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.All(resumed.Steps, s => Assert.Equal(ExpectedStatus(s.Resource), s.Status));
        Assert.All(DeletionOrder.Keys, k => Assert.Equal(k == "cron" ? 2 : 1, removals.GetValueOrDefault(k)));
        Assert.True(resumed.Verification!.Passed);
        Assert.True(resumed.Verification.CheckedAt >= failed.Verification.CheckedAt);
        Assert.All((await app.InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there: {i.Summary}"));
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
        // Each stage: its steps start in the order, then end together (in whatever order they finish).
        foreach (var stage in DeletionOrder.Stages)
        {
            expected.AddRange(stage.Select(k => (k, StepStatus.Running)));
            expected.AddRange(stage.Select(k => (k, ExpectedStatus(k))));
        }
        expected.Add((DeletionEvent.JobResource, JobStatus.Succeeded));
        List<(string, string)> got;
        lock (seen) got = [.. seen];
        var at = 1 + DeletionOrder.Keys.Count;
        foreach (var stage in DeletionOrder.Stages)
        {
            at += stage.Count; // the stage's ends, in finishing order: compared as a set
            var ends = got.GetRange(at, Math.Min(stage.Count, got.Count - at)).OrderBy(e => DeletionOrder.Keys.ToList().IndexOf(e.Item1)).ToList();
            for (var i = 0; i < ends.Count; i++) got[at + i] = ends[i];
            at += stage.Count;
        }
        Assert.Equal(expected, got);
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
