using System.Security.Claims;
using Bunit;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Tokens;
using Opterius.Web.Auth;
using Opterius.Web.Components.Layout;
using Opterius.Web.Components.Pages.Accounts;
using Opterius.Web.Components.Pages.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The license banner and the API tokens page, on their own app (this class removes the license).</summary>
public sealed class WritesAndTokensTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;

    public WritesAndTokensTests(PanelApp app)
    {
        _app = app;
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

    [Fact]
    public async Task WithoutALicenseTheBannerShowsAndEveryWriteActionIsDisabledWhileTheListStillLoads()
    {
        var account = await _app.InsertAccountAsync(UiKit.NewUsername("lic"), _app.Admin.Id);
        File.Delete(_app.LicensePath);
        try
        {
            var banner = Render<LicenseBanner>();
            Assert.Contains("Writes are blocked", banner.Find("[data-testid=license-banner]").TextContent);

            Render<MudDialogProvider>();
            var page = Render<AccountsPage>();
            page.WaitForAssertion(() => Assert.Contains(account.Username, page.Find("[data-testid=accounts-grid] tbody").TextContent), Patience);
            Assert.All(page.FindAll("[data-action=delete], [data-action=suspend]"), b => Assert.True(b.HasAttribute("disabled")));
            Assert.NotEmpty(page.FindAll("[data-action=delete]"));
        }
        finally { _app.IssueLicense(maxAccounts: null, expiresDays: 30); }
    }

    [Fact]
    public async Task ANewTokenIsShownOnceListedAndCanBeRevoked()
    {
        var dialogs = Render<MudDialogProvider>();
        var page = Render<TokensPage>();
        var name = UiKit.NewUsername("ui");
        page.WaitForTokenList(Patience);
        await page.TypeAsync("Name", name);
        await page.ClickAsync("[data-testid=token-create]");

        page.WaitForAssertion(() => Assert.StartsWith("ey", page.Find("[data-testid=token-value]").TextContent), Patience);
        page.WaitForAssertion(() => Assert.Contains(name, page.Find("[data-testid=tokens-table]").TextContent), Patience);

        // A fresh visit of the page lists the token without its value.
        var again = Render<TokensPage>();
        again.WaitForAssertion(() => Assert.Contains(name, again.Find("[data-testid=tokens-table]").TextContent), Patience);
        Assert.Empty(again.FindAll("[data-testid=token-value]"));

        await again.ClickAsync(() => again.FindAll("[data-testid=tokens-table] tbody tr").Single(r => r.TextContent.Contains(name)).QuerySelector("[data-testid=token-revoke]")!);
        dialogs.WaitForElement(".mud-message-box", Patience);
        await dialogs.ClickAsync(() => dialogs.FindAll(".mud-message-box button").Single(b => b.TextContent.Contains("Revoke")));
        again.WaitForAssertion(() => Assert.Contains("revoked",
            again.FindAll("[data-testid=tokens-table] tbody tr").Single(r => r.TextContent.Contains(name)).TextContent), Patience);
        var tokens = await _app.Get<TokenService>().ListAsync(null, default);
        Assert.NotNull(tokens.Single(t => t.Name == name).RevokedAt);
    }
}
