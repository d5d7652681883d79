namespace Opterius.Services.Accounts;

public static class AccountStatus
{
    public const string Creating = "creating";
    public const string Active = "active";
    public const string Suspended = "suspended";
    public const string Deleting = "deleting";
    public const string DeletionFailed = "deletion_failed";

    public static readonly IReadOnlyList<string> All = [Creating, Active, Suspended, Deleting, DeletionFailed];
}

/// <summary>
/// A hosting account as stored in the panel database. <see cref="DeletionDueAt"/> (UTC) is a scheduled deletion: the
/// account is suspended until then, and deleted when it comes unless it is cancelled or unsuspended before.
/// <see cref="DeletionBlocked"/> is why a due one could not start yet (it is tried again at every scheduler pass).
/// </summary>
public sealed record Account(
    long Id,
    string Username,
    string Domain,
    string Email,
    long PackageId,
    long OwnerId,
    string PhpVersion,
    int? Uid,
    string Status,
    DateTime CreatedAt,
    DateTime? SuspendedAt,
    DateTime? DeletionDueAt = null,
    string? DeletionBlocked = null);
