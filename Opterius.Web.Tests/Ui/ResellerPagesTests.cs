using System.Net;
using Bunit;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Components;
using Opterius.Web.Components.Pages.Audit;
using Opterius.Web.Components.Pages.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>What a reseller sees of the audit log and its tokens, and the notice on a page that is not for it.</summary>
public sealed class ResellerPagesTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;

    public ResellerPagesTests(PanelApp app)
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
        _auth.SignIn(reseller);

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
        _auth.SignIn(reseller);
        var page = Render<TokensPage>();
        page.WaitForElement("[data-testid=token-for-self]", Patience);
        page.WaitForTokenList(Patience);
        Assert.Empty(page.FindAll("[data-testid=token-role]")); // no role to choose, no owner to name
        Assert.Empty(page.FindAll("[data-testid=token-owner]"));
        Assert.DoesNotContain(admins.Info.Name, page.Find("[data-testid=tokens-table]").TextContent);

        var name = UiKit.NewUsername("dash");
        await page.TypeAsync("Name", name);
        await page.ChangeAsync(() => page.FindComponents<MudCheckBox<bool>>().Single(c => c.Instance.Label == TokenScopes.AccountsDelete).Find("input"), false);
        await page.ClickAsync("[data-testid=token-create]");

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
