using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using Bunit;
using Microsoft.AspNetCore.Components;
using MudBlazor;
using MudBlazor.Extensions;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Users;
using Opterius.Web.Auth;
using Opterius.Web.Components.Pages.Accounts;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The create form and the account page over the real create path, inspections, journal and audit.</summary>
public sealed class CreateAndAccountPageTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;

    public CreateAndAccountPageTests(PanelApp app)
    {
        _app = app;
        _auth = this.UsePanel(app);
    }

    public Task InitializeAsync()
    {
        SignIn(_app.Admin);
        Render<MudPopoverProvider>();
        Render<MudDialogProvider>();
        return Task.CompletedTask;
    }

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    private void SignIn(PanelUser user)
    {
        _auth.SetAuthorized(user.Username);
        _auth.SetClaims(new Claim(PanelClaims.UserId, user.Id.ToString()), new Claim(PanelClaims.Role, user.Role), new Claim(PanelClaims.Name, user.Username));
    }

    private static IRenderedComponent<MudTextField<string>> Field(IRenderedComponent<CreateAccountPage> page, string label) =>
        page.FindComponents<MudTextField<string>>().Single(f => f.Instance.Label == label);

    /// <summary>Types into the field, then leaves it; the blur finds the field again, as the input re-rendered it.</summary>
    private static async Task TypeAndLeaveAsync(IRenderedComponent<CreateAccountPage> page, string label, string text)
    {
        await page.TypeAsync(label, text);
        await page.InvokeAsync(() => Field(page, label).Find("input").Blur());
    }

    /// <summary>
    /// Until the form has read the packages and chosen the first: the form and its submit render before that read ends, and
    /// a submit in between is refused for want of a package (on a loaded machine the typing can be done by then).
    /// </summary>
    private static void WaitForPackages(IRenderedComponent<CreateAccountPage> page) => page.WaitForAssertion(() =>
        Assert.NotNull(page.FindComponents<MudSelect<long?>>().Single(s => s.Instance.Label == "Package").Instance.GetState(x => x.Value)), Patience);

    /// <summary>The error each field shows now, by label.</summary>
    private static Dictionary<string, string?> ShownErrors(IRenderedComponent<CreateAccountPage> page) =>
        page.FindComponents<MudTextField<string>>().ToDictionary(f => f.Instance.Label!, f => f.Instance.GetErrorText());

    [Fact]
    public async Task EachBadFieldShowsWordForWordTheMessageTheApiAnswersForIt()
    {
        var bad = new { username = "Bob", domain = "localhost", email = "not-an-address", password = "short" };
        var client = await _app.ClientAsync();
        var response = await client.PostAsJsonAsync("/api/v1/accounts", new { bad.username, bad.domain, bad.email, bad.password, package_id = 1 });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var details = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("details");

        var page = Render<CreateAccountPage>();
        WaitForPackages(page);
        await TypeAndLeaveAsync(page, "Username", bad.username);
        await TypeAndLeaveAsync(page, "Domain", bad.domain);
        await TypeAndLeaveAsync(page, "Email", bad.email);
        await TypeAndLeaveAsync(page, "Password", bad.password);

        page.WaitForAssertion(() =>
        {
            var shown = ShownErrors(page);
            Assert.Equal(details.GetProperty("username").GetString(), shown["Username"]);
            Assert.Equal(details.GetProperty("domain").GetString(), shown["Domain"]);
            Assert.Equal(details.GetProperty("email").GetString(), shown["Email"]);
            Assert.Equal(details.GetProperty("password").GetString(), shown["Password"]);
        }, Patience);
        Assert.Contains(details.GetProperty("username").GetString()!, page.Markup);

        // A good value clears its message at once.
        await TypeAndLeaveAsync(page, "Username", UiKit.NewUsername("ok"));
        page.WaitForAssertion(() => Assert.Null(ShownErrors(page)["Username"]), Patience);
    }

    [Fact]
    public async Task SubmittingBadFieldsCreatesNothingAndAReservedNameIsRefusedAsTheApiRefusesIt()
    {
        var before = await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(PerPage: 1), default);
        var page = Render<CreateAccountPage>();
        WaitForPackages(page);
        await TypeAndLeaveAsync(page, "Username", "postmaster");
        await TypeAndLeaveAsync(page, "Domain", $"{UiKit.NewUsername("d")}.test");
        await TypeAndLeaveAsync(page, "Email", "owner@example.com");
        await TypeAndLeaveAsync(page, "Password", "good-password-1");

        await page.ClickAndAwaitAsync("[data-testid=create-submit]");

        page.WaitForAssertion(() => Assert.Equal(AccountRules.UsernameError("postmaster"), ShownErrors(page)["Username"]), Patience);
        var after = await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(PerPage: 1), default);
        Assert.Equal(before.Total, after.Total);
    }

    [Fact]
    public async Task ATakenUsernameIsShownAsTheServersConflictOnTheForm()
    {
        var taken = await _app.InsertAccountAsync(UiKit.NewUsername("tkn"), _app.Admin.Id);
        var page = Render<CreateAccountPage>();
        WaitForPackages(page);
        await TypeAndLeaveAsync(page, "Username", taken.Username);
        await TypeAndLeaveAsync(page, "Domain", $"{UiKit.NewUsername("d")}.test");
        await TypeAndLeaveAsync(page, "Email", "owner@example.com");
        await TypeAndLeaveAsync(page, "Password", "good-password-1");

        await page.ClickAndAwaitAsync("[data-testid=create-submit]");

        page.WaitForAssertion(() =>
        {
            var error = page.Find("[data-testid=create-error]");
            Assert.Equal("conflict", error.GetAttribute("data-error"));
            Assert.Equal($"The username '{taken.Username}' is taken by account {taken.Id} ({taken.Domain}).", error.TextContent.Trim());
        }, Patience);
    }

    [Fact]
    public async Task ALicenseWhoseAccountsAreAllUsedIsShownOnTheFormAsTheApiSaysItAndNoLicenseDisablesCreate()
    {
        await _app.InsertAccountAsync(UiKit.NewUsername("lim"), _app.Admin.Id);
        var used = (await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(PerPage: 1), default)).Total;
        _app.IssueLicense(maxAccounts: (int)used, expiresDays: 30);
        try
        {
            var username = UiKit.NewUsername("lim");
            var page = Render<CreateAccountPage>();
            WaitForPackages(page);
            await TypeAndLeaveAsync(page, "Username", username);
            await TypeAndLeaveAsync(page, "Domain", $"{username}.test");
            await TypeAndLeaveAsync(page, "Email", $"owner@{username}.test");
            await TypeAndLeaveAsync(page, "Password", "good-password-1");

            await page.ClickAndAwaitAsync("[data-testid=create-submit]");

            page.WaitForAssertion(() =>
            {
                var error = page.Find("[data-testid=create-error]");
                Assert.Equal("account_limit_reached", error.GetAttribute("data-error"));
                Assert.Equal($"The license allows {used} accounts and all are in use: delete an account or upgrade the license.", error.TextContent.Trim());
            }, Patience);
            Assert.Empty((await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(Search: username), default)).Items);

            File.Delete(_app.LicensePath);
            var blocked = Render<CreateAccountPage>();
            blocked.WaitForElement("[data-testid=create-blocked]", Patience);
            Assert.True(blocked.Find("[data-testid=create-submit]").HasAttribute("disabled"));
        }
        finally { _app.IssueLicense(maxAccounts: null, expiresDays: 30); }
    }

    [Fact]
    public async Task AnAccountCreatedFromTheFormAppearsLiveInAnOpenGridAndOpensItsPage()
    {
        var grid = Render<AccountsPage>();
        var username = UiKit.NewUsername("frm");
        grid.WaitForElement("[data-testid=accounts-grid] tbody", Patience);
        var page = Render<CreateAccountPage>();
        WaitForPackages(page);
        await TypeAndLeaveAsync(page, "Username", username);
        await TypeAndLeaveAsync(page, "Domain", $"{username}.test");
        await TypeAndLeaveAsync(page, "Email", $"owner@{username}.test");
        await TypeAndLeaveAsync(page, "Password", "good-password-1");

        await page.ClickAndAwaitAsync("[data-testid=create-submit]");

        // The grid was never told to reload: the create's notification brought the row in.
        grid.WaitForAssertion(() => Assert.Contains(grid.FindAll("[data-testid=account-link]"), l => l.TextContent == username), Patience);
        var account = (await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(Search: username), default)).Items.Single();
        Assert.Equal(AccountStatus.Active, account.Status);
        Assert.Equal(_app.Admin.Id, account.OwnerId);
        var navigation = Services.GetService(typeof(NavigationManager)) as NavigationManager;
        Assert.EndsWith($"/accounts/{account.Id}", navigation!.Uri);
    }

    [Fact]
    public async Task AnAdminCreatesForAResellerWhoThenOwnsIt()
    {
        var reseller = await _app.NewResellerAsync();
        var username = UiKit.NewUsername("own");
        var page = Render<CreateAccountPage>();
        WaitForPackages(page);
        await TypeAndLeaveAsync(page, "Username", username);
        await TypeAndLeaveAsync(page, "Domain", $"{username}.test");
        await TypeAndLeaveAsync(page, "Email", $"owner@{username}.test");
        await TypeAndLeaveAsync(page, "Password", "good-password-1");
        var owner = page.FindComponents<MudSelect<long>>().Single(s => s.Instance.Label == "Owner");
        await owner.InvokeAsync(() => owner.Instance.ValueChanged.InvokeAsync(reseller.Id));

        await page.ClickAndAwaitAsync("[data-testid=create-submit]");

        var navigation = (NavigationManager)Services.GetService(typeof(NavigationManager))!;
        page.WaitForAssertion(() => Assert.Contains("/accounts/", navigation.Uri), Patience);
        var account = (await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(Search: username), default)).Items.Single();
        Assert.Equal(reseller.Id, account.OwnerId);
    }

    [Fact]
    public async Task AResellersFormHasNoOwnerPickerAndItsAccountIsItsOwn()
    {
        var reseller = await _app.NewResellerAsync();
        SignIn(reseller);
        var username = UiKit.NewUsername("rsl");
        var page = Render<CreateAccountPage>();
        WaitForPackages(page);
        Assert.Empty(page.FindComponents<MudSelect<long>>());
        await TypeAndLeaveAsync(page, "Username", username);
        await TypeAndLeaveAsync(page, "Domain", $"{username}.test");
        await TypeAndLeaveAsync(page, "Email", $"owner@{username}.test");
        await TypeAndLeaveAsync(page, "Password", "good-password-1");

        await page.ClickAndAwaitAsync("[data-testid=create-submit]");

        var navigation = (NavigationManager)Services.GetService(typeof(NavigationManager))!;
        page.WaitForAssertion(() => Assert.Contains("/accounts/", navigation.Uri), Patience);
        var account = (await _app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(Search: username), default)).Items.Single();
        Assert.Equal(reseller.Id, account.OwnerId);
    }

    private IRenderedComponent<AccountDetailPage> RenderAccountPage(string id) => Render<AccountDetailPage>(p => p.Add(x => x.Id, id));

    [Fact]
    public async Task TheAccountPageShowsIdentityOwnerPackageResourcesWithSizesAndTheCreatesAuditEntry()
    {
        var account = await _app.CreateAsync(UiKit.NewUsername("pag"));
        var page = RenderAccountPage(account.Id.ToString());

        page.WaitForElement("[data-testid=account-resources]", Patience);
        Assert.Equal(account.Username, page.Find("[data-testid=account-username]").TextContent);
        Assert.Equal(account.Domain, page.Find("[data-field=domain]").TextContent);
        Assert.StartsWith(_app.Admin.Username, page.Find("[data-field=owner]").TextContent);
        Assert.StartsWith("default", page.Find("[data-field=package]").TextContent);
        Assert.Equal(account.Uid.ToString(), page.Find("[data-field=uid]").TextContent);
        var planned = page.FindAll("[data-testid=account-resources] tr[data-resource]").Select(r => r.GetAttribute("data-resource"));
        Assert.Equal(DeletionOrder.Keys, planned);
        var home = page.Find("[data-testid=account-resources] tr[data-resource=home_directory]");
        Assert.NotEqual("", home.QuerySelector("td.num")!.TextContent.Trim()); // its size
        page.WaitForAssertion(() => Assert.Contains("created", page.Find("[data-testid=account-audit]").TextContent), Patience);
        Assert.Contains("No deletion was ever started", page.Find("[data-testid=account-deletions]").TextContent);
    }

    [Fact]
    public async Task TheAccountPageListsItsDeletionJobsWithTheirStatusAndFollowsANewOneLive()
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("job"), _app.Admin.Id);
        var page = RenderAccountPage(account.Id.ToString());
        page.WaitForElement("[data-testid=account-resources]", Patience);

        var jobs = _app.Get<DeletionJobStore>();
        var job = await jobs.OpenAsync(account, "another tab", default) ?? throw new InvalidOperationException("account row missing");
        var failedAt = job.Steps.First();
        await jobs.SetStepAsync(job.Id, failedAt.Position, "failed", "made to fail by the test", default);
        await jobs.FailAsync(job, default);
        _app.Get<DeletionEvents>().Publish(new DeletionEvent(account.Id, job.Id, DeletionEvent.JobResource, JobStatus.Failed, null, DateTimeOffset.UtcNow));

        page.WaitForAssertion(() =>
        {
            var row = page.Find($"[data-testid=account-deletions] tr[data-job='{job.Id}']");
            Assert.Equal(JobStatus.Failed, row.GetAttribute("data-job-status"));
            Assert.Contains("made to fail by the test", row.TextContent);
        }, Patience);
        Assert.Equal(AccountStatus.DeletionFailed, page.Find("[data-status]").GetAttribute("data-status"));
    }

    [Theory]
    [InlineData("foreign")]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("99999999999999999999999")]
    public async Task AResellerOpeningAnAccountNotItsOwnOrABadIdSeesAPlainNotFound(string which)
    {
        var foreign = await _app.InsertAccountAsync(UiKit.NewUsername("frn"), _app.Admin.Id);
        var reseller = await _app.NewResellerAsync();
        SignIn(reseller);

        var page = RenderAccountPage(which == "foreign" ? foreign.Id.ToString() : which);

        page.WaitForElement("[data-testid=account-not-found]", Patience);
        Assert.DoesNotContain(foreign.Username, page.Markup);
        Assert.DoesNotContain(foreign.Domain, page.Markup);
        Assert.Empty(page.FindAll("[data-testid=account-resources]"));
        Assert.Empty(page.FindAll("[data-testid=account-audit]"));
    }
}
