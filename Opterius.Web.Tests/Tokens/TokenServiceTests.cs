using System.Text;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using MySqlConnector;
using Opterius.Services;
using Opterius.Services.Data;
using Opterius.Services.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Tokens;

/// <summary>One migrated database with an admin and a reseller, shared by the class; each test uses its own token names.</summary>
public sealed class TokenDatabase : IAsyncLifetime
{
    public TestDatabases Dbs { get; private set; } = null!;
    public long Admin { get; private set; }
    public long Reseller { get; private set; }

    public async Task InitializeAsync()
    {
        Dbs = await TestDatabases.CreateAsync();
        await using var c = new MySqlConnection(Dbs.Panel);
        const string AddUser = "INSERT INTO panel_users (username, password_hash, role) VALUES (@u, 'x', @r); SELECT LAST_INSERT_ID()";
        Admin = await c.ExecuteScalarAsync<long>(AddUser, new { u = "root-admin", r = "admin" });
        Reseller = await c.ExecuteScalarAsync<long>(AddUser, new { u = "bob-reseller", r = "reseller" });
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

public sealed class TokenServiceTests(TokenDatabase db) : IClassFixture<TokenDatabase>
{
    private static readonly string Key = JwtOptions.NewSigningKey();
    private readonly TokenStore _store = new(new PanelDb(db.Dbs.Panel));
    private readonly long _admin = db.Admin;
    private readonly long _reseller = db.Reseller;
    private TokenService Tokens => field ??= Service();

    private TokenService Service(TimeProvider? clock = null, string? key = null, string issuer = "opterius-panel",
        string audience = "opterius-api", int lastUsedWriteSeconds = 60) =>
        new(_store, Options.Create(new JwtOptions
        {
            SigningKey = key ?? Key, Issuer = issuer, Audience = audience, LastUsedWriteSeconds = lastUsedWriteSeconds,
        }), clock ?? TimeProvider.System);

    private async Task<TokenValidationResult> ValidateAsync(string token) =>
        await new JsonWebTokenHandler { MapInboundClaims = false }.ValidateTokenAsync(token, Tokens.ValidationParameters());

    [Fact]
    public async Task AMintedTokenValidatesAndCarriesItsOwnerRoleAndScopes()
    {
        var minted = await Tokens.CreateAsync("whmcs", "reseller", _reseller, ["accounts:read", "accounts:delete"], 30, default);

        var result = await ValidateAsync(minted.Token);

        Assert.True(result.IsValid, result.Exception?.Message);
        var caller = TokenService.Caller(new System.Security.Claims.ClaimsPrincipal(result.ClaimsIdentity));
        Assert.NotNull(caller);
        Assert.Equal(_reseller, caller.OwnerId);
        Assert.Equal("reseller", caller.Role);
        Assert.Equal("whmcs", caller.Name);
        Assert.Equal(["accounts:read", "accounts:delete"], caller.Scopes);
        Assert.Matches("^[0-9a-f]{32}$", caller.Jti);
        Assert.Equal(minted.Info.Jti, caller.Jti);
        Assert.True(result.ClaimsIdentity.IsAuthenticated);
        Assert.Equal("whmcs", result.ClaimsIdentity.Name);
        Assert.Equal("accounts:read accounts:delete", result.Claims[TokenClaims.Scope]);
        Assert.True(await Tokens.IsActiveAsync(caller.Jti, "203.0.113.7", default));
    }

    [Fact]
    public async Task ATokenWithoutExpiryGetsAllScopesAndStillValidates()
    {
        var minted = await Tokens.CreateAsync("forever", "admin", _admin, null, null, default);

        var result = await ValidateAsync(minted.Token);

        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal("accounts:read accounts:write accounts:delete", result.Claims[TokenClaims.Scope]);
        Assert.Null(minted.Info.ExpiresAt);
        Assert.Null((await Tokens.ListAsync(null, default)).Single(t => t.Name == "forever").ExpiresAt);
    }

    [Fact]
    public async Task AnExpiredTokenIsRejectedAndNoLongerActive()
    {
        var minted = await Service(new ShiftedClock(TimeSpan.FromDays(-10))).CreateAsync("old", "admin", _admin, null, 1, default);

        var result = await ValidateAsync(minted.Token);

        Assert.False(result.IsValid);
        Assert.IsType<SecurityTokenExpiredException>(result.Exception);
        Assert.False(await Tokens.IsActiveAsync(minted.Info.Jti, null, default));
    }

    [Fact]
    public async Task ATokenNotValidYetIsRejected()
    {
        var minted = await Service(new ShiftedClock(TimeSpan.FromHours(1))).CreateAsync("future", "admin", _admin, null, 30, default);

        var result = await ValidateAsync(minted.Token);

        Assert.False(result.IsValid);
        Assert.IsType<SecurityTokenNotYetValidException>(result.Exception);
    }

    [Fact]
    public async Task TokensFromAnotherIssuerAudienceOrKeyAreRejected()
    {
        var issuer = await Service(issuer: "someone-else").CreateAsync("wrong-iss", "admin", _admin, null, 30, default);
        var audience = await Service(audience: "other-api").CreateAsync("wrong-aud", "admin", _admin, null, 30, default);
        var key = await Service(key: JwtOptions.NewSigningKey()).CreateAsync("wrong-key", "admin", _admin, null, 30, default);

        Assert.IsType<SecurityTokenInvalidIssuerException>((await ValidateAsync(issuer.Token)).Exception);
        Assert.IsType<SecurityTokenInvalidAudienceException>((await ValidateAsync(audience.Token)).Exception);
        var wrongKey = await ValidateAsync(key.Token);
        Assert.False(wrongKey.IsValid);
        Assert.IsAssignableFrom<SecurityTokenSignatureKeyNotFoundException>(wrongKey.Exception);
    }

    [Fact]
    public async Task AnUnsignedAlgNoneTokenIsRejected()
    {
        var minted = await Tokens.CreateAsync("none-alg", "admin", _admin, null, 30, default);
        var payload = minted.Token.Split('.')[1];
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");

        Assert.False((await ValidateAsync($"{header}.{payload}.")).IsValid);
        Assert.False((await ValidateAsync($"{header}.{payload}.{minted.Token.Split('.')[2]}")).IsValid);
    }

    [Fact]
    public async Task ATokenSignedWithTheRightKeyButAnotherAlgorithmIsRejected()
    {
        // HS512 needs a 64-byte key: a service holding one, and a token signed with that very key under HS512.
        var longKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64));
        var service = Service(key: longKey);
        var minted = await service.CreateAsync("hs512", "admin", _admin, null, 30, default);
        var claims = new JsonWebToken(minted.Token).Claims.ToDictionary(c => c.Type, object (c) => c.Value);
        var forged = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = claims,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Convert.FromBase64String(longKey)), SecurityAlgorithms.HmacSha512),
        });

        var result = await new JsonWebTokenHandler().ValidateTokenAsync(forged, service.ValidationParameters());
        Assert.True((await new JsonWebTokenHandler().ValidateTokenAsync(minted.Token, service.ValidationParameters())).IsValid);

        Assert.False(result.IsValid);
        Assert.IsAssignableFrom<SecurityTokenInvalidSignatureException>(result.Exception);
    }

    [Fact]
    public async Task AResellerTokenWhosePayloadIsEditedToAdminIsRejected()
    {
        var minted = await Tokens.CreateAsync("tamper", "reseller", _reseller, null, 30, default);
        var parts = minted.Token.Split('.');
        var json = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1]));
        var edited = json.Replace("\"role\":\"reseller\"", "\"role\":\"admin\"");
        Assert.NotEqual(json, edited);

        var result = await ValidateAsync($"{parts[0]}.{Base64UrlEncoder.Encode(edited)}.{parts[2]}");

        Assert.False(result.IsValid);
        Assert.IsAssignableFrom<SecurityTokenInvalidSignatureException>(result.Exception);
    }

    [Fact]
    public async Task ARevokedTokenIsNoLongerActiveAndItsNameCanBeUsedAgain()
    {
        var minted = await Tokens.CreateAsync("revoke-me", "admin", _admin, null, null, default);
        Assert.True(await Tokens.IsActiveAsync(minted.Info.Jti, null, default));

        Assert.True(await Tokens.RevokeAsync("revoke-me", default));

        Assert.False(await Tokens.IsActiveAsync(minted.Info.Jti, null, default));
        Assert.False(await Tokens.RevokeAsync("revoke-me", default));
        Assert.NotNull((await Tokens.ListAsync(null, default)).Single(t => t.Name == "revoke-me").RevokedAt);
        var again = await Tokens.CreateAsync("revoke-me", "admin", _admin, null, null, default);
        Assert.True(await Tokens.IsActiveAsync(again.Info.Jti, null, default));
        Assert.False(await Tokens.IsActiveAsync(minted.Info.Jti, null, default));
    }

    [Fact]
    public async Task AResellerCanOnlyRevokeTheirOwnTokens()
    {
        await Tokens.CreateAsync("admins-own", "admin", _admin, null, null, default);

        Assert.False(await Tokens.RevokeAsync("admins-own", _reseller, default));
        Assert.Null((await Tokens.ListAsync(null, default)).Single(t => t.Name == "admins-own").RevokedAt);
        Assert.DoesNotContain(await Tokens.ListAsync(_reseller, default), t => t.Name == "admins-own");
    }

    [Fact]
    public async Task AnUnknownTokenIdIsNotActive()
    {
        Assert.False(await Tokens.IsActiveAsync("0123456789abcdef0123456789abcdef", null, default));
    }

    [Fact]
    public async Task ASecondActiveTokenWithTheSameNameIsRefused()
    {
        await Tokens.CreateAsync("dup", "admin", _admin, null, null, default);

        var e = await Assert.ThrowsAsync<TokenRequestException>(() => Tokens.CreateAsync("dup", "admin", _admin, null, 5, default));

        Assert.Equal(TokenError.DuplicateName, e.Error);
        Assert.Contains("'dup' already exists", e.Message);
        Assert.Single(await Tokens.ListAsync(null, default), t => t.Name == "dup");
    }

    [Fact]
    public async Task BadNamesRolesScopesExpiriesAndOwnersAreRefusedAndNothingIsStored()
    {
        async Task<string> Refused(string name, string role, long owner, IReadOnlyList<string>? scopes, int? days)
        {
            var e = await Assert.ThrowsAsync<TokenRequestException>(() => Tokens.CreateAsync(name, role, owner, scopes, days, default));
            Assert.Equal(TokenError.Invalid, e.Error);
            return e.Message;
        }

        Assert.Contains("token name", await Refused("", "admin", _admin, null, null));
        await Refused(" lead", "admin", _admin, null, null);
        await Refused("trail ", "admin", _admin, null, null);
        await Refused("semi;colon", "admin", _admin, null, null);
        await Refused(new string('a', 65), "admin", _admin, null, null);
        Assert.Contains("'root'", await Refused("r1", "root", _admin, null, null));
        await Refused("r2", "Admin", _admin, null, null);
        Assert.Contains("'accounts:admin'", await Refused("s1", "admin", _admin, ["accounts:read", "accounts:admin"], null));
        await Refused("s2", "admin", _admin, [], null);
        await Refused("s3", "admin", _admin, ["ACCOUNTS:READ"], null);
        await Refused("e1", "admin", _admin, null, 0);
        await Refused("e2", "admin", _admin, null, -5);
        Assert.Contains("no panel user", await Refused("o1", "admin", 999999, null, null));
        Assert.Contains("is a reseller", await Refused("o2", "admin", _reseller, null, null));
        await Refused("o3", "reseller", _admin, null, null);

        var names = new[] { "", " lead", "trail ", "semi;colon", new string('a', 65), "r1", "r2", "s1", "s2", "s3", "e1", "e2", "o1", "o2", "o3" };
        Assert.DoesNotContain(await Tokens.ListAsync(null, default), t => names.Contains(t.Name));
    }

    [Fact]
    public async Task ATokensLastUseIsRecordedButNotOnEveryRequest()
    {
        var minted = await Tokens.CreateAsync("busy", "admin", _admin, null, null, default);

        Assert.True(await Tokens.IsActiveAsync(minted.Info.Jti, "198.51.100.1", default));
        Assert.True(await Tokens.IsActiveAsync(minted.Info.Jti, "198.51.100.2", default));

        var info = (await Tokens.ListAsync(null, default)).Single(t => t.Name == "busy");
        Assert.Equal("198.51.100.1", info.LastUsedIp);
        Assert.NotNull(info.LastUsedAt);

        // Another process (or a service that writes every time) records the newer use.
        Assert.True(await Service(lastUsedWriteSeconds: 0).IsActiveAsync(minted.Info.Jti, "2001:db8::5", default));
        Assert.Equal("2001:db8::5", (await Tokens.ListAsync(null, default)).Single(t => t.Name == "busy").LastUsedIp);
    }

    [Fact]
    public void ASigningKeyThatIsMissingShortOrNotBase64StopsTheStart()
    {
        Assert.Contains("not set", Assert.Throws<InvalidOperationException>(() => Service(key: "")).Message);
        Assert.Contains("16 bytes", Assert.Throws<InvalidOperationException>(() => Service(key: Convert.ToBase64String(new byte[16]))).Message);
        Assert.Contains("base64", Assert.Throws<InvalidOperationException>(() => Service(key: "not base64!")).Message);
    }

    [Fact]
    public void TheHostRefusesToStartWithAShortSigningKeyAndAcceptsAGoodOne()
    {
        static IServiceProvider Host(string key) => new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?> { ["Opterius:Jwt:SigningKey"] = key }).Build())
            .AddOpteriusTokensAndLicensing()
            .BuildServiceProvider();

        var e = Assert.Throws<OptionsValidationException>(() => Host("c2hvcnQ=").GetRequiredService<IOptions<JwtOptions>>().Value);
        Assert.Contains("SigningKey", e.Message);
        var options = Host(Key).GetRequiredService<IOptions<JwtOptions>>().Value;
        Assert.Equal("opterius-panel", options.Issuer);
        Assert.Equal("opterius-api", options.Audience);
    }
}
