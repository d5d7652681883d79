using System.Security.Claims;
using AngleSharp.Dom;
using Bunit;
using Dapper;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MudBlazor.Services;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Auth;
using Opterius.Web.Components.Pages.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>What the UI tests share: a bUnit context over the real panel's services, signed-in users, account rows.</summary>
public static class UiKit
{
    /// <summary>
    /// MudBlazor's own services; every panel service comes from the running app (real databases, real files).
    /// Returns the signed-in state to set before rendering a page.
    /// </summary>
    public static Bunit.TestDoubles.BunitAuthorizationContext UsePanel(this BunitContext context, PanelApp app)
    {
        var auth = context.AddAuthorization();
        context.Services.AddMudServices();
        context.JSInterop.Mode = JSRuntimeMode.Loose;
        // Server-wide state of the web app the dialogs share with every other circuit of the same server.
        context.Services.AddSingleton(app.Services.GetRequiredService<PasswordRechecks>());
        context.Services.AddFallbackServiceProvider(new DomainServicesOf(app.Services));
        context.SetRendererInfo(new RendererInfo("Server", true));
        return auth;
    }

    /// <summary>Signs this panel user in, with the claims the sign-in endpoint issues.</summary>
    public static void SignIn(this Bunit.TestDoubles.BunitAuthorizationContext auth, PanelUser user)
    {
        auth.SetAuthorized(user.Username);
        auth.SetRoles(user.Role);
        auth.SetClaims(new Claim(PanelClaims.UserId, user.Id.ToString()), new Claim(PanelClaims.Role, user.Role),
            new Claim(PanelClaims.Name, user.Username), new Claim(PanelClaims.Kind, "user"));
    }

    /// <summary>The principal the sign-in endpoint issues for this panel user.</summary>
    public static ClaimsPrincipal Principal(PanelUser user) => new(new ClaimsIdentity(
        [
            new Claim(PanelClaims.UserId, user.Id.ToString()),
            new Claim(PanelClaims.Name, user.Username),
            new Claim(PanelClaims.Role, user.Role),
            new Claim(PanelClaims.Kind, "user"),
        ], "test", PanelClaims.Name, PanelClaims.Role));

    /// <summary>A bare account row (no resources on the server): enough for what the UI reads and refuses.</summary>
    public static async Task<Account> InsertAccountAsync(this PanelApp app, string username, long ownerId, string status = AccountStatus.Active)
    {
        await using var c = new MySqlConnection(app.Databases.Panel);
        var id = await c.ExecuteScalarAsync<long>("""
            INSERT INTO accounts (username, domain, email, package_id, owner_id, php_version, status)
            VALUES (@username, @domain, @email, 1, @ownerId, '8.2', @status);
            SELECT LAST_INSERT_ID();
            """, new { username, domain = $"{username}.test", email = $"owner@{username}.test", ownerId, status });
        return (await app.Get<AccountStore>().FindAsync(new Viewer(0, true), id, default))!;
    }

    /// <summary>A username no other test class or run can hold: the sandbox's Linux users are shared by the run.</summary>
    public static string NewUsername(string prefix) =>
        prefix + new string(Enumerable.Range(0, 8).Select(_ => (char)('a' + Random.Shared.Next(26))).ToArray());

    // Events are fired on an element found in the same turn of the renderer (its InvokeAsync). An element found before
    // carries the handler ids of the render it was read from, and a component that re-renders on its own in between (a
    // debounced search landing, a live update from the event streams, a grid's server data or a dialog arriving) may have
    // retired them: the event then fails with bUnit's UnknownEventHandlerIdException. Inside the turn no render can land.

    /// <summary>
    /// Clicks the element <paramref name="find"/> returns, finding it and firing in one turn of the renderer. Returns once
    /// the click is dispatched, not when its handler ends (a handler that waits for a dialog to close would not end).
    /// </summary>
    public static Task ClickAsync(this IRenderedComponent<IComponent> cut, Func<IElement> find) =>
        cut.InvokeAsync(() => find().Click());

    /// <summary>Clicks the one element matching <paramref name="selector"/>, found and clicked in one turn of the renderer.</summary>
    public static Task ClickAsync(this IRenderedComponent<IComponent> cut, string selector) =>
        cut.ClickAsync(() => cut.Find(selector));

    /// <summary>As <c>ClickAsync</c>, and returns once the click's handler has finished (a submit that checks a password).</summary>
    public static Task ClickAndAwaitAsync(this IRenderedComponent<IComponent> cut, Func<IElement> find) =>
        cut.InvokeAsync(() => find().ClickAsync(new()));

    /// <summary>As <c>ClickAsync</c> of the one element matching <paramref name="selector"/>, and returns once its handler has finished.</summary>
    public static Task ClickAndAwaitAsync(this IRenderedComponent<IComponent> cut, string selector) =>
        cut.ClickAndAwaitAsync(() => cut.Find(selector));

    /// <summary>Ticks or clears the checkbox input <paramref name="find"/> returns, found and changed in one turn of the renderer.</summary>
    public static Task ChangeAsync(this IRenderedComponent<IComponent> cut, Func<IElement> find, bool value) =>
        cut.InvokeAsync(() => find().Change(value));

    /// <summary>Types into the text field labelled <paramref name="label"/>, found and typed into in one turn of the renderer.</summary>
    public static Task TypeAsync(this IRenderedComponent<IComponent> cut, string label, string text) =>
        cut.InvokeAsync(() => cut.FindComponents<MudTextField<string>>().Single(f => f.Instance.Label == label).Find("input").Input(text));

    /// <summary>Types into the page's one text field (its search), found and typed into in one turn of the renderer.</summary>
    public static Task SearchAsync(this IRenderedComponent<IComponent> page, string text) =>
        page.InvokeAsync(() => page.FindComponents<MudTextField<string>>().Single().Find("input").Input(text));

    /// <summary>
    /// Until the tokens page has read its list. Its form is there before, but a token minted in between is shown with the
    /// older list that read then brings, and a check of the list made in between proves nothing.
    /// </summary>
    public static void WaitForTokenList(this IRenderedComponent<TokensPage> page, TimeSpan patience) =>
        page.WaitForAssertion(() => Assert.False(page.FindComponent<MudTable<TokenInfo>>().Instance.Loading), patience);

    /// <summary>Opens the delete dialog the way the accounts page does, inside a rendered dialog provider.</summary>
    public static async Task<IRenderedComponent<MudDialogProvider>> OpenDeleteDialogAsync(this BunitContext context, Account account, PanelUser user)
    {
        var provider = context.Render<MudDialogProvider>();
        var dialogs = context.Services.GetRequiredService<IDialogService>();
        var parameters = new DialogParameters<Components.Pages.Accounts.DeleteAccountDialog>
        {
            { d => d.Account, account },
            { d => d.User, Principal(user) },
            { d => d.SourceIp, "192.0.2.10" },
        };
        await provider.InvokeAsync(() => dialogs.ShowAsync<Components.Pages.Accounts.DeleteAccountDialog>("Delete", parameters));
        return provider;
    }
}

/// <summary>
/// The app's domain services (Opterius.Services) only: the app's Blazor services are scoped to its own circuits
/// and must not stand in for bUnit's renderer's.
/// </summary>
file sealed class DomainServicesOf(IServiceProvider app) : IServiceProvider
{
    public object? GetService(Type type) => type.Assembly == typeof(AccountStore).Assembly ? app.GetService(type) : null;
}
