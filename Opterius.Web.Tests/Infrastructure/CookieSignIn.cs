using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Opterius.Web.Tests.Infrastructure;

/// <summary>A cookie client signed in through the real sign-in form, as a browser is (redirects not followed).</summary>
public static partial class CookieSignIn
{
    public static async Task<HttpClient> SignedInClientAsync(this PanelApp app, string username, string password)
    {
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = true, AllowAutoRedirect = false });
        var form = await browser.GetStringAsync("/login");
        var field = AntiforgeryInput().Match(form).Value;
        var antiforgery = InputValue().Match(field).Groups[1].Value;
        var signIn = await browser.PostAsync("/auth/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = antiforgery,
            ["username"] = username,
            ["password"] = password,
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
