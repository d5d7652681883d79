using System.Net;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;

namespace Opterius.Web.Tests.Api;

/// <summary>Every route under /api and /hubs, found from the app's own endpoint table, refuses an anonymous caller.</summary>
public sealed class RouteInventoryTests(ApiApp app) : IClassFixture<ApiApp>
{
    [Fact]
    public async Task EveryApiAndHubRouteRefusesAnAnonymousRequest()
    {
        var client = app.CreateClient();
        var routes = app.Get<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Path: "/" + e.RoutePattern.RawText!.TrimStart('/'), e))
            .Where(r => r.Path.StartsWith("/api/") || r.Path.StartsWith("/hubs/"))
            .SelectMany(r => (r.e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET", "POST"]).Select(m => (Method: m, Url: Fill(r.e.RoutePattern))))
            .Distinct()
            .ToList();

        Assert.Contains(routes, r => r is { Method: "DELETE", Url: "/api/v1/accounts/1" });
        Assert.Contains(routes, r => r.Url.StartsWith("/hubs/deletions"));
        Assert.Contains(routes, r => r.Url == "/api/openapi.json");

        var failures = new List<string>();
        foreach (var (method, url) in routes)
        {
            var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), url) { Content = method is "POST" or "PUT" ? ApiKit.Json("{}") : null });
            if (response.StatusCode != HttpStatusCode.Unauthorized) failures.Add($"{method} {url}: {(int)response.StatusCode}");
            else if (url.StartsWith("/api/") && (await response.JsonOf()).Error() != "unauthenticated") failures.Add($"{method} {url}: body");
        }
        Assert.Empty(failures);

        // Positive control: the same requests with a valid token get past authentication (this class's database holds
        // no account, so the writes find nothing to change), so the 401s above are the missing token's doing.
        var holder = await app.ClientAsync();
        foreach (var (method, url) in routes)
        {
            var response = await holder.SendAsync(new HttpRequestMessage(new HttpMethod(method), url) { Content = method is "POST" or "PUT" ? ApiKit.Json("{}") : null });
            if (response.StatusCode == HttpStatusCode.Unauthorized) failures.Add($"{method} {url}: 401 with a valid token");
        }
        Assert.Empty(failures);
    }

    private static string Fill(RoutePattern pattern) => "/" + string.Join("/", pattern.PathSegments.Select(s =>
        string.Concat(s.Parts.Select(p => p switch
        {
            RoutePatternLiteralPart l => l.Content,
            RoutePatternParameterPart { IsCatchAll: true } => "x",
            RoutePatternParameterPart => "1",
            RoutePatternSeparatorPart sep => sep.Content,
            _ => "",
        }))));
}
