namespace Opterius.Services.Accounts;

/// <summary>An account's id, names and who owns it: what a refused create may say about the account that holds a name.</summary>
public sealed record AccountDomain(long Id, string Username, string Domain, long OwnerId);

/// <summary>
/// What a new account's names meet in the accounts table: how many accounts exist, the account that has the username,
/// and the accounts whose domain is the new one, or a parent of it or under it and of another owner.
/// </summary>
public sealed record AccountClaims(long Count, AccountDomain? UsernameHolder, IReadOnlyList<AccountDomain> RelatedDomains)
{
    public bool UsernameTaken => UsernameHolder is not null;
}
