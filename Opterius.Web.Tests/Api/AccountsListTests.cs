using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using MySqlConnector;
using Opterius.Services.Users;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

/// <summary>Rows only (the list reads the table); a few thousand accounts split between an admin and a reseller.</summary>
public sealed class AccountsListApp : PanelApp
{
    public const int Total = 3000;
    public PanelUser Reseller { get; private set; } = default!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Reseller = await NewResellerAsync();
        await using var c = new MySqlConnection(Databases.Panel);
        var rows = Enumerable.Range(1, Total).Select(i => new
        {
            username = $"user{i:0000}",
            domain = $"site{i:0000}.example",
            email = $"owner{i}@mail{i % 7}.example",
            owner = i % 10 == 0 ? Reseller.Id : Admin.Id,
            status = i % 100 == 0 ? "suspended" : "active",
        });
        await c.ExecuteAsync("""
            INSERT INTO accounts (username, domain, email, package_id, owner_id, php_version, status)
            VALUES (@username, @domain, @email, 1, @owner, '8.2', @status)
            """, rows);
    }
}

public sealed class AccountsListTests(AccountsListApp app) : IClassFixture<AccountsListApp>
{
    private static async Task<JsonElement> Json(HttpResponseMessage r) => await r.Content.ReadFromJsonAsync<JsonElement>();

    [Fact]
    public async Task TheListPagesThroughEveryAccountWithATotal()
    {
        var client = await app.ClientAsync();
        var first = await Json(await client.GetAsync("/api/v1/accounts?per_page=50"));
        Assert.Equal(AccountsListApp.Total, first.GetProperty("meta").GetProperty("total").GetInt64());
        Assert.Equal(50, first.GetProperty("data").GetArrayLength());
        Assert.Equal("user0001", first.GetProperty("data")[0].GetProperty("username").GetString());

        var last = await Json(await client.GetAsync("/api/v1/accounts?per_page=50&page=60"));
        Assert.Equal("user3000", last.GetProperty("data")[49].GetProperty("username").GetString());
        var beyond = await Json(await client.GetAsync("/api/v1/accounts?per_page=50&page=61"));
        Assert.Equal(0, beyond.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task SearchMatchesUsernameDomainOrEmailAndStatusFilters()
    {
        var client = await app.ClientAsync();
        var byName = await Json(await client.GetAsync("/api/v1/accounts?search=user012"));
        Assert.Equal(10, byName.GetProperty("meta").GetProperty("total").GetInt64());
        var byDomain = await Json(await client.GetAsync("/api/v1/accounts?search=site2999"));
        Assert.Equal("user2999", byDomain.GetProperty("data")[0].GetProperty("username").GetString());
        var byEmail = await Json(await client.GetAsync("/api/v1/accounts?search=owner1234@"));
        Assert.Equal(1, byEmail.GetProperty("meta").GetProperty("total").GetInt64());
        var suspended = await Json(await client.GetAsync("/api/v1/accounts?status=suspended&per_page=100"));
        Assert.Equal(30, suspended.GetProperty("meta").GetProperty("total").GetInt64());
        Assert.All(suspended.GetProperty("data").EnumerateArray(), a => Assert.Equal("suspended", a.GetProperty("status").GetString()));
    }

    [Fact]
    public async Task SearchWildcardsMatchOnlyThemselves()
    {
        var client = await app.ClientAsync();
        var underscore = await Json(await client.GetAsync("/api/v1/accounts?search=user_001"));
        Assert.Equal(0, underscore.GetProperty("meta").GetProperty("total").GetInt64());
        var percent = await Json(await client.GetAsync("/api/v1/accounts?search=%25"));
        Assert.Equal(0, percent.GetProperty("meta").GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task AChangeMadeOutsideThePanelShowsOnTheNextListEvenThoughPagesAreKept()
    {
        var client = await app.ClientAsync();
        const string url = "/api/v1/accounts?search=user2500&per_page=5";
        Assert.Equal("owner2500@mail1.example", (await Json(await client.GetAsync(url))).GetProperty("data")[0].GetProperty("email").GetString());
        await client.GetAsync(url); // served from the kept page now

        await using (var c = new MySqlConnection(app.Databases.Panel))
            await c.ExecuteAsync("UPDATE accounts SET email = 'changed@elsewhere.example' WHERE username = 'user2500'");

        Assert.Equal("changed@elsewhere.example", (await Json(await client.GetAsync(url))).GetProperty("data")[0].GetProperty("email").GetString());
        await using (var c = new MySqlConnection(app.Databases.Panel))
            await c.ExecuteAsync("UPDATE accounts SET email = 'owner2500@mail1.example' WHERE username = 'user2500'");
    }

    [Fact]
    public async Task AResellerSeesOnlyItsOwnAccountsInTheListAndById()
    {
        var client = await app.ClientAsync(Roles.Reseller, app.Reseller.Id);
        var list = await Json(await client.GetAsync("/api/v1/accounts?per_page=100"));
        Assert.Equal(AccountsListApp.Total / 10, list.GetProperty("meta").GetProperty("total").GetInt64());
        Assert.All(list.GetProperty("data").EnumerateArray(), a => Assert.Equal(app.Reseller.Id, a.GetProperty("owner_id").GetInt64()));

        var own = list.GetProperty("data")[0].GetProperty("id").GetInt64();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/api/v1/accounts/{own}")).StatusCode);
        var foreign = await client.GetAsync($"/api/v1/accounts/{own - 1}");
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Equal("not_found", (await Json(foreign)).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("page=0", "page")]
    [InlineData("page=-3", "page")]
    [InlineData("page=abc", "page")]
    [InlineData("per_page=0", "per_page")]
    [InlineData("per_page=1000000", "per_page")]
    [InlineData("status=bogus", "status")]
    [InlineData("sort=password_hash", "sort")]
    public async Task BadListParametersAreAValidationErrorNamingTheField(string query, string field)
    {
        var client = await app.ClientAsync();
        var response = await client.GetAsync($"/api/v1/accounts?{query}");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var body = await Json(response);
        Assert.Equal("validation_failed", body.GetProperty("error").GetString());
        Assert.Contains(field, body.GetProperty("message").GetString());
        Assert.True(body.GetProperty("details").TryGetProperty(field, out _));
    }

    [Fact]
    public async Task AHugeSearchStringIsRefusedNotCrashed()
    {
        var client = await app.ClientAsync();
        var response = await client.GetAsync($"/api/v1/accounts?search={new string('a', 10_000)}");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("validation_failed", (await Json(response)).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("0")]
    [InlineData("99999999999999999999")]
    [InlineData("1.5")]
    [InlineData("999999999")]
    public async Task BadOrUnknownIdsAreNotFound(string id)
    {
        var client = await app.ClientAsync();
        var response = await client.GetAsync($"/api/v1/accounts/{id}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var body = await Json(response);
        Assert.Equal("not_found", body.GetProperty("error").GetString());
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task AFreshInstallListsTheDefaultPackage()
    {
        var client = await app.ClientAsync();
        var body = await Json(await client.GetAsync("/api/v1/packages"));
        Assert.Contains(body.GetProperty("data").EnumerateArray(), p => p.GetProperty("name").GetString() == "default");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer")]
    [InlineData("Bearer not-a-jwt")]
    [InlineData("Basic YWRtaW46YWRtaW4=")]
    public async Task MissingOrMalformedTokensAreUnauthenticated(string? header)
    {
        var client = app.CreateClient();
        if (header is not null) client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", header);
        var response = await client.GetAsync("/api/v1/accounts");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("unauthenticated", (await Json(response)).GetProperty("error").GetString());
    }
}
