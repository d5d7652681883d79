using System.Diagnostics;
using System.Formats.Tar;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Files;
using Opterius.Services.Resources;

namespace Opterius.Services.Backups;

/// <summary>
/// One report of a restore: a part (a resource key, or <see cref="ArchiveStep"/> for reading the archive) running,
/// done or how far it is (running with a detail).
/// </summary>
public sealed record RestoreReport(string Resource, string Status, string? Detail)
{
    public const string ArchiveStep = "archive";

    /// <summary>
    /// A part passed its own checks (nothing of it was there) and is about to be written: from here it is this restore's,
    /// and the undo of a restore that fails removes it. A part refused before this (another tool made it meanwhile) is not.
    /// </summary>
    public const string Made = "made";
}

/// <summary>
/// Restores a final backup's parts for an account the create path has just made the user of (same username and
/// domain, its uid bound to both in the ledger). In process it is <see cref="BackupRestorer"/>; a panel that uses
/// the agent asks the agent, which runs that same class as root.
/// </summary>
public interface IBackupRestorer
{
    /// <summary>
    /// Verifies the archive whole, then restores each part, reporting each as it starts, once it is
    /// <see cref="RestoreReport.Made"/>, and as it ends. Throws <see cref="ResourceException"/> naming what failed; the
    /// parts reported made are the caller's to undo.
    /// </summary>
    Task RestoreAsync(long backupId, AccountIdentity identity, Action<RestoreReport> report, CancellationToken ct);

    /// <summary>The account the backup was taken of (its <c>account.json</c>); <see cref="ArchiveMissingException"/> when its archive is gone.</summary>
    Task<ArchivedAccount> ReadAccountAsync(long backupId, CancellationToken ct);
}

/// <summary>
/// Reads <c>{BackupPath}/{id}.tar.zst</c> twice: first whole, checking every entry against the manifest (nothing is
/// written when anything is off: a changed byte, an entry that may not be there), then part by part, writing only under
/// the paths it derives from the account's names (<see cref="ServerLayout"/>). Trees are written with
/// <see cref="TreeWriter"/> (handle-relative, never through a link); files of the archived uid and gid go to the
/// account's uid and gid, other owners are kept.
/// </summary>
public sealed class BackupRestorer(ServerLayout layout, RestoreParts parts, IOptions<DeletionOptions> options) : IBackupRestorer
{
    private string BackupFolder => Path.GetFullPath(options.Value.BackupPath);

    public Task<ArchivedAccount> ReadAccountAsync(long backupId, CancellationToken ct) =>
        Task.Run(() => BackupArchive.ReadAccount(BackupArchive.FileOf(BackupFolder, backupId)), ct);

    public Task RestoreAsync(long backupId, AccountIdentity identity, Action<RestoreReport> report, CancellationToken ct) => Task.Run(async () =>
    {
        var path = BackupArchive.FileOf(BackupFolder, backupId);
        var uid = identity.Uid ?? throw new ResourceException($"'{identity.Username}' has no uid yet: its user is made before its backup is restored");
        report(new(RestoreReport.ArchiveStep, Resources.StepStatus.Running, "verifying every entry against the manifest"));
        var verified = BackupArchive.Verify(path, (n, bytes) => report(new(RestoreReport.ArchiveStep, Resources.StepStatus.Running,
            $"verified {n:N0} entries ({ByteSize.Human(bytes)})")), ct);
        var archived = verified.Account;
        if (archived.Username != identity.Username || archived.Domain != identity.Domain)
            throw new ArchiveRefusedException($"backup {backupId} is of '{archived.Username}' / '{archived.Domain}', not '{identity.Username}' / '{identity.Domain}': refusing it");
        report(new(RestoreReport.ArchiveStep, Resources.StepStatus.Done,
            $"{verified.Entries:N0} entries ({ByteSize.Human(verified.Bytes)}) match the manifest"));

        var owner = FileOwner.ForAccount(layout.Passwd, identity.Username, uid)!;
        var map = new OwnerMap(archived.Uid, archived.Gid, owner);
        await RestorePartsAsync(path, identity, map, report, ct);
    }, ct);

    private async Task RestorePartsAsync(string path, AccountIdentity a, OwnerMap map, Action<RestoreReport> report, CancellationToken ct)
    {
        using var reader = new BackupArchive.Reader(path);
        string? part = null;
        var written = 0;
        var made = false;
        void Made()
        {
            if (made) return;
            made = true;
            report(new(part!, RestoreReport.Made, null));
        }
        var trees = new TreeTargets(layout, a, map);
        var progress = Stopwatch.StartNew();
        try
        {
            while (reader.Next() is var (entry, name))
            {
                ct.ThrowIfCancellationRequested();
                var key = BackupArchive.PartOf(name);
                if (key != part)
                {
                    if (part is not null) await EndPartAsync(part, a, written, trees, report, ct);
                    part = key;
                    written = 0;
                    made = false;
                    if (key is not null) report(new(key, Resources.StepStatus.Running, null));
                }
                if (key is null) continue;
                written++;
                if (trees.Accepts(key, name))
                {
                    trees.Write(entry, name, Made);
                    if (progress.ElapsedMilliseconds >= 250)
                    {
                        progress.Restart();
                        report(new(key, Resources.StepStatus.Running, trees.Describe()));
                    }
                }
                else await parts.RestoreAsync(key, name, entry.DataStream ?? Stream.Null, a, map, Made, ct);
            }
            if (part is not null) await EndPartAsync(part, a, written, trees, report, ct);
        }
        finally { trees.Dispose(); }
    }

    private async Task EndPartAsync(string key, AccountIdentity a, int written, TreeTargets trees, Action<RestoreReport> report, CancellationToken ct)
    {
        var detail = trees.Finish(key) ?? await parts.FinishAsync(key, a, written, ct);
        report(new(key, Resources.StepStatus.Done, detail));
    }

    /// <summary>The file trees of a backup (home, mail store, certificate lineages), each written under its derived top.</summary>
    private sealed class TreeTargets(ServerLayout layout, AccountIdentity a, OwnerMap map) : IDisposable
    {
        private TreeWriter? _open;
        private string? _openPrefix;
        private long _files, _folders, _bytes;

        public bool Accepts(string key, string name) =>
            key is "home_directory" or "mailboxes" || (key == "ssl_certificate" && !name.StartsWith("ssl/renewal/", StringComparison.Ordinal));

        /// <summary>Writes a tree's entry; <paramref name="made"/> once its top is made (nothing was there).</summary>
        public void Write(TarEntry entry, string name, Action made)
        {
            var (prefix, top) = Top(name);
            if (prefix != _openPrefix)
            {
                Close();
                _open = TreeWriter.Create(top, map.Uid(entry.Uid), map.Gid(entry.Gid));
                _openPrefix = prefix;
                made();
            }
            var w = _open!;
            var relative = name.Length == prefix.Length ? "" : name[(prefix.Length + 1)..];
            var (uid, gid, mode) = (map.Uid(entry.Uid), map.Gid(entry.Gid), (uint)entry.Mode);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory when relative.Length == 0: w.SetTop(mode, uid, gid, entry.ModificationTime); break;
                case TarEntryType.Directory: w.Folder(relative, mode, uid, gid, entry.ModificationTime); break;
                case TarEntryType.SymbolicLink when relative.Length > 0: w.Link(relative, entry.LinkName, uid, gid, entry.ModificationTime); break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile when relative.Length > 0:
                    // A set-id file in a tenant's tree runs as its owner: only the account's own keep the bits.
                    if (uid != map.Restored.Uid) mode &= ~0b110_000_000_000u;
                    w.File(relative, entry.DataStream ?? Stream.Null, mode, uid, gid, entry.ModificationTime); break;
                default: throw new ArchiveRefusedException($"archive entry '{name}': the top of a tree must be a folder: refusing it");
            }
        }

        /// <summary>The entry's tree: its prefix in the archive and the top the restore derives for it.</summary>
        private (string Prefix, string Top) Top(string name)
        {
            if (name == "home" || name.StartsWith("home/", StringComparison.Ordinal)) return ("home", layout.Home(a));
            if (name == "mail" || name.StartsWith("mail/", StringComparison.Ordinal)) return ("mail", layout.Mailboxes(a));
            // ssl/live/{lineage}/... and ssl/archive/{lineage}/...: the domain's lineages only (certbot's {domain}-NNNN).
            var parts = name.Split('/');
            if (parts.Length < 3 || !IsLineage(parts[2], a.Domain))
                throw new ArchiveRefusedException($"archive entry '{name}' is no certificate lineage of {a.Domain}: refusing it");
            return ($"ssl/{parts[1]}/{parts[2]}", layout.Under($"/etc/letsencrypt/{parts[1]}/{parts[2]}"));
        }

        public string Describe() => $"restored {_files + (_open?.Files ?? 0):N0} files in {_folders + (_open?.Folders ?? 0):N0} folders ({ByteSize.Human(_bytes + (_open?.Bytes ?? 0))})";

        /// <summary>The detail of a finished tree part; null for parts that are not trees.</summary>
        public string? Finish(string key)
        {
            if (key is not ("home_directory" or "mailboxes" or "ssl_certificate")) return null;
            var detail = Describe();
            Close();
            (_files, _folders, _bytes) = (0, 0, 0);
            return detail;
        }

        private void Close()
        {
            if (_open is null) return;
            (_files, _folders, _bytes) = (_files + _open.Files, _folders + _open.Folders, _bytes + _open.Bytes);
            _open.Dispose();
            (_open, _openPrefix) = (null, null);
        }

        public void Dispose() => _open?.Dispose();
    }

    /// <summary>certbot's lineage names of a domain: the domain itself, or <c>{domain}-NNNN</c>.</summary>
    public static bool IsLineage(string name, string domain) =>
        name == domain || (name.StartsWith(domain + "-", StringComparison.Ordinal) && name.Length > domain.Length + 1
            && name[(domain.Length + 1)..].All(char.IsAsciiDigit));
}

/// <summary>The archived account's uid and gid, given to the restored account's; other owners are kept.</summary>
public sealed record OwnerMap(int? ArchivedUid, int? ArchivedGid, FileOwner Restored)
{
    public uint Uid(int uid) => ArchivedUid == uid ? Restored.Uid : (uint)uid;
    public uint Gid(int gid) => ArchivedGid == gid ? Restored.Gid : (uint)gid;
}
