namespace Opterius.Services.Accounts;

/// <summary>An account's domain and who owns it.</summary>
public sealed record AccountDomain(string Domain, long OwnerId);

/// <summary>
/// What a new account's names meet in the accounts table: how many accounts exist, whether the username is taken,
/// and the accounts whose domain is the new one, or a parent of it or under it and of another owner.
/// </summary>
public sealed record AccountClaims(long Count, bool UsernameTaken, IReadOnlyList<AccountDomain> RelatedDomains);
