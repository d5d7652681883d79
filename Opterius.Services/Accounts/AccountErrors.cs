namespace Opterius.Services.Accounts;

/// <summary>The license's account limit is reached. Nothing was changed.</summary>
public sealed class AccountLimitReachedException(string message) : Exception(message);

/// <summary>The account does not exist or the caller may not see it. Nothing was changed.</summary>
public sealed class AccountNotFoundException(long id) : Exception($"No account with id {id} exists.");

/// <summary>The request conflicts with the account's state (already suspended, name taken). Nothing was changed.</summary>
public sealed class AccountConflictException(string message) : Exception(message);

/// <summary>Input that is not acceptable, one message per field. Nothing was changed.</summary>
public sealed class AccountValidationException(IReadOnlyDictionary<string, string> fields)
    : Exception(string.Join("; ", fields.Values))
{
    public IReadOnlyDictionary<string, string> Fields { get; } = fields;
}

/// <summary>A resource could not be provisioned; what had been made was removed again.</summary>
public sealed class ProvisioningFailedException(string resource, string message, long? keptAccountId = null)
    : Exception($"{resource}: {message}")
{
    public string Resource { get; } = resource;

    /// <summary>The account kept as <c>deletion_failed</c> because its undo could not remove everything; null when nothing was kept.</summary>
    public long? KeptAccountId { get; } = keptAccountId;
}
