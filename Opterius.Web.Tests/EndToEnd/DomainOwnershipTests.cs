using System.Net;
using System.Net.Http.Json;
using Opterius.Services.Users;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.EndToEnd;

/// <summary>
/// A domain belongs to one owner, with the names under it and above it: against the zones the private PowerDNS
/// serves, a reseller cannot take <c>mail.{another tenant's domain}</c> (PowerDNS would answer it from the new, more
/// specific zone) nor the parent of one, while an owner may add names under its own domains.
/// </summary>
public sealed class DomainOwnershipTests(ServingApp app) : IClassFixture<ServingApp>
{
    private static object Body(string domain) =>
        new { username = ApiKit.NewUsername(), domain, email = $"owner@{domain}", password = "account-password-1", package_id = 1 };

    private static string Dig(string name) =>
        DaemonKit.Run("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", PrivateServices.Get("PDNS_PORT")!, name, "A").Trim();

    /// <summary>The served zones of <paramref name="domain"/> and every name under it (other classes' zones change meanwhile).</summary>
    private Task<string> ZonesAsync(string domain) =>
        ProductionLikeApp.DumpAsync(app.Databases.PowerDns, $"""
            SELECT d.name, d.account, r.name, r.type, r.content FROM domains d LEFT JOIN records r ON r.domain_id = d.id
            WHERE d.name = '{domain}' OR d.name LIKE '%.{domain}' ORDER BY d.id, r.id
            """);

    [Theory]
    [InlineData("mail.{0}")]
    [InlineData("deep.www.{0}")]
    [InlineData("{0}")]
    public async Task AResellerCannotTakeANameUnderAnotherTenantsDomainAndThatZoneKeepsAnswering(string pattern)
    {
        var tenant = await (await app.ClientAsync()).CreateOverApiAsync();
        var reseller = await app.NewResellerAsync();
        var client = await app.ClientAsync(Roles.Reseller, reseller.Id);
        Assert.Equal("127.0.0.1", Dig($"mail.{tenant.Domain}"));
        var zones = await ZonesAsync(tenant.Domain);
        var accounts = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        var domain = string.Format(pattern, tenant.Domain);

        var response = await client.PostAsJsonAsync("/api/v1/accounts", Body(domain));

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("conflict", body.Error());
        Assert.Contains($"'{tenant.Domain}'", body.GetProperty("message").GetString());
        Assert.Equal(zones, await ZonesAsync(tenant.Domain));
        Assert.Equal(accounts, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
        Assert.Equal("127.0.0.1", Dig($"mail.{tenant.Domain}"));
        Assert.Equal("127.0.0.1", Dig(tenant.Domain));
    }

    [Fact]
    public async Task AResellerCannotTakeTheParentOfAnotherTenantsDomain()
    {
        var parent = $"{TestAccounts.NewPrefix(9)}.test";
        var admin = await app.ClientAsync();
        var response = await admin.PostAsJsonAsync("/api/v1/accounts", Body($"shop.{parent}"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var reseller = await app.NewResellerAsync();
        var zones = await ZonesAsync(parent);

        var refused = await (await app.ClientAsync(Roles.Reseller, reseller.Id)).PostAsJsonAsync("/api/v1/accounts", Body(parent));

        var body = await refused.JsonOf();
        Assert.True(refused.StatusCode == HttpStatusCode.Conflict, $"{(int)refused.StatusCode}: {body}");
        Assert.Equal("conflict", body.Error());
        Assert.Contains($"is a parent of 'shop.{parent}'", body.GetProperty("message").GetString());
        Assert.Equal(zones, await ZonesAsync(parent));
        Assert.Equal("", Dig(parent));
    }

    [Fact]
    public async Task AnOwnerMayAddANameUnderItsOwnDomain()
    {
        var reseller = await app.NewResellerAsync();
        var client = await app.ClientAsync(Roles.Reseller, reseller.Id);
        var own = await client.CreateOverApiAsync();

        var response = await client.PostAsJsonAsync("/api/v1/accounts", Body($"blog.{own.Domain}"));

        Assert.True(response.StatusCode == HttpStatusCode.Created, $"{(int)response.StatusCode}: {await response.JsonOf()}");
        Assert.Equal("127.0.0.1", Dig($"blog.{own.Domain}"));
    }
}
