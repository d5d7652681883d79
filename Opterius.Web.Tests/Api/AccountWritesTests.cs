using System.Net;
using System.Net.Http.Json;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

public sealed class AccountWritesTests(ApiApp app) : IClassFixture<ApiApp>
{
    [Fact]
    public async Task CreatingAnAccountAnswers201WithItsFieldsAndProvisionsIt()
    {
        var client = await app.ClientAsync();
        var username = ApiKit.NewUsername();
        var response = await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(username));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var data = (await response.JsonOf()).GetProperty("data");
        var id = data.GetProperty("id").GetInt64();
        Assert.Equal($"/api/v1/accounts/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal(username, data.GetProperty("username").GetString());
        Assert.Equal($"{username}.test", data.GetProperty("domain").GetString());
        Assert.Equal($"owner@{username}.test", data.GetProperty("email").GetString());
        Assert.Equal("active", data.GetProperty("status").GetString());
        Assert.Equal(1, data.GetProperty("package_id").GetInt64());
        Assert.True(data.TryGetProperty("created_at", out _));
        Assert.True(Directory.Exists(ApiKit.HomeOf(username)));
        Assert.True(File.Exists(ApiKit.VhostOf($"{username}.test")));
    }

    [Fact]
    public async Task APackageIdSentAsAStringIsAccepted()
    {
        var client = await app.ClientAsync();
        var username = ApiKit.NewUsername();
        var response = await client.PostAsync("/api/v1/accounts", ApiKit.Json($$"""
            {"username":"{{username}}","domain":"{{username}}.test","email":"a@{{username}}.test","password":"account-password-1","package_id":"1"}
            """));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task InvalidFieldsAreA422NamingEachBadFieldAndNothingIsCreated()
    {
        var client = await app.ClientAsync();
        var before = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        var response = await client.PostAsync("/api/v1/accounts", ApiKit.Json("""
            {"username":"Root!","domain":"not a domain","email":"nope","password":"short","package_id":999}
            """));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var body = await response.JsonOf();
        Assert.Equal("validation_failed", body.Error());
        var details = body.GetProperty("details");
        foreach (var field in new[] { "username", "domain", "email", "password", "package_id" })
            Assert.True(details.TryGetProperty(field, out _), $"details should name {field}: {details}");
        Assert.Equal(before, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
    }

    [Fact]
    public async Task FieldsOfTheWrongJsonTypeAreNamedNotCrashed()
    {
        var client = await app.ClientAsync();
        var response = await client.PostAsync("/api/v1/accounts", ApiKit.Json("""
            {"username":42,"domain":["a.test"],"email":{"x":1},"password":true,"package_id":1.5}
            """));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var details = (await response.JsonOf()).GetProperty("details");
        Assert.Contains("string", details.GetProperty("username").GetString());
        Assert.Contains("string", details.GetProperty("password").GetString());
        Assert.True(details.TryGetProperty("package_id", out _));
    }

    [Theory]
    [InlineData("{\"username\": ", 400, "invalid_json")]
    [InlineData("", 400, "invalid_json")]
    [InlineData("[1,2,3]", 422, "validation_failed")]
    [InlineData("\"text\"", 422, "validation_failed")]
    public async Task MalformedBodiesGetAPrecise4xxWithTheErrorBody(string text, int status, string code)
    {
        var client = await app.ClientAsync();
        var response = await client.PostAsync("/api/v1/accounts", ApiKit.Json(text));
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(code, (await response.JsonOf()).Error());
    }

    [Fact]
    public async Task AFormBodyIsUnsupportedMediaType()
    {
        var client = await app.ClientAsync();
        var response = await client.PostAsync("/api/v1/accounts", new FormUrlEncodedContent(new Dictionary<string, string> { ["username"] = "abc" }));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("unsupported_media_type", (await response.JsonOf()).Error());
    }

    [Fact]
    public async Task AHugeBodyIsRefusedAsTooLarge()
    {
        var client = await app.ClientAsync();
        var response = await client.PostAsync("/api/v1/accounts", ApiKit.Json($$"""{"username":"{{new string('a', 200_000)}}"}"""));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("payload_too_large", (await response.JsonOf()).Error());
    }

    [Fact]
    public async Task AUsedUsernameOrDomainIsAConflict()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();

        var sameName = await client.PostAsJsonAsync("/api/v1/accounts", new
        {
            username = made.Username, domain = $"other{made.Username}.test", email = "a@b.test", password = "account-password-1", package_id = 1,
        });
        Assert.Equal(HttpStatusCode.Conflict, sameName.StatusCode);
        Assert.Equal("conflict", (await sameName.JsonOf()).Error());

        var sameDomain = await client.PostAsJsonAsync("/api/v1/accounts", new
        {
            username = ApiKit.NewUsername(), domain = made.Domain, email = "a@b.test", password = "account-password-1", package_id = 1,
        });
        Assert.Equal(HttpStatusCode.Conflict, sameDomain.StatusCode);
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE domain = @d", new { d = made.Domain }));
    }

    [Fact]
    public async Task AConflictNamesTheAccountHoldingTheNameOnlyToACallerWhoMaySeeIt()
    {
        var owner = await app.NewResellerAsync();
        var ownerClient = await app.ClientAsync(Roles.Reseller, owner.Id);
        var made = await ownerClient.CreateOverApiAsync();
        var stranger = await app.ClientAsync(Roles.Reseller, (await app.NewResellerAsync()).Id);
        var admin = await app.ClientAsync();
        var (otherDomain, otherName) = ($"other{made.Username}.test", ApiKit.NewUsername());

        var sameNameMessages = new[] { await RefusedAsync(ownerClient, made.Username, otherDomain), await RefusedAsync(admin, made.Username, otherDomain) };
        var sameDomainMessages = new[] { await RefusedAsync(ownerClient, otherName, made.Domain), await RefusedAsync(admin, otherName, made.Domain) };

        Assert.All(sameNameMessages, m => Assert.Equal($"The username '{made.Username}' is taken by account {made.Id} ({made.Domain}).", m));
        Assert.All(sameDomainMessages, m => Assert.Equal($"The domain '{made.Domain}' is taken by account {made.Id} ({made.Username}).", m));
        Assert.Equal($"The username '{made.Username}' is taken by another owner's account.", await RefusedAsync(stranger, made.Username, otherDomain));
        Assert.Equal($"The domain '{made.Domain}' is taken by another owner's account.", await RefusedAsync(stranger, otherName, made.Domain));
    }

    private static async Task<string> RefusedAsync(HttpClient client, string username, string domain)
    {
        var response = await client.PostAsJsonAsync("/api/v1/accounts", new
        {
            username, domain, email = "a@b.test", password = "account-password-1", package_id = 1,
        });
        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode} {body}");
        Assert.Equal("conflict", body.Error());
        return body.GetProperty("message").GetString()!;
    }

    [Fact]
    public async Task AResellerCreatesAccountsItOwns()
    {
        var reseller = await app.NewResellerAsync();
        var client = await app.ClientAsync(Roles.Reseller, reseller.Id);
        var made = await client.CreateOverApiAsync();
        Assert.Equal(reseller.Id, await app.Databases.PanelScalarAsync<long>("SELECT owner_id FROM accounts WHERE id = @id", new { id = made.Id }));
    }

    [Fact]
    public async Task SuspendAndUnsuspendAnswerTheStateAndRefuseRepeats()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();

        var suspended = await client.PostAsync($"/api/v1/accounts/{made.Id}/suspend", null);
        Assert.Equal(HttpStatusCode.OK, suspended.StatusCode);
        var data = (await suspended.JsonOf()).GetProperty("data");
        Assert.Equal(made.Id, data.GetProperty("id").GetInt64());
        Assert.Equal(made.Username, data.GetProperty("username").GetString());
        Assert.Equal("suspended", data.GetProperty("status").GetString());

        var again = await client.PostAsync($"/api/v1/accounts/{made.Id}/suspend", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("conflict", (await again.JsonOf()).Error());

        var back = await client.PostAsync($"/api/v1/accounts/{made.Id}/unsuspend", null);
        Assert.Equal("active", (await back.JsonOf()).GetProperty("data").GetProperty("status").GetString());
        var backAgain = await client.PostAsync($"/api/v1/accounts/{made.Id}/unsuspend", null);
        Assert.Equal(HttpStatusCode.Conflict, backAgain.StatusCode);
        Assert.Equal("active", await app.StatusOf(made.Id));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("99999999999999999999")]
    [InlineData("999999999")]
    public async Task SuspendingAnUnknownIdIsNotFound(string id)
    {
        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/accounts/{id}/suspend", null);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", (await response.JsonOf()).Error());
    }

    [Fact]
    public async Task AReadOnlyTokenCannotWriteAndTheRefusalIsAudited()
    {
        var client = await app.ClientAsync(scopes: [TokenScopes.AccountsRead]);
        var before = await app.AuditCount("create", "insufficient_scope");
        var response = await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(ApiKit.NewUsername()));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("insufficient_scope", (await response.JsonOf()).Error());
        Assert.Equal(before + 1, await app.AuditCount("create", "insufficient_scope"));
    }

    [Fact]
    public async Task EveryRefusedWriteIsAuditedOnceWithTheTokensNameAndSourceIp()
    {
        var name = $"whmcs {Guid.NewGuid():N}"[..30];
        var minted = await app.Get<TokenService>().CreateAsync(name, Roles.Admin, app.Admin.Id, null, null, default);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", minted.Token);

        await client.PostAsync("/api/v1/accounts", ApiKit.Json("{"));                           // invalid_json
        await client.PostAsync("/api/v1/accounts", ApiKit.Json("""{"username":"X"}"""));        // validation_failed
        await client.PostAsync("/api/v1/accounts/999999/suspend", null);                        // not_found
        await client.DeleteAsync("/api/v1/accounts/abc");                                       // not_found

        var outcomes = await app.Databases.PanelScalarAsync<string>(
            "SELECT GROUP_CONCAT(CONCAT(action, ':', outcome) ORDER BY id SEPARATOR ' ') FROM audit_log WHERE actor = @name AND actor_kind = 'token' AND source_ip = @ip",
            new { name, ip = ApiApp.ClientIp });
        Assert.Equal("create:invalid_json create:validation_failed suspend:not_found delete:not_found", outcomes);
    }

    [Fact]
    public async Task WritesBeyondTheLimitPerTokenAre429AndOtherTokensAreUnaffected()
    {
        var busy = await app.ClientAsync();
        HttpResponseMessage? last = null;
        for (var i = 0; i < 61; i++) last = await busy.PostAsync("/api/v1/accounts/999999/suspend", null);
        Assert.Equal(HttpStatusCode.TooManyRequests, last!.StatusCode);
        Assert.Equal("rate_limited", (await last.JsonOf()).Error());

        var other = await app.ClientAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.PostAsync("/api/v1/accounts/999999/suspend", null)).StatusCode);
        // Reads are not limited.
        Assert.Equal(HttpStatusCode.OK, (await busy.GetAsync("/api/v1/accounts")).StatusCode);
    }
}
