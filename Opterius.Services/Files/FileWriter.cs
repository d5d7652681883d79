using System.Text;
using Microsoft.Win32.SafeHandles;
using Opterius.Services.Resources;
using static Opterius.Services.Files.Libc;

namespace Opterius.Services.Files;

/// <summary>A uid and gid files are handed to.</summary>
public sealed record FileOwner(uint Uid, uint Gid)
{
    /// <summary>
    /// The owner for an account's files: its uid (from the identity, or the root's /etc/passwd) and the primary
    /// group /etc/passwd gives it (the uid when the user is not listed); null when the account has no user yet.
    /// </summary>
    public static FileOwner? ForAccount(string passwdPath, string username, int? uid)
    {
        var entry = File.Exists(passwdPath)
            ? File.ReadLines(passwdPath).Select(l => l.Split(':')).FirstOrDefault(f => f.Length >= 4 && f[0] == username)
            : null;
        var gid = entry is not null && uint.TryParse(entry[3], out var g) ? g : (uint?)null;
        if (uid is { } known) return new((uint)known, gid ?? (uint)known);
        return entry is not null && uint.TryParse(entry[2], out var u) ? new(u, gid ?? u) : null;
    }
}

/// <summary>
/// Writes the files the create path makes, never through a link: a file or folder that turns out to be a link is
/// refused, so a name planted in advance cannot redirect a root-owned write.
/// </summary>
public static class FileWriter
{
    /// <summary>Creates (or truncates) a file with this content, mode and owner.</summary>
    public static void Write(string path, string content, UnixFileMode mode, FileOwner? owner = null) =>
        Write(path, Encoding.UTF8.GetBytes(content), mode, owner);

    /// <summary>
    /// Creates (or truncates) a file with this content, mode and owner. <paramref name="durable"/>: the file and its
    /// folder are fsynced before this returns, for a mark a crash must not lose before the change it announces.
    /// </summary>
    public static void Write(string path, byte[] content, UnixFileMode mode, FileOwner? owner = null, bool durable = false)
    {
        var fd = Libc.Open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, (uint)mode);
        if (fd < 0) throw Fail(path, Errno == ELOOP ? "is a symbolic link: refusing to write through it" : "cannot create", Errno);
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        Own(fd, path, mode, owner);
        RandomAccess.Write(handle, content, 0);
        if (!durable) return;
        if (Fsync(fd) != 0) throw Fail(path, "cannot fsync", Errno);
        SyncFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsyncs a folder, so a file created, renamed or removed in it stays so after a crash.</summary>
    public static void SyncFolder(string dir)
    {
        var fd = Libc.Open(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY);
        if (fd < 0) throw Fail(dir, "cannot open", Errno);
        try { if (Fsync(fd) != 0) throw Fail(dir, "cannot fsync", Errno); }
        finally { Close(fd); }
    }

    /// <summary>Creates a folder (parents as needed, as root) and gives it this mode and owner; an existing link is refused.</summary>
    public static void MakeDirectory(string path, UnixFileMode mode, FileOwner? owner = null)
    {
        Directory.CreateDirectory(path);
        var fd = Libc.Open(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0) throw Fail(path, Errno is ELOOP or ENOTDIR ? "is not a real folder: refusing to use it" : "cannot open", Errno);
        try { Own(fd, path, mode, owner); }
        finally { Close(fd); }
    }

    private static void Own(int fd, string path, UnixFileMode mode, FileOwner? owner)
    {
        // Owner first: chown clears set-id bits, chmod then sets exactly the mode asked for.
        if (owner is not null && Fchown(fd, owner.Uid, owner.Gid) != 0) throw Fail(path, "cannot set owner", Errno);
        if (Fchmod(fd, (uint)mode) != 0) throw Fail(path, "cannot set mode", Errno);
    }

    private static ResourceException Fail(string path, string what, int errno) =>
        new(errno is ELOOP ? $"{path} {what}" : $"{path}: {what}: {Describe(errno)}");
}

/// <summary>Sizes as people read them.</summary>
public static class ByteSize
{
    public static string Human(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.#} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB",
    };
}
