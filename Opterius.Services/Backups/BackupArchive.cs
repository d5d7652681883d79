using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Opterius.Services.Accounts;
using Opterius.Services.Resources;
using ZstdSharp;

namespace Opterius.Services.Backups;

/// <summary>
/// The account a final backup was taken of (its <c>account.json</c>, ARCHIVE.md). <see cref="Suspended"/>: it was suspended
/// when it was backed up (since <see cref="SuspendedAt"/>); its parts hold it unsuspended all the same.
/// </summary>
public sealed record ArchivedAccount(long Id, string Username, string Domain, string Email, long PackageId, long Owner,
    string PhpVersion, int? Uid, int? Gid, bool Suspended = false, DateTime? SuspendedAt = null);

/// <summary>One file of a tree part in the manifest; <see cref="Link"/> is a symbolic link's own target.</summary>
/// <summary>
/// One entry of the manifest (a tree part's file, or a single-file part); <see cref="Link"/> is a symbolic link's own
/// target, <see cref="Type"/> the manifest's <c>directory</c>, <c>file</c> or <c>symlink</c> when it says.
/// </summary>
public sealed record ManifestFile(string Path, long Size, string? Sha256, int? Mode, int? Uid, int? Gid, string? Link, string? Type = null);

/// <summary>A final backup that was read whole and matched its manifest, entry by entry.</summary>
public sealed record VerifiedArchive(string Path, ArchivedAccount Account, long Entries, long Bytes);

/// <summary>An archive refused before anything was made: a path that may not be there, an entry type, a checksum.</summary>
public sealed class ArchiveRefusedException(string message) : ResourceException(message);

/// <summary>
/// Format 1 of the final backup (ARCHIVE.md): a PAX tar in zstd, <c>{id}.tar.zst</c> under the backup folder. This
/// reads it sequentially, and refuses any entry whose path is absolute, has an empty, <c>.</c> or <c>..</c> component,
/// lies outside the format's parts, or is not a folder, a regular file or a symbolic link (hard links, devices, fifos).
/// <see cref="Verify"/> reads the whole archive before anything is restored: every entry is checked against the
/// manifest (the last entry) by size, SHA-256, mode, owner and link target, in the manifest's order, and every manifest
/// entry must be there.
/// </summary>
public static class BackupArchive
{
    public const int Format = 1;
    public const string AccountEntry = "account.json";
    public const string ManifestEntry = "manifest.json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };

    /// <summary>The archive of backup <paramref name="id"/>: derived from the id, never a path from the caller.</summary>
    public static string FileOf(string backupFolder, long id) =>
        id > 0 ? Path.Join(backupFolder, $"{id}.tar.zst") : throw new ArgumentOutOfRangeException(nameof(id), "a backup id is positive");

    /// <summary>The entries of an archive as a stream; the caller disposes it (the file and the decompression go with it).</summary>
    public sealed class Reader : IDisposable
    {
        private readonly FileStream _file;
        private readonly DecompressionStream _zstd;
        private readonly TarReader _tar;

        public Reader(string path)
        {
            try { _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
            catch (FileNotFoundException) { throw new ArchiveMissingException($"{path} does not exist: the backup was purged or never written"); }
            _zstd = new DecompressionStream(_file);
            _tar = new TarReader(_zstd, leaveOpen: true);
        }

        /// <summary>The next entry and its checked path; null at the end.</summary>
        public (TarEntry Entry, string Name)? Next()
        {
            TarEntry? entry;
            try { entry = _tar.GetNextEntry(); }
            catch (Exception e) when (e is InvalidDataException or FormatException or ZstdException or EndOfStreamException)
            {
                throw new ArchiveRefusedException($"the archive cannot be read: {e.Message}");
            }
            return entry is null ? null : (entry, CheckedName(entry));
        }

        public void Dispose()
        {
            _tar.Dispose();
            _zstd.Dispose();
            _file.Dispose();
        }
    }

    /// <summary>The entry's path once it is one the format allows, for an entry type it allows there.</summary>
    public static string CheckedName(TarEntry entry)
    {
        var raw = entry.Name;
        var name = entry.EntryType == TarEntryType.Directory ? raw.TrimEnd('/') : raw;
        if (name.Length == 0 || name.StartsWith('/') || name.Contains('\0'))
            throw new ArchiveRefusedException($"archive entry '{raw}': an absolute or empty path: refusing the archive");
        if (name.Split('/').Any(part => part is "" or "." or ".."))
            throw new ArchiveRefusedException($"archive entry '{raw}': a path with an empty, '.' or '..' component: refusing the archive");
        var type = entry.EntryType;
        var regular = type is TarEntryType.RegularFile or TarEntryType.V7RegularFile;
        if (!regular && type is not (TarEntryType.Directory or TarEntryType.SymbolicLink))
            throw new ArchiveRefusedException($"archive entry '{raw}' is a {type} (only folders, regular files and symbolic links are restored): refusing the archive");
        var inTree = PartOf(name) is "home_directory" or "mailboxes" or "ssl_certificate" && !name.StartsWith("ssl/renewal/", StringComparison.Ordinal);
        if (!regular && !inTree)
            throw new ArchiveRefusedException($"archive entry '{raw}' is a {type} outside a file tree: refusing the archive");
        return name;
    }

    /// <summary>
    /// The resource key whose part an entry restores (null for <c>account.json</c> and <c>manifest.json</c>); an entry
    /// no part of format 1 holds is refused.
    /// </summary>
    public static string? PartOf(string name)
    {
        string? Tree(string top, string key) => name == top || name.StartsWith(top + "/", StringComparison.Ordinal) ? key : null;
        var key = name switch
        {
            AccountEntry or ManifestEntry => "",
            "database_users.sql" => "database_users",
            "dns_zone.json" => "dns_zone",
            "config/nginx_vhost.conf" => "nginx_vhost",
            "config/php_fpm_pool.conf" => "php_fpm_pool",
            "cron/crontab" => "cron",
            "mail_lines/dovecot_users" => "mail_users",
            "mail_lines/postfix_vmailbox" => "mail_routes",
            _ when name.StartsWith("databases/", StringComparison.Ordinal) && name.EndsWith(".sql", StringComparison.Ordinal)
                && name.IndexOf('/', "databases/".Length) < 0 => "databases",
            _ when name.StartsWith("ssl/live/", StringComparison.Ordinal) || name.StartsWith("ssl/archive/", StringComparison.Ordinal)
                || (name.StartsWith("ssl/renewal/", StringComparison.Ordinal) && name.EndsWith(".conf", StringComparison.Ordinal) && name.Count(c => c == '/') == 2)
                => "ssl_certificate",
            _ => Tree("home", "home_directory") ?? Tree("mail", "mailboxes"),
        };
        return key switch
        {
            null => throw new ArchiveRefusedException($"archive entry '{name}' is no part of a format {Format} backup: refusing the archive"),
            "" => null,
            _ => key,
        };
    }

    /// <summary>The archive's first entry, <c>account.json</c>, alone (no verification: a restore verifies all before writing).</summary>
    public static ArchivedAccount ReadAccount(string path)
    {
        using var reader = new Reader(path);
        if (reader.Next() is not var (entry, name) || name != AccountEntry || entry.DataStream is null)
            throw new ArchiveRefusedException($"the archive does not begin with {AccountEntry}: refusing it");
        return ReadAccount(entry.DataStream);
    }

    /// <summary>
    /// Reads the whole archive once, with the manifest (its last entry) streamed alongside from a second reader of the
    /// same file: entry i is checked against the manifest's entry i (name, type, size, SHA-256, mode, owner, link target),
    /// so an entry the manifest does not list, lists elsewhere, or lists with other bytes is refused there, and a manifest
    /// entry the archive lacks once it ends. Memory holds one entry of each and the names of the folders open on the way
    /// (a name twice in one folder is refused; an archive that leaves a folder and comes back to it is checked for it by
    /// <see cref="Files.TreeWriter"/>, which never writes a name twice), never a record per entry.
    /// <paramref name="progress"/> gets entries and bytes read.
    /// </summary>
    public static VerifiedArchive Verify(string path, Action<long, long>? progress = null, CancellationToken ct = default)
    {
        using var listed = ManifestReader.Open(path);
        using var reader = new Reader(path);
        var siblings = new Siblings();
        ArchivedAccount? account = null;
        var manifest = false;
        long entries = 0, bytes = 0;
        var buffer = new byte[128 * 1024];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        while (reader.Next() is var (entry, name))
        {
            ct.ThrowIfCancellationRequested();
            if (manifest) throw new ArchiveRefusedException($"archive entry '{name}' comes after {ManifestEntry}, which must be last: refusing the archive");
            if (entries == 0 && name != AccountEntry) throw new ArchiveRefusedException($"the archive begins with '{name}', not {AccountEntry}: refusing it");
            siblings.Add(name, entry.EntryType == TarEntryType.Directory);
            if ((++entries & 1023) == 0) progress?.Invoke(entries, bytes);
            if (name == ManifestEntry)
            {
                // Read alongside by the other reader; this one only checks that nothing follows it.
                manifest = true;
                continue;
            }
            string? sha = null;
            if (entry.DataStream is { } data)
            {
                Stream content = data;
                MemoryStream? copy = null;
                if (name == AccountEntry)
                {
                    content = copy = new MemoryStream();
                    data.CopyTo(copy);
                    copy.Position = 0;
                }
                int n;
                while ((n = content.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    bytes += n;
                }
                sha = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (copy is not null)
                {
                    copy.Position = 0;
                    account = ReadAccount(copy);
                }
            }
            else if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                sha = Convert.ToHexStringLower(SHA256.HashData([]));
            var seen = new Seen(entry.EntryType, entry.Length, sha, (int)entry.Mode, entry.Uid, entry.Gid,
                entry.EntryType == TarEntryType.SymbolicLink ? entry.LinkName : null);
            // account.json is no part (ARCHIVE.md lists the parts after it): checked by its content, and by the manifest
            // when listed there. A folder the manifest does not list is restored as archived (the writer lists every one).
            var next = listed.Peek();
            var same = next is not null && next.Path.TrimEnd('/') == name;
            if (!same && (name == AccountEntry || entry.EntryType == TarEntryType.Directory)) continue;
            if (next is null)
                throw new ArchiveRefusedException($"archive entry '{name}' is not in the manifest: refusing the archive");
            if (!same)
                throw new ArchiveRefusedException($"archive entry '{name}' is not in the manifest at its place (the manifest lists '{next.Path}' there): an entry added, "
                    + "missing or out of the manifest's order, refusing the archive");
            Compare(name, seen, listed.Next()!);
        }
        progress?.Invoke(entries, bytes);
        if (account is null) throw new ArchiveRefusedException($"the archive has no {AccountEntry}: refusing it");
        if (!manifest) throw new ArchiveRefusedException($"the archive has no {ManifestEntry} at its end (cut short?): refusing it");
        if (listed.Next() is { } missing)
            throw new ArchiveRefusedException($"the manifest lists '{missing.Path}', which the archive does not hold: refusing it");
        return new VerifiedArchive(path, account, entries, bytes);
    }

    private sealed record Seen(TarEntryType Type, long Size, string? Sha256, int Mode, int Uid, int Gid, string? Link);

    private static void Compare(string name, Seen s, ManifestFile m)
    {
        var type = s.Type switch { TarEntryType.Directory => "directory", TarEntryType.SymbolicLink => "symlink", _ => "file" };
        if (m.Type is { } listedType && listedType != type)
            throw new ArchiveRefusedException($"archive entry '{name}' is a {type}, the manifest's a {listedType}: refusing the archive");
        if (s.Type == TarEntryType.SymbolicLink)
        {
            if (m.Link != s.Link) throw new ArchiveRefusedException($"archive entry '{name}': link target '{s.Link}' is not the manifest's '{m.Link}': refusing the archive");
        }
        else if (s.Type != TarEntryType.Directory && (m.Sha256 is null || !string.Equals(m.Sha256, s.Sha256, StringComparison.OrdinalIgnoreCase) || m.Size != s.Size))
            throw new ArchiveRefusedException($"archive entry '{name}': SHA-256 {s.Sha256} ({s.Size} bytes) does not match the manifest's {m.Sha256} ({m.Size} bytes): the archive is damaged or was changed, refusing it");
        if ((m.Mode is { } mode && (mode & 0b111_111_111_111) != (s.Mode & 0b111_111_111_111)) || (m.Uid is { } uid && uid != s.Uid) || (m.Gid is { } gid && gid != s.Gid))
            throw new ArchiveRefusedException($"archive entry '{name}': mode or owner differs from the manifest's: refusing the archive");
    }

    /// <summary>
    /// The names met in each folder the archive is in (the top level's always): one name twice in a folder is refused.
    /// Holds the folders on the current path only, as the writer lists a folder's entries together (depth first).
    /// </summary>
    private sealed class Siblings
    {
        private readonly Stack<(string Folder, HashSet<string> Names)> _open = new([("", new HashSet<string>(StringComparer.Ordinal))]);

        public void Add(string name, bool folder)
        {
            var slash = name.LastIndexOf('/');
            var parent = slash < 0 ? "" : name[..slash];
            while (_open.Peek().Folder is var f && f != parent && f.Length > 0 && !parent.StartsWith(f + "/", StringComparison.Ordinal)) _open.Pop();
            if (_open.Peek().Folder != parent) _open.Push((parent, new HashSet<string>(StringComparer.Ordinal)));
            if (!_open.Peek().Names.Add(name[(slash + 1)..]))
                throw new ArchiveRefusedException($"archive entry '{name}' appears twice: refusing the archive");
            if (folder) _open.Push((name, new HashSet<string>(StringComparer.Ordinal)));
        }
    }

    private sealed record AccountDocument(int Format, long BackupId, ArchivedAccount Account);

    internal static ArchivedAccount ReadAccount(Stream s)
    {
        AccountDocument? doc;
        try { doc = JsonSerializer.Deserialize<AccountDocument>(s, Json); }
        catch (JsonException e) { throw new ArchiveRefusedException($"{AccountEntry} is not valid: {e.Message}"); }
        if (doc is not { Format: Format, Account: { } a }) throw new ArchiveRefusedException($"{AccountEntry} is not format {Format}: refusing the archive");
        if (!AccountNames.IsValidUsername(a.Username) || !AccountNames.IsValidDomain(a.Domain))
            throw new ArchiveRefusedException($"{AccountEntry} names an invalid account '{a.Username}' / '{a.Domain}': refusing the archive");
        return a;
    }
}

/// <summary>No archive for the backup where root keeps them: purged, or never written.</summary>
public sealed class ArchiveMissingException(string message) : ResourceException(message);
