using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>
/// An admin's day in a real browser: creates an account from the form (and the private nginx serves it), opens its
/// page, and deletes three accounts with one confirmation. Every page fits a laptop and a phone without the page
/// itself scrolling sideways.
/// </summary>
public sealed class BrowserAccountsTests(BrowserApp app) : IClassFixture<BrowserApp>
{
    private const string AdminPassword = "admin-password-1";
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 60_000 };
    private static readonly ViewportSize Laptop = new() { Width = 1280, Height = 800 };
    private static readonly ViewportSize Phone = new() { Width = 390, Height = 844 };

    private async Task<IPage> SignedInPageAsync()
    {
        var page = await app.Browser.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        await page.SetViewportSizeAsync(Laptop.Width, Laptop.Height);
        await page.GotoAsync(new Uri(app.Address, "/accounts").ToString());
        if (new Uri(page.Url).AbsolutePath.StartsWith("/login", StringComparison.Ordinal))
        {
            await page.FillAsync("input[name=username]", app.Admin.Username);
            await page.FillAsync("input[name=password]", AdminPassword);
            await page.ClickAsync("button[type=submit]");
        }
        await Assertions.Expect(page.Locator("[data-testid=accounts-grid][data-interactive=true]")).ToBeVisibleAsync(Visible);
        return page;
    }

    /// <summary>The page's own width fits the window: only tables inside their cards may scroll sideways.</summary>
    private static async Task AssertNoSidewaysScrollAsync(IPage page, string what)
    {
        var (scroll, window) = (await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"), await page.EvaluateAsync<int>("() => window.innerWidth"));
        Assert.True(scroll <= window, $"{what} at {window} px is {scroll} px wide: the page scrolls sideways");
    }

    private async Task AssertFitsLaptopAndPhoneAsync(IPage page, string what, string screenshot)
    {
        await AssertNoSidewaysScrollAsync(page, what);
        await page.SetViewportSizeAsync(Phone.Width, Phone.Height);
        await page.WaitForTimeoutAsync(300); // MudBlazor's breakpoint listener re-lays the page out
        await AssertNoSidewaysScrollAsync(page, what);
        await app.ScreenshotAsync(page, screenshot + "-phone");
        await page.SetViewportSizeAsync(Laptop.Width, Laptop.Height);
    }

    [Fact]
    public async Task AnAdminCreatesAnAccountFromTheFormAndThePrivateNginxServesItsSite()
    {
        var username = UiKit.NewUsername("new");
        var domain = $"{username}.test";
        var page = await SignedInPageAsync();

        await page.Locator("[data-testid=new-account]").ClickAsync();
        await page.WaitForURLAsync(new Regex("/accounts/new$"));
        await Assertions.Expect(page.Locator("[data-testid=create-form][data-interactive=true]")).ToBeVisibleAsync(Visible);
        await page.GetByLabel("Username").FillAsync("Bad Name");
        await page.GetByLabel("Domain").ClickAsync();
        await Assertions.Expect(page.GetByText(AccountRules.UsernameError("Bad Name")!)).ToBeVisibleAsync(Visible);
        await page.GetByLabel("Username").FillAsync(username);
        await page.GetByLabel("Domain").FillAsync(domain);
        await page.GetByLabel("Email").FillAsync($"owner@{domain}");
        await page.GetByLabel("Password", new() { Exact = true }).FillAsync("account-password-1");
        await Assertions.Expect(page.GetByText(AccountRules.UsernameError("Bad Name")!)).ToHaveCountAsync(0, new() { Timeout = 30_000 });
        await app.ScreenshotAsync(page, "5-create-form");
        await AssertFitsLaptopAndPhoneAsync(page, "the create form", "5-create-form");

        await page.Locator("[data-testid=create-submit]").ClickAsync();

        await page.WaitForURLAsync(new Regex(@"/accounts/\d+$"), new() { Timeout = 120_000 });
        await Assertions.Expect(page.Locator("[data-testid=account-resources]")).ToBeVisibleAsync(Visible);
        await Assertions.Expect(page.Locator("[data-testid=account-username]")).ToHaveTextAsync(username);
        await Assertions.Expect(page.Locator("[data-testid=account-audit]")).ToContainTextAsync("created", new() { Timeout = 30_000 });
        await app.ScreenshotAsync(page, "6-account-page");
        await AssertFitsLaptopAndPhoneAsync(page, "the account page", "6-account-page");

        var site = await DaemonKit.GetUntilAsync(domain, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, site.Status);
        Assert.Contains($"<h1>{domain}</h1>", site.Body);
        var account = (await app.Get<AccountStore>().ListAsync(new Viewer(0, true), new AccountQuery(Search: username), default)).Items.Single();
        Assert.Equal((AccountStatus.Active, app.Admin.Id), (account.Status, account.OwnerId));
    }

    [Fact]
    public async Task AnAdminDeletesThreeAccountsWithOneConfirmationAndWatchesAllThreeFinish()
    {
        var tag = UiKit.NewUsername("blk");
        var accounts = new List<Account>();
        foreach (var suffix in new[] { "a", "b", "c" }) accounts.Add(await app.CreateAsync(tag + suffix));
        var page = await SignedInPageAsync();
        await AssertFitsLaptopAndPhoneAsync(page, "the accounts grid", "7-accounts-grid");

        await page.GetByPlaceholder("Search username, domain or email").FillAsync(tag);
        var rows = page.Locator("[data-testid=accounts-grid] tbody tr").Filter(new() { Has = page.Locator("[data-testid=account-link]") });
        await Assertions.Expect(rows).ToHaveCountAsync(3, new() { Timeout = 30_000 });
        await page.Locator("[data-testid=select-page]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=bulk-count]")).ToContainTextAsync("3 selected");
        await page.Locator("[data-testid=bulk-delete]").ClickAsync();

        var dialog = page.Locator(".mud-dialog");
        await Assertions.Expect(dialog.Locator("[data-testid=bulk-delete-totals]")).ToContainTextAsync("3 accounts", new() { Timeout = 60_000 });
        var submit = dialog.Locator("[data-testid=bulk-delete-submit]");
        await dialog.GetByLabel("Number of accounts to delete").FillAsync("2");
        await dialog.GetByLabel("Your password").FillAsync(AdminPassword);
        await Assertions.Expect(dialog.GetByText("Type 3, the number of accounts")).ToBeVisibleAsync(Visible);
        await Assertions.Expect(submit).ToBeDisabledAsync();
        await dialog.GetByLabel("Number of accounts to delete").FillAsync("3");
        await Assertions.Expect(submit).ToBeEnabledAsync();
        await app.ScreenshotAsync(page, "8-bulk-delete-plan");

        await submit.ClickAsync();

        var progress = dialog.Locator("[data-testid=bulk-delete-progress]");
        await Assertions.Expect(progress).ToBeVisibleAsync(Visible);
        await app.ScreenshotAsync(page, "9-bulk-delete-during");
        await Assertions.Expect(progress).ToHaveAttributeAsync("data-finished", "true", new() { Timeout = 180_000 });
        foreach (var a in accounts)
            await Assertions.Expect(dialog.Locator($"tr[data-account={a.Username}]")).ToHaveAttributeAsync("data-job-status", JobStatus.Succeeded);
        await Assertions.Expect(dialog.Locator("[data-testid=bulk-delete-summary]")).ToContainTextAsync("3 of 3 deleted.");
        await app.ScreenshotAsync(page, "10-bulk-delete-after");
        await AssertFitsLaptopAndPhoneAsync(page, "the bulk delete dialog", "10-bulk-delete-after");

        await dialog.Locator("[data-testid=bulk-delete-close]").ClickAsync();
        await Assertions.Expect(rows).ToHaveCountAsync(0, new() { Timeout = 30_000 });
        foreach (var a in accounts)
        {
            Assert.Null(await app.Get<AccountStore>().FindAsync(new Viewer(0, true), a.Id, default));
            Assert.NotEqual(HttpStatusCode.OK, (await DaemonKit.GetAsync(a.Domain)).Status);
        }
    }
}
