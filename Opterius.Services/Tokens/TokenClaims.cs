namespace Opterius.Services.Tokens;

/// <summary>
/// The claim types of a panel API token, in one place for the minting side and the validating side.
/// Read them with <c>MapInboundClaims = false</c>, so they keep these short JWT names.
/// </summary>
public static class TokenClaims
{
    public const string Jti = "jti";
    public const string OwnerId = "sub";
    public const string Name = "name";
    public const string Role = "role";
    /// <summary>Space-separated, as in OAuth 2.0 (RFC 8693 section 4.2).</summary>
    public const string Scope = "scope";
}

/// <summary>What a token may be allowed to do; every token holds a subset.</summary>
public static class TokenScopes
{
    public const string AccountsRead = "accounts:read";
    public const string AccountsWrite = "accounts:write";
    public const string AccountsDelete = "accounts:delete";

    public static IReadOnlyList<string> All { get; } = [AccountsRead, AccountsWrite, AccountsDelete];
}

