using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Opterius.Services.Deletion;
using Opterius.Services.Users;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

public sealed class DeletionsHubTests(ApiApp app) : IClassFixture<ApiApp>
{
    [Theory]
    [InlineData(HttpTransportType.LongPolling)]
    [InlineData(HttpTransportType.WebSockets)]
    public async Task AHubClientReceivesEveryStepOfARestStartedDeletionInOrder(HttpTransportType transport)
    {
        var token = await app.TokenAsync();
        var rest = await app.ClientAsync();
        var made = await rest.CreateOverApiAsync();
        await using var hub = await ConnectAsync(token, transport);

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var stream = hub.StreamAsync<JsonElement>("Watch", made.Id, timeout.Token).GetAsyncEnumerator(timeout.Token);
        // The current state comes first: no deletion yet. From here the stream is live.
        Assert.True(await stream.MoveNextAsync());
        Assert.Equal("job", stream.Current.GetProperty("resource").GetString());
        Assert.Equal("none", stream.Current.GetProperty("status").GetString());

        var expected = await app.ExpectedStepStatusesAsync(made.Id);
        var delete = rest.DeleteAsync($"/api/v1/accounts/{made.Id}");
        var events = new List<JsonElement>();
        while (await stream.MoveNextAsync())
        {
            events.Add(stream.Current);
            if (stream.Current.GetProperty("resource").GetString() == "job" && stream.Current.GetProperty("status").GetString() != "running") break;
        }
        Assert.Equal(HttpStatusCode.NoContent, (await delete).StatusCode);

        Assert.All(events, e =>
        {
            Assert.Equal(made.Id, e.GetProperty("account_id").GetInt64());
            Assert.True(e.GetProperty("job_id").GetInt64() > 0);
            Assert.True(e.TryGetProperty("at", out _));
        });
        Assert.Equal(("job", "running"), Pair(events[0]));
        Assert.Equal(("job", "succeeded"), Pair(events[^1]));
        // Each resource: pending, running, then done (it was there) or skipped (it was not); in the deletion order. A
        // file tree also says how far it is while it runs: running again with its progress as the detail.
        var transitions = events.Where(e => !IsProgress(e)).ToList();
        var started = transitions.Where(e => e.GetProperty("status").GetString() == "running" && e.GetProperty("resource").GetString() != "job")
            .Select(e => e.GetProperty("resource").GetString()!).ToList();
        Assert.Equal(DeletionOrder.Keys, started);
        foreach (var key in DeletionOrder.Keys)
        {
            var statuses = transitions.Where(e => e.GetProperty("resource").GetString() == key).Select(e => e.GetProperty("status").GetString()).ToList();
            Assert.Equal(["pending", "running", expected[key]], statuses);
        }
        var homeEvents = events.Where(e => e.GetProperty("resource").GetString() == "home_directory").ToList();
        var homeProgress = homeEvents.FindIndex(IsProgress);
        Assert.True(homeProgress > 1 && homeProgress < homeEvents.FindIndex(e => Pair(e) == ("home_directory", "done")),
            "home_directory's progress comes between its running and its done");
        Assert.StartsWith("removed ", homeEvents[homeProgress].GetProperty("detail").GetString());
        var lastStepAt = events.FindLastIndex(e => e.GetProperty("resource").GetString() == "system_user");
        var homeDone = events.FindIndex(e => Pair(e) == ("home_directory", "done"));
        Assert.True(homeDone >= 0 && homeDone < lastStepAt);
    }

    [Fact]
    public async Task AfterTheDeletionTheStreamReplaysTheJournalAndEnds()
    {
        var rest = await app.ClientAsync();
        var made = await rest.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.NoContent, (await rest.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);
        await using var hub = await ConnectAsync(await app.TokenAsync(), HttpTransportType.LongPolling);

        var events = new List<JsonElement>();
        await foreach (var e in hub.StreamAsync<JsonElement>("Watch", made.Id)) events.Add(e);

        Assert.Equal(DeletionOrder.Keys.Count + 1, events.Count);
        Assert.Equal(("job", "succeeded"), Pair(events[^1]));
        Assert.Equal(DeletionOrder.Keys, events.SkipLast(1).Select(e => e.GetProperty("resource").GetString()!));
    }

    [Fact]
    public async Task AResellerCannotWatchAnotherOwnersAccount()
    {
        var made = await (await app.ClientAsync()).CreateOverApiAsync();
        var reseller = await app.NewResellerAsync();
        await using var hub = await ConnectAsync(await app.TokenAsync(Roles.Reseller, reseller.Id), HttpTransportType.LongPolling);

        var error = await Assert.ThrowsAsync<HubException>(async () =>
        {
            await foreach (var _ in hub.StreamAsync<JsonElement>("Watch", made.Id)) { }
        });
        Assert.Contains("not_found", error.Message);
        var unknown = await Assert.ThrowsAsync<HubException>(async () =>
        {
            await foreach (var _ in hub.StreamAsync<JsonElement>("Watch", 987654321L)) { }
        });
        Assert.Contains("not_found", unknown.Message);
    }

    [Fact]
    public async Task ATokenWithoutReadScopeCannotConnect()
    {
        var token = await app.TokenAsync(scopes: ["accounts:delete"]);
        var hub = Build(token, HttpTransportType.LongPolling);
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => hub.StartAsync());
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        await hub.DisposeAsync();
    }

    private static (string?, string?) Pair(JsonElement e) => (e.GetProperty("resource").GetString(), e.GetProperty("status").GetString());

    private static bool IsProgress(JsonElement e) =>
        Pair(e) is ({ } resource, "running") && resource != "job" && e.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String;

    private async Task<HubConnection> ConnectAsync(string token, HttpTransportType transport)
    {
        var hub = Build(token, transport);
        await hub.StartAsync();
        return hub;
    }

    private HubConnection Build(string token, HttpTransportType transport)
    {
        var server = app.Server;
        return new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "/hubs/deletions"), o =>
            {
                o.Transports = transport;
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.AccessTokenProvider = () => Task.FromResult<string?>(token);
                o.WebSocketFactory = async (context, ct) =>
                {
                    var ws = server.CreateWebSocketClient();
                    // Browsers send the token in the query; this client does what they do.
                    return await ws.ConnectAsync(new Uri(context.Uri + (context.Uri.Query.Contains("access_token") ? "" : $"&access_token={token}")), ct);
                };
            })
            .Build();
    }
}
