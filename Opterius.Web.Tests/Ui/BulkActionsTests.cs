using System.Security.Claims;
using Bunit;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Web.Auth;
using Opterius.Web.Components.Pages.Accounts;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>
/// Bulk selection in the grid and the bulk dialogs over the real deletion service and suspension. The deletion service
/// here is the real one whose first cron removal fails (once, for whichever account gets there first), so a batch has
/// exactly one failure to retry.
/// </summary>
public sealed class BulkActionsTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private const string AdminPassword = "admin-password-1";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;

    public BulkActionsTests(PanelApp app)
    {
        _app = app;
        // Before the panel's services: the first that is registered is the one components get.
        Services.AddSingleton(DeletionTesting.ServiceOf(app.Services, r => r.Key == "cron" ? new FailOnceResource(r) : r));
        _auth = this.UsePanel(app);
    }

    public Task InitializeAsync()
    {
        _auth.SetAuthorized(_app.Admin.Username);
        _auth.SetClaims(new Claim(PanelClaims.UserId, _app.Admin.Id.ToString()), new Claim(PanelClaims.Role, _app.Admin.Role),
            new Claim(PanelClaims.Name, _app.Admin.Username));
        Render<MudPopoverProvider>();
        return Task.CompletedTask;
    }

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    private async Task<List<Account>> AccountsAsync(string tag, int n)
    {
        var made = new List<Account>();
        for (var i = 0; i < n; i++) made.Add(await _app.InsertAccountAsync($"{tag}{i:00}", _app.Admin.Id));
        return made;
    }

    private async Task<IRenderedComponent<MudDialogProvider>> OpenBulkDeleteAsync(IReadOnlyList<Account> accounts)
    {
        var provider = Render<MudDialogProvider>();
        var dialogs = Services.GetRequiredService<IDialogService>();
        var parameters = new DialogParameters<BulkDeleteDialog>
        {
            { d => d.Accounts, accounts }, { d => d.User, UiKit.Principal(_app.Admin) }, { d => d.SourceIp, "192.0.2.10" },
        };
        await provider.InvokeAsync(() => dialogs.ShowAsync<BulkDeleteDialog>("Delete accounts", parameters));
        provider.WaitForElement("[data-testid=bulk-delete-count]", Patience);
        return provider;
    }

    private static bool SubmitEnabled(IRenderedComponent<MudDialogProvider> dialog) =>
        !dialog.Find("[data-testid=bulk-delete-submit]").HasAttribute("disabled");

    private static async Task AssertStaysDisabledAsync(IRenderedComponent<MudDialogProvider> dialog, Action inputTaken)
    {
        dialog.WaitForAssertion(inputTaken, TimeSpan.FromSeconds(10));
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(1); await Task.Delay(50))
            Assert.False(SubmitEnabled(dialog));
    }

    private static string? ValueOf(IRenderedComponent<MudDialogProvider> dialog, string label) =>
        dialog.FindComponents<MudTextField<string>>().Single(f => f.Instance.Label == label).Find("input").GetAttribute("value");

    [Fact]
    public async Task BulkDeleteShowsTheCombinedPlanAndStaysDisabledUntilTheNumberOfAccountsAndThePasswordAreGiven()
    {
        var accounts = await AccountsAsync(UiKit.NewUsername("bd"), 3);
        var dialog = await OpenBulkDeleteAsync(accounts);

        Assert.Contains("no undo", dialog.Find("[data-testid=bulk-delete-warning]").TextContent);
        Assert.Equal(accounts.Select(a => a.Username), dialog.FindAll("[data-testid=bulk-delete-plan] tbody tr[data-account]").Select(r => r.GetAttribute("data-account")));
        Assert.Contains("3 accounts", dialog.Find("[data-testid=bulk-delete-totals]").TextContent);
        Assert.False(SubmitEnabled(dialog));

        await dialog.TypeAsync("Your password", AdminPassword);
        foreach (var wrong in new[] { "2", "4", "three", "33" })
        {
            await dialog.TypeAsync("Number of accounts to delete", wrong);
            await AssertStaysDisabledAsync(dialog, () =>
            {
                Assert.Equal(wrong, ValueOf(dialog, "Number of accounts to delete"));
                Assert.Contains("Type 3, the number of accounts", dialog.Markup);
            });
        }
        await dialog.TypeAsync("Your password", "");
        await dialog.TypeAsync("Number of accounts to delete", "3");
        await AssertStaysDisabledAsync(dialog, () => Assert.DoesNotContain("Type 3, the number of accounts", dialog.Markup));

        await dialog.TypeAsync("Your password", AdminPassword);
        dialog.WaitForAssertion(() => Assert.True(SubmitEnabled(dialog)), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AWrongPasswordDeletesNoneOfTheBatch()
    {
        var accounts = await AccountsAsync(UiKit.NewUsername("bw"), 3);
        var dialog = await OpenBulkDeleteAsync(accounts);
        await dialog.TypeAsync("Number of accounts to delete", "3");
        await dialog.TypeAsync("Your password", "not-the-password");

        await dialog.ClickAndAwaitAsync("[data-testid=bulk-delete-submit]");

        dialog.WaitForAssertion(() => Assert.Contains("Wrong password", dialog.Find("[data-testid=bulk-delete-error]").TextContent), Patience);
        foreach (var a in accounts)
        {
            Assert.Equal(AccountStatus.Active, (await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), a.Id, default))!.Status);
            Assert.Null(await _app.Get<DeletionJobStore>().LatestForAccountAsync(a.Id, default));
        }
        // Audited once for the whole batch, as the refused delete it was, naming every account of it.
        await using var c = new MySqlConnection(_app.Databases.Panel);
        var rows = (await c.QueryAsync<(string Actor, string Outcome, string? Detail)>(
            "SELECT actor AS Actor, outcome AS Outcome, detail AS Detail FROM audit_log WHERE action = 'delete' AND detail LIKE CONCAT('%', @first, '%')",
            new { first = accounts[0].Username })).ToList();
        var row = Assert.Single(rows);
        Assert.Equal(_app.Admin.Username, row.Actor);
        Assert.Equal("wrong_password", row.Outcome);
        Assert.Equal($"bulk delete of 3 accounts: {string.Join(", ", accounts.Select(a => a.Username))}", row.Detail);
    }

    [Fact]
    public async Task OneConfirmationDeletesTheBatchEachFinishesLiveAndTheFailureStaysListedUntilRetryFinishesIt()
    {
        var accounts = await AccountsAsync(UiKit.NewUsername("bx"), 3);
        var dialog = await OpenBulkDeleteAsync(accounts);
        await dialog.TypeAsync("Number of accounts to delete", "3");
        await dialog.TypeAsync("Your password", AdminPassword);

        await dialog.ClickAndAwaitAsync("[data-testid=bulk-delete-submit]");

        string RowOf(Account a) => $"[data-testid=bulk-delete-plan] tr[data-account={a.Username}]";
        string StatusOf(Account a) => dialog.Find(RowOf(a)).GetAttribute("data-job-status")!;
        dialog.WaitForAssertion(() => Assert.Equal("true", dialog.Find("[data-testid=bulk-delete-progress]").GetAttribute("data-finished")), Patience);
        var statuses = accounts.ToDictionary(a => a, StatusOf);
        Assert.Equal(2, statuses.Values.Count(s => s == JobStatus.Succeeded));
        var failed = Assert.Single(statuses, s => s.Value == JobStatus.Failed).Key;
        Assert.Contains("injected failure in cron", dialog.Find(RowOf(failed)).TextContent);
        Assert.Contains("2 of 3 deleted, 1 failed", dialog.Find("[data-testid=bulk-delete-summary]").TextContent);
        foreach (var a in accounts.Where(a => a != failed))
            Assert.Null(await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), a.Id, default));

        await dialog.ClickAndAwaitAsync($"{RowOf(failed)} [data-testid=bulk-delete-retry]");

        dialog.WaitForAssertion(() => Assert.Equal(JobStatus.Succeeded, StatusOf(failed)), Patience);
        dialog.WaitForAssertion(() => Assert.Contains("3 of 3 deleted.", dialog.Find("[data-testid=bulk-delete-summary]").TextContent), Patience);
        Assert.Null(await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), failed.Id, default));
    }

    private async Task<(IRenderedComponent<AccountsPage> Page, IRenderedComponent<MudDialogProvider> Dialogs)> RenderGridAsync(string search)
    {
        // Sorted first and matched by no search: rows that are all the search's prove it applied, not the unsearched first
        // page (a search landing later would undo "all matching" and reload the rows under the ticks).
        await _app.InsertAccountAsync(UiKit.NewUsername("a"), _app.Admin.Id);
        var dialogs = Render<MudDialogProvider>();
        var page = Render<AccountsPage>();
        page.WaitForElement("[data-testid=accounts-grid] tbody", Patience);
        await page.SearchAsync(search);
        return (page, dialogs);
    }

    [Fact]
    public async Task TickingAFullPageOffersAllNMatchingAndTheBulkDialogTakesEveryOneOfThem()
    {
        var tag = UiKit.NewUsername("bm");
        var accounts = await AccountsAsync(tag, 27);
        var (page, dialogs) = await RenderGridAsync(tag);
        // The search has been applied (not only the first page of everything shown): every row is one of these.
        page.WaitForAssertion(() => Assert.Equal(accounts.Take(25).Select(a => a.Username), page.FindAll("[data-testid=account-link]").Select(l => l.TextContent)), Patience);

        await page.ChangeAsync(() => page.Find("[data-testid=select-page] input"), true);

        page.WaitForAssertion(() => Assert.Contains("25 selected", page.Find("[data-testid=bulk-count]").TextContent), Patience);
        await page.ClickAsync("[data-testid=bulk-all-matching]");
        page.WaitForAssertion(() => Assert.Contains("All 27 matching accounts are selected", page.Find("[data-testid=bulk-count]").TextContent), Patience);

        await page.ClickAsync("[data-testid=bulk-suspend]"); // its handler not awaited: it waits for the dialog to close

        dialogs.WaitForElement("[data-testid=bulk-change-results]", Patience);
        Assert.Equal(accounts.Select(a => a.Username), dialogs.FindAll("[data-testid=bulk-change-results] tr[data-account]").Select(r => r.GetAttribute("data-account")));

        // Cancelled: nothing changed, and the selection is still there for another try.
        await dialogs.ClickAndAwaitAsync("[data-testid=bulk-change-close]");
        dialogs.WaitForAssertion(() => Assert.Empty(dialogs.FindAll("[data-testid=bulk-change-results]")), Patience);
        page.WaitForAssertion(() => Assert.Contains("All 27 matching accounts are selected", page.Find("[data-testid=bulk-count]").TextContent), Patience);
        foreach (var a in accounts)
            Assert.Equal(AccountStatus.Active, (await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), a.Id, default))!.Status);
    }

    [Fact]
    public async Task BulkSuspendReportsEachAccountsOwnResult()
    {
        var tag = UiKit.NewUsername("bs");
        var served = await _app.CreateAsync($"{tag}a");
        var already = await _app.InsertAccountAsync($"{tag}b", _app.Admin.Id, AccountStatus.Suspended);
        var (page, dialog) = await RenderGridAsync(tag);
        page.WaitForAssertion(() => Assert.Equal([served.Username, already.Username], page.FindAll("[data-testid=account-link]").Select(l => l.TextContent)), Patience);
        // Each tick re-renders the rows: every box is found again after the one before it.
        foreach (var i in Enumerable.Range(0, page.FindAll("[data-testid=select-row] input").Count))
            await page.ChangeAsync(() => page.FindAll("[data-testid=select-row] input")[i], true);
        page.WaitForAssertion(() => Assert.Contains("2 selected", page.Find("[data-testid=bulk-count]").TextContent), Patience);

        await page.ClickAsync("[data-testid=bulk-suspend]"); // its handler not awaited: it waits for the dialog to close
        dialog.WaitForElement("[data-testid=bulk-change-submit]", Patience);
        await dialog.ClickAndAwaitAsync("[data-testid=bulk-change-submit]");

        dialog.WaitForAssertion(() => Assert.Equal("true", dialog.Find("[data-testid=bulk-change-summary]").GetAttribute("data-finished")), Patience);
        var rows = dialog.FindAll("[data-testid=bulk-change-results] tr[data-account]").ToDictionary(r => r.GetAttribute("data-account")!);
        Assert.Equal("done", rows[served.Username].GetAttribute("data-result"));
        Assert.Contains("suspended", rows[served.Username].TextContent);
        Assert.Equal("failed", rows[already.Username].GetAttribute("data-result"));
        Assert.Contains($"Account '{already.Username}' is suspended; only a active account can be suspended.", rows[already.Username].TextContent);
        Assert.Contains("1 of 2 suspended, 1 failed", dialog.Find("[data-testid=bulk-change-summary]").TextContent);
        Assert.Equal(AccountStatus.Suspended, (await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), served.Id, default))!.Status);
        // The grid heard of the suspension without being reloaded by the dialog's close.
        page.WaitForAssertion(() => Assert.Equal(AccountStatus.Suspended,
            page.FindAll("[data-testid=accounts-grid] tbody tr").Single(tr => tr.TextContent.Contains(served.Username)).QuerySelector("[data-status]")!.GetAttribute("data-status")), Patience);
    }
}
