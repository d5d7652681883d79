using System.Net;
using System.Security.Claims;
using Bunit;
using Dapper;
using MudBlazor;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Auth;
using Opterius.Web.Components;
using Opterius.Web.Components.Pages.Audit;
using Opterius.Web.Components.Pages.Deletions;
using Opterius.Web.Components.Pages.Tokens;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The Deletions page, progress in the dialog, and what a reseller sees of the audit log and its tokens.</summary>
public sealed class OpsPagesTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;

    public OpsPagesTests(PanelApp app)
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

    private void SignIn(PanelUser user)
    {
        _auth.SetAuthorized(user.Username);
        _auth.SetRoles(user.Role);
        _auth.SetClaims(new Claim(PanelClaims.UserId, user.Id.ToString()), new Claim(PanelClaims.Role, user.Role),
            new Claim(PanelClaims.Name, user.Username), new Claim(PanelClaims.Kind, "user"));
    }

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
        SignIn(_app.Admin);
        var account = await _app.CreateAsync(UiKit.NewUsername("opsr"));
        var expected = await _app.ExpectedStepStatusesAsync(account.Id);
        var failing = DeletionTesting.ServiceOf(_app.Services, r => r.Key == "cron" ? new FailOnceResource(r) : r);
        var failed = await (await failing.StartAsync(_app.AdminActor(), account.Id, default)).Completion;
        Assert.Equal(JobStatus.Failed, failed.Status);

        var page = Render<DeletionsPage>();
        page.FindComponents<MudTextField<string>>().Single().Find("input").Input(account.Username);
        page.WaitForAssertion(() => Assert.Equal([account.Username], Usernames(page)), Patience);
        var step = page.Find("[data-testid=failed-step]");
        Assert.Equal("cron", step.GetAttribute("data-resource"));
        Assert.Contains("injected failure in cron", step.TextContent);

        page.Find("[data-testid=deletion-retry]").Click();

        page.WaitForAssertion(() => Assert.Equal(JobStatus.Succeeded, page.Find("[data-testid=job-status]").TextContent), Patience);
        Assert.Empty(page.FindAll("[data-testid=deletion-retry]"));
        var job = await _app.Get<DeletionJobStore>().FindAsync(failed.Id, default);
        Assert.Equal(JobStatus.Succeeded, job!.Status);
        Assert.Equal(expected, job.Steps.ToDictionary(s => s.Resource, s => s.Status));
        Assert.Null(await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default));
        // The retry is the signed-in admin's, in the audit log like any other delete.
        var audit = await _app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username, Actor: _app.Admin.Username, Outcome: JobStatus.Succeeded), default);
        Assert.Equal(1, audit.Total);
    }

    [Fact]
    public async Task TheStatusFilterAndTheSearchNarrowTheJobsOnTheServer()
    {
        SignIn(_app.Admin);
        var prefix = "opsf" + TestAccounts.NewPrefix(4);
        var failed = await JobAsync(prefix, _app.Admin.Id, JobStatus.Failed);
        var running = await JobAsync(prefix, _app.Admin.Id, JobStatus.Running);
        var other = await JobAsync("opsx", _app.Admin.Id, JobStatus.Failed);

        var page = Render<DeletionsPage>();
        page.FindComponents<MudTextField<string>>().Single().Find("input").Input(prefix);
        page.WaitForAssertion(() => Assert.Equal(
            new[] { failed.Account.Username, running.Account.Username }.Order(), Usernames(page).Order()), Patience);
        Assert.DoesNotContain(other.Account.Username, page.Markup);

        page.Find("[data-testid=deletions-status] [data-status=failed]").Click();
        page.WaitForAssertion(() => Assert.Equal([failed.Account.Username], Usernames(page)), Patience);
        Assert.Contains("mailbox folder is busy", page.Find("[data-testid=failed-step]").TextContent);

        page.Find("[data-testid=deletions-status] [data-status=running]").Click();
        page.WaitForAssertion(() => Assert.Equal([running.Account.Username], Usernames(page)), Patience);
        Assert.Empty(page.FindAll("[data-testid=deletion-retry]"));
    }

    [Fact]
    public async Task AResellerSeesTheDeletionsOfItsOwnAccountsOnly()
    {
        var reseller = await _app.NewResellerAsync();
        SignIn(reseller);
        var prefix = "opso" + TestAccounts.NewPrefix(4);
        var own = await JobAsync(prefix, reseller.Id, JobStatus.Failed);
        var foreign = await JobAsync(prefix, _app.Admin.Id, JobStatus.Failed);

        var page = Render<DeletionsPage>();
        page.FindComponents<MudTextField<string>>().Single().Find("input").Input(prefix);

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
        SignIn(_app.Admin);
        var running = await JobAsync("opsl", _app.Admin.Id, JobStatus.Running);
        var page = Render<DeletionsPage>();
        page.FindComponents<MudTextField<string>>().Single().Find("input").Input(running.Account.Username);
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

    [Fact]
    public async Task AResellersAuditPageShowsItsOwnAccountsAndTokensOnly()
    {
        var reseller = await _app.NewResellerAsync();
        var own = await _app.InsertAccountAsync(UiKit.NewUsername("opsa"), reseller.Id);
        var foreign = await _app.InsertAccountAsync(UiKit.NewUsername("opsa"), _app.Admin.Id);
        var audit = _app.Get<AuditLog>();
        await audit.WriteAsync(_app.AdminActor(), "suspend", own.Id, own.Username, "suspended", null, default);
        await audit.WriteAsync(_app.AdminActor(), "suspend", foreign.Id, foreign.Username, "suspended", null, default);
        var actor = new Actor(reseller.Username, "user", "192.0.2.7", reseller.Id, false);
        await audit.WriteTokenAsync(actor, TokensPage.AuditCreate, reseller.Id, "created", "token dash: reseller, accounts:read", default);
        await audit.WriteTokenAsync(_app.AdminActor(), TokensPage.AuditCreate, _app.Admin.Id, "created", "token admin-only", default);
        SignIn(reseller);

        var page = Render<AuditPage>();

        page.WaitForAssertion(() => Assert.Contains(own.Username, page.Find("[data-testid=audit-grid]").TextContent), Patience);
        Assert.Contains("token dash", page.Markup);
        Assert.DoesNotContain(foreign.Username, page.Markup);
        Assert.DoesNotContain("admin-only", page.Markup);
        var (items, total) = await audit.ListAsync(new Viewer(reseller.Id, false), new AuditQuery(), default);
        Assert.Equal(2, total);
        Assert.All(items, e => Assert.True(e.AccountId == own.Id || e.Action == TokensPage.AuditCreate));
    }

    [Fact]
    public async Task AResellerMintsAResellerTokenForItselfAndSeesOnlyItsOwnTokens()
    {
        var reseller = await _app.NewResellerAsync();
        var admins = await _app.Get<TokenService>().CreateAsync(UiKit.NewUsername("adm"), Roles.Admin, _app.Admin.Id, null, null, default);
        SignIn(reseller);
        var page = Render<TokensPage>();
        page.WaitForElement("[data-testid=token-for-self]", Patience);
        Assert.Empty(page.FindAll("[data-testid=token-role]")); // no role to choose, no owner to name
        Assert.Empty(page.FindAll("[data-testid=token-owner]"));
        Assert.DoesNotContain(admins.Info.Name, page.Find("[data-testid=tokens-table]").TextContent);

        var name = UiKit.NewUsername("dash");
        page.FindComponents<MudTextField<string>>().Single(f => f.Instance.Label == "Name").Find("input").Input(name);
        page.FindComponents<MudCheckBox<bool>>().Single(c => c.Instance.Label == TokenScopes.AccountsDelete).Find("input").Change(false);
        page.Find("[data-testid=token-create]").Click();

        page.WaitForAssertion(() => Assert.StartsWith("ey", page.Find("[data-testid=token-value]").TextContent), Patience);
        var minted = (await _app.Get<TokenService>().ListAsync(reseller.Id, default)).Single(t => t.Name == name);
        Assert.Equal(Roles.Reseller, minted.Role);
        Assert.Equal(reseller.Id, minted.OwnerId);
        Assert.Equal([TokenScopes.AccountsRead, TokenScopes.AccountsWrite], minted.Scopes);
        var (entries, _) = await _app.Get<AuditLog>().ListAsync(new Viewer(reseller.Id, false), new AuditQuery(Action: TokensPage.AuditCreate), default);
        Assert.Contains(entries, e => e.Detail!.Contains(name) && e.Actor == reseller.Username);
    }

    [Fact]
    public async Task TheTokenServiceRefusesAResellerAnAdminTokenOrAnotherResellersAndStoresNothing()
    {
        var reseller = await _app.NewResellerAsync();
        var other = await _app.NewResellerAsync();
        var tokens = _app.Get<TokenService>();
        var before = (await tokens.ListAsync(null, default)).Count;
        var minter = new Viewer(reseller.Id, IsAdmin: false);

        var asAdmin = await Assert.ThrowsAsync<TokenRequestException>(() =>
            tokens.CreateAsync(minter, UiKit.NewUsername("x"), Roles.Admin, _app.Admin.Id, null, null, default));
        var forOther = await Assert.ThrowsAsync<TokenRequestException>(() =>
            tokens.CreateAsync(minter, UiKit.NewUsername("x"), Roles.Reseller, other.Id, null, null, default));
        var adminForSelf = await Assert.ThrowsAsync<TokenRequestException>(() =>
            tokens.CreateAsync(minter, UiKit.NewUsername("x"), Roles.Admin, reseller.Id, null, null, default));

        Assert.All([asAdmin, forOther, adminForSelf], e => Assert.Equal(TokenError.Forbidden, e.Error));
        Assert.Equal(before, (await tokens.ListAsync(null, default)).Count);
        // And a reseller cannot revoke another's token by its name.
        var others = await tokens.CreateAsync(UiKit.NewUsername("o"), Roles.Reseller, other.Id, null, null, default);
        Assert.False(await tokens.RevokeAsync(minter, others.Info.Name, default));
        Assert.Null((await tokens.ListAsync(other.Id, default)).Single(t => t.Name == others.Info.Name).RevokedAt);
    }

    [Fact]
    public async Task TheOverviewCountsAccountsByStatusTheDeletionsToLookAtAndTheLicense()
    {
        SignIn(_app.Admin);
        await JobAsync("opsv", _app.Admin.Id, JobStatus.Failed);
        var counts = await _app.Get<AccountStatusCounts>().ByStatusAsync(new Viewer(0, true), default);
        var failedJobs = (await _app.Get<DeletionJobList>().CountsAsync(new Viewer(0, true), default))[JobStatus.Failed];

        var page = Render<Components.Pages.Overview.OverviewPage>();

        page.WaitForAssertion(() => Assert.Equal(counts.Values.Sum().ToString("N0"), page.Find("[data-testid=overview-accounts-total]").TextContent), Patience);
        Assert.NotEmpty(counts);
        foreach (var (status, n) in counts)
            Assert.EndsWith(n.ToString("N0"), page.Find($"[data-testid=overview-accounts] [data-status={status}]").TextContent.Trim());
        Assert.StartsWith($"{failedJobs} failed", page.Find("[data-testid=overview-deletions-failed]").TextContent.Trim());
        Assert.Equal("true", page.Find("[data-testid=overview-license]").GetAttribute("data-valid"));
        Assert.Contains("unlimited", page.Find("[data-testid=overview-license-usage]").TextContent);
        page.WaitForAssertion(() => Assert.Equal(["MariaDB", "PowerDNS database", "nginx", "PHP-FPM"],
            page.FindAll("[data-testid=overview-services] [data-service]").Select(e => e.GetAttribute("data-service"))), Patience);
        Assert.All(page.FindAll("[data-testid=overview-services] [data-service]"), e => Assert.True(e.GetAttribute("data-up") == "true", e.TextContent));
    }

    [Fact]
    public void ASignedInResellerOnAnAdminPageGetsANoticeNotTheSignInForm()
    {
        var notice = Render<NotAvailable>(p => p.Add(n => n.User, UiKit.Principal(new PanelUser(7, "res", "", Roles.Reseller))));
        Assert.Contains("not available to resellers", notice.Find("[data-testid=not-allowed]").TextContent);
    }

    [Fact]
    public async Task AResellerOpeningAnAdminPageInTheBrowserIsToldItIsNotAvailableAndStaysSignedIn()
    {
        var reseller = await _app.NewResellerAsync();
        var browser = await _app.SignedInClientAsync(reseller.Username, "reseller-password-1");

        var refused = await browser.GetAsync("/overview");

        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
        var target = refused.Headers.Location!.OriginalString;
        Assert.StartsWith(NotAvailablePage.Path, new Uri(new Uri("http://panel"), target).AbsolutePath);
        var notice = await browser.GetAsync(target);
        Assert.Equal(HttpStatusCode.OK, notice.StatusCode);
        var html = await notice.Content.ReadAsStringAsync();
        Assert.Contains("not available to resellers", html);
        Assert.DoesNotContain("name=\"password\"", html);
        // The pages a reseller does have open as themselves, not as a notice.
        foreach (var path in new[] { "/audit", "/tokens", "/deletions" })
        {
            var open = await browser.GetAsync(path);
            Assert.True(open.StatusCode == HttpStatusCode.OK, $"{path} answered {(int)open.StatusCode} to a reseller");
            Assert.DoesNotContain("data-testid=\"not-allowed\"", await open.Content.ReadAsStringAsync());
        }
    }
}
