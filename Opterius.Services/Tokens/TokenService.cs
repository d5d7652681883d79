using Opterius.Services.Users;
using System.Collections.Concurrent;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Opterius.Services.Tokens;

/// <summary>
/// Mints, checks and revokes the panel's API tokens: HS256 JWTs whose <c>jti</c> is stored so that a
/// token can be revoked and its last use shown.
/// </summary>
/// <remarks>
/// A token created without an expiry still carries an <c>exp</c> claim, <see cref="NoExpiryYears"/> years
/// out, while its row says <c>expires_at = NULL</c> ("never"). That keeps validation strict
/// (<see cref="TokenValidationParameters.RequireExpirationTime"/> stays on, so no JWT without a lifetime
/// passes) and such tokens are ended by revocation, which <see cref="IsActiveAsync"/> honours on the next request.
/// </remarks>
public sealed partial class TokenService(TokenStore store, IOptions<JwtOptions> options, TimeProvider time)
{
    public const int NoExpiryYears = 100;
    public const int MaxExpiryDays = 3650;

    /// <summary>Tolerated difference between this server's clock and itself across processes: small on purpose.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}(?<! )$")]
    private static partial Regex NamePattern();

    private readonly JwtOptions _options = options.Value;
    private readonly SymmetricSecurityKey _key = new(options.Value.SigningKeyBytes());
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };

    // jti → UTC ticks of the last last_used write by this process; bounded by the number of tokens in use.
    private readonly ConcurrentDictionary<string, long> _lastWrite = new(StringComparer.Ordinal);

    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>
    /// Mints a token for <paramref name="ownerId"/> (a panel user whose role equals <paramref name="role"/>).
    /// <paramref name="scopes"/> null means all scopes; <paramref name="expiresDays"/> null means it never expires.
    /// A name held only by a revoked or expired token is reused. Throws <see cref="TokenRequestException"/>.
    /// </summary>
    public async Task<MintedToken> CreateAsync(
        string name, string role, long ownerId, IReadOnlyList<string>? scopes, int? expiresDays, CancellationToken ct)
    {
        if (!IsValidName(name))
            throw Invalid("A token name is 1-64 characters: letters, digits, spaces, '.', '_' or '-', starting with a letter or digit.");
        if (role is not (Roles.Admin or Roles.Reseller))
            throw Invalid($"Role '{role}' is not one of: {Roles.Admin}, {Roles.Reseller}.");
        var granted = CheckScopes(scopes);
        if (expiresDays is < 1 or > MaxExpiryDays)
            throw Invalid($"A token expires after 1 to {MaxExpiryDays} days, or never (no expiry).");
        // The owner decides what a token sees: a reseller must not hold an admin token, nor an admin a reseller's.
        var ownerRole = ownerId > 0 ? await store.UserRoleAsync(ownerId, ct) : null;
        if (ownerRole is null)
            throw Invalid($"There is no panel user with id {ownerId} to own the token.");
        if (ownerRole != role)
            throw Invalid($"Panel user {ownerId} is a {ownerRole}: a {role} token cannot belong to them.");

        var now = time.GetUtcNow();
        var issuedAt = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerSecond)); // JWT times are whole seconds
        var expiresAt = expiresDays is { } days ? issuedAt.AddDays(days) : (DateTimeOffset?)null;
        var info = new TokenInfo(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), name, role, ownerId, granted,
            issuedAt, expiresAt, RevokedAt: null, LastUsedAt: null, LastUsedIp: null);

        var token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _options.Issuer,
            Audience = _options.Audience,
            IssuedAt = issuedAt.UtcDateTime,
            NotBefore = issuedAt.UtcDateTime,
            Expires = (expiresAt ?? issuedAt.AddYears(NoExpiryYears)).UtcDateTime,
            SigningCredentials = new SigningCredentials(_key, SecurityAlgorithms.HmacSha256),
            Claims = new Dictionary<string, object>
            {
                [TokenClaims.Jti] = info.Jti,
                [TokenClaims.OwnerId] = ownerId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                [TokenClaims.Name] = name,
                [TokenClaims.Role] = role,
                [TokenClaims.Scope] = string.Join(' ', granted),
            },
        });
        await store.InsertAsync(info, now, ct);
        return new MintedToken(token, info);
    }

    /// <summary>
    /// Mints a token on behalf of a signed-in panel user: an admin may mint any token <see cref="CreateAsync"/> allows;
    /// a reseller only a reseller token that it owns itself, with the scopes it chooses. Checked here, not by the page
    /// alone, so no form field a reseller edits can reach an admin token or another reseller's accounts.
    /// </summary>
    public Task<MintedToken> CreateAsync(Accounts.Viewer minter, string name, string role, long ownerId,
        IReadOnlyList<string>? scopes, int? expiresDays, CancellationToken ct)
    {
        if (!minter.IsAdmin && role != Roles.Reseller)
            throw new TokenRequestException(TokenError.Forbidden, $"A reseller can mint reseller tokens only, not {role} tokens.");
        if (!minter.IsAdmin && ownerId != minter.UserId)
            throw new TokenRequestException(TokenError.Forbidden, "A reseller can mint tokens for itself only.");
        return CreateAsync(name, role, ownerId, scopes, expiresDays, ct);
    }

    /// <summary>
    /// What a bearer token must satisfy: this issuer and audience, HS256 with this key only (so <c>alg: none</c>
    /// and other algorithms fail), a signed payload, a lifetime that includes now (± <see cref="ClockSkew"/>).
    /// Use with <c>MapInboundClaims = false</c>; names and roles come from <see cref="TokenClaims"/>.
    /// </summary>
    public TokenValidationParameters ValidationParameters() => new()
    {
        ValidIssuer = _options.Issuer,
        ValidAudience = _options.Audience,
        IssuerSigningKey = _key,
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        ValidTypes = [JwtConstants.HeaderType],
        ValidateIssuer = true,
        ValidateAudience = true,
        ValidateLifetime = true,
        ValidateIssuerSigningKey = true,
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        RequireAudience = true,
        ClockSkew = ClockSkew,
        NameClaimType = TokenClaims.Name,
        RoleClaimType = TokenClaims.Role,
    };

    /// <summary>
    /// Whether the token with this <c>jti</c> may still be used (known, not revoked, not expired), checked
    /// against the database on every call so a revocation counts on the next request. Records the use,
    /// at most once per <see cref="JwtOptions.LastUsedWriteSeconds"/> per token.
    /// </summary>
    public async Task<bool> IsActiveAsync(string jti, string? sourceIp, CancellationToken ct) =>
        await ActiveAsync(jti, stored => stored, sourceIp, ct) is not null;

    /// <summary>
    /// The caller behind a validated token, read from its stored row: null when the token is not active, or when any
    /// of its claims (name, role, owner, scopes) disagrees with the row. The signature proves only that the panel's
    /// key signed the claims; the row is what the panel actually granted, so a claim that differs means a forgery
    /// (or a leaked key) and the token is worth nothing. Records the use like <see cref="IsActiveAsync"/>.
    /// </summary>
    public async Task<TokenCaller?> CallerAsync(ClaimsPrincipal principal, string? sourceIp, CancellationToken ct)
    {
        // One of each: a second role or scope claim would let another reader see a different token.
        if (Caller(principal) is not { } claimed || SignedClaims.Any(type => principal.FindAll(type).Count() != 1)) return null;
        return await ActiveAsync(claimed.Jti, stored =>
            stored.Name == claimed.Name && stored.Role == claimed.Role && stored.OwnerId == claimed.OwnerId
            && stored.Scopes.SequenceEqual(claimed.Scopes)
                ? new TokenCaller(stored.Jti, stored.Name, stored.Role, stored.OwnerId, stored.Scopes)
                : null, sourceIp, ct);
    }

    private static readonly string[] SignedClaims = [TokenClaims.Jti, TokenClaims.OwnerId, TokenClaims.Name, TokenClaims.Role, TokenClaims.Scope];

    private async Task<T?> ActiveAsync<T>(string jti, Func<TokenInfo, T?> accept, string? sourceIp, CancellationToken ct) where T : class
    {
        var now = time.GetUtcNow();
        var stored = await store.FindAsync(jti, ct);
        if (stored is null || !stored.IsActiveAt(now) || accept(stored) is not { } accepted) return null;
        if (ShouldRecordUse(jti, now.UtcTicks))
            await store.TouchAsync(jti, now, sourceIp is { Length: <= 45 } ? sourceIp : null, ct);
        return accepted;
    }

    /// <summary>Revokes the token with this name; false when no unrevoked token has it.</summary>
    public Task<bool> RevokeAsync(string name, CancellationToken ct) => store.RevokeAsync(name, null, time.GetUtcNow(), ct);

    /// <summary>Revokes a token of one owner only (a reseller managing their own tokens).</summary>
    public Task<bool> RevokeAsync(string name, long ownerId, CancellationToken ct) => store.RevokeAsync(name, ownerId, time.GetUtcNow(), ct);

    /// <summary>Revokes as a panel user: an admin any token with this name, a reseller only one it owns.</summary>
    public Task<bool> RevokeAsync(Accounts.Viewer revoker, string name, CancellationToken ct) =>
        revoker.IsAdmin ? RevokeAsync(name, ct) : RevokeAsync(name, revoker.UserId, ct);

    /// <summary>Every token (of one owner, when given), revoked and expired ones included, by name.</summary>
    public Task<IReadOnlyList<TokenInfo>> ListAsync(long? ownerId, CancellationToken ct) => store.ListAsync(ownerId, ct);

    /// <summary>The caller behind a validated token, or null when the principal does not carry a panel token.</summary>
    public static TokenCaller? Caller(ClaimsPrincipal principal)
    {
        var jti = principal.FindFirst(TokenClaims.Jti)?.Value;
        var role = principal.FindFirst(TokenClaims.Role)?.Value;
        if (jti is null || role is not (Roles.Admin or Roles.Reseller)
            || !long.TryParse(principal.FindFirst(TokenClaims.OwnerId)?.Value, out var owner)) return null;
        var scopes = principal.FindFirst(TokenClaims.Scope)?.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        return new TokenCaller(jti, principal.FindFirst(TokenClaims.Name)?.Value ?? "", role, owner, scopes);
    }

    private bool ShouldRecordUse(string jti, long nowTicks)
    {
        var interval = TimeSpan.FromSeconds(_options.LastUsedWriteSeconds).Ticks;
        while (true)
        {
            if (!_lastWrite.TryGetValue(jti, out var last))
            {
                if (_lastWrite.TryAdd(jti, nowTicks)) return true;
                continue;
            }
            if (nowTicks - last < interval) return false;
            // Only the request that moves the timestamp writes; concurrent ones skip.
            if (_lastWrite.TryUpdate(jti, nowTicks, last)) return true;
        }
    }

    private static List<string> CheckScopes(IReadOnlyList<string>? scopes)
    {
        if (scopes is null) return [.. TokenScopes.All];
        var unknown = scopes.Where(s => !TokenScopes.All.Contains(s)).ToList();
        if (unknown.Count > 0)
            throw Invalid($"Unknown scope(s) {string.Join(", ", unknown.Select(s => $"'{s}'"))}: allowed are {string.Join(", ", TokenScopes.All)}.");
        if (scopes.Count == 0)
            throw Invalid($"A token needs at least one scope of: {string.Join(", ", TokenScopes.All)}.");
        return TokenScopes.All.Where(scopes.Contains).ToList();
    }

    private static TokenRequestException Invalid(string message) => new(TokenError.Invalid, message);
}
