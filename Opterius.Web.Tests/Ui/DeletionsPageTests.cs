using Bunit;
using Dapper;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Components.Pages.Deletions;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The Deletions page, progress of long steps (dialog and page), and the overview.</summary>
public sealed class DeletionsPageTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;

    public DeletionsPageTests(PanelApp app)
    {
        _app = app;
        _auth = this.UsePanel(app);
    }

    public Task InitializeAsync()
    {
        Render<MudPopoverProvider>();
        return Task.CompletedTask;
    }

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    /// <summary>A journalled job of a bare account row, in a given status, with one failed step when failed.</summary>
    private async Task<(Account Account, long JobId)> JobAsync(string prefix, long ownerId, string status)
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername(prefix), ownerId,
            status == JobStatus.Failed ? AccountStatus.DeletionFailed : AccountStatus.Deleting);
        var job = await _app.Get<DeletionJobStore>().OpenAsync(account, "tests", default) ?? throw new InvalidOperationException("account row missing");
        await using var c = new MySqlConnection(_app.Databases.Panel);
        await c.ExecuteAsync("UPDATE deletion_jobs SET status = @status, lease_holder = NULL WHERE id = @id", new { status, id = job.Id });
        if (status == JobStatus.Failed)
            await c.ExecuteAsync("UPDATE deletion_steps SET status = 'failed', detail = 'mailbox folder is busy' WHERE job_id = @id AND resource = 'mailboxes'", new { id = job.Id });
        return (account, job.Id);
    }

    private static IReadOnlyList<string> Usernames(IRenderedComponent<DeletionsPage> page) =>
        page.FindAll("[data-testid=deletions-grid] tbody tr .mono").Select(e => e.TextContent).ToList();

    [Fact]
    public async Task AFailedDeletionShowsItsFailedStepAndRetryFinishesItThroughTheDeletionService()
    {
        _auth.SignIn(_app.Admin);
        var account = await _app.CreateAsync(UiKit.NewUsername("opsr"));
        var expected = await _app.ExpectedStepStatusesAsync(account.Id);
        var failing = DeletionTesting.ServiceOf(_app.Services, r => r.Key == "cron" ? new FailOnceResource(r) : r);
        var failed = await (await failing.StartAsync(_app.AdminActor(), account.Id, default)).Completion;
        Assert.Equal(JobStatus.Failed, failed.Status);

        var page = Render<DeletionsPage>();
        await page.SearchAsync(account.Username);
        page.WaitForAssertion(() => Assert.Equal([account.Username], Usernames(page)), Patience);
        var step = page.Find("[data-testid=failed-step]");
        Assert.Equal("cron", step.GetAttribute("data-resource"));
        Assert.Contains("injected failure in cron", step.TextContent);

        await page.ClickAsync("[data-testid=deletion-retry]");

        page.WaitForAssertion(() => Assert.Equal(JobStatus.Succeeded, page.Find("[data-testid=job-status]").TextContent), Patience);
        Assert.Empty(page.FindAll("[data-testid=deletion-retry]"));
        var job = await _app.Get<DeletionJobStore>().FindAsync(failed.Id, default);
        Assert.Equal(JobStatus.Succeeded, job!.Status);
        Assert.Equal(expected, job.Steps.ToDictionary(s => s.Resource, s => s.Status));
        Assert.Null(await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default));
        // The retry is the signed-in admin's, in the audit log like any other delete (written once the job's completion
        // is in, a moment after the event that showed it here).
        await DeletionTesting.WaitForAsync(async () => (await _app.Get<AuditLog>().ListAsync(
            new AuditQuery(Account: account.Username, Actor: _app.Admin.Username, Outcome: JobStatus.Succeeded), default)).Total == 1);
    }

    [Fact]
    public async Task TheStatusFilterAndTheSearchNarrowTheJobsOnTheServer()
    {
        _auth.SignIn(_app.Admin);
        var prefix = "opsf" + TestAccounts.NewPrefix(4);
        var failed = await JobAsync(prefix, _app.Admin.Id, JobStatus.Failed);
        var running = await JobAsync(prefix, _app.Admin.Id, JobStatus.Running);
        var other = await JobAsync("opsx", _app.Admin.Id, JobStatus.Failed);

        var page = Render<DeletionsPage>();
        await page.SearchAsync(prefix);
        page.WaitForAssertion(() => Assert.Equal(
            new[] { failed.Account.Username, running.Account.Username }.Order(), Usernames(page).Order()), Patience);
        Assert.DoesNotContain(other.Account.Username, page.Markup);

        await page.ClickAsync("[data-testid=deletions-status] [data-status=failed]");
        page.WaitForAssertion(() => Assert.Equal([failed.Account.Username], Usernames(page)), Patience);
        Assert.Contains("mailbox folder is busy", page.Find("[data-testid=failed-step]").TextContent);

        await page.ClickAsync("[data-testid=deletions-status] [data-status=running]");
        page.WaitForAssertion(() => Assert.Equal([running.Account.Username], Usernames(page)), Patience);
        Assert.Empty(page.FindAll("[data-testid=deletion-retry]"));
    }

    [Fact]
    public async Task AResellerSeesTheDeletionsOfItsOwnAccountsOnly()
    {
        var reseller = await _app.NewResellerAsync();
        _auth.SignIn(reseller);
        var prefix = "opso" + TestAccounts.NewPrefix(4);
        var own = await JobAsync(prefix, reseller.Id, JobStatus.Failed);
        var foreign = await JobAsync(prefix, _app.Admin.Id, JobStatus.Failed);

        var page = Render<DeletionsPage>();
        await page.SearchAsync(prefix);

        page.WaitForAssertion(() => Assert.Equal([own.Account.Username], Usernames(page)), Patience);
        Assert.DoesNotContain(foreign.Account.Username, page.Markup);
        var page2 = await _app.Get<DeletionJobList>().ListAsync(new Viewer(reseller.Id, false), new DeletionJobQuery(Search: prefix), default);
        Assert.Equal([own.JobId], page2.Items.Select(j => j.Id));
    }

    [Fact]
    public async Task ARealHomeRemovalHandsItsFilesAndBytesOfThePlanToTheUiAsNumbers()
    {
        var account = await _app.CreateAsync(UiKit.NewUsername("opsh"));
        var many = Path.Combine(Api.ApiKit.HomeOf(account.Username), "public_html", "cache");
        Directory.CreateDirectory(many);
        for (var i = 0; i < 5000; i++) File.WriteAllBytes(Path.Combine(many, $"f{i}"), new byte[100]);
        var seen = new List<DeletionEvent>();
        using var _ = _app.Get<DeletionEvents>().Subscribe(account.Id, e =>
        {
            if (e.Resource == "home_directory" && e.Progress is not null) lock (seen) seen.Add(e);
        }, out var __);

        var job = await (await _app.Get<AccountDeletionService>().StartAsync(_app.AdminActor(), account.Id, default)).Completion;

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.NotEmpty(seen);
        var last = seen[^1].Progress!;
        Assert.True(last.Files >= 5000, $"the last report says {last.Files} files");
        Assert.True(last.PlannedFiles >= 5000 && last.PlannedBytes >= 500_000, $"planned {last.PlannedFiles} files, {last.PlannedBytes} bytes");
        Assert.Equal(seen.Select(e => e.Progress!.Files).Order(), seen.Select(e => e.Progress!.Files)); // counts only grow
        Assert.All(seen, e => Assert.Equal(e.Progress!.Describe(), e.Detail)); // the hub's text and the UI's numbers agree
    }

    [Fact]
    public async Task ARunningJobsRowShowsItsLongStepsProgressLive()
    {
        _auth.SignIn(_app.Admin);
        var running = await JobAsync("opsl", _app.Admin.Id, JobStatus.Running);
        var page = Render<DeletionsPage>();
        await page.SearchAsync(running.Account.Username);
        page.WaitForAssertion(() => Assert.Equal([running.Account.Username], Usernames(page)), Patience);
        Assert.Empty(page.FindAll("[data-testid=removal-progress]"));

        var start = DateTimeOffset.UtcNow;
        foreach (var (seconds, bytes) in new[] { (0, 10_000_000L), (4, 50_000_000L) })
        {
            var p = new RemovalProgress(bytes / 1000, 2, bytes, PlannedFiles: 100_000, PlannedBytes: 100_000_000);
            _app.Get<DeletionEvents>().Publish(new DeletionEvent(running.Account.Id, running.JobId, "mailboxes", StepStatus.Running, p.Describe(), start.AddSeconds(seconds), p));
        }

        page.WaitForAssertion(() =>
        {
            var bar = page.Find("[data-testid=deletions-grid] [data-testid=removal-progress]");
            Assert.Equal("50", bar.GetAttribute("data-percent"));
            Assert.Equal("5", bar.GetAttribute("data-remaining-seconds")); // 50 MB left at 10 MB/s
        }, Patience);
        Assert.Contains("Mailboxes", page.Find("[data-testid=deletions-grid] tbody").TextContent);
    }

    [Fact]
    public async Task TheDialogShowsALongStepsFilesAndBytesOfThePlanWithTheTimeLeft()
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("opsp"), _app.Admin.Id);
        var job = await _app.Get<DeletionJobStore>().OpenAsync(account, "tests", default) ?? throw new InvalidOperationException("account row missing");
        var events = _app.Get<DeletionEvents>();
        var start = DateTimeOffset.UtcNow;
        void Report(double seconds, long files, long bytes)
        {
            var p = new RemovalProgress(files, 1, bytes, PlannedFiles: 8000, PlannedBytes: 800_000_000);
            events.Publish(new DeletionEvent(account.Id, job.Id, "home_directory", StepStatus.Running, p.Describe(), start.AddSeconds(seconds), p));
        }
        var dialog = await this.OpenDeleteDialogAsync(account, _app.Admin);
        dialog.WaitForElement("[data-testid=delete-progress]", Patience);

        events.Publish(new DeletionEvent(account.Id, job.Id, DeletionEvent.JobResource, JobStatus.Running, null, start));
        Report(0, 1000, 100_000_000);
        Report(2, 3000, 300_000_000);

        dialog.WaitForAssertion(() =>
        {
            var bar = dialog.Find("[data-testid=delete-progress] [data-resource=home_directory] [data-testid=removal-progress]");
            Assert.Equal("38", bar.GetAttribute("data-percent"));
            Assert.Equal("5", bar.GetAttribute("data-remaining-seconds")); // 500 MB left at 100 MB/s
            Assert.Contains("3,000 of 8,000 files", bar.TextContent);
        }, Patience);

        events.Publish(new DeletionEvent(account.Id, job.Id, "home_directory", StepStatus.Done, null, start.AddSeconds(8)));
        dialog.WaitForAssertion(() => Assert.Empty(dialog.FindAll("[data-testid=removal-progress]")), Patience);
    }

    /// <summary>The rows of the scheduled view: username → its row.</summary>
    private static Dictionary<string, AngleSharp.Dom.IElement> Scheduled(IRenderedComponent<DeletionsPage> page) =>
        page.FindAll("[data-testid=scheduled-grid] tbody tr").Where(tr => tr.QuerySelector(".mono") is not null)
            .ToDictionary(tr => tr.QuerySelector(".mono")!.TextContent.Trim());

    [Fact]
    public async Task TheScheduledViewListsEachScheduledDeletionLiveWithItsDueDateWhoAndBackupAndCancelKeepsTheAccount()
    {
        _auth.SignIn(_app.Admin);
        var dialogs = Render<MudDialogProvider>();
        var prefix = "opsc" + TestAccounts.NewPrefix(4);
        var schedule = _app.Get<DeletionSchedule>();
        var first = await _app.InsertAccountAsync(prefix + "a", _app.Admin.Id);
        var second = await _app.InsertAccountAsync(prefix + "b", _app.Admin.Id, AccountStatus.Suspended);
        var due = (await schedule.ScheduleAsync(_app.AdminActor(), first.Id, new ScheduleRequest(7, null, Backup: true), default)).DeletionDueAt!.Value;

        var page = Render<DeletionsPage>();
        await page.ClickAsync("[data-testid=deletions-status] [data-status=scheduled]");
        await page.SearchAsync(prefix);

        page.WaitForAssertion(() => Assert.Equal([first.Username], Scheduled(page).Keys), Patience);
        var row = Scheduled(page)[first.Username];
        Assert.Equal(due.ToString("yyyy-MM-dd HH:mm"), row.QuerySelector("[data-testid=scheduled-due]")!.TextContent.Trim());
        Assert.Equal(_app.Admin.Username, row.QuerySelector("[data-testid=scheduled-by]")!.TextContent.Trim());
        Assert.Equal("true", row.QuerySelector("[data-testid=scheduled-backup]")!.GetAttribute("data-backup"));
        Assert.Empty(page.FindAll("[data-testid=deletions-grid]")); // the jobs' grid is not what this view shows

        // Live: a schedule made elsewhere (the API, the CLI) appears, without its own final backup.
        await schedule.ScheduleAsync(_app.AdminActor(), second.Id, new ScheduleRequest(3, null, Backup: false), default);
        page.WaitForAssertion(() => Assert.Equal([second.Username, first.Username], Scheduled(page).Keys), Patience); // soonest first
        Assert.Equal("false", Scheduled(page)[second.Username].QuerySelector("[data-testid=scheduled-backup]")!.GetAttribute("data-backup"));
        var all = await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE deletion_due_at IS NOT NULL");
        Assert.True(all >= 2, $"{all} scheduled deletions in the database, this test made two");
        page.WaitForAssertion(() => Assert.Equal($"Scheduled ({all:N0})", page.Find("[data-testid=deletions-status] [data-status=scheduled]").TextContent.Trim()), Patience);

        // Cancel asks first (the grid's own question); Close keeps the schedule.
        await page.ClickAsync(() => Scheduled(page)[first.Username].QuerySelector("[data-action=cancel-deletion]")!);
        dialogs.WaitForAssertion(() => Assert.Contains($"Cancel the deletion of {first.Username}", dialogs.Markup), Patience);
        dialogs.WaitForElement(".mud-message-box", Patience);
        await dialogs.ClickAsync(() => dialogs.FindAll(".mud-message-box button").Single(b => b.TextContent.Trim() == "Close"));
        dialogs.WaitForAssertion(() => Assert.Empty(dialogs.FindAll(".mud-message-box")), Patience);
        Assert.NotNull((await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), first.Id, default))!.DeletionDueAt);

        await page.ClickAsync(() => Scheduled(page)[first.Username].QuerySelector("[data-action=cancel-deletion]")!);
        dialogs.WaitForElement(".mud-message-box", Patience);
        await dialogs.ClickAsync(() => dialogs.FindAll(".mud-message-box button").Single(b => b.TextContent.Trim() == "Keep account"));

        page.WaitForAssertion(() => Assert.Equal([second.Username], Scheduled(page).Keys), Patience);
        var kept = (await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), first.Id, default))!;
        Assert.Null(kept.DeletionDueAt);
        Assert.Equal(AccountStatus.Suspended, kept.Status);
        var audit = await _app.Get<AuditLog>().ListAsync(new AuditQuery(Account: first.Username, Actor: _app.Admin.Username, Outcome: "cancelled"), default);
        Assert.Equal(1, audit.Total);

        // Live: a cancel made elsewhere takes the row away too.
        await schedule.CancelAsync(_app.AdminActor(), second.Id, default);
        page.WaitForAssertion(() => Assert.Empty(Scheduled(page)), Patience);
    }

    [Fact]
    public async Task AResellerSeesTheScheduledDeletionsOfItsOwnAccountsOnlyAPageAtATime()
    {
        var reseller = await _app.NewResellerAsync();
        var resellerActor = new Actor(reseller.Username, "user", "192.0.2.9", reseller.Id, false);
        var prefix = "opsq" + TestAccounts.NewPrefix(4);
        var schedule = _app.Get<DeletionSchedule>();
        var own = new List<Account>();
        for (var i = 0; i < 3; i++)
        {
            var a = await _app.InsertAccountAsync($"{prefix}{i}mine", reseller.Id);
            await schedule.ScheduleAsync(resellerActor, a.Id, new ScheduleRequest(10 - i, null, Backup: false), default);
            own.Add(a);
        }
        var foreign = await _app.InsertAccountAsync($"{prefix}0admin", _app.Admin.Id);
        await schedule.ScheduleAsync(_app.AdminActor(), foreign.Id, new ScheduleRequest(1, null, Backup: false), default);
        // The reseller's own account whose deletion an admin scheduled: the reseller is not told which admin.
        var byHost = await _app.InsertAccountAsync($"{prefix}9host", reseller.Id);
        await schedule.ScheduleAsync(_app.AdminActor(), byHost.Id, new ScheduleRequest(20, null, Backup: false), default);
        _auth.SignIn(reseller);

        // Opened as the overview links it: /deletions?status=scheduled.
        Services.GetRequiredService<NavigationManager>().NavigateTo("/deletions?status=scheduled");
        var page = Render<DeletionsPage>();
        await page.SearchAsync(prefix);

        page.WaitForAssertion(() => Assert.Equal(own.Select(a => a.Username).Reverse().Append(byHost.Username), Scheduled(page).Keys), Patience);
        Assert.DoesNotContain(foreign.Username, page.Markup);
        Assert.Equal(reseller.Username, Scheduled(page)[own[0].Username].QuerySelector("[data-testid=scheduled-by]")!.TextContent.Trim());
        Assert.Equal("the host", Scheduled(page)[byHost.Username].QuerySelector("[data-testid=scheduled-by]")!.TextContent.Trim());
        Assert.DoesNotContain(_app.Admin.Username, page.Markup);
        // The tab counts this new reseller's four, not the admin's one nor anyone else's (an owner filter the count lacked would show them).
        page.WaitForAssertion(() => Assert.Equal("Scheduled (4)", page.Find("[data-testid=deletions-status] [data-status=scheduled]").TextContent.Trim()), Patience);
        // Paged on the server: a page of two holds the two soonest, the total counts the reseller's four only.
        var viewer = new Viewer(reseller.Id, false);
        var first = await _app.Get<ScheduledDeletionList>().ListAsync(viewer, new ScheduledDeletionQuery(1, 2, prefix), default);
        Assert.Equal([own[2].Id, own[1].Id], first.Items.Select(s => s.AccountId));
        Assert.Equal(4, first.Total);
        var second = await _app.Get<ScheduledDeletionList>().ListAsync(viewer, new ScheduledDeletionQuery(2, 2, prefix), default);
        Assert.Equal([own[0].Id, byHost.Id], second.Items.Select(s => s.AccountId));
        Assert.Equal([true, false], second.Items.Select(s => s.ByOwner));
    }

    [Fact]
    public async Task ADueDeletionTheSchedulerCannotStartShowsItsWaitingNoteLiveAndTheResellerAReasonMeantForThem()
    {
        var reseller = await _app.NewResellerAsync();
        var resellerActor = new Actor(reseller.Username, "user", "192.0.2.9", reseller.Id, false);
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("opsb"), reseller.Id);
        await _app.Get<DeletionSchedule>().ScheduleAsync(resellerActor, account.Id, new ScheduleRequest(1, null, Backup: false), default);
        await using (var c = new MySqlConnection(_app.Databases.Panel))
            await c.ExecuteAsync("UPDATE accounts SET deletion_due_at = UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE WHERE id = @id", new { id = account.Id });
        _auth.SignIn(reseller);
        var page = Render<DeletionsPage>();
        await page.ClickAsync("[data-testid=deletions-status] [data-status=scheduled]");
        await page.SearchAsync(account.Username);
        page.WaitForAssertion(() => Assert.Equal([account.Username], Scheduled(page).Keys), Patience);
        Assert.Empty(page.FindAll("[data-testid=scheduled-blocked]"));
        var changes = new List<AccountChange>();
        using var _ = _app.Get<AccountEvents>().Subscribe(c => { lock (changes) changes.Add(c); });

        // Signed with the right key two days ago, for one day: the scheduler may not start it.
        new Opterius.Services.Licensing.LicenseIssuer(new Tokens.ShiftedClock(TimeSpan.FromDays(-2))).Issue(_app.SigningKeyPath, _app.LicensePath, "test", null, 1);
        try
        {
            Assert.Empty(await _app.Get<ScheduledDeletions>().RunDueAsync(default));
            Assert.StartsWith("license_required", await _app.Databases.PanelScalarAsync<string>("SELECT deletion_blocked FROM accounts WHERE id = @id", new { id = account.Id }));
        }
        finally { _app.IssueLicense(maxAccounts: null, expiresDays: 30); }

        lock (changes) Assert.Contains(new AccountChange(account.Id, reseller.Id, AccountStatus.Suspended), changes);
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=scheduled-blocked]")), Patience);
        var note = page.Find("[data-testid=scheduled-blocked]").TextContent.Trim();
        Assert.Equal("waiting: the host's panel license must be renewed first", note);
        Assert.DoesNotContain("license_required", note);
    }

    [Fact]
    public async Task TheHomePageIsTheOverviewForAnAdminAndTheAccountsGridForAReseller()
    {
        _auth.SignIn(_app.Admin);
        var admins = Render<Components.Pages.HomePage>();
        admins.WaitForAssertion(() => Assert.NotEmpty(admins.FindAll("[data-testid=overview-accounts-total]")), Patience);
        Assert.Empty(admins.FindAll("[data-testid=accounts-grid]"));

        var reseller = await _app.NewResellerAsync();
        var own = await _app.InsertAccountAsync(UiKit.NewUsername("opsm"), reseller.Id);
        _auth.SignIn(reseller);
        var resellers = Render<Components.Pages.HomePage>();
        resellers.WaitForAssertion(() => Assert.Contains(own.Username, resellers.Find("[data-testid=accounts-grid]").TextContent), Patience);
        Assert.Empty(resellers.FindAll("[data-testid=overview-accounts]"));
    }

    [Fact]
    public async Task TheNavigationsAccountsLinkOpensTheAccountsGridForAnAdminAndAReseller()
    {
        var reseller = await _app.NewResellerAsync();
        foreach (var user in new[] { _app.Admin, reseller })
        {
            _auth.SignIn(user);
            var nav = Render<Components.Layout.NavMenu>();
            Assert.Equal("/accounts", nav.FindAll("a").Single(a => a.TextContent.Trim() == "Accounts").GetAttribute("href"));
        }
    }

    [Fact]
    public async Task TheOverviewCountsAccountsByStatusTheDeletionsToLookAtAndTheLicense()
    {
        _auth.SignIn(_app.Admin);
        await JobAsync("opsv", _app.Admin.Id, JobStatus.Failed);
        var counts = await _app.Get<AccountStatusCounts>().ByStatusAsync(new Viewer(0, true), default);
        var failedJobs = (await _app.Get<DeletionJobList>().CountsAsync(new Viewer(0, true), default))[JobStatus.Failed];
        var scheduled = await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE deletion_due_at IS NOT NULL");

        var page = Render<Components.Pages.Overview.OverviewPage>();

        page.WaitForAssertion(() => Assert.Equal(counts.Values.Sum().ToString("N0"), page.Find("[data-testid=overview-accounts-total]").TextContent), Patience);
        Assert.NotEmpty(counts);
        foreach (var (status, n) in counts)
            Assert.EndsWith(n.ToString("N0"), page.Find($"[data-testid=overview-accounts] [data-status={status}]").TextContent.Trim());
        Assert.StartsWith($"{failedJobs} failed", page.Find("[data-testid=overview-deletions-failed]").TextContent.Trim());
        var scheduledLink = page.Find("[data-testid=overview-deletions-scheduled]");
        Assert.Equal($"{scheduled:N0} scheduled", scheduledLink.TextContent.Trim());
        Assert.Equal("/deletions?status=scheduled", scheduledLink.GetAttribute("href"));
        Assert.Equal("true", page.Find("[data-testid=overview-license]").GetAttribute("data-valid"));
        Assert.Contains("unlimited", page.Find("[data-testid=overview-license-usage]").TextContent);
        page.WaitForAssertion(() => Assert.Equal(["MariaDB", "PowerDNS database", "nginx", "PHP-FPM"],
            page.FindAll("[data-testid=overview-services] [data-service]").Select(e => e.GetAttribute("data-service"))), Patience);
        Assert.All(page.FindAll("[data-testid=overview-services] [data-service]"), e => Assert.True(e.GetAttribute("data-up") == "true", e.TextContent));
    }
}
