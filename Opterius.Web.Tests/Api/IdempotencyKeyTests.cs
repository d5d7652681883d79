using System.Net;
using System.Net.Http.Json;
using Opterius.Services.Idempotency;
using Opterius.Services.Users;

namespace Opterius.Web.Tests.Api;

/// <summary>
/// <c>Idempotency-Key</c> on the account writes: a retry with the key gets the first answer and does nothing twice;
/// another request with the key is refused; a key is its caller's; only successes are kept.
/// </summary>
public sealed class IdempotencyKeyTests(ApiApp app) : IClassFixture<ApiApp>
{
    private sealed record Answer(HttpStatusCode Status, string? Location, string Body, bool Replayed, string? Error);

    private static async Task<Answer> SendAsync(HttpClient client, HttpMethod method, string url, string? key, object? body = null, string? prefer = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = body is null ? null : JsonContent.Create(body) };
        if (key is not null) request.Headers.TryAddWithoutValidation("Idempotency-Key", key);
        if (prefer is not null) request.Headers.Add("Prefer", prefer);
        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var error = text.StartsWith('{') && (await response.JsonOf()).TryGetProperty("error", out var e) ? e.GetString() : null;
        return new(response.StatusCode, response.Headers.Location?.OriginalString, text,
            response.Headers.TryGetValues("Idempotent-Replayed", out var r) && r.Single() == "true", error);
    }

    private static Task<Answer> CreateAsync(HttpClient client, string key, string username) =>
        SendAsync(client, HttpMethod.Post, "/api/v1/accounts", key, ApiKit.NewAccountBody(username));

    private Task<long> AccountsNamed(string username) =>
        app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE username = @username", new { username });

    private static string NewKey() => $"whmcs-{Guid.NewGuid():N}";

    [Fact]
    public async Task ARetriedCreateWithTheSameKeyMakesOneAccountAndGetsTheIdenticalFirstAnswer()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());

        var first = await CreateAsync(client, key, username);
        var retry = await CreateAsync(client, key, username);

        Assert.True(first.Status == HttpStatusCode.Created, first.Body);
        Assert.False(first.Replayed);
        Assert.Equal(first with { Replayed = true }, retry);
        Assert.StartsWith("/api/v1/accounts/", first.Location);
        Assert.Equal(1, await AccountsNamed(username));
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'create' AND outcome = 'replayed' AND detail LIKE CONCAT('%', @key, '%')", new { key }));
    }

    [Fact]
    public async Task ACreateWhoseCallerTimedOutRunsToItsEndAndItsRetryGetsTheAnswer()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());
        using var timeout = new CancellationTokenSource();
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/accounts") { Content = JsonContent.Create(ApiKit.NewAccountBody(username)) };
        request.Headers.Add("Idempotency-Key", key);
        var sent = client.SendAsync(request, timeout.Token);
        // The caller gives up once the create is under way (its row is there), as a billing module's timeout does.
        for (var i = 0; i < 500 && await AccountsNamed(username) == 0 && !sent.IsCompleted; i++) await Task.Delay(10);
        await timeout.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sent);

        var retry = await CreateAsync(client, key, username);

        Assert.True(retry.Status == HttpStatusCode.Created, retry.Body);
        Assert.True(retry.Replayed);
        Assert.Equal(1, await AccountsNamed(username));
        Assert.Equal("active", await app.Databases.PanelScalarAsync<string>("SELECT status FROM accounts WHERE username = @username", new { username }));
    }

    [Fact]
    public async Task ASynchronousDeleteWhoseCallerWentAwayKeepsItsAnswerForTheRetry()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var key = NewKey();
        using var timeout = new CancellationTokenSource();
        var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/accounts/{made.Id}");
        request.Headers.Add("Idempotency-Key", key);
        var sent = client.SendAsync(request, timeout.Token);
        for (var i = 0; i < 500 && await app.StatusOf(made.Id) == "active" && !sent.IsCompleted; i++) await Task.Delay(10);
        await timeout.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sent);

        var retry = await SendAsync(client, HttpMethod.Delete, $"/api/v1/accounts/{made.Id}", key);

        Assert.Equal((HttpStatusCode.NoContent, true), (retry.Status, retry.Replayed));
        Assert.Null(await app.StatusOf(made.Id));
    }

    [Fact]
    public async Task ACreateWhoseAnswerCannotBeSavedStillGetsItsWholeAnswerAndFreesTheKey()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey().Replace("whmcs-", "keepfails-"), ApiKit.NewUsername());
        // The database refuses to save this key's answer (as a full disk or a lost connection would), after the write is done.
        await app.Databases.PanelScalarAsync<long>("""
            CREATE TRIGGER keep_fails BEFORE UPDATE ON idempotency_keys FOR EACH ROW
            IF NEW.state = 'done' AND NEW.idem_key LIKE 'keepfails-%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'cannot save'; END IF
            """);
        Answer created;
        try { created = await CreateAsync(client, key, username); }
        finally { await app.Databases.PanelScalarAsync<long>("DROP TRIGGER keep_fails"); }

        Assert.True(created.Status == HttpStatusCode.Created, created.Body);
        Assert.StartsWith("/api/v1/accounts/", created.Location);
        Assert.Equal(username, System.Text.Json.JsonDocument.Parse(created.Body).RootElement.GetProperty("data").GetProperty("username").GetString());
        Assert.Equal(1, await AccountsNamed(username));
        // Not kept, not left running until its lease ends: a retry runs at once (and finds the account there).
        Assert.Equal(0, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = @key", new { key }));
    }

    [Fact]
    public async Task TheSameKeyWithAnotherBodyIs422AndMakesNothing()
    {
        var client = await app.ClientAsync();
        var key = NewKey();
        var first = await CreateAsync(client, key, ApiKit.NewUsername());
        Assert.Equal(HttpStatusCode.Created, first.Status);
        var other = ApiKit.NewUsername();

        var reused = await CreateAsync(client, key, other);

        Assert.Equal((HttpStatusCode.UnprocessableEntity, "idempotency_key_reused"), (reused.Status, reused.Error));
        Assert.Contains($"'{key}' was already used for a different request (POST /api/v1/accounts", reused.Body);
        Assert.Equal(0, await AccountsNamed(other));
        Assert.False(Directory.Exists(ApiKit.HomeOf(other)));
    }

    [Fact]
    public async Task TwoConcurrentCreatesWithOneKeyMakeOneAccountAndBothGetItsAnswer()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());

        var answers = await Task.WhenAll(CreateAsync(client, key, username), CreateAsync(client, key, username));

        Assert.All(answers, a => Assert.True(a.Status == HttpStatusCode.Created, a.Body));
        Assert.Equal(answers[0].Body, answers[1].Body);
        Assert.Equal(answers[0].Location, answers[1].Location);
        Assert.Equal(1, answers.Count(a => a.Replayed));
        Assert.Equal(1, await AccountsNamed(username));
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'create' AND outcome = 'created' AND account_username = @username", new { username }));
    }

    [Fact]
    public async Task AKeyIsItsCallersOwnAnotherResellerCannotReplayItButTheOwnersOtherTokenDoes()
    {
        var (one, two) = (await app.NewResellerAsync(), await app.NewResellerAsync());
        var (key, username) = (NewKey(), ApiKit.NewUsername());
        var first = await CreateAsync(await app.ClientAsync(Roles.Reseller, one.Id), key, username);
        Assert.Equal(HttpStatusCode.Created, first.Status);

        var stranger = await CreateAsync(await app.ClientAsync(Roles.Reseller, two.Id), key, username);
        var rotated = await CreateAsync(await app.ClientAsync(Roles.Reseller, one.Id), key, username);

        // The stranger's request ran as its own: the name is taken, and by whom is not the stranger's to learn.
        Assert.Equal((HttpStatusCode.Conflict, "conflict", false), (stranger.Status, stranger.Error, stranger.Replayed));
        Assert.Contains("another owner's account", stranger.Body);
        Assert.DoesNotContain(first.Location!.Split('/')[^1], stranger.Body);
        Assert.Equal(first with { Replayed = true }, rotated);
        Assert.Equal(1, await AccountsNamed(username));
    }

    [Fact]
    public async Task RetriedSuspendAndUnsuspendWithTheirKeysGetTheFirstAnswerNotAConflict()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var (suspendKey, unsuspendKey) = (NewKey(), NewKey());

        var suspended = await SendAsync(client, HttpMethod.Post, $"/api/v1/accounts/{made.Id}/suspend", suspendKey);
        var suspendedAgain = await SendAsync(client, HttpMethod.Post, $"/api/v1/accounts/{made.Id}/suspend", suspendKey);
        Assert.Equal("suspended", await app.StatusOf(made.Id));
        var unsuspended = await SendAsync(client, HttpMethod.Post, $"/api/v1/accounts/{made.Id}/unsuspend", unsuspendKey);
        var unsuspendedAgain = await SendAsync(client, HttpMethod.Post, $"/api/v1/accounts/{made.Id}/unsuspend", unsuspendKey);

        Assert.Equal(HttpStatusCode.OK, suspended.Status);
        Assert.Equal(suspended with { Replayed = true }, suspendedAgain);
        Assert.Equal(HttpStatusCode.OK, unsuspended.Status);
        Assert.Equal(unsuspended with { Replayed = true }, unsuspendedAgain);
        Assert.Equal("active", await app.StatusOf(made.Id));
        // A key of one write is not a key of another: the suspend's key on unsuspend is another request.
        var crossed = await SendAsync(client, HttpMethod.Post, $"/api/v1/accounts/{made.Id}/unsuspend", suspendKey);
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "idempotency_key_reused"), (crossed.Status, crossed.Error));
        Assert.Equal("active", await app.StatusOf(made.Id));
    }

    [Fact]
    public async Task ARetriedDeleteGetsThe204AgainAndARetriedAsyncDeleteTheSame202AndLocation()
    {
        var client = await app.ClientAsync();
        var (sync, async) = (await client.CreateOverApiAsync(), await client.CreateOverApiAsync());
        var (syncKey, asyncKey) = (NewKey(), NewKey());

        var deleted = await SendAsync(client, HttpMethod.Delete, $"/api/v1/accounts/{sync.Id}", syncKey);
        var deletedAgain = await SendAsync(client, HttpMethod.Delete, $"/api/v1/accounts/{sync.Id}", syncKey);
        var accepted = await SendAsync(client, HttpMethod.Delete, $"/api/v1/accounts/{async.Id}", asyncKey, prefer: "respond-async");
        var acceptedAgain = await SendAsync(client, HttpMethod.Delete, $"/api/v1/accounts/{async.Id}", asyncKey, prefer: "respond-async");

        Assert.Equal(HttpStatusCode.NoContent, deleted.Status);
        Assert.Equal(deleted with { Replayed = true }, deletedAgain);
        Assert.Equal(HttpStatusCode.Accepted, accepted.Status);
        Assert.StartsWith("/api/v1/deletions/", accepted.Location);
        Assert.Equal(accepted with { Replayed = true }, acceptedAgain);
        Assert.Null(await app.StatusOf(sync.Id));
        // The same 202 and Location once the job has finished, too: the first answer, not the state of now.
        for (var waited = 0; await app.StatusOf(async.Id) is not null && waited < 600; waited++) await Task.Delay(100);
        Assert.Null(await app.StatusOf(async.Id));
        Assert.Equal(accepted with { Replayed = true }, await SendAsync(client, HttpMethod.Delete, $"/api/v1/accounts/{async.Id}", asyncKey, prefer: "respond-async"));
        var jobs = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM deletion_jobs WHERE account_id = @id", new { id = async.Id });
        Assert.Equal(1, jobs);
    }

    [Fact]
    public async Task ARefusalIsNotKeptSoTheRetryAfterTheLicenseIsFixedCreatesTheAccount()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());
        File.Delete(app.LicensePath);
        Answer refused;
        try { refused = await CreateAsync(client, key, username); }
        finally { app.IssueLicense(maxAccounts: null, expiresDays: 30); }

        var retried = await CreateAsync(client, key, username);

        Assert.Equal((HttpStatusCode.Forbidden, "license_required"), (refused.Status, refused.Error));
        Assert.True(retried.Status == HttpStatusCode.Created, retried.Body);
        Assert.False(retried.Replayed);
        Assert.Equal(1, await AccountsNamed(username));
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = @key", new { key }));
    }

    [Theory]
    [InlineData("\"\"")]
    [InlineData("has space")]
    [InlineData("a,b")]
    [InlineData("semi;colon")]
    [InlineData("256")]
    [InlineData("two")]
    public async Task AMalformedKeyIs400AndChangesNothing(string problem)
    {
        var client = await app.ClientAsync();
        var username = ApiKit.NewUsername();
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/accounts") { Content = JsonContent.Create(ApiKit.NewAccountBody(username)) };
        if (problem == "two") request.Headers.TryAddWithoutValidation("Idempotency-Key", ["a1", "a2"]);
        else request.Headers.TryAddWithoutValidation("Idempotency-Key", problem == "256" ? new string('k', 256) : problem);

        var response = await client.SendAsync(request);

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {body}");
        Assert.Equal("idempotency_key_invalid", body.Error());
        Assert.Contains("Idempotency-Key", body.GetProperty("message").GetString());
        Assert.Equal(0, await AccountsNamed(username));
    }

    [Fact]
    public async Task AQuotedKeyIsTheSameKeyAsItsTextAndTheLongestKeyIsAccepted()
    {
        var client = await app.ClientAsync();
        var key = NewKey() + new string('k', 255 - 38);
        Assert.Equal(255, key.Length);
        var username = ApiKit.NewUsername();

        var first = await CreateAsync(client, key, username);
        var quoted = await CreateAsync(client, $"\"{key}\"", username);

        Assert.Equal(HttpStatusCode.Created, first.Status);
        Assert.Equal(first with { Replayed = true }, quoted);
    }

    [Fact]
    public async Task ARequestWhoseKeyIsHeldByARunningRequestWaitsThenHears409InProgressAndRunsNothing()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());
        var store = app.Get<IdempotencyStore>();
        var body = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(ApiKit.NewAccountBody(username)));
        // The first request with the key, running (in another panel process, say) for longer than a retry waits.
        var request = new IdempotentRequest(app.Admin.Id, key, store.Fingerprint("POST", "/api/v1/accounts", body), "POST /api/v1/accounts");
        var claim = Assert.IsType<KeyClaim.Claimed>(await store.ClaimAsync(request, TimeSpan.Zero, default));
        var leasedUntil = await LeaseOf(key);
        HttpResponseMessage response;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        await using (store.Hold(request, claim))
        {
            response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/accounts")
            {
                Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
                Headers = { { "Idempotency-Key", key } },
            });
            // Renewed while it runs, so the waiter never took it for a dead one.
            Assert.True(await LeaseOf(key) > leasedUntil);
        }

        var error = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode} {error}");
        Assert.Equal("idempotency_in_progress", error.Error());
        Assert.Equal("5", response.Headers.GetValues("Retry-After").Single());
        Assert.InRange(waited.Elapsed, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(45));
        Assert.Equal(0, await AccountsNamed(username));
    }

    private Task<DateTime> LeaseOf(string key) =>
        app.Databases.PanelScalarAsync<DateTime>("SELECT lease_expires_at FROM idempotency_keys WHERE idem_key = @key", new { key });

    [Fact]
    public async Task AKeyWhoseRequestDiedWithItsProcessIsTakenOverWhenItsLeaseRunsOut()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());
        var store = app.Get<IdempotencyStore>();
        var body = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(ApiKit.NewAccountBody(username)));
        // Another panel process claimed the key and died: its lease is no longer renewed.
        var request = new IdempotentRequest(app.Admin.Id, key, store.Fingerprint("POST", "/api/v1/accounts", body), "POST /api/v1/accounts");
        Assert.IsType<KeyClaim.Claimed>(await store.ClaimAsync(request, TimeSpan.Zero, default));
        await app.Databases.PanelScalarAsync<long>(
            "UPDATE idempotency_keys SET lease_expires_at = NOW(6) - INTERVAL 1 SECOND WHERE idem_key = @key", new { key });

        var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/accounts")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
            Headers = { { "Idempotency-Key", key } },
        });

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(1, await AccountsNamed(username));
    }

    [Fact]
    public async Task ARetryThatMeetsALockOnTheKeysRowWaitsForItAndThenTakesTheDeadRunOver()
    {
        var client = await app.ClientAsync();
        var (key, username) = (NewKey(), ApiKit.NewUsername());
        var store = app.Get<IdempotencyStore>();
        var body = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(ApiKit.NewAccountBody(username)));
        var request = new IdempotentRequest(app.Admin.Id, key, store.Fingerprint("POST", "/api/v1/accounts", body), "POST /api/v1/accounts");
        Assert.IsType<KeyClaim.Claimed>(await store.ClaimAsync(request, TimeSpan.Zero, default));
        await app.Databases.PanelScalarAsync<long>(
            "UPDATE idempotency_keys SET lease_expires_at = NOW(6) - INTERVAL 1 SECOND WHERE idem_key = @key", new { key });
        // Another transaction holds the row for a while (as a concurrent claim does for a moment).
        await using var other = new MySqlConnector.MySqlConnection(app.Databases.Panel);
        await other.OpenAsync();
        await using var locking = await other.BeginTransactionAsync();
        await Dapper.SqlMapper.ExecuteAsync(other, "SELECT 1 FROM idempotency_keys WHERE owner_id = @owner AND idem_key = @key FOR UPDATE", new { owner = app.Admin.Id, key }, locking);
        var sent = client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/accounts")
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
            Headers = { { "Idempotency-Key", key } },
        });
        await Task.WhenAny(sent, Task.Delay(TimeSpan.FromSeconds(3)));
        await locking.RollbackAsync();
        var response = await sent;

        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Equal(1, await AccountsNamed(username));
    }

    [Fact]
    public async Task ARequestWhoseLeaseWasTakenOverCannotKeepItsAnswerOverTheNewHolders()
    {
        var store = app.Get<IdempotencyStore>();
        var key = NewKey();
        var request = new IdempotentRequest(app.Admin.Id, key, store.Fingerprint("POST", "/api/v1/accounts", "{}"u8), "POST /api/v1/accounts");
        var stale = Assert.IsType<KeyClaim.Claimed>(await store.ClaimAsync(request, TimeSpan.Zero, default));
        await app.Databases.PanelScalarAsync<long>(
            "UPDATE idempotency_keys SET lease_expires_at = NOW(6) - INTERVAL 1 SECOND WHERE idem_key = @key", new { key });
        var holder = Assert.IsType<KeyClaim.Claimed>(await store.ClaimAsync(request, TimeSpan.Zero, default));

        var staleKept = await store.KeepAsync(request, stale, new KeptAnswer(201, new Dictionary<string, string>(), "stale"u8.ToArray()), default);
        await store.ReleaseAsync(request, stale, default);
        var holderKept = await store.KeepAsync(request, holder, new KeptAnswer(201, new Dictionary<string, string>(), "holder"u8.ToArray()), default);

        Assert.Equal((false, true), (staleKept, holderKept));
        var replay = Assert.IsType<KeyClaim.Replay>(await store.ClaimAsync(request, TimeSpan.Zero, default));
        Assert.Equal("holder", System.Text.Encoding.UTF8.GetString(replay.Answer.Body));
    }
}
