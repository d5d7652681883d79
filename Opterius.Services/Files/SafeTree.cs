using Opterius.Services.Resources;
using static Opterius.Services.Files.Libc;

namespace Opterius.Services.Files;

/// <summary>What a directory tree holds: bytes of its non-directory entries, their number, and its folders (the top included).</summary>
public sealed record TreeMeasure(long Bytes, long Files, long Directories)
{
    /// <summary>Mount points met inside (never entered, so nothing behind them is counted).</summary>
    public IReadOnlyList<string> MountPoints { get; init; } = [];

    // Two measures are equal when they say the same, whichever list holds the mount points.
    public bool Equals(TreeMeasure? other) =>
        other is not null && (Bytes, Files, Directories) == (other.Bytes, other.Files, other.Directories) && MountPoints.SequenceEqual(other.MountPoints);

    public override int GetHashCode() => HashCode.Combine(Bytes, Files, Directories, MountPoints.Count);
}

/// <summary>What a removal took away: non-directory entries (files, links, sockets...) and folders (the top included).</summary>
public sealed record TreeRemoval(long Files, long Directories);

public enum TreeEntryKind { Directory, File, SymbolicLink, Other }

/// <summary>
/// One entry met by <see cref="SafeTree.Visit"/>: its path relative to the top ("" for the top itself), its kind, permission
/// bits (the low 12 of st_mode), owner, size and modification time, and a link's own target text (never followed).
/// <paramref name="LossyName"/>: the raw bytes of its name, or of a folder's above it, are not valid UTF-8, so
/// <paramref name="Path"/> is a lossy decoding (U+FFFD for those bytes) that may equal a valid sibling's name.
/// </summary>
public readonly record struct TreeEntry(string Path, TreeEntryKind Kind, int Mode, int Uid, int Gid, long Size, DateTimeOffset ModifiedAt,
    string? LinkTarget = null, int Links = 1, bool LossyName = false);

/// <summary>
/// Called for each entry of a <see cref="SafeTree.Visit"/>, a folder before what it holds; <paramref name="content"/> is the
/// regular file itself, opened without following a link (null for every other kind), readable only during the call.
/// </summary>
public delegate void TreeVisitor(in TreeEntry entry, Stream? content);

/// <summary>
/// Measures and removes a directory tree without ever following a symbolic link or leaving the tree's file
/// system, even while its owner renames things inside it. Every step is relative to an open directory
/// descriptor (openat with O_NOFOLLOW, unlinkat), so swapping a folder for a link mid-walk makes the walk
/// unlink the link instead of entering it. The walk is iterative; memory is one frame per level of depth
/// holding only the names of that folder's subfolders, so a home of millions of files stays flat.
/// </summary>
/// <remarks>
/// The walk stays on the top's mount, compared by mount id (statx <c>STATX_MNT_ID</c>), not by device: a bind
/// mount of the same file system (another home, /etc) has the same device. A mount point met inside is never
/// entered nor removed: the walk leaves it and the folders above it, removes everything else, then fails
/// naming each mount point, so the operator unmounts them and runs the step again. A top that is itself a
/// mount point is refused before anything is touched.
/// </remarks>
public static unsafe class SafeTree
{
    /// <summary>Deeper trees are refused rather than walked: nothing a real site needs, and it bounds the stack.</summary>
    public const int MaxDepth = 100_000;

    // Ancestors beyond this many levels are closed and reopened through ".." (verified by inode) on the way back.
    private const int OpenDescriptorBudget = 128;

    // A folder the tenant keeps refilling while we empty it is retried this many times before giving up.
    private const int RefillRetries = 16;

    private const int BufferSize = 64 * 1024;

    // A removal reports its progress after this many entries: rare enough to cost nothing, often enough to show.
    private const int ReportEvery = 1024;

    /// <summary>
    /// Walks a home or mail tree is removed with at once: on a disk, each unlink waits on the file system's journal, and a
    /// few walks in different folders overlap those waits (docs/benchmarks.md); more would only crowd the other tenants' I/O.
    /// </summary>
    public const int RemovalWorkers = 4;

    /// <summary>Measures the tree at <paramref name="path"/>; null when nothing is there.</summary>
    public static TreeMeasure? Measure(string path)
    {
        using var walk = Walk.Open(path, remove: false, owner: null);
        if (walk is null) return null;
        var (bytes, files, dirs) = walk.Run();
        return new TreeMeasure(bytes, files, dirs) { MountPoints = walk.MountPoints };
    }

    /// <summary>
    /// Reads the tree at <paramref name="path"/> with the same walk as <see cref="Remove"/>: every entry is reached through
    /// its folder's descriptor, a regular file is opened with O_NOFOLLOW and described by the descriptor's own statx, so a
    /// link swapped in at any moment is met as a link (its target text) and nothing outside the tree is ever read. Other
    /// mounts are never entered (<see cref="TreeMeasure.MountPoints"/> names them). Null when nothing is there.
    /// </summary>
    public static TreeMeasure? Visit(string path, TreeVisitor visit)
    {
        using var walk = Walk.Open(path, remove: false, owner: null, visit: visit);
        if (walk is null) return null;
        var (bytes, files, dirs) = walk.Run();
        return new TreeMeasure(bytes, files, dirs) { MountPoints = walk.MountPoints };
    }

    /// <summary>
    /// Removes the tree at <paramref name="path"/>, the top folder included; null when nothing was there. With
    /// <paramref name="owner"/>, a top folder that uid does not own is refused before anything is removed.
    /// <paramref name="progress"/>, when given, is called every <see cref="ReportEvery"/> entries removed (with workers: of
    /// each walk, and as each walk ends; one call at a time, from their threads) and once at the end, with files, folders
    /// and bytes removed so far; its bytes need one statx per file, so a
    /// removal nobody watches does not pay for them.
    /// </summary>
    /// <exception cref="ResourceException">The top is a link, not a folder or not the owner's, a mount point is inside, or a removal failed.</exception>
    /// <param name="workers">More than one: the tree's subfolders a few levels down are removed by that many walks at
    /// once, each opened relative to its open parent like any step of the walk, then one walk removes the rest.</param>
    public static TreeRemoval? Remove(string path, uint? owner = null, Action<RemovalProgress>? progress = null, int workers = 1)
    {
        using var walk = Walk.Open(path, remove: true, owner, progress);
        if (walk is null) return null;
        var (bytes, files, dirs) = workers > 1 ? walk.RunSplit(workers) : walk.Run();
        progress?.Invoke(new RemovalProgress(files, dirs, bytes));
        if (walk.MountPoints.Count > 0)
            throw new ResourceException($"{walk.Top}: {walk.MountPoints.Count} mount point(s) inside never entered and left in place: "
                + $"{string.Join(", ", walk.MountPoints)}; everything else removed ({files} files, {dirs} folders); unmount them, then run the step again");
        return new TreeRemoval(files, dirs);
    }

    /// <summary>Called for each entry of a folder but "." and "..": its NUL-terminated name and its d_type.</summary>
    internal delegate void EntryVisitor(byte* name, byte type);

    /// <summary>
    /// Reads every entry of the folder open at <paramref name="fd"/> (getdents64 into <paramref name="buffer"/>),
    /// skipping "." and ".."; <paramref name="failure"/> makes the exception for a read that fails with an errno.
    /// </summary>
    internal static void ForEachEntry(int fd, byte[] buffer, EntryVisitor visit, Func<int, Exception> failure)
    {
        fixed (byte* buf = buffer)
            while (true)
            {
                var n = GetDents64(fd, buf, (nuint)buffer.Length);
                if (n == 0) return;
                if (n < 0)
                {
                    if (Errno == EINTR) continue;
                    throw failure(Errno);
                }
                for (nint off = 0; off < n;)
                {
                    var entry = buf + off;
                    off += *(ushort*)(entry + 16);
                    var name = entry + 19;
                    if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
                    visit(name, entry[18]);
                }
            }
    }

    /// <summary>A buffer for <see cref="ForEachEntry"/>, pinned so the kernel can fill it while it is fixed.</summary>
    internal static byte[] NewEntryBuffer() => GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);

    private sealed class Frame(int fd, byte[]? name, ulong ino)
    {
        public int Fd = fd;
        public readonly byte[]? Name = name; // NUL-terminated name in the parent; null for the top
        public readonly ulong Ino = ino;
        public readonly List<byte[]> Subfolders = [];
        public int Next;
        public int Retries;
        public string Relative = ""; // the path from the top, kept only by a visit
        public bool Lossy; // its name or a folder's above it is not valid UTF-8, kept only by a visit
        public bool HoldsMountPoint; // kept with every folder above it: a mount point inside is never removed
    }

    private sealed class Walk : IDisposable
    {
        private readonly string _top;
        private readonly bool _remove;
        private readonly bool _ownsParent = true;
        private readonly int _parentFd;
        private readonly byte[] _topName;
        private readonly ulong _mount;
        private readonly List<Frame> _stack = [];
        private readonly List<string> _mountPoints = [];
        private readonly byte[] _buffer = NewEntryBuffer();
        private readonly Action<RemovalProgress>? _progress;
        private readonly TreeVisitor? _visit;
        private readonly Statx _topStat;
        private long _bytes, _files, _dirs; // a removal counts bytes only for _progress
        private int _untilReport = ReportEvery;

        private Walk(string top, bool remove, int parentFd, byte[] topName, int topFd, in Statx st, ulong mount, Action<RemovalProgress>? progress,
            TreeVisitor? visit)
        {
            _top = top;
            _visit = visit;
            _topStat = st;
            _remove = remove;
            _progress = progress;
            _parentFd = parentFd;
            _topName = topName;
            _mount = mount;
            _stack.Add(new Frame(topFd, null, st.Ino));
        }

        /// <summary>A walk of one subtree for <see cref="RunSplit"/>: its folder already open, its parent's descriptor borrowed.</summary>
        private Walk(Walk whole, Part part, Action<RemovalProgress>? progress)
            : this(part.Path, whole._remove, part.ParentFd, part.Name, part.Fd, part.St, whole._mount, progress, visit: null) => _ownsParent = false;

        /// <summary>A subfolder handed to a worker: opened (never following a link, on the top's mount) relative to its parent.</summary>
        private sealed record Part(int ParentFd, byte[] Name, int Fd, Statx St, string Path);

        /// <summary>
        /// Removes the tree with <paramref name="workers"/> walks at once: the subfolders of the top, and of theirs while
        /// there are fewer than a few per worker (a home is mostly public_html/...), each removed by a walk of its own;
        /// then this walk removes what is left (files of the folders above them, those folders, the top). Anything odd met
        /// while splitting (a link, a mount point, an unreadable entry) is left to that last walk, which handles it as always.
        /// </summary>
        public (long Bytes, long Files, long Dirs) RunSplit(int workers)
        {
            var opened = new List<int>(); // the folders above the parts: kept open while the parts use them as parents
            var parts = new List<Part> { new(_parentFd, _topName, _stack[0].Fd, _topStat, _top) };
            try
            {
                for (var level = 0; level < 3 && parts.Count > 0 && parts.Count < workers * 4; level++)
                {
                    var next = new List<Part>();
                    foreach (var parent in parts)
                    {
                        if (parent.Fd != _stack[0].Fd) opened.Add(parent.Fd);
                        var names = new List<byte[]>();
                        ForEachEntry(parent.Fd, _buffer, (name, type) => { if (type == DT_DIR) names.Add(Copy(name)); }, errno => Failure("cannot read folder", null, errno));
                        foreach (var name in names)
                        {
                            int fd;
                            fixed (byte* n = name) fd = OpenAt(parent.Fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
                            if (fd < 0) continue;
                            if (StatFd(fd, out var st) != 0 || st.MountId != _mount) { Close(fd); continue; }
                            next.Add(new(parent.Fd, name, fd, st, Path.Join(parent.Path, NameOf(name))));
                        }
                    }
                    parts = next;
                }
                if (parts.Count == 1 && parts[0].Fd == _stack[0].Fd) return Run();

                var gate = new object();
                var started = new bool[parts.Count];
                var counts = new (long Files, long Dirs, long Bytes)[parts.Count];
                void Reported(int i, RemovalProgress p)
                {
                    lock (gate)
                    {
                        counts[i] = (p.Files, p.Folders, p.Bytes);
                        _progress!(new RemovalProgress(counts.Sum(c => c.Files), counts.Sum(c => c.Dirs), counts.Sum(c => c.Bytes)));
                    }
                }
                try
                {
                    Parallel.For(0, parts.Count, new ParallelOptions { MaxDegreeOfParallelism = workers }, i =>
                    {
                        started[i] = true;
                        using var sub = new Walk(this, parts[i], _progress is null ? null : p => Reported(i, p));
                        var (bytes, files, dirs) = sub.Run();
                        lock (gate)
                        {
                            counts[i] = (files, dirs, bytes);
                            _mountPoints.AddRange(sub.MountPoints);
                            // Each finished part reports too: parts smaller than a report's worth would otherwise say nothing.
                            _progress?.Invoke(new RemovalProgress(counts.Sum(c => c.Files), counts.Sum(c => c.Dirs), counts.Sum(c => c.Bytes)));
                        }
                    });
                }
                catch (AggregateException e) when (e.InnerExceptions.OfType<ResourceException>().FirstOrDefault() is { } first)
                {
                    throw first;
                }
                finally
                {
                    for (var i = 0; i < parts.Count; i++) if (!started[i]) Close(parts[i].Fd);
                }
                (_files, _dirs, _bytes) = (counts.Sum(c => c.Files), counts.Sum(c => c.Dirs), counts.Sum(c => c.Bytes));
                return Run();
            }
            finally
            {
                foreach (var fd in opened) Close(fd);
            }
        }

        public string Top => _top;

        /// <summary>The mount points met, by path: never entered, and left in place with the folders above them.</summary>
        public IReadOnlyList<string> MountPoints => _mountPoints;

        /// <summary>Opens the top as a real directory; null when absent. The parent (e.g. /home) is the operator's, so it may be a link.</summary>
        public static Walk? Open(string path, bool remove, uint? owner, Action<RemovalProgress>? progress = null, TreeVisitor? visit = null)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
            var parent = Path.GetDirectoryName(full);
            var name = Path.GetFileName(full);
            if (parent is null || name is "" or "." or "..")
                throw new ResourceException($"{full}: refusing to walk a file system root");

            var parentFd = Libc.Open(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY);
            if (parentFd < 0)
            {
                var e = Errno;
                if (e is ENOENT or ENOTDIR) return null;
                throw new ResourceException($"{parent}: cannot open: {Describe(e)}");
            }
            var topName = Z(name);
            try
            {
                int fd;
                fixed (byte* n = topName) fd = OpenAt(parentFd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
                if (fd < 0)
                {
                    var e = Errno;
                    if (e == ENOENT) { Close(parentFd); return null; }
                    fixed (byte* n = topName)
                        if (e is ELOOP or ENOTDIR && StatAt(parentFd, n, out var lst) == 0)
                            throw new ResourceException(lst.IsSymlink
                                ? $"{full} is a symbolic link, not a directory: refusing to follow it"
                                : $"{full} is not a directory");
                    throw new ResourceException($"{full}: cannot open: {Describe(e)}");
                }
                if (StatFd(fd, out var st) != 0)
                {
                    var e = Errno;
                    Close(fd);
                    throw new ResourceException($"{full}: cannot stat: {Describe(e)}");
                }
                if (st.MountId is not { } mount)
                {
                    Close(fd);
                    throw new ResourceException($"{full}: the kernel does not report mount ids (statx STATX_MNT_ID, Linux 5.8+): refusing to walk a tree whose bind mounts cannot be told apart");
                }
                if (owner is { } uid && st.Uid != uid)
                {
                    Close(fd);
                    throw new ResourceException($"{full} belongs to uid {st.Uid}, not {uid}: refusing to remove it");
                }
                // A top that is itself a mount point holds another mount's files (a bind mount of someone else's folder).
                if (StatFd(parentFd, out var parentSt) != 0 || parentSt.MountId != mount)
                {
                    Close(fd);
                    throw new ResourceException($"{full} is a mount point: refusing to walk another mount's files; unmount it, then run the step again");
                }
                return new Walk(full, remove, parentFd, topName, fd, st, mount, progress, visit);
            }
            catch
            {
                Close(parentFd);
                throw;
            }
        }

        public (long Bytes, long Files, long Dirs) Run()
        {
            _visit?.Invoke(EntryOf("", TreeEntryKind.Directory, _topStat), null);
            Scan(_stack[0]);
            while (_stack.Count > 0)
            {
                var frame = _stack[^1];
                if (frame.Next < frame.Subfolders.Count) Descend(frame, frame.Subfolders[frame.Next++]);
                else Ascend(frame);
            }
            return (_bytes, _files, _dirs);
        }

        /// <summary>Reads one folder: removes (or measures) its non-folders at once and remembers its subfolders.</summary>
        private void Scan(Frame frame)
        {
            frame.Subfolders.Clear();
            frame.Next = 0;
            ForEachEntry(frame.Fd, _buffer, (name, type) =>
            {
                if (type == DT_DIR) frame.Subfolders.Add(Copy(name));
                else if (_remove) RemoveEntry(frame, name, type);
                else if (_visit is not null) VisitEntry(frame, name, type);
                else MeasureEntry(frame, name);
            }, errno => Failure("cannot read folder", null, errno));
        }

        /// <summary>Unlinks one non-folder; <paramref name="mayBeFolder"/> lets an entry that turned into a folder be walked instead.</summary>
        private void RemoveEntry(Frame frame, byte* name, byte type, bool mayBeFolder = true)
        {
            long size = 0;
            if ((type == DT_UNKNOWN || _progress is not null) && StatAt(frame.Fd, name, out var st) == 0)
            {
                if (st.IsDirectory)
                {
                    frame.Subfolders.Add(Copy(name));
                    return;
                }
                size = (long)st.Size;
            }
            // unlinkat never follows the last component: a link is removed, its target untouched.
            if (UnlinkAt(frame.Fd, name, 0) == 0)
            {
                _files++;
                _bytes += size;
                if (--_untilReport == 0) Report();
                return;
            }
            var e = Errno;
            if (e == ENOENT) return;
            if (e == EISDIR && mayBeFolder) { frame.Subfolders.Add(Copy(name)); return; } // became a folder meanwhile
            if (e == EBUSY) { LeaveMountPoint(name); return; } // a file bind-mounted over this one
            throw Failure("cannot remove", name, e);
        }

        private void MeasureEntry(Frame frame, byte* name)
        {
            if (StatAt(frame.Fd, name, out var st) != 0)
            {
                if (Errno == ENOENT) return;
                throw Failure("cannot stat", name, Errno);
            }
            if (st.IsDirectory) { frame.Subfolders.Add(Copy(name)); return; }
            if (st.MountId != _mount) { LeaveMountPoint(name); return; }
            _files++;
            _bytes += (long)st.Size;
        }

        /// <summary>
        /// Hands one non-folder to the visitor. A regular file is opened relative to its folder with O_NOFOLLOW and described
        /// by its descriptor, so what is read is what is described; an entry that changed kind meanwhile is taken as what
        /// it is now (a folder is walked, a link is a link).
        /// </summary>
        private void VisitEntry(Frame frame, byte* name, byte type = DT_UNKNOWN, bool mayBeFolder = true)
        {
            // A regular file by its d_type is opened at once (its descriptor's statx is the one that counts); anything else,
            // or an entry whose type changed, is looked at first.
            if (type != DT_REG)
            {
                if (StatAt(frame.Fd, name, out var st) != 0)
                {
                    if (Errno == ENOENT) return;
                    throw Failure("cannot stat", name, Errno);
                }
                if (st.IsDirectory) { if (mayBeFolder) frame.Subfolders.Add(Copy(name)); return; }
                if (st.MountId != _mount) { LeaveMountPoint(name); return; }
                if (st.IsSymlink) { VisitLink(frame, name, st); return; }
                if (st.Type != S_IFREG) { Visited(EntryAt(frame, name, TreeEntryKind.Other, st), null); return; }
            }
            var fd = OpenAt(frame.Fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
            if (fd < 0)
            {
                var e = Errno;
                if (e == ENOENT) return;
                if (e == ELOOP && StatAt(frame.Fd, name, out var now) == 0) { VisitLink(frame, name, now); return; }
                throw Failure("cannot open", name, e);
            }
            using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
            if (StatFd(fd, out var opened) != 0) throw Failure("cannot stat", name, Errno);
            if (opened.IsDirectory) { if (mayBeFolder) frame.Subfolders.Add(Copy(name)); return; }
            if (opened.MountId != _mount) { LeaveMountPoint(name); return; }
            if (opened.Type != S_IFREG) { Visited(EntryAt(frame, name, TreeEntryKind.Other, opened), null); return; }
            using var content = new FileStream(handle, FileAccess.Read, bufferSize: 0);
            Visited(EntryAt(frame, name, TreeEntryKind.File, opened), content);
        }

        private void VisitLink(Frame frame, byte* name, in Statx st)
        {
            var target = ReadLinkAt(frame.Fd, name);
            if (target is null)
            {
                var e = Errno;
                if (e == ENOENT) return;
                if (e == EINVAL) { VisitEntry(frame, name); return; } // no longer a link: take it as it is now
                throw Failure("cannot read link", name, e);
            }
            Visited(EntryAt(frame, name, TreeEntryKind.SymbolicLink, st) with { LinkTarget = target }, null);
        }

        private void Visited(in TreeEntry entry, Stream? content)
        {
            _files++;
            _bytes += entry.Size;
            _visit!(entry, content);
        }

        private static TreeEntry EntryOf(string relative, TreeEntryKind kind, in Statx st) =>
            new(relative, kind, st.Mode & 0xFFF, (int)st.Uid, (int)st.Gid, kind == TreeEntryKind.Directory ? 0 : (long)st.Size,
                DateTimeOffset.FromUnixTimeSeconds(st.MtimeSeconds).AddTicks(st.MtimeNanoseconds / 100), Links: (int)Math.Min(st.Nlink, int.MaxValue));

        /// <summary>The entry <paramref name="name"/> of <paramref name="frame"/>, told lossy from its raw bytes, never by a lookup.</summary>
        private static TreeEntry EntryAt(Frame frame, byte* name, TreeEntryKind kind, in Statx st) =>
            EntryOf(RelativeOf(frame, name), kind, st) with { LossyName = LossyIn(frame, name) };

        private static bool LossyIn(Frame frame, byte* name) =>
            frame.Lossy || !System.Text.Unicode.Utf8.IsValid(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name));

        private static string RelativeOf(Frame frame, byte* name)
        {
            var own = NameOf(Copy(name));
            return frame.Relative.Length == 0 ? own : frame.Relative + "/" + own;
        }

        private void Descend(Frame parent, byte[] name)
        {
            if (_stack.Count >= MaxDepth) throw Failure($"deeper than {MaxDepth} levels: refusing to walk", null, 0);
            int fd;
            fixed (byte* n = name) fd = OpenAt(parent.Fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            if (fd < 0)
            {
                var e = Errno;
                if (e == ENOENT) return;
                fixed (byte* n = name)
                {
                    // No longer a folder (swapped for a link or a file): it is an entry like any other.
                    if (e is ELOOP or ENOTDIR)
                    {
                        if (_remove) RemoveEntry(parent, n, 0, mayBeFolder: false);
                        else if (_visit is not null) VisitEntry(parent, n, mayBeFolder: false);
                        else MeasureEntry(parent, n);
                        return;
                    }
                    throw Failure("cannot open", n, e);
                }
            }
            if (StatFd(fd, out var st) != 0)
            {
                var e = Errno;
                Close(fd);
                fixed (byte* n = name) throw Failure("cannot stat", n, e);
            }
            if (st.MountId != _mount)
            {
                Close(fd);
                fixed (byte* n = name) LeaveMountPoint(n);
                return;
            }
            var child = new Frame(fd, name, st.Ino);
            _stack.Add(child);
            if (_visit is not null)
            {
                // On the stack first: its descriptor is closed with the walk's if the visitor throws.
                fixed (byte* n = name) (child.Relative, child.Lossy) = (RelativeOf(parent, n), LossyIn(parent, n));
                _visit(EntryOf(child.Relative, TreeEntryKind.Directory, st) with { LossyName = child.Lossy }, null);
            }
            var far = _stack.Count - 1 - OpenDescriptorBudget;
            if (far >= 0 && _stack[far].Fd >= 0) { Close(_stack[far].Fd); _stack[far].Fd = -1; }
            Scan(child);
        }

        private void Ascend(Frame frame)
        {
            _stack.RemoveAt(_stack.Count - 1);
            var parent = _stack.Count > 0 ? _stack[^1] : null;
            try { if (parent is { Fd: < 0 }) Reopen(parent, frame); }
            finally
            {
                Close(frame.Fd);
                frame.Fd = -1;
            }
            if (frame.HoldsMountPoint)
            {
                if (parent is not null) parent.HoldsMountPoint = true;
                return;
            }
            if (!_remove) { _dirs++; return; }

            var dirFd = parent?.Fd ?? _parentFd;
            fixed (byte* n = frame.Name ?? _topName)
            {
                if (UnlinkAt(dirFd, n, AT_REMOVEDIR) == 0)
                {
                    _dirs++;
                    if (--_untilReport == 0) Report();
                    return;
                }
                var e = Errno;
                switch (e)
                {
                    case ENOENT: return;
                    case ENOTDIR when parent is not null: // swapped for a link after we emptied it
                        RemoveEntry(parent, n, 0, mayBeFolder: false);
                        return;
                    case ENOTEMPTY or EEXIST when parent is not null && ++parent.Retries <= RefillRetries:
                        parent.Next--; // filled again meanwhile: walk it once more
                        return;
                    case ENOTEMPTY or EEXIST when parent is null && ++frame.Retries <= RefillRetries:
                        RetryTop(frame);
                        return;
                    default:
                        throw Failure("cannot remove folder", n, e);
                }
            }
        }

        private void RetryTop(Frame top)
        {
            int fd;
            fixed (byte* n = _topName) fd = OpenAt(_parentFd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            if (fd < 0) throw Failure("cannot reopen", null, Errno);
            top.Fd = fd;
            _stack.Add(top);
            Scan(top);
        }

        /// <summary>Reopens a closed ancestor through "..", proceeding only if it is the very folder we left.</summary>
        private void Reopen(Frame parent, Frame child)
        {
            var dotdot = stackalloc byte[] { (byte)'.', (byte)'.', 0 };
            var fd = OpenAt(child.Fd, dotdot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            if (fd < 0 || StatFd(fd, out var st) != 0 || st.Ino != parent.Ino || st.MountId != _mount)
            {
                if (fd >= 0) Close(fd);
                throw Failure("a folder was moved during the walk: stopping", null, 0);
            }
            parent.Fd = fd;
        }

        private void Report()
        {
            _untilReport = ReportEvery;
            _progress?.Invoke(new RemovalProgress(_files, _dirs, _bytes));
        }

        /// <summary>Records a mount point met in the current folder; it and the folders above it stay.</summary>
        private void LeaveMountPoint(byte* name)
        {
            var path = PathOf(name);
            if (!_mountPoints.Contains(path)) _mountPoints.Add(path);
            _stack[^1].HoldsMountPoint = true;
        }

        private static byte[] Copy(byte* name)
        {
            var span = new ReadOnlySpan<byte>(name, int.MaxValue);
            return span[..(span.IndexOf((byte)0) + 1)].ToArray();
        }

        private ResourceException Failure(string what, byte* name, int errno)
        {
            var where = PathOf(name);
            return new ResourceException(errno == 0 ? $"{where} {what}" : $"{where}: {what}: {Describe(errno)}");
        }

        private string PathOf(byte* name)
        {
            var parts = _stack.Skip(1).Select(f => NameOf(f.Name!)).ToList();
            if (name is not null) parts.Add(NameOf(Copy(name)));
            return parts.Count == 0 ? _top : Path.Join(_top, string.Join('/', parts));
        }

        private static string NameOf(byte[] z) => System.Text.Encoding.UTF8.GetString(z, 0, z.Length - 1);

        public void Dispose()
        {
            foreach (var f in _stack) if (f.Fd >= 0) Close(f.Fd);
            _stack.Clear();
            if (_ownsParent) Close(_parentFd);
        }
    }
}
