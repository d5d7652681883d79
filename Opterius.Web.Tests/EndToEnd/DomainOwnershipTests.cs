using System.Net;
using System.Net.Http.Json;
using Dapper;
using MySqlConnector;
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

    /// <summary>A zone no account owns (the provider's own, an operator's), served by the private PowerDNS.</summary>
    private async Task UnownedZoneAsync(string zone, string address)
    {
        await using var c = new MySqlConnection(app.Databases.PowerDns);
        var id = await c.ExecuteScalarAsync<long>(
            "INSERT INTO domains (name, type, account) VALUES (@zone, 'NATIVE', NULL); SELECT LAST_INSERT_ID();", new { zone });
        await c.ExecuteAsync("""
            INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) VALUES
              (@id, @zone, 'SOA', 'ns1.example.net hostmaster.example.net 1 10800 3600 604800 3600', 300, 0, 0, 1),
              (@id, @zone, 'NS', 'ns1.example.net', 300, 0, 0, 1),
              (@id, CONCAT('mail.', @zone), 'A', @address, 300, 0, 0, 1);
            """, new { id, zone, address });
    }

    [Theory]
    [InlineData("mail.{0}")]
    [InlineData("deep.www.{0}")]
    public async Task AResellerCannotTakeANameUnderAZoneNoAccountOwnsAndThatZoneKeepsAnswering(string pattern)
    {
        var provider = $"{TestAccounts.NewPrefix(9)}provider.test";
        await UnownedZoneAsync(provider, "198.51.100.25");
        var reseller = await app.NewResellerAsync();
        Assert.Equal("198.51.100.25", Dig($"mail.{provider}"));
        var zones = await ZonesAsync(provider);
        var accounts = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        var domain = string.Format(pattern, provider);

        var response = await (await app.ClientAsync(Roles.Reseller, reseller.Id)).PostAsJsonAsync("/api/v1/accounts", Body(domain));

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("conflict", body.Error());
        Assert.Contains($"is under the DNS zone '{provider}'", body.GetProperty("message").GetString());
        Assert.Equal(zones, await ZonesAsync(provider));
        Assert.Equal(accounts, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
        Assert.Equal("198.51.100.25", Dig($"mail.{provider}"));
    }

    [Fact]
    public async Task AZoneNoAccountOwnsUnderANewDomainRefusesItEvenForAnAdmin()
    {
        var domain = $"{TestAccounts.NewPrefix(9)}new.test";
        await UnownedZoneAsync($"x.{domain}", "198.51.100.26");
        var zones = await ZonesAsync(domain);

        var response = await (await app.ClientAsync()).PostAsJsonAsync("/api/v1/accounts", Body(domain));

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.Conflict, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("conflict", body.Error());
        Assert.Contains($"has the DNS zone 'x.{domain}' under it", body.GetProperty("message").GetString());
        Assert.Equal(zones, await ZonesAsync(domain));
        Assert.Equal("198.51.100.26", Dig($"mail.x.{domain}"));
        Assert.Equal("", Dig(domain));
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
