using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The delete dialog against the real deletion service, journal, event stream and password check.</summary>
public sealed class DeleteDialogTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private const string AdminPassword = "admin-password-1"; // what PanelApp gives its admin
    private readonly PanelApp _app;

    public DeleteDialogTests(PanelApp app)
    {
        _app = app;
        this.UsePanel(app);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    private static bool DeleteEnabled(IRenderedComponent<MudDialogProvider> dialog) =>
        !dialog.Find("[data-testid=delete-submit]").HasAttribute("disabled");

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>
    /// "Still disabled", checked fairly: first wait (as long as an "enabled" check may) until the dialog shows it took
    /// the input, then Delete must stay disabled for a while. A check made before the dialog reacted would prove nothing.
    /// </summary>
    private static async Task AssertStaysDisabledAsync(IRenderedComponent<MudDialogProvider> dialog, Action inputTaken)
    {
        dialog.WaitForAssertion(inputTaken, Patience);
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(1); await Task.Delay(50))
            Assert.False(DeleteEnabled(dialog));
    }

    private static string? ValueOf(IRenderedComponent<MudDialogProvider> dialog, string label) =>
        dialog.FindComponents<MudTextField<string>>().Single(f => f.Instance.Label == label).Find("input").GetAttribute("value");

    private async Task<IRenderedComponent<MudDialogProvider>> PlanDialogAsync(Account account)
    {
        var dialog = await this.OpenDeleteDialogAsync(account, _app.Admin);
        dialog.WaitForElement("[data-testid=delete-plan]", TimeSpan.FromSeconds(10));
        return dialog;
    }

    [Theory]
    [InlineData("")]
    [InlineData("partial")]
    [InlineData("UPPER")]
    [InlineData("leading")]
    [InlineData("trailing")]
    public async Task DeleteStaysDisabledUntilTheUsernameIsTypedExactly(string variant)
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("dlg"), _app.Admin.Id);
        var almost = variant switch
        {
            "" => "",
            "partial" => account.Username[..^2],
            "UPPER" => account.Username.ToUpperInvariant(),
            "leading" => " " + account.Username,
            _ => account.Username + " ",
        };
        var dialog = await PlanDialogAsync(account);
        await dialog.TypeAsync("Your password", AdminPassword);

        await dialog.TypeAsync("Username to delete", almost);
        await AssertStaysDisabledAsync(dialog, () =>
        {
            Assert.Equal(AdminPassword, ValueOf(dialog, "Your password"));
            if (almost.Length > 0) Assert.Contains("Does not match the username exactly", dialog.Markup);
        });

        await dialog.TypeAsync("Username to delete", account.Username);
        dialog.WaitForAssertion(() => Assert.True(DeleteEnabled(dialog)), Patience);
    }

    [Fact]
    public async Task TheDialogWarnsThatThereIsNoUndoAndShowsThePlan()
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("dlg"), _app.Admin.Id);
        var dialog = await PlanDialogAsync(account);

        Assert.Contains("no undo", dialog.Find("[data-testid=delete-warning]").TextContent);
        Assert.Contains("backup", dialog.Find("[data-testid=delete-warning]").TextContent);
        var planned = dialog.FindAll("[data-testid=delete-plan] tr[data-resource]").Select(r => r.GetAttribute("data-resource"));
        Assert.Equal(DeletionOrder.Keys, planned);
    }

    [Fact]
    public async Task AWrongPasswordIsRefusedAndNothingIsDeleted()
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("dlg"), _app.Admin.Id);
        var dialog = await PlanDialogAsync(account);
        await dialog.TypeAsync("Username to delete", account.Username);
        await dialog.TypeAsync("Your password", "not-the-password");

        await dialog.ClickAndAwaitAsync("[data-testid=delete-submit]");

        dialog.WaitForAssertion(() => Assert.Contains("Wrong password", dialog.Find("[data-testid=delete-error]").TextContent), TimeSpan.FromSeconds(10));
        Assert.Empty(dialog.FindAll("[data-testid=delete-progress]"));
        var still = await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default);
        Assert.Equal(AccountStatus.Active, still!.Status);
        Assert.Null(await _app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default));
        var audit = await _app.Get<AuditLog>().ListAsync(new AuditQuery(Account: account.Username), default);
        Assert.Equal("wrong_password", Assert.Single(audit.Items).Outcome);
    }

    [Fact]
    public async Task FiveWrongPasswordsLockTheUserOutOfEveryDeleteDialogNotJustTheOneTheyTypedIn()
    {
        // A panel user of its own: the count is server-wide, per user, and must not lock out the other tests' admin.
        const string Password = "locked-out-admin-1";
        var user = await _app.Users.CreateAsync(UiKit.NewUsername("adm"), Password, Roles.Admin, default);
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("dlg"), user.Id);
        var first = await this.OpenDeleteDialogAsync(account, user);
        first.WaitForElement("[data-testid=delete-plan]", TimeSpan.FromSeconds(10));
        await first.TypeAsync("Username to delete", account.Username);
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            await first.TypeAsync("Your password", $"wrong-password-{attempt}");
            await first.ClickAndAwaitAsync("[data-testid=delete-submit]");
            var expected = attempt < 5 ? "Enter the password you signed in with" : "too many times";
            first.WaitForAssertion(() => Assert.Contains(expected, first.Find("[data-testid=delete-error]").TextContent), TimeSpan.FromSeconds(10));
        }

        // Closed and opened again, as a user who wants five more guesses would.
        await DisposeComponentsAsync();
        var second = await this.OpenDeleteDialogAsync(account, user);
        second.WaitForElement("[data-testid=delete-plan]", TimeSpan.FromSeconds(10));
        await second.TypeAsync("Username to delete", account.Username);
        await second.TypeAsync("Your password", Password);

        second.WaitForAssertion(() => Assert.Contains("too many times", second.Find("[data-testid=delete-error]").TextContent), Patience);
        await AssertStaysDisabledAsync(second, () => Assert.Equal((account.Username, Password),
            (ValueOf(second, "Username to delete"), ValueOf(second, "Your password"))));
        var still = await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default);
        Assert.Equal(AccountStatus.Active, still!.Status);
        Assert.Null(await _app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default));
    }

    [Fact]
    public async Task ProgressEventsShowTheRightStatusForEachResource()
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("dlg"), _app.Admin.Id);
        // A journalled job with no executor: the transitions below are the only ones the dialog sees.
        var job = await _app.Get<DeletionJobStore>().OpenAsync(account, "tests", default) ?? throw new InvalidOperationException("account row missing");
        var events = _app.Get<DeletionEvents>();
        void Publish(string resource, string status, string? detail = null) =>
            events.Publish(new DeletionEvent(account.Id, job.Id, resource, status, detail, DateTimeOffset.UtcNow));

        var dialog = await this.OpenDeleteDialogAsync(account, _app.Admin);
        dialog.WaitForElement("[data-testid=delete-progress]", TimeSpan.FromSeconds(10)); // a running job opens straight in progress

        // In the deletion order, as the service publishes them: logins first, then serving stops.
        Publish(DeletionEvent.JobResource, JobStatus.Running);
        Publish("logins", StepStatus.Done);
        Publish("nginx_vhost", StepStatus.Done);
        Publish("php_fpm_pool", StepStatus.Skipped, "nothing there");
        Publish("cron", StepStatus.Running);
        Publish("cron", StepStatus.Done);
        Publish("processes", StepStatus.Failed, "1 process of uid 200001 still running after 10 s");
        Publish(DeletionEvent.JobResource, JobStatus.Failed, "processes: 1 process of uid 200001 still running after 10 s");

        string StatusOf(string key) => dialog.Find($"[data-testid=delete-progress] [data-resource={key}]").GetAttribute("data-status")!;
        dialog.WaitForAssertion(() => Assert.Equal(JobStatus.Failed, dialog.Find("[data-testid=delete-progress]").GetAttribute("data-job-status")), TimeSpan.FromSeconds(10));
        Assert.Equal(StepStatus.Done, StatusOf("logins"));
        Assert.Equal(StepStatus.Done, StatusOf("nginx_vhost"));
        Assert.Equal(StepStatus.Skipped, StatusOf("php_fpm_pool"));
        Assert.Equal(StepStatus.Done, StatusOf("cron"));
        Assert.Equal(StepStatus.Failed, StatusOf("processes"));
        Assert.Contains("still running", dialog.Find("[data-testid=delete-progress] [data-resource=processes]").TextContent);
        Assert.All(DeletionOrder.Keys.Except(["logins", "nginx_vhost", "php_fpm_pool", "cron", "processes"]), k => Assert.Equal(StepStatus.Pending, StatusOf(k)));
        Assert.Contains("Retry", dialog.Find("[data-testid=delete-retry]").TextContent);
        Assert.Empty(dialog.FindAll("[data-testid=erasure-record]")); // no record of what was not erased
        Assert.Contains($"4 of {DeletionOrder.Keys.Count}", dialog.Find("[data-testid=delete-progress-bar]").TextContent);
    }

    private static string OutcomeOf(IRenderedComponent<MudDialogProvider> dialog) => dialog.Find("[data-testid=delete-outcome]").TextContent;

    [Fact]
    public async Task ADeletionStartedHereSaysTheAccountIsGoneOnlyWithTheVerificationThatFoundNothingLeft()
    {
        var account = await _app.CreateAsync(UiKit.NewUsername("dlg"));
        var dialog = await PlanDialogAsync(account);
        await dialog.TypeAsync("Username to delete", account.Username);
        await dialog.TypeAsync("Your password", AdminPassword);

        await dialog.ClickAndAwaitAsync("[data-testid=delete-submit]");

        dialog.WaitForAssertion(() => Assert.Equal("true", dialog.Find("[data-testid=delete-verification]").GetAttribute("data-passed")), TimeSpan.FromSeconds(60));
        Assert.Equal(JobStatus.Succeeded, dialog.Find("[data-testid=delete-progress]").GetAttribute("data-job-status"));
        Assert.Contains("inspected again", OutcomeOf(dialog));
        Assert.Contains("nothing of it is left", OutcomeOf(dialog));
        Assert.Contains($"{DeletionOrder.Keys.Count} of {DeletionOrder.Keys.Count} resources gone", dialog.Find("[data-testid=delete-verification]").TextContent);
        Assert.Empty(dialog.FindAll("[data-testid=delete-verification] [data-check]"));
        Assert.Null(await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default));
        var job = (await _app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default))!;
        Assert.Equal($"/ui/deletions/{job.Id}/record", dialog.Find("[data-testid=erasure-record]").GetAttribute("href"));
    }

    [Fact]
    public async Task WhenTheVerificationFindsSomethingLeftTheDialogNamesItAndNeverSaysEveryResourceIsGone()
    {
        var account = await _app.CreateAsync(UiKit.NewUsername("dlg"));
        var lying = LyingAboutCron();
        var dialog = await PlanDialogAsync(account);

        // Started elsewhere (the API, another tab) while this dialog is open: it follows the job live.
        var job = await (await lying.StartAsync(_app.AdminActor(), account.Id, default)).Completion;

        Assert.Equal(JobStatus.Failed, job.Status);
        dialog.WaitForAssertion(() => Assert.Equal("false", dialog.Find("[data-testid=delete-verification]").GetAttribute("data-passed")), TimeSpan.FromSeconds(10));
        Assert.Equal(JobStatus.Failed, dialog.Find("[data-testid=delete-progress]").GetAttribute("data-job-status"));
        Assert.DoesNotContain("every resource is gone", dialog.Markup);
        Assert.Contains("found some of the account still there", OutcomeOf(dialog));
        var left = Assert.Single(dialog.FindAll("[data-testid=delete-verification] [data-check]"));
        Assert.Equal("cron", left.GetAttribute("data-resource"));
        Assert.Equal(CheckStatus.Left, left.GetAttribute("data-check"));
        Assert.Equal(StepStatus.Failed, dialog.Find("[data-testid=delete-progress] [data-resource=cron]").GetAttribute("data-status"));
        Assert.Contains("Retry", dialog.Find("[data-testid=delete-retry]").TextContent);
    }

    [Fact]
    public async Task OpenedAfterTheVerificationFoundSomethingLeftTheDialogShowsItFromTheJournal()
    {
        var account = await _app.CreateAsync(UiKit.NewUsername("dlg"));
        var job = await (await LyingAboutCron().StartAsync(_app.AdminActor(), account.Id, default)).Completion;
        Assert.Equal(JobStatus.Failed, job.Status);

        var dialog = await this.OpenDeleteDialogAsync(account, _app.Admin);

        dialog.WaitForAssertion(() => Assert.Equal("false", dialog.Find("[data-testid=delete-verification]").GetAttribute("data-passed")), TimeSpan.FromSeconds(10));
        Assert.Contains("found some of the account still there", OutcomeOf(dialog));
        var left = Assert.Single(dialog.FindAll("[data-testid=delete-verification] [data-check]"));
        Assert.Equal("cron", left.GetAttribute("data-resource"));
        Assert.Contains("still there", left.TextContent);
    }

    /// <summary>The real deletion service on this app, with a cron step that says "done" the first time and removes nothing.</summary>
    private AccountDeletionService LyingAboutCron() =>
        new(_app.Get<AccountStore>(), _app.Get<DeletionJobStore>(), _app.Get<DeletionEvents>(),
            _app.Services.GetServices<IAccountResource>().Select(r => r.Key == "cron" ? new LyingOnceResource(r) : r).ToList(),
            _app.Get<LicenseService>(), _app.Get<AuditLog>(), NullLogger<AccountDeletionService>.Instance);
}
