using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ZstdSharp;

namespace Opterius.Web.Tests.Backups;

/// <summary>
/// Builds a format-1 final backup by hand (ARCHIVE.md: PAX tar in zstd, account.json first, manifest.json last), for
/// tests of the restorer that need an archive the backup writer would never make: a path with '..', a hard link, a link
/// then a file through it, one byte changed. The manifest lists every entry as it was added, unless told otherwise.
/// </summary>
public sealed class ArchiveBuilder(string username, string domain, int uid, int gid)
{
    private sealed record Item(TarEntryType Type, string Name, byte[]? Content, int Mode, int Uid, int Gid, string? Link, bool Listed);

    private readonly List<Item> _items = [];
    private bool _reversed;

    /// <summary>The manifest lists the entries in the reverse of the archive's order (each still with its own size and SHA-256).</summary>
    public ArchiveBuilder ListedInReverse()
    {
        _reversed = true;
        return this;
    }

    public ArchiveBuilder Folder(string name, int mode = 0b111_101_101, int? owner = null) =>
        Add(new(TarEntryType.Directory, name, null, mode, owner ?? uid, owner ?? gid, null, false));

    public ArchiveBuilder File(string name, string content, int mode = 0b110_100_100, int? owner = null, bool listed = true) =>
        Add(new(TarEntryType.RegularFile, name, Encoding.UTF8.GetBytes(content), mode, owner ?? uid, owner ?? gid, null, listed));

    public ArchiveBuilder Link(string name, string target, int? owner = null) =>
        Add(new(TarEntryType.SymbolicLink, name, null, 0b111_111_111, owner ?? uid, owner ?? gid, target, true));

    public ArchiveBuilder HardLink(string name, string target) =>
        Add(new(TarEntryType.HardLink, name, null, 0b110_100_100, uid, gid, target, true));

    private ArchiveBuilder Add(Item item)
    {
        _items.Add(item);
        return this;
    }

    /// <summary>Writes <c>{folder}/{id}.tar.zst</c>; returns its path.</summary>
    public string Write(string folder, long id)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{id}.tar.zst");
        using var file = System.IO.File.Create(path);
        using var zstd = new CompressionStream(file, 3);
        using (var tar = new TarWriter(zstd, TarEntryFormat.Pax, leaveOpen: true))
        {
            var account = JsonSerializer.SerializeToUtf8Bytes(new
            {
                format = 1, backup_id = id, created_at = "2026-12-01T10:00:00Z",
                account = new { id = 7, username, domain, email = $"{username}@{domain}", package_id = 1, owner = 1, php_version = "8.2", uid, gid },
            });
            Put(tar, new(TarEntryType.RegularFile, "account.json", account, 0b110_000_000, 0, 0, null, true));
            foreach (var item in _items) Put(tar, item);
            var parts = new List<object> { Part("account.json", account) };
            var files = (_reversed ? Enumerable.Reverse(_items) : _items).Where(i => i.Listed).Select(i => new
            {
                path = i.Name, size = i.Content?.Length ?? 0, sha256 = i.Content is null ? null : Sha(i.Content),
                mode = i.Mode, uid = i.Uid, gid = i.Gid, link = i.Link,
            }).ToList();
            parts.Add(new { path = "home", kind = "tree", files, bytes = files.Sum(f => f.size), sha256 = (string?)null });
            var manifest = JsonSerializer.SerializeToUtf8Bytes(new { format = 1, parts, skipped = Array.Empty<string>(), total_files = files.Count, total_bytes = files.Sum(f => f.size) });
            Put(tar, new(TarEntryType.RegularFile, "manifest.json", manifest, 0b110_000_000, 0, 0, null, true));
        }
        return path;
    }

    private static object Part(string path, byte[] content) =>
        new { path, kind = "file", files = (object?)null, bytes = content.Length, sha256 = Sha(content) };

    private static string Sha(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    private static void Put(TarWriter tar, Item i)
    {
        var entry = new PaxTarEntry(i.Type, i.Name)
        {
            Mode = (UnixFileMode)i.Mode, Uid = i.Uid, Gid = i.Gid, ModificationTime = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero),
        };
        if (i.Link is not null) entry.LinkName = i.Link;
        if (i.Content is not null) entry.DataStream = new MemoryStream(i.Content);
        tar.WriteEntry(entry);
    }

    /// <summary>Changes one byte of the archive's content (inside the tar, where the compression cannot notice): the first occurrence of <paramref name="text"/>.</summary>
    public static void ChangeOneByte(string path, string text)
    {
        byte[] tar;
        using (var compressed = System.IO.File.OpenRead(path))
        using (var input = new DecompressionStream(compressed))
        using (var copy = new MemoryStream())
        {
            input.CopyTo(copy);
            tar = copy.ToArray();
        }
        var at = tar.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text));
        Assert.True(at >= 0, $"'{text}' is not in the archive");
        tar[at] ^= 0x20;
        using var file = System.IO.File.Create(path);
        using var zstd = new CompressionStream(file, 3);
        zstd.Write(tar);
    }
}
