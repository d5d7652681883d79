using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

/// <summary>
/// Forged and stale tokens against every write: each is refused and no account changes. The forgeries keep the
/// claims of a live token (its jti is active), so exactly one property is wrong in each.
/// </summary>
public sealed class TokenAttackTests(ApiApp app) : IClassFixture<ApiApp>
{
    public static TheoryData<string> Attacks => ["expired", "not_yet_valid", "wrong_issuer", "wrong_audience", "wrong_key", "alg_none", "tampered", "revoked"];

    [Theory]
    [MemberData(nameof(Attacks))]
    public async Task ABadTokenIsUnauthenticatedOnEveryEndpointAndChangesNothing(string attack)
    {
        var admin = await app.ClientAsync();
        var victim = await admin.CreateOverApiAsync();
        var before = await app.SnapshotAsync(victim.Id);
        var accounts = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        var token = await ForgeAsync(attack);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        var responses = new[]
        {
            await client.DeleteAsync($"/api/v1/accounts/{victim.Id}"),
            await client.PostAsync($"/api/v1/accounts/{victim.Id}/suspend", null),
            await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(ApiKit.NewUsername())),
            await client.GetAsync($"/api/v1/accounts/{victim.Id}"),
            await client.GetAsync("/api/v1/accounts"),
        };

        foreach (var r in responses)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Equal("unauthenticated", (await r.JsonOf()).Error());
        }
        Assert.Equal(before, await app.SnapshotAsync(victim.Id));
        Assert.Equal(accounts, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
    }

    /// <summary>The positive control of the theory above: the forging kit with nothing wrong makes a token that is accepted.</summary>
    [Fact]
    public async Task TheForgingKitsUnflawedTokenIsAccepted()
    {
        var admin = await app.ClientAsync();
        var victim = await admin.CreateOverApiAsync();
        var client = Bearer(await ForgeAsync("none"));

        var read = await client.GetAsync($"/api/v1/accounts/{victim.Id}");

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(victim.Username, (await read.JsonOf()).GetProperty("data").GetProperty("username").GetString());
    }

    public static TheoryData<string> ClaimChanges => ["role", "owner", "scope", "name", "second_role"];

    /// <summary>The positive control of the theory below: the same re-signing with no claim changed is accepted.</summary>
    [Fact]
    public async Task AReSignedTokenWhoseClaimsMatchItsStoredRowIsAccepted()
    {
        var (reseller, claims) = await ResellerClaimsAsync();
        var client = Bearer(Sign(claims));

        var me = await client.GetAsync("/api/v1/whoami");

        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        var data = (await me.JsonOf()).GetProperty("data");
        Assert.Equal(Roles.Reseller, data.GetProperty("role").GetString());
        Assert.Equal(reseller.Id, data.GetProperty("owner_id").GetInt64());
        Assert.Equal(["accounts:read"], data.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()!));
    }

    [Theory]
    [MemberData(nameof(ClaimChanges))]
    public async Task AReSignedTokenWhoseClaimsDisagreeWithItsStoredRowIsUnauthenticatedAndChangesNothing(string change)
    {
        var admin = await app.ClientAsync();
        var victim = await admin.CreateOverApiAsync();
        var before = await app.SnapshotAsync(victim.Id);
        var (_, claims) = await ResellerClaimsAsync();
        // Signed with the panel's own key and carrying a live reseller jti: only the claim differs from the row.
        switch (change)
        {
            case "role": claims["role"] = Roles.Admin; break;
            case "owner": claims["sub"] = app.Admin.Id.ToString(System.Globalization.CultureInfo.InvariantCulture); break;
            case "scope": claims["scope"] = "accounts:read accounts:write accounts:delete"; break;
            case "name": claims["name"] = "someone-else"; break;
            case "second_role": claims["role"] = new[] { Roles.Reseller, Roles.Admin }; break;
        }
        var client = Bearer(Sign(claims));

        var responses = new[]
        {
            await client.GetAsync("/api/v1/whoami"),
            await client.GetAsync("/api/v1/accounts"),
            await client.DeleteAsync($"/api/v1/accounts/{victim.Id}"),
        };

        foreach (var r in responses)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Equal("unauthenticated", (await r.JsonOf()).Error());
        }
        Assert.Equal(before, await app.SnapshotAsync(victim.Id));
    }

    /// <summary>A live read-only reseller token's claims, ready to be changed and re-signed.</summary>
    private async Task<(PanelUser Reseller, Dictionary<string, object> Claims)> ResellerClaimsAsync()
    {
        var reseller = await app.NewResellerAsync();
        var live = await app.TokenAsync(Roles.Reseller, reseller.Id, ["accounts:read"]);
        return (reseller, new JsonWebToken(live).Claims.Where(c => c.Type is "jti" or "sub" or "name" or "role" or "scope")
            .ToDictionary(c => c.Type, c => (object)c.Value));
    }

    private string Sign(Dictionary<string, object> claims)
    {
        var options = app.Get<IOptions<JwtOptions>>().Value;
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = options.Issuer,
            Audience = options.Audience,
            IssuedAt = now.AddMinutes(-1),
            NotBefore = now.AddMinutes(-1),
            Expires = now.AddHours(1),
            Claims = claims,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(options.SigningKeyBytes()), SecurityAlgorithms.HmacSha256),
        });
    }

    private HttpClient Bearer(string token)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    [Fact]
    public async Task AResellerTokenOnAForeignAccountIsNotFoundAndTouchesNothing()
    {
        var admin = await app.ClientAsync();
        var victim = await admin.CreateOverApiAsync();
        var before = await app.SnapshotAsync(victim.Id);
        var reseller = await app.NewResellerAsync();
        var client = await app.ClientAsync(Roles.Reseller, reseller.Id);

        var responses = new[]
        {
            await client.DeleteAsync($"/api/v1/accounts/{victim.Id}"),
            await client.DeleteAsync($"/api/v1/accounts/{victim.Id}?dry_run=true"),
            await client.PostAsync($"/api/v1/accounts/{victim.Id}/suspend", null),
            await client.PostAsync($"/api/v1/accounts/{victim.Id}/unsuspend", null),
            await client.GetAsync($"/api/v1/accounts/{victim.Id}"),
        };

        foreach (var r in responses)
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
            Assert.Equal("not_found", (await r.JsonOf()).Error());
        }
        Assert.Equal(before, await app.SnapshotAsync(victim.Id));
    }

    private async Task<string> ForgeAsync(string attack)
    {
        var tokens = app.Get<TokenService>();
        var name = $"attack{Guid.NewGuid():N}"[..24];
        var live = (await tokens.CreateAsync(name, Roles.Admin, app.Admin.Id, null, null, default)).Token;
        if (attack == "revoked")
        {
            Assert.True(await tokens.RevokeAsync(name, default));
            return live;
        }
        var parts = live.Split('.');
        if (attack == "none") return Sign(new JsonWebToken(live).Claims.Where(c => c.Type is "jti" or "sub" or "name" or "role" or "scope")
            .ToDictionary(c => c.Type, c => (object)c.Value));
        if (attack == "tampered")
        {
            // The signature stays; the payload claims another owner.
            var original = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1]));
            var json = original.Replace($"\"sub\":\"{app.Admin.Id}\"", $"\"sub\":\"{app.Admin.Id + 1000}\"");
            Assert.NotEqual(original, json);
            return $"{parts[0]}.{Base64UrlEncoder.Encode(json)}.{parts[2]}";
        }
        var claims = new JsonWebToken(live).Claims.Where(c => c.Type is "jti" or "sub" or "name" or "role" or "scope")
            .ToDictionary(c => c.Type, c => (object)c.Value);
        if (attack == "alg_none")
        {
            var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
            return $"{header}.{parts[1]}.";
        }
        var options = app.Get<IOptions<JwtOptions>>().Value;
        var key = attack == "wrong_key" ? Encoding.UTF8.GetBytes(new string('k', 32) + "another-panel's-key") : options.SigningKeyBytes();
        var now = DateTime.UtcNow;
        var (notBefore, expires) = attack switch
        {
            "expired" => (now.AddHours(-2), now.AddHours(-1)),
            "not_yet_valid" => (now.AddHours(1), now.AddHours(2)),
            _ => (now.AddMinutes(-1), now.AddHours(1)),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = attack == "wrong_issuer" ? "someone-else" : options.Issuer,
            Audience = attack == "wrong_audience" ? "another-api" : options.Audience,
            IssuedAt = notBefore,
            NotBefore = notBefore,
            Expires = expires,
            Claims = claims,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), SecurityAlgorithms.HmacSha256),
        });
    }
}
