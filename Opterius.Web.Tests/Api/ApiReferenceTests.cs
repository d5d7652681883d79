using System.Net;
using System.Text.RegularExpressions;
using Bunit;
using Microsoft.AspNetCore.Mvc.Testing;
using Opterius.Services.Users;
using Opterius.Web.Components.Layout;
using Opterius.Web.Tests.Ui;

namespace Opterius.Web.Tests.Api;

public sealed partial class ApiReferenceTests(ApiApp app) : IClassFixture<ApiApp>
{
    [Fact]
    public async Task TheOpenApiDocumentDescribesEveryEndpointForATokenHolder()
    {
        var client = await app.ClientAsync(scopes: ["accounts:read"]);
        var doc = await (await client.GetAsync("/api/openapi.json")).JsonOf();
        var paths = doc.GetProperty("paths");
        Assert.True(paths.GetProperty("/api/v1/accounts").TryGetProperty("post", out var create));
        Assert.True(create.TryGetProperty("requestBody", out _));
        Assert.True(paths.GetProperty("/api/v1/accounts/{id}").TryGetProperty("delete", out _));
        Assert.True(paths.GetProperty("/api/v1/accounts/{id}/suspend").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/v1/accounts/{id}/unsuspend").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/api/v1/deletions/{job}").TryGetProperty("get", out _));
        Assert.True(paths.GetProperty("/api/v1/packages").TryGetProperty("get", out _));
    }

    [Fact]
    public async Task WhoamiAndServerStatsAnswerTheConnectionTest()
    {
        var client = await app.ClientAsync(scopes: ["accounts:read", "accounts:delete"]);
        var me = (await (await client.GetAsync("/api/v1/whoami")).JsonOf()).GetProperty("data");
        Assert.Equal("admin", me.GetProperty("role").GetString());
        Assert.Equal(["accounts:read", "accounts:delete"], me.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()!));
        var stats = (await (await client.GetAsync("/api/server/stats")).JsonOf()).GetProperty("data");
        Assert.True(stats.GetProperty("license_valid").GetBoolean());
        Assert.Equal(await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"), stats.GetProperty("accounts").GetInt64());
    }

    [Fact]
    public async Task ASignedInPanelUserReadsTheReferencePageAndAnonymousVisitorsAreSentToSignIn()
    {
        var anonymous = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var refused = await anonymous.GetAsync("/docs/api");
        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
        Assert.Contains("/login", refused.Headers.Location!.OriginalString);

        var browser = await SignedInAdminAsync();

        var page = await browser.GetAsync("/docs/api");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("/api/v1/accounts/{id}/suspend", html);
        Assert.Contains("Delete an account", html);
        Assert.Contains("respond-async", html);
        Assert.DoesNotContain("<script", html);
    }

    [Fact]
    public async Task TheNavigationsApiReferenceLinkOpensForASignedInAdmin()
    {
        await using var ui = new BunitContext();
        ui.UsePanel(app).SetAuthorized(app.Admin.Username).SetRoles(Roles.Admin);
        var nav = ui.Render<NavMenu>();
        var href = nav.FindAll("a").Single(a => a.TextContent.Contains("API reference")).GetAttribute("href")!;
        var browser = await SignedInAdminAsync();

        var page = await browser.GetAsync(href);

        Assert.True(page.StatusCode == HttpStatusCode.OK, $"{href} answered {(int)page.StatusCode} to a signed-in admin");
        Assert.Contains("Opterius Panel API reference", await page.Content.ReadAsStringAsync());
    }

    /// <summary>A cookie client signed in through the real sign-in form, as the browser is.</summary>
    private async Task<HttpClient> SignedInAdminAsync()
    {
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = true, AllowAutoRedirect = false });
        var form = await browser.GetStringAsync("/login");
        var field = AntiforgeryInput().Match(form).Value;
        var antiforgery = InputValue().Match(field).Groups[1].Value;
        var signIn = await browser.PostAsync("/auth/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = antiforgery,
            ["username"] = app.Admin.Username,
            ["password"] = "admin-password-1",
            ["returnUrl"] = "/",
        }));
        Assert.True(signIn.StatusCode == HttpStatusCode.Redirect, $"sign-in answered {(int)signIn.StatusCode}");
        Assert.DoesNotContain("failed", signIn.Headers.Location!.OriginalString);
        return browser;
    }

    // Attribute order is the renderer's business: find the input, then its value.
    [GeneratedRegex("<input[^>]*name=\"__RequestVerificationToken\"[^>]*>")]
    private static partial Regex AntiforgeryInput();

    [GeneratedRegex("value=\"([^\"]+)\"")]
    private static partial Regex InputValue();
}
