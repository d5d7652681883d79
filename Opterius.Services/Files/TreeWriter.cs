using Microsoft.Win32.SafeHandles;
using Opterius.Services.Resources;
using static Opterius.Services.Files.Libc;

namespace Opterius.Services.Files;

/// <summary>
/// Writes a tree (a restored home, mail store or certificate lineage) under a top folder that did not exist, never
/// through a link: every entry is made relative to an open descriptor of its folder, each folder reached from the top
/// with <c>O_NOFOLLOW</c>, files created with <c>O_EXCL</c>, links made as links (<c>symlinkat</c>) and never followed.
/// An archive that puts a link (or a file) where a later entry expects a folder, or names an entry twice, is refused
/// at that entry: nothing is ever written outside the top. Paths given are relative and already checked (no empty,
/// <c>.</c> or <c>..</c> component). Holds one open folder besides the top: archives list a folder's entries together.
/// The top stays root's and 0700 while the tree is written, and gets its own owner and mode only when the writer is
/// disposed: no process of the account can enter it, hold a folder open or swap an entry while entries are made.
/// A folder's modification time is its archived one once the entries it holds are written (each made in it moves it):
/// when the archive leaves the folder (an entry outside it comes) or the writer is disposed, the top's last. Memory is
/// one name per level of depth: archives list a folder's entries together, as <see cref="SafeTree.Visit"/> walks.
/// </summary>
public sealed unsafe class TreeWriter : IDisposable
{
    private readonly string _top;
    private readonly int _topFd;
    private string? _cachedPath;
    private int _cachedFd = -1;
    private readonly byte[] _buffer = new byte[128 * 1024];
    private (uint Mode, uint Uid, uint Gid) _topOwner;
    private DateTimeOffset? _topModified;
    // The folders the archive is in, outermost first, each with the time it gets once left.
    private readonly Stack<(string Relative, DateTimeOffset Modified)> _open = new();
    private bool _disposed;

    public long Files { get; private set; }
    public long Folders { get; private set; }
    public long Bytes { get; private set; }

    private TreeWriter(string top, int topFd)
    {
        _top = top;
        _topFd = topFd;
    }

    public string Top => _top;

    /// <summary>
    /// Makes <paramref name="top"/>, root's and 0700 until disposed, then the account's and 0700 unless the archive's own
    /// entry for it says otherwise (so its removal, which checks the top's owner, can undo a restore that failed before
    /// that entry); anything there is an <see cref="AlreadyThereException"/>.
    /// </summary>
    public static TreeWriter Create(string top, uint uid, uint gid)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(top));
        var parent = Path.GetDirectoryName(full)!;
        // The parent (/home, /var/mail/vdomains, /etc/letsencrypt/live) is the operator's, made as root when missing.
        Directory.CreateDirectory(parent);
        var parentFd = Libc.Open(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY);
        if (parentFd < 0) throw new ResourceException($"{parent}: cannot open: {Describe(Errno)}");
        try
        {
            fixed (byte* n = Z(Path.GetFileName(full)))
            {
                if (MkdirAt(parentFd, n, 0b111_000_000) != 0)
                    throw Errno == EEXIST
                        ? new AlreadyThereException($"{full} already exists; it is left as it is")
                        : new ResourceException($"{full}: cannot create: {Describe(Errno)}");
                var fd = OpenAt(parentFd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
                if (fd < 0) throw new ResourceException($"{full}: cannot open the folder just made: {Describe(Errno)}");
                var writer = new TreeWriter(full, fd);
                Own(fd, full, 0b111_000_000, 0, 0);
                writer.SetTop(0b111_000_000, uid, gid, null);
                return writer;
            }
        }
        finally { Close(parentFd); }
    }

    /// <summary>The top's own mode, owner and time (the archive's entry for the tree itself), given to it when the writer is disposed.</summary>
    public void SetTop(uint mode, uint uid, uint gid, DateTimeOffset? modified) => (_topOwner, _topModified) = ((mode, uid, gid), modified);

    public void Folder(string relative, uint mode, uint uid, uint gid, DateTimeOffset modified)
    {
        Leave(relative);
        var (parent, name) = Parent(relative);
        fixed (byte* n = name)
        {
            if (MkdirAt(parent, n, 0b111_000_000) != 0) throw Refuse(relative, Errno == EEXIST ? "is named twice in the archive" : "cannot create", Errno);
            var fd = OpenAt(parent, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            if (fd < 0) throw Refuse(relative, "cannot open", Errno);
            try { Own(fd, Full(relative), mode, uid, gid); }
            finally { Close(fd); }
        }
        _open.Push((relative, modified));
        Folders++;
    }

    /// <summary>Gives each folder the archive has left (those <paramref name="next"/> is not in) its archived time, innermost first.</summary>
    private void Leave(string? next)
    {
        while (_open.TryPeek(out var folder) && (next is null || !next.StartsWith(folder.Relative + "/", StringComparison.Ordinal)))
        {
            _open.Pop();
            var (parent, name) = Parent(folder.Relative);
            fixed (byte* n = name) Touch(parent, n, folder.Modified, AT_SYMLINK_NOFOLLOW, folder.Relative);
        }
    }

    /// <summary>A regular file with this content, mode, owner and modification time; an existing name is refused.</summary>
    public void File(string relative, Stream content, uint mode, uint uid, uint gid, DateTimeOffset modified)
    {
        Leave(relative);
        var (parent, name) = Parent(relative);
        int fd;
        fixed (byte* n = name) fd = OpenAt(parent, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0b110_000_000);
        if (fd < 0) throw Refuse(relative, Errno == EEXIST ? "is named twice in the archive" : "cannot create", Errno);
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        long written = 0;
        int read;
        while ((read = content.Read(_buffer)) > 0)
        {
            RandomAccess.Write(handle, _buffer.AsSpan(0, read), written);
            written += read;
        }
        Own(fd, Full(relative), mode, uid, gid);
        Touch(fd, null, modified, 0, relative);
        Files++;
        Bytes += written;
    }

    /// <summary>A symbolic link holding <paramref name="target"/> as it was (never resolved), with its own owner and time.</summary>
    public void Link(string relative, string target, uint uid, uint gid, DateTimeOffset modified)
    {
        Leave(relative);
        var (parent, name) = Parent(relative);
        fixed (byte* n = name)
        fixed (byte* t = Z(target))
        {
            if (SymlinkAt(t, parent, n) != 0) throw Refuse(relative, Errno == EEXIST ? "is named twice in the archive" : "cannot create the link", Errno);
            if (FchownAt(parent, n, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) throw Refuse(relative, "cannot set the link's owner", Errno);
            Touch(parent, n, modified, AT_SYMLINK_NOFOLLOW, relative);
        }
        Files++;
    }

    /// <summary>The open folder an entry goes in, reached from the top one component at a time without following a link.</summary>
    private (int Fd, byte[] Name) Parent(string relative)
    {
        var slash = relative.LastIndexOf('/');
        var name = Z(slash < 0 ? relative : relative[(slash + 1)..]);
        if (slash < 0) return (_topFd, name);
        var folder = relative[..slash];
        if (folder == _cachedPath) return (_cachedFd, name);
        if (_cachedFd >= 0) Close(_cachedFd);
        (_cachedPath, _cachedFd) = (null, -1);
        var fd = _topFd;
        var walked = "";
        foreach (var part in folder.Split('/'))
        {
            walked = walked.Length == 0 ? part : $"{walked}/{part}";
            int next;
            fixed (byte* p = Z(part)) next = OpenAt(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            var errno = Errno;
            if (fd != _topFd) Close(fd);
            if (next < 0)
                throw errno switch
                {
                    ELOOP or ENOTDIR => new ResourceException($"{Full(relative)}: {walked} is a link or a file, not a folder: refusing to write through it"),
                    ENOENT => new ResourceException($"{Full(relative)}: its folder {walked} is not in the archive before it"),
                    _ => new ResourceException($"{Full(walked)}: cannot open: {Describe(errno)}"),
                };
            fd = next;
        }
        (_cachedPath, _cachedFd) = (folder, fd);
        return (fd, name);
    }

    private static void Own(int fd, string path, uint mode, uint uid, uint gid)
    {
        // Owner first: chown clears set-id bits, chmod then sets exactly the archived mode.
        if (Fchown(fd, uid, gid) != 0) throw new ResourceException($"{path}: cannot set owner: {Describe(Errno)}");
        if (Fchmod(fd, mode & 0b111_111_111_111) != 0) throw new ResourceException($"{path}: cannot set mode: {Describe(Errno)}");
    }

    private void Touch(int fd, byte* name, DateTimeOffset modified, int flags, string relative)
    {
        var ns = (modified.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        var times = stackalloc Timespec[2];
        times[0] = times[1] = new Timespec { Seconds = Math.DivRem(ns, 1_000_000_000, out var rest), Nanoseconds = rest };
        if ((name is null ? Futimens(fd, times) : UtimensAt(fd, name, times, flags)) != 0) throw Refuse(relative, "cannot set its time", Errno);
    }

    private string Full(string relative) => $"{_top}/{relative}";

    private ResourceException Refuse(string relative, string what, int errno) =>
        new($"{Full(relative)} {what}{(errno is EEXIST ? "" : $": {Describe(errno)}")}: refusing to write it");

    /// <summary>
    /// Gives the folders still open their times, then the top its own owner, mode and time last, whether the tree was
    /// written whole or not (its removal then undoes it).
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            Leave(null);
            Own(_topFd, _top, _topOwner.Mode, _topOwner.Uid, _topOwner.Gid);
            if (_topModified is { } modified) Touch(_topFd, null, modified, 0, "");
        }
        finally
        {
            if (_cachedFd >= 0) Close(_cachedFd);
            Close(_topFd);
        }
    }
}
