using System.Net;
using System.Net.Http.Json;
using Opterius.Services.Licensing;
using Opterius.Web.Tests.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

/// <summary>Without a valid license every write is 403 license_required and nothing changes; reads keep working.</summary>
public sealed class LicenseEnforcementTests(ApiApp app) : IClassFixture<ApiApp>
{
    [Theory]
    [InlineData("missing")]
    [InlineData("tampered")]
    [InlineData("expired")]
    public async Task EveryWriteIsRefusedEveryReadServedAndNothingChanges(string problem)
    {
        var client = await app.ClientAsync();
        var active = await client.CreateOverApiAsync();
        var suspended = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/accounts/{suspended.Id}/suspend", null)).StatusCode);
        var accountsBefore = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        var (activeBefore, suspendedBefore) = (await app.SnapshotAsync(active.Id), await app.SnapshotAsync(suspended.Id));
        var newName = ApiKit.NewUsername();

        Break(problem);
        try
        {
            var writes = new[]
            {
                await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(newName)),
                await client.PostAsync($"/api/v1/accounts/{active.Id}/suspend", null),
                await client.PostAsync($"/api/v1/accounts/{suspended.Id}/unsuspend", null),
                await client.DeleteAsync($"/api/v1/accounts/{active.Id}"),
            };
            foreach (var r in writes)
            {
                Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
                var body = await r.JsonOf();
                Assert.Equal("license_required", body.Error());
                Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("message").GetString()));
            }

            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/accounts")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/api/v1/accounts/{active.Id}")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/packages")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.DeleteAsync($"/api/v1/accounts/{active.Id}?dry_run=true")).StatusCode);

            Assert.Equal(accountsBefore, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
            Assert.False(Directory.Exists(ApiKit.HomeOf(newName)));
            Assert.Equal(activeBefore, await app.SnapshotAsync(active.Id));
            Assert.Equal(suspendedBefore, await app.SnapshotAsync(suspended.Id));
        }
        finally { app.IssueLicense(maxAccounts: null, expiresDays: 30); }
    }

    [Fact]
    public async Task CreatingBeyondTheLicensedAccountLimitIsRefused()
    {
        var client = await app.ClientAsync();
        await client.CreateOverApiAsync();
        var count = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        app.IssueLicense(maxAccounts: (int)count, expiresDays: 30);
        try
        {
            var name = ApiKit.NewUsername();
            var response = await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(name));
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("account_limit_reached", (await response.JsonOf()).Error());
            Assert.False(Directory.Exists(ApiKit.HomeOf(name)));
            Assert.Equal(count, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
        }
        finally { app.IssueLicense(maxAccounts: null, expiresDays: 30); }
    }

    private void Break(string problem)
    {
        switch (problem)
        {
            case "missing":
                File.Delete(app.LicensePath);
                break;
            case "tampered":
                var text = File.ReadAllText(app.LicensePath);
                File.WriteAllText(app.LicensePath, text.Replace("\"test\"", "\"gold\""));
                Assert.NotEqual(text, File.ReadAllText(app.LicensePath));
                break;
            case "expired":
                // Signed with the right key two days ago, for one day.
                new LicenseIssuer(new ShiftedClock(TimeSpan.FromDays(-2))).Issue(app.SigningKeyPath, app.LicensePath, "test", null, 1);
                break;
        }
    }
}
