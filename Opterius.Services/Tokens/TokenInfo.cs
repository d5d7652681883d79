using Opterius.Services.Users;
namespace Opterius.Services.Tokens;

/// <summary>A stored API token: everything but the token itself, which is shown once and never kept.</summary>
public sealed record TokenInfo(
    string Jti,
    string Name,
    string Role,
    long OwnerId,
    IReadOnlyList<string> Scopes,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsedAt,
    string? LastUsedIp)
{
    public bool IsActiveAt(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}

/// <summary>A freshly minted token: <see cref="Token"/> is the bearer string, to be shown to its owner once.</summary>
public sealed record MintedToken(string Token, TokenInfo Info);

public enum TokenError
{
    /// <summary>A name, role, scope, owner or expiry that is not allowed (HTTP 422).</summary>
    Invalid,
    /// <summary>An active token already has this name (HTTP 409).</summary>
    DuplicateName,
    /// <summary>The caller may not mint or revoke this token: a reseller asking for an admin token or another's (HTTP 403).</summary>
    Forbidden,
}

/// <summary>A token request the service refuses; the message is written for the person who made it.</summary>
public sealed class TokenRequestException(TokenError error, string message) : Exception(message)
{
    public TokenError Error { get; } = error;
}

/// <summary>Who is calling, as read from a validated token's claims.</summary>
public sealed record TokenCaller(string Jti, string Name, string Role, long OwnerId, IReadOnlyList<string> Scopes)
{
    public bool IsAdmin => Role == Roles.Admin;
    public bool Has(string scope) => Scopes.Contains(scope);
}
