namespace Opterius.Services.Deletion;

/// <summary>
/// What became of a deletion's final backup, as its erasure record states it: <c>none</c> (no backup was made),
/// <c>kept</c> (backup <see cref="Id"/>, purged at <see cref="ExpiresAt"/>) or <c>purged</c> (at <see cref="PurgedAt"/>).
/// </summary>
public sealed record FinalBackupState(string Status, long? Id = null, DateTime? ExpiresAt = null, DateTime? PurgedAt = null)
{
    public const string None = "none";
    public const string Kept = "kept";
    public const string Purged = "purged";
}

/// <summary>The final backups' ledger as the erasure record reads it (the backups table answers it where there is one).</summary>
public interface IFinalBackups
{
    /// <summary>Whether this panel can make a final backup: a schedule (or deletion) asking for one is refused without it.</summary>
    bool Available { get; }

    Task<FinalBackupState> OfJobAsync(DeletionJob job, CancellationToken ct);
}
