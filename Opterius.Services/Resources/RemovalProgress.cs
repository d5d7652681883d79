using System.Globalization;
using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// How far a long removal is: what is gone so far and, where the deletion plan's inspection measured it in the
/// process that removes it, the planned totals (null when not known, e.g. a resumed job or a tree that grew since).
/// </summary>
public sealed record RemovalProgress(long Files, long Folders, long Bytes, long? PlannedFiles = null, long? PlannedBytes = null) : Deletion.IStepProgress
{
    /// <summary>The step's running detail, e.g. "removed 12,340 of 48,000 files (1.2 GiB of 3.9 GiB)".</summary>
    public string Describe()
    {
        var files = Files.ToString("N0", CultureInfo.InvariantCulture);
        var ofFiles = PlannedFiles is { } pf && pf >= Files ? $" of {pf.ToString("N0", CultureInfo.InvariantCulture)}" : "";
        var ofBytes = PlannedBytes is { } pb && pb >= Bytes ? $" of {ByteSize.Human(pb)}" : "";
        return $"removed {files}{ofFiles} files ({ByteSize.Human(Bytes)}{ofBytes})";
    }
}

/// <summary>
/// A resource whose removal can take long (a file tree: home_directory, mailboxes) and says how far it is. The
/// deletion service calls this instead of <see cref="IAccountResource.RemoveAsync"/> when a resource has it; the
/// agent streams the reports, and its client reports them again, so both sides behave the same.
/// </summary>
public interface IReportsRemovalProgress
{
    /// <summary>
    /// <see cref="IAccountResource.RemoveAsync"/>, calling <paramref name="progress"/> now and then (every few thousand
    /// entries, never per file) with counts that only grow; its last call, if any, holds what was removed in the end.
    /// It is called on the removing thread, so it must only hand the report on.
    /// </summary>
    Task<RemoveOutcome> RemoveAsync(AccountIdentity account, Action<RemovalProgress> progress, CancellationToken ct);
}
