using System.Globalization;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Files;

namespace Opterius.Services.Backups;

/// <summary>
/// What a final backup is written of: the account's identity (re-validated names, from which every path is derived) and
/// the panel's own fields that go into <c>account.json</c> as data only (<see cref="SuspendedAt"/>: the account was
/// suspended since then). The planned totals are for progress reports.
/// </summary>
public sealed record BackupSubject(AccountIdentity Identity, string Email, long PackageId, long OwnerId, long? PlannedFiles = null, long? PlannedBytes = null,
    DateTime? SuspendedAt = null);

/// <summary>How far a final backup is: entries and bytes of the home and mail trees archived so far, of the plan's totals.</summary>
public sealed record BackupProgress(long Files, long Bytes, long? PlannedFiles = null, long? PlannedBytes = null) : IStepProgress
{
    /// <summary>The step's running detail, e.g. "archived 12,340 of 48,000 files (1.2 GiB of 3.9 GiB)".</summary>
    public string Describe()
    {
        var files = Files.ToString("N0", CultureInfo.InvariantCulture);
        var ofFiles = PlannedFiles is { } pf && pf >= Files ? $" of {pf.ToString("N0", CultureInfo.InvariantCulture)}" : "";
        var ofBytes = PlannedBytes is { } pb && pb >= Bytes ? $" of {ByteSize.Human(pb)}" : "";
        return $"archived {files}{ofFiles} files ({ByteSize.Human(Bytes)}{ofBytes})";
    }
}

/// <summary>
/// A complete archive: its file name in <c>BackupPath</c>, size and SHA-256, and the manifest without the per-file lists
/// (the archive's own <c>manifest.json</c> has them; this copy goes in the panel's <c>backups</c> row).
/// </summary>
public sealed record WrittenBackup(string FileName, long Bytes, string Sha256, string Manifest);

/// <summary>
/// Final backup archives (format: ARCHIVE.md), written and purged where root is: the agent, or this process when
/// resources run in it. The caller names a backup by its id only; the file name is derived from it, never sent.
/// </summary>
public interface IBackupArchives
{
    /// <summary>Writes <c>{backupId}.tar.zst</c>; a failure removes what it wrote and throws a <see cref="Resources.ResourceException"/> saying why.</summary>
    Task<WrittenBackup> WriteAsync(BackupSubject subject, long backupId, Action<BackupProgress> progress, CancellationToken ct);

    /// <summary>Removes the backup's archive (and any partial file of it); false when nothing was there.</summary>
    Task<bool> PurgeAsync(long backupId, CancellationToken ct);
}
