using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Users;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>A day of an admin and of a reseller in a real browser: failed deletions, tokens, the audit log, the viewer, layout.</summary>
public sealed class BrowserOpsTests(BrowserApp app) : IClassFixture<BrowserApp>
{
    private const string AdminPassword = "admin-password-1";
    private const string ResellerPassword = "reseller-password-1";
    private static readonly LocatorAssertionsToBeVisibleOptions Visible = new() { Timeout = 60_000 };

    /// <summary>A page signed in as this user through the sign-in form (the browser's cookies are cleared first), on <paramref name="path"/>.</summary>
    private async Task<IPage> SignedInAsync(PanelUser user, string password, string path = "/")
    {
        await app.Browser.ClearCookiesAsync();
        var page = await app.Browser.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        await page.GotoAsync(new Uri(app.Address, path).ToString());
        await page.WaitForURLAsync(new Regex("/login"));
        await page.FillAsync("input[name=username]", user.Username);
        await page.FillAsync("input[name=password]", password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(u => !u.Contains("/login"));
        if (path != "/") await page.GotoAsync(new Uri(app.Address, path).ToString());
        await WaitInteractiveAsync(page);
        return page;
    }

    private static Task WaitInteractiveAsync(IPage page) =>
        // Prerendered buttons ignore clicks until the circuit is up; the layout says when it is.
        Assertions.Expect(page.Locator(".mud-layout[data-interactive=true]")).ToBeVisibleAsync(Visible);

    [Fact]
    public async Task AFailedDeletionAppearsOnTheDeletionsPageAndRetryFinishesIt()
    {
        var account = await app.CreateAsync(UiKit.NewUsername("brr"));
        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        var failing = DeletionTesting.ServiceOf(app.Services, r => r.Key == "mailboxes" ? new FailOnceResource(r) : r);
        var failed = await (await failing.StartAsync(app.AdminActor(), account.Id, default)).Completion;
        Assert.Equal(JobStatus.Failed, failed.Status);

        var page = await SignedInAsync(app.Admin, AdminPassword, "/deletions");
        // The tabs count from the first load on, not only once something else redraws the page.
        await Assertions.Expect(page.Locator("[data-testid=deletions-status] [data-status=failed]")).ToContainTextAsync(new Regex(@"Failed \(\d"), new() { Timeout = 10_000 });
        await page.Locator("[data-testid=deletions-status] [data-status=failed]").ClickAsync();
        await page.GetByPlaceholder("Search username or domain").FillAsync(account.Username);
        var row = page.Locator("[data-testid=deletions-grid] tbody tr").Filter(new() { HasText = account.Username });
        await Assertions.Expect(row.Locator("[data-testid=failed-step]")).ToContainTextAsync("injected failure in mailboxes", new() { Timeout = 30_000 });
        await Assertions.Expect(row.Locator("[data-testid=failed-step]")).ToHaveAttributeAsync("data-resource", "mailboxes");
        await app.ScreenshotAsync(page, "ops-1-deletions-failed");

        await row.Locator("[data-testid=deletion-retry]").ClickAsync();

        // The page shows failed jobs: the finished one leaves it live, and appears under Succeeded.
        await Assertions.Expect(row).ToHaveCountAsync(0, new() { Timeout = 120_000 });
        await page.Locator("[data-testid=deletions-status] [data-status=succeeded]").ClickAsync();
        await Assertions.Expect(row.Locator("[data-testid=job-status]")).ToHaveTextAsync(JobStatus.Succeeded, new() { Timeout = 30_000 });
        await app.ScreenshotAsync(page, "ops-2-deletions-retried");
        var job = await app.Get<DeletionJobStore>().FindAsync(failed.Id, default);
        Assert.Equal(JobStatus.Succeeded, job!.Status);
        Assert.Equal(expected, job.Steps.ToDictionary(s => s.Resource, s => s.Status));
        Assert.Null(await app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default));
    }

    [Fact]
    public async Task AResellerMintsATokenInTheBrowserAndCurlListsOnlyItsAccounts()
    {
        var reseller = await app.NewResellerAsync();
        var prefix = "brt" + TestAccounts.NewPrefix(5);
        var own = new[] { await app.InsertAccountAsync(prefix + "a", reseller.Id), await app.InsertAccountAsync(prefix + "b", reseller.Id) };
        var foreign = await app.InsertAccountAsync(prefix + "c", app.Admin.Id);

        var page = await SignedInAsync(reseller, ResellerPassword, "/tokens");
        await page.GetByLabel("Name").FillAsync("dashboard");
        await page.Locator("[data-testid=token-create]").ClickAsync();
        var value = page.Locator("[data-testid=token-value]");
        await Assertions.Expect(value).ToBeVisibleAsync(Visible);
        var token = (await value.TextContentAsync())!.Trim();
        await app.ScreenshotAsync(page, "ops-3-reseller-token");

        var curl = await RunAsync("curl", "-s", "--fail-with-body", "-H", $"Authorization: Bearer {token}",
            new Uri(app.Address, $"/api/v1/accounts?per_page=100&search={prefix}").ToString());

        using var body = JsonDocument.Parse(curl);
        var listed = body.RootElement.GetProperty("data").EnumerateArray().Select(a => a.GetProperty("username").GetString()).Order().ToList();
        Assert.Equal(own.Select(a => a.Username).Order(), listed);
        Assert.DoesNotContain(foreign.Username, curl);
        Assert.Equal(2, body.RootElement.GetProperty("meta").GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task AResellerOpeningTheAuditLogSeesOnlyItsOwnEntries()
    {
        var reseller = await app.NewResellerAsync();
        var own = await app.InsertAccountAsync(UiKit.NewUsername("bra"), reseller.Id);
        var foreign = await app.InsertAccountAsync(UiKit.NewUsername("bra"), app.Admin.Id);
        var audit = app.Get<AuditLog>();
        await audit.WriteAsync(app.AdminActor(), "suspend", own.Id, own.Username, "suspended", null, default);
        await audit.WriteAsync(app.AdminActor(), "suspend", foreign.Id, foreign.Username, "suspended", null, default);

        var page = await SignedInAsync(reseller, ResellerPassword, "/audit");

        var grid = page.Locator("[data-testid=audit-grid]");
        await Assertions.Expect(grid).ToContainTextAsync(own.Username, new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("[data-testid=audit-scope]")).ToBeVisibleAsync();
        Assert.DoesNotContain(foreign.Username, await grid.TextContentAsync());
        Assert.Equal(0, await page.Locator("input[name=password]").CountAsync());
        await app.ScreenshotAsync(page, "ops-4-reseller-audit");

        // An admin page gives the reseller a notice, not the sign-in form.
        await page.GotoAsync(new Uri(app.Address, "/overview").ToString());
        await Assertions.Expect(page.Locator("[data-testid=not-allowed]")).ToContainTextAsync("not available to resellers", new() { Timeout = 30_000 });
        Assert.Equal(0, await page.Locator("input[name=password]").CountAsync());
    }

    [Fact]
    public async Task TheApiReferenceLoadsWithoutASingleRequestOutsideThePanel()
    {
        var page = await SignedInAsync(app.Admin, AdminPassword);
        var elsewhere = new List<string>();
        page.Request += (_, r) =>
        {
            if (!r.Url.StartsWith(app.Address.GetLeftPart(UriPartial.Authority), StringComparison.Ordinal) && !r.Url.StartsWith("data:")) elsewhere.Add(r.Url);
        };

        await page.GotoAsync(new Uri(app.Address, "/docs/api/").ToString());

        await Assertions.Expect(page.GetByText("/api/v1/accounts/{id}/suspend").First).ToBeVisibleAsync(Visible);
        await page.WaitForTimeoutAsync(1000); // what a viewer fetches after its first paint (fonts, telemetry) would show now
        await app.ScreenshotAsync(page, "ops-5-api-reference");
        Assert.Empty(elsewhere);
    }

    [Fact]
    public async Task DarkModeFollowsTheSystemUntilToggledAndTheToggleIsRemembered()
    {
        var page = await SignedInAsync(app.Admin, AdminPassword, "/deletions");
        await page.EvaluateAsync("localStorage.removeItem('opterius.theme')");
        await page.EmulateMediaAsync(new() { ColorScheme = ColorScheme.Dark });
        await page.ReloadAsync();
        await WaitInteractiveAsync(page);
        await Assertions.Expect(page.Locator("[aria-label='toggle dark mode']")).ToBeVisibleAsync(Visible);
        await WaitForThemeAsync(page, dark: true);

        await page.Locator("[aria-label='toggle dark mode']").ClickAsync();
        await WaitForThemeAsync(page, dark: false);
        await page.ReloadAsync();
        await WaitInteractiveAsync(page);
        await page.WaitForTimeoutAsync(1000);
        await WaitForThemeAsync(page, dark: false); // the system still says dark: the choice wins
        Assert.Equal("light", await page.EvaluateAsync<string>("localStorage.getItem('opterius.theme')"));
    }

    private static async Task WaitForThemeAsync(IPage page, bool dark)
    {
        for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(20); await Task.Delay(100))
            if (await IsDarkAsync(page) == dark) return;
        Assert.Fail($"the page did not turn {(dark ? "dark" : "light")}");
    }

    private static async Task<bool> IsDarkAsync(IPage page)
    {
        // Luminance of the page's background as MudBlazor's theme paints it.
        var rgb = await page.EvaluateAsync<double[]>(
            "(() => { const m = getComputedStyle(document.body).backgroundColor.match(/\\d+(\\.\\d+)?/g); return m.slice(0, 3).map(Number); })()");
        return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] < 128;
    }

    [Theory]
    [InlineData(1280, 800)]
    [InlineData(390, 844)]
    public async Task EveryPageFitsTheScreenWithoutScrollingThePageSideways(int width, int height)
    {
        var reseller = await app.NewResellerAsync();
        await app.InsertAccountAsync(UiKit.NewUsername("brw") + "withaverylongname"[..10], app.Admin.Id);
        var scheduled = await app.InsertAccountAsync(UiKit.NewUsername("brs") + "withaverylongname"[..10], reseller.Id);
        await app.Get<DeletionSchedule>().ScheduleAsync(app.AdminActor(), scheduled.Id, new ScheduleRequest(5, null, Backup: false), default);
        // Each page, and what it must show: `/` is the overview for an admin and the accounts grid for a reseller.
        foreach (var (user, password, paths) in new[]
                 {
                     (app.Admin, AdminPassword, new[]
                     {
                         ("/", "overview-accounts"), ("/overview", "overview-accounts"), ("/accounts", "accounts-grid"), ("/deletions", "deletions-grid"),
                         ("/deletions?status=scheduled", "scheduled-grid"), ("/backups", "backups-grid"), ("/audit", "audit-grid"), ("/tokens", "token-create"),
                     }),
                     (reseller, ResellerPassword, new[]
                     {
                         ("/", "accounts-grid"), ("/accounts", "accounts-grid"), ("/deletions", "deletions-grid"),
                         ("/deletions?status=scheduled", "scheduled-grid"), ("/backups", "backups-grid"), ("/audit", "audit-grid"), ("/tokens", "token-create"),
                         ("/overview", "not-allowed"),
                     }),
                 })
        {
            var page = await SignedInAsync(user, password);
            await page.SetViewportSizeAsync(width, height);
            foreach (var (path, shown) in paths)
            {
                await page.GotoAsync(new Uri(app.Address, path).ToString());
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.Locator($"[data-testid={shown}]").First).ToBeAttachedAsync(new() { Timeout = 30_000 });
                await page.WaitForTimeoutAsync(500);
                var (scroll, client) = (await page.EvaluateAsync<int>("document.documentElement.scrollWidth"), await page.EvaluateAsync<int>("document.documentElement.clientWidth"));
                Assert.True(scroll <= client, $"{path} as {user.Role} at {width} px scrolls sideways: {scroll} px wide in {client} px");
                await app.ScreenshotAsync(page, $"ops-{width}-{user.Role}{Regex.Replace(path, "[^a-z]+", "-")}");
            }
            await page.CloseAsync();
        }
    }

    [Fact]
    public async Task TryItInTheApiReferenceSendsThePastedTokenToThisPanelAndShowsTheAccounts()
    {
        var account = await app.InsertAccountAsync(UiKit.NewUsername("aaa"), app.Admin.Id); // first by username: on the first page
        var token = (await app.Get<Opterius.Services.Tokens.TokenService>().CreateAsync(UiKit.NewUsername("tryit"), Roles.Admin, app.Admin.Id, null, 1, default)).Token;
        var page = await SignedInAsync(app.Admin, AdminPassword);
        var panel = app.Address.GetLeftPart(UriPartial.Authority);
        var elsewhere = new List<string>();
        var sent = new List<(string Url, string? Authorization)>();
        page.Request += (_, r) =>
        {
            if (!r.Url.StartsWith(panel, StringComparison.Ordinal) && !r.Url.StartsWith("data:")) lock (elsewhere) elsewhere.Add(r.Url);
            if (r.Url.Contains("/api/v1/accounts")) lock (sent) sent.Add((r.Url, r.Headers.GetValueOrDefault("authorization")));
        };
        var answered = new List<int>();
        page.Response += (_, r) =>
        {
            if (r.Url.Contains("/api/v1/accounts")) lock (answered) answered.Add(r.Status);
        };

        await page.GotoAsync(new Uri(app.Address, "/docs/api/").ToString());
        var test = page.GetByRole(AriaRole.Button, new() { NameRegex = new Regex(@"Test Request.*get \/api\/v1\/accounts\/?\)") });
        await Assertions.Expect(test).ToBeVisibleAsync(Visible);
        await test.ClickAsync();
        var client = page.GetByRole(AriaRole.Dialog);
        await client.GetByPlaceholder("Token").First.FillAsync(token);
        await client.GetByRole(AriaRole.Button, new() { NameRegex = new Regex("^Send get request") }).First.ClickAsync();

        await Assertions.Expect(client.GetByText(account.Username).First).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(client.GetByText("200 OK").First).ToBeVisibleAsync();
        await app.ScreenshotAsync(page, "ops-6-api-reference-try-it");
        lock (sent)
        {
            var request = Assert.Single(sent);
            Assert.StartsWith(panel + "/api/v1/accounts", request.Url);
            Assert.Equal($"Bearer {token}", request.Authorization);
        }
        lock (answered) Assert.Equal([200], answered);
        lock (elsewhere) Assert.Empty(elsewhere);
    }

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} exited with {process.ExitCode}: {await error} {await output}");
        return await output;
    }
}
