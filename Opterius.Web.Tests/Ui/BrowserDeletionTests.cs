using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>An admin deletes an account in a real browser, as they would in the demo.</summary>
public sealed class BrowserDeletionTests(BrowserApp app) : IClassFixture<BrowserApp>
{
    private const string AdminPassword = "admin-password-1";
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 60_000 };

    private async Task<IPage> SignedInPageAsync()
    {
        var page = await app.Browser.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        await page.GotoAsync(new Uri(app.Address, "/accounts").ToString());
        await page.WaitForURLAsync(new Regex("/login"));
        if (await page.Locator("input[name=username]").IsVisibleAsync())
        {
            await page.FillAsync("input[name=username]", app.Admin.Username);
            await page.FillAsync("input[name=password]", AdminPassword);
            await page.ClickAsync("button[type=submit]");
        }
        await WaitInteractiveAsync(page);
        return page;
    }

    private static async Task WaitInteractiveAsync(IPage page) =>
        // Prerendered buttons ignore clicks until the circuit is up; the grid says when it is.
        await Assertions.Expect(page.Locator("[data-testid=accounts-grid][data-interactive=true]")).ToBeVisibleAsync(Visible);

    private static ILocator Row(IPage page, string username) =>
        page.Locator("[data-testid=accounts-grid] tbody tr").Filter(new() { Has = page.GetByText(username, new() { Exact = true }) });

    [Fact]
    public async Task AnAdminDeletesAnAccountInTheBrowserAndItLeavesAnotherOpenPage()
    {
        var username = UiKit.NewUsername("web");
        var account = await app.Get<AccountCreation>().CreateAsync(Actor.System("browser test"), app.Admin.Id,
            new CreateAccountRequest(username, $"{username}.test", $"owner@{username}.test", "account-password-1", 1), default);

        // Sign in once: the second tab shares the cookie, like a second tab of the same admin.
        var watcher = await SignedInPageAsync();
        var page = await app.Browser.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        await page.GotoAsync(new Uri(app.Address, "/accounts").ToString());
        await WaitInteractiveAsync(page);
        await Assertions.Expect(Row(watcher, username)).ToBeVisibleAsync(Visible);
        await Assertions.Expect(Row(page, username)).ToBeVisibleAsync(Visible);

        await app.ScreenshotAsync(page, "0-accounts");
        await Row(page, username).Locator("[data-action=delete]").ClickAsync();
        var dialog = page.Locator(".mud-dialog");
        await Assertions.Expect(dialog.Locator("[data-testid=delete-plan]")).ToBeVisibleAsync(Visible);
        await Assertions.Expect(dialog.Locator("[data-testid=delete-warning]")).ToContainTextAsync("no undo");
        var delete = dialog.Locator("[data-testid=delete-submit]");
        await dialog.GetByLabel("Username to delete").FillAsync(username.ToUpperInvariant());
        await dialog.GetByLabel("Your password").FillAsync(AdminPassword);
        // Disabled only counts once the circuit took the input: its mismatch message says so (same patience as enabled).
        await Assertions.Expect(dialog.GetByText("Does not match the username exactly")).ToBeVisibleAsync(Visible);
        await Assertions.Expect(delete).ToBeDisabledAsync();
        await dialog.GetByLabel("Username to delete").FillAsync(username);
        await Assertions.Expect(delete).ToBeEnabledAsync();
        await app.ScreenshotAsync(page, "1-delete-dialog-before");

        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        await delete.ClickAsync();
        var progress = dialog.Locator("[data-testid=delete-progress]");
        await Assertions.Expect(progress).ToBeVisibleAsync(Visible);
        await app.ScreenshotAsync(page, "2-delete-dialog-during");

        await Assertions.Expect(progress).ToHaveAttributeAsync("data-job-status", JobStatus.Succeeded, new() { Timeout = 120_000 });
        foreach (var key in DeletionOrder.Keys)
            await Assertions.Expect(progress.Locator($"[data-resource={key}]")).ToHaveAttributeAsync("data-status", expected[key]);
        await Assertions.Expect(dialog.Locator("[data-testid=delete-outcome]")).ToContainTextAsync("deleted");
        await app.ScreenshotAsync(page, "3-delete-dialog-after");

        // The other tab was never reloaded: the account left it live.
        await Assertions.Expect(Row(watcher, username)).ToHaveCountAsync(0, new() { Timeout = 30_000 });
        await app.ScreenshotAsync(watcher, "4-other-tab-after");
        await dialog.Locator("[data-testid=delete-close]").ClickAsync();
        await Assertions.Expect(Row(page, username)).ToHaveCountAsync(0);
        Assert.Null(await app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default));
    }
}
