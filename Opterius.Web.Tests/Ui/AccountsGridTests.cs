using System.Security.Claims;
using Bunit;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Users;
using Opterius.Web.Auth;
using Opterius.Web.Components.Pages.Accounts;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The accounts page over the real account store and event stream.</summary>
public sealed class AccountsGridTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;
    private readonly string _tag = UiKit.NewUsername("s"); // each test inserts its own rows into the class's database
    private PanelUser _reseller = default!;
    private IRenderedComponent<MudDialogProvider> _dialogs = default!;
    private readonly List<Account> _resellers = [];
    private readonly List<Account> _foreign = [];

    public AccountsGridTests(PanelApp app)
    {
        _app = app;
        _auth = this.UsePanel(app);
    }

    public async Task InitializeAsync()
    {
        _reseller = await _app.NewResellerAsync();
        var other = await _app.NewResellerAsync();
        // Look-alike names on purpose: a prefix search or a sort must not bring a neighbour's account in.
        for (var i = 0; i < 3; i++)
        {
            _resellers.Add(await _app.InsertAccountAsync($"{_tag}{i}mine", _reseller.Id));
            _foreign.Add(await _app.InsertAccountAsync($"{_tag}{i}admin", _app.Admin.Id));
            _foreign.Add(await _app.InsertAccountAsync($"{_tag}{i}other", other.Id));
        }
    }

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    private IRenderedComponent<AccountsPage> RenderAs(PanelUser user)
    {
        _auth.SetAuthorized(user.Username);
        _auth.SetClaims(new Claim(PanelClaims.UserId, user.Id.ToString()), new Claim(PanelClaims.Role, user.Role), new Claim(PanelClaims.Name, user.Username));
        Render<MudPopoverProvider>();
        _dialogs = Render<MudDialogProvider>();
        return Render<AccountsPage>();
    }

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>What the grid shows now: username → status, row by row.</summary>
    private static Dictionary<string, string> Rows(IRenderedComponent<AccountsPage> page) =>
        page.FindAll("[data-testid=accounts-grid] tbody tr")
            .Where(tr => tr.QuerySelector("[data-status]") is not null)
            .ToDictionary(tr => tr.QuerySelector("[data-testid=account-link]")!.TextContent.Trim(), tr => tr.QuerySelector("[data-status]")!.GetAttribute("data-status")!);

    [Fact]
    public async Task AResellersGridNeverShowsAForeignAccount()
    {
        var page = RenderAs(_reseller);

        page.WaitForAssertion(() => Assert.Equal(_resellers.Select(a => a.Username).Order(), Rows(page).Keys.Order()), Patience);
        var markup = page.Markup;
        Assert.All(_foreign, a => Assert.DoesNotContain(a.Username, markup));

        // Searched by a foreign name's prefix: still only their own.
        await page.SearchAsync($"{_tag}0");
        page.WaitForAssertion(() => Assert.Equal([$"{_tag}0mine"], Rows(page).Keys), Patience);
        Assert.All(_foreign, a => Assert.DoesNotContain(a.Username, page.Markup));
    }

    [Fact]
    public async Task TextChangedAgainWithinTheSearchsWaitRunsNoQueryForTheFirstText()
    {
        var page = RenderAs(_app.Admin);
        var grid = page.FindComponent<MudDataGrid<Account>>();
        page.WaitForAssertion(() => { Assert.NotEmpty(Rows(page)); Assert.False(grid.Instance.Loading); }, Patience);
        // Every query of the grid's server data shows as a render with Loading on; every set of rows it lands shows too
        // (the whole grid, unsearched, may hold the first text's rows among others: only its own rows alone are its search).
        string[] firstText = [$"{_tag}1admin", $"{_tag}1mine", $"{_tag}1other"];
        var loads = 0;
        var loading = false;
        var firstTextShown = false;
        grid.OnAfterRender += (_, _) =>
        {
            if (grid.Instance.Loading && !loading) loads++;
            loading = grid.Instance.Loading;
            firstTextShown |= Rows(page).Keys.Order().SequenceEqual(firstText);
        };

        await page.SearchAsync($"{_tag}1");
        await page.SearchAsync($"{_tag}2");

        page.WaitForAssertion(() => Assert.Equal([$"{_tag}2admin", $"{_tag}2mine", $"{_tag}2other"], Rows(page).Keys.Order()), Patience);
        Assert.Equal(1, loads);
        Assert.False(firstTextShown);
    }

    [Fact]
    public async Task ANewSearchUnderAllMatchingDropsAllMatchingAndTheBarShowsTheNewTotal()
    {
        // 30 accounts under one prefix and 5 more under the wider one: two totals over a page of 25.
        for (var i = 0; i < 30; i++) await _app.InsertAccountAsync($"{_tag}9a{i:00}", _app.Admin.Id);
        for (var i = 0; i < 5; i++) await _app.InsertAccountAsync($"{_tag}9b{i}", _app.Admin.Id);
        var page = RenderAs(_app.Admin);
        await page.SearchAsync($"{_tag}9");
        page.WaitForAssertion(() => Assert.Equal(25, Rows(page).Count(r => r.Key.StartsWith($"{_tag}9a", StringComparison.Ordinal))), Patience);
        await page.ChangeAsync(() => page.Find("[data-testid=select-page] input"), true);
        page.WaitForAssertion(() => Assert.Contains("Select all 35 matching", page.Find("[data-testid=bulk-all-matching]").TextContent), Patience);
        await page.ClickAsync("[data-testid=bulk-all-matching]");
        page.WaitForAssertion(() => Assert.Contains("All 35 matching accounts are selected", page.Find("[data-testid=bulk-count]").TextContent), Patience);

        // The same first page, ticked, under a narrower search: the ticks stay, "all matching" does not, the total is new.
        await page.SearchAsync($"{_tag}9a");

        page.WaitForAssertion(() =>
        {
            Assert.Equal("25 selected.", page.Find("[data-testid=bulk-count]").TextContent.Trim());
            Assert.Equal("25", page.Find("[data-testid=bulk-bar]").GetAttribute("data-selected"));
            Assert.Equal("Select all 30 matching", page.Find("[data-testid=bulk-all-matching]").TextContent.Trim());
        }, Patience);
    }

    [Fact]
    public async Task ASearchRendersTheGridWithItsRowsWithoutASecondPassOverThePage()
    {
        var page = RenderAs(_app.Admin);
        page.WaitForAssertion(() => Assert.NotEmpty(Rows(page)), Patience);
        // A component of the page outside the grid renders again only when the page does.
        var outside = page.FindComponents<MudButton>().Single(b => Equals(b.Instance.UserAttributes.GetValueOrDefault("data-testid"), "new-account"));
        var outsideRenders = outside.RenderCount;

        page.FindComponents<MudTextField<string>>().Single().Find("input").Input($"{_tag}1");

        page.WaitForAssertion(() => Assert.Equal([$"{_tag}1admin", $"{_tag}1mine", $"{_tag}1other"], Rows(page).Keys.Order()), Patience);
        // Whatever the search queued on the renderer has run: the grid rendered its rows, the page around it did not
        // render again (that pass renders every row's components once more, on the search's critical path).
        for (var i = 0; i < 5; i++) await page.InvokeAsync(() => { });
        Assert.Equal(outsideRenders, outside.RenderCount);
    }

    [Fact]
    public void EachRowActionExplainsItselfOnHoverWithoutKeepingAPopoverPerRow()
    {
        var page = RenderAs(_app.Admin);
        page.FindComponents<MudTextField<string>>().Single().Find("input").Input($"{_tag}0");
        page.WaitForAssertion(() => Assert.Equal([$"{_tag}0admin", $"{_tag}0mine", $"{_tag}0other"], Rows(page).Keys.Order()), Patience);

        var row = page.FindAll("[data-testid=accounts-grid] tbody tr").Single(tr => tr.QuerySelector("[data-testid=account-link]")?.TextContent.Trim() == $"{_tag}0mine");
        Assert.Equal("Suspend: the site answers 503, mail and logins stop, nothing is removed", row.QuerySelector("[data-action=suspend]")?.GetAttribute("title"));
        Assert.Equal("Delete this account and everything it owns", row.QuerySelector("[data-action=delete]")?.GetAttribute("title"));
        // A MudTooltip keeps a MudPopover even while hidden, made anew for every row of every search and page.
        Assert.Empty(page.FindComponent<MudDataGrid<Account>>().FindComponents<MudTooltip>());
    }

    [Fact]
    public async Task AnAccountBeingDeletedElsewhereTurnsDeletingThenLeavesTheOpenGrid()
    {
        var page = RenderAs(_app.Admin);
        var target = _resellers[2];
        // Searched: other classes add accounts to the shared panel, which can push it off the first page.
        await page.SearchAsync(target.Username);
        page.WaitForAssertion(() => Assert.Equal(AccountStatus.Active, Rows(page).GetValueOrDefault(target.Username)), Patience);

        // Another tab (or the API) starts the deletion: the journal marks the account, the stream announces it.
        var job = await _app.Get<DeletionJobStore>().OpenAsync(target, "another tab", default) ?? throw new InvalidOperationException("account row missing");
        var events = _app.Get<DeletionEvents>();
        events.Publish(new DeletionEvent(target.Id, job.Id, DeletionEvent.JobResource, JobStatus.Running, null, DateTimeOffset.UtcNow));
        page.WaitForAssertion(() => Assert.Equal(AccountStatus.Deleting, Rows(page)[target.Username]), Patience);

        await _app.Get<DeletionJobStore>().SucceedAsync(job, default);
        events.Publish(new DeletionEvent(target.Id, job.Id, DeletionEvent.JobResource, JobStatus.Succeeded, null, DateTimeOffset.UtcNow));
        page.WaitForAssertion(() => Assert.DoesNotContain(target.Username, Rows(page).Keys), Patience);
    }

    [Theory]
    [InlineData(false, "blocked: a problem on the server, which the host has been told of")]
    [InlineData(true, "blocked: InvalidOperationException: pool 12 at 0x7f")]
    public async Task WhyADueDeletionWaitsIsTheSchedulersOwnForAnAdminAndWordsMeantForTheReseller(bool admin, string shown)
    {
        var target = await _app.InsertAccountAsync($"{_tag}blk{(admin ? "a" : "r")}", _reseller.Id, AccountStatus.Suspended);
        // Due in the future, so no scheduler of the shared panel takes it; the note shows whatever the column says.
        await _app.Databases.PanelScalarAsync<object?>(
            "UPDATE accounts SET deletion_due_at = '2031-01-01 00:00:00', deletion_blocked = 'InvalidOperationException: pool 12 at 0x7f' WHERE id = @Id", target);
        var page = RenderAs(admin ? _app.Admin : _reseller);
        await page.SearchAsync(target.Username);

        page.WaitForAssertion(() => Assert.Equal(shown, page.FindAll("[data-testid=accounts-grid] tbody tr")
            .SingleOrDefault(tr => tr.QuerySelector("[data-testid=account-link]")?.TextContent.Trim() == target.Username)
            ?.QuerySelector("[data-testid=deletion-blocked]")?.TextContent.Trim()), Patience);
        if (!admin) Assert.DoesNotContain("0x7f", page.Markup);
    }

    [Fact]
    public async Task AScheduledAccountShowsTheDayOfItsDeletionAndCancelKeepsItSuspended()
    {
        var target = await _app.InsertAccountAsync($"{_tag}sched", _app.Admin.Id, AccountStatus.Suspended);
        await _app.Databases.PanelScalarAsync<object?>("UPDATE accounts SET deletion_due_at = '2031-03-04 05:06:07' WHERE id = @Id", target);
        var page = RenderAs(_app.Admin);
        await page.SearchAsync(target.Username);
        AngleSharp.Dom.IElement Row() => page.FindAll("[data-testid=accounts-grid] tbody tr").Single(tr => tr.QuerySelector("[data-testid=account-link]")?.TextContent.Trim() == target.Username);

        // The search has been applied (a later re-render would retire the button's handler), and the click finds and
        // fires in one turn of the renderer, so a live update between the two cannot leave it pointing at an old handler.
        page.WaitForAssertion(() => Assert.Equal([target.Username], Rows(page).Keys), Patience);
        page.WaitForAssertion(() => Assert.Equal("deletion on 2031-03-04", Row().QuerySelector("[data-testid=deletion-due]")?.TextContent.Trim()), Patience);
        await page.ClickAsync(() => Row().QuerySelector("[data-action=cancel-deletion]")!);
        _dialogs.WaitForElement(".mud-message-box", Patience);
        Assert.Equal(["Keep account", "Close"], _dialogs.FindAll(".mud-message-box button").Select(b => b.TextContent.Trim()).Order().Reverse().ToArray());
        await _dialogs.ClickAsync(() => _dialogs.FindAll(".mud-message-box button").Single(b => b.TextContent.Contains("Keep account")));

        page.WaitForAssertion(() => Assert.Null(Row().QuerySelector("[data-testid=deletion-due]")), Patience);
        Assert.Null(Row().QuerySelector("[data-action=cancel-deletion]"));
        var kept = (await _app.Get<AccountStore>().FindAsync(new Viewer(0, true), target.Id, default))!;
        Assert.Equal((AccountStatus.Suspended, null), (kept.Status, kept.DeletionDueAt));
    }
}
