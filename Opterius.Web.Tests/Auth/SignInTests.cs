using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Auth;

public sealed partial class SignInTests(PanelApp app) : IClassFixture<PanelApp>
{
    [GeneratedRegex("<input[^>]*name=\"__RequestVerificationToken\"[^>]*>")]
    private static partial Regex AntiforgeryField();

    [GeneratedRegex("value=\"([^\"]+)\"")]
    private static partial Regex ValueAttribute();

    private HttpClient Browser() => app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    /// <summary>Signs in through the real form (its antiforgery token included), as a browser does.</summary>
    internal static async Task<HttpResponseMessage> PostSignInAsync(HttpClient browser, string username, string password, string? forgedToken = null)
    {
        var page = await browser.GetStringAsync("/login");
        var field = AntiforgeryField().Match(page);
        Assert.True(field.Success, "the sign-in form carries an antiforgery token");
        var token = forgedToken ?? ValueAttribute().Match(field.Value).Groups[1].Value;
        return await browser.PostAsync("/auth/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["username"] = username, ["password"] = password, ["__RequestVerificationToken"] = token, ["returnUrl"] = "/",
        }));
    }

    [Fact]
    public async Task TheRightPasswordSignsInAndTheAccountsPageOpens()
    {
        var browser = Browser();
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync("/")).StatusCode); // anonymous: off to sign in

        var response = await PostSignInAsync(browser, app.Admin.Username, "admin-password-1");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location!.OriginalString);
        var accounts = await browser.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, accounts.StatusCode);
        Assert.Contains("Accounts", await accounts.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AWrongPasswordAndAnUnknownUserGetTheSameAnswer()
    {
        var wrongPassword = await PostSignInAsync(Browser(), app.Admin.Username, "not-the-password");
        var unknownUser = await PostSignInAsync(Browser(), "nobody-by-this-name", "not-the-password");

        Assert.Equal("/login?failed=1", wrongPassword.Headers.Location!.OriginalString);
        Assert.Equal(wrongPassword.Headers.Location, unknownUser.Headers.Location);
        Assert.DoesNotContain(wrongPassword.Headers, h => h.Key == "Set-Cookie" && h.Value.Any(v => v.StartsWith("opterius.auth")));
        var page = await Browser().GetStringAsync("/login?failed=1");
        Assert.Contains("Wrong username or password.", page);
    }

    [Fact]
    public async Task ASignInWithoutTheAntiforgeryTokenIsRefused()
    {
        var response = await PostSignInAsync(Browser(), app.Admin.Username, "admin-password-1", forgedToken: "forged");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }
}

/// <summary>Its own app: the limiter counts per client address for the whole app.</summary>
public sealed class SignInRateLimitTests(PanelApp app) : IClassFixture<PanelApp>
{
    [Fact]
    public async Task RepeatedSignInAttemptsAreRateLimited()
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 12; i++)
        {
            var r = await client.PostAsync("/auth/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["username"] = "x", ["password"] = "y" }));
            statuses.Add(r.StatusCode);
        }
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);
        Assert.Equal(10, statuses.Count(s => s != HttpStatusCode.TooManyRequests));
    }
}
