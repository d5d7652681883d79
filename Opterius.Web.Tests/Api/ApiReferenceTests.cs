using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bunit;
using Microsoft.AspNetCore.Mvc.Testing;
using Opterius.Services.Users;
using Opterius.Web.Api;
using Opterius.Web.Components.Layout;
using Opterius.Web.Tests.Infrastructure;
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
    public async Task ASignedInPanelUserGetsTheInteractiveViewerServedByThePanelAndAnonymousVisitorsAreSentToSignIn()
    {
        var anonymous = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        foreach (var path in new[] { ApiReferencePage.Path, ApiReferencePage.DocumentPath })
        {
            var refused = await anonymous.GetAsync(path);
            Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
            Assert.Contains("/login", refused.Headers.Location!.OriginalString);
        }

        var browser = await SignedInAdminAsync();

        // The viewer's assets are relative to its folder, so the bare path sends the browser into it.
        var bare = await browser.GetAsync(ApiReferencePage.Path);
        Assert.Equal(ApiReferencePage.Path + "/", new Uri(new Uri("http://panel" + ApiReferencePage.Path), bare.Headers.Location!).AbsolutePath);
        var page = await browser.GetAsync(ApiReferencePage.Path + "/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Opterius Panel API reference", html);
        Assert.Contains(ApiReferencePage.DocumentPath.TrimStart('/'), html); // Scalar writes it relative to the site
        // Every script and stylesheet comes from the panel itself: no CDN, no web fonts.
        var sources = ScriptOrLink().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(sources);
        Assert.All(sources, src => Assert.False(src.Contains("//", StringComparison.Ordinal), $"{src} is not served by the panel"));
        var sizes = new List<long>();
        foreach (var src in sources)
        {
            var asset = await browser.GetAsync(new Uri(new Uri("http://panel" + ApiReferencePage.Path + "/"), src).PathAndQuery);
            Assert.True(asset.StatusCode == HttpStatusCode.OK, $"{src} answered {(int)asset.StatusCode}");
            Assert.Contains("javascript", asset.Content.Headers.ContentType?.MediaType);
            sizes.Add((await asset.Content.ReadAsByteArrayAsync()).Length);
        }
        Assert.True(sizes.Max() > 1_000_000, "the viewer's whole bundle comes from the panel"); // Scalar's standalone script is a few MB
    }

    [Fact]
    public async Task TheViewersDocumentIsTheApisDocumentWithAPlaceForTheBearerToken()
    {
        var client = await app.ClientAsync(scopes: ["accounts:read"]);
        var api = await (await client.GetAsync("/api/openapi.json")).JsonOf();
        var browser = await SignedInAdminAsync();

        var viewer = await (await browser.GetAsync(ApiReferencePage.DocumentPath)).JsonOf();

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(api.GetProperty("paths").GetRawText()), JsonNode.Parse(viewer.GetProperty("paths").GetRawText())),
            "the viewer shows the API's own paths, unchanged");
        var schemes = viewer.GetProperty("components").GetProperty("securitySchemes");
        Assert.Contains(schemes.EnumerateObject(), s => s.Value.GetProperty("type").GetString() == "http"
                                                        && s.Value.GetProperty("scheme").GetString() == "bearer");
    }

    [Fact]
    public async Task TheViewersDocumentSendsTryItToThePageItsOwnOriginWhateverHostTheRequestNamesAndIsNotCached()
    {
        var browser = await SignedInAdminAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, ApiReferencePage.DocumentPath);
        request.Headers.Host = "attacker.example:8443";

        var response = await browser.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("attacker.example", text);
        var servers = JsonDocument.Parse(text).RootElement.GetProperty("servers");
        Assert.Equal("/", servers[0].GetProperty("url").GetString()); // Scalar resolves it against window.location.origin
        Assert.True(response.Headers.CacheControl?.NoStore, $"Cache-Control: {response.Headers.CacheControl}");
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

    private Task<HttpClient> SignedInAdminAsync() => app.SignedInClientAsync(app.Admin.Username, "admin-password-1");

    [GeneratedRegex("<(?:script|link)[^>]*(?:src|href)=\"([^\"]+)\"")]
    private static partial Regex ScriptOrLink();
}
