using System.Buffers;
using System.Diagnostics;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Opterius.Services.Resources;
using static Opterius.Services.Files.Libc;

namespace Opterius.Services.Files;

/// <summary>
/// Edits the server's "one entry per line" files (/etc/dovecot/users, /etc/postfix/vmailbox) the way their
/// readers need: under an exclusive lock on a lock file beside them (<c>users.lock</c>), streamed into a temp
/// file in the same folder that gets the original's owner and mode, fsynced, renamed over, and the folder
/// fsynced. A crash leaves the old file or the new one, never a truncated one. Lines of other domains are
/// copied byte for byte.
/// </summary>
/// <remarks>
/// A line belongs to a domain when its key (the text before the first ':' or blank) holds an '@' and the part
/// after the last '@' is exactly that domain (ASCII case-insensitive): <c>example.com</c> never matches
/// <c>example.com.au</c>, <c>sub.example.com</c> or <c>xexample.com</c>. A line starting with a blank continues
/// the previous entry (Postfix map syntax) and goes with it. A line starting with '#' is a comment, nobody's entry
/// (<c>#x@example.com</c> included), unless it starts with the caller's own prefix for entries it commented out
/// (a suspended mail user's <c>#suspended#</c>): those are the domain's and are matched after the prefix.
/// </remarks>
public static class LineFile
{
    /// <summary>How long a writer waits for another writer's lock before the step fails.</summary>
    public static TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

    private const int ChunkSize = 1 << 20;
    private static readonly SearchValues<byte> KeyEnd = SearchValues.Create(": \t\r"u8);

    /// <summary>Removes every line of <paramref name="domain"/>; returns how many were removed (0: the file is left alone).</summary>
    public static Task<int> RemoveDomainAsync(string path, string domain, string? commentedEntryPrefix = null, CancellationToken ct = default) =>
        EditDomainAsync(path, domain, _ => null, commentedEntryPrefix, ct);

    /// <summary>
    /// Passes each line of <paramref name="domain"/> (without its newline) to <paramref name="edit"/>, which returns
    /// the replacement or null to drop it. Returns how many lines changed; with none, the file is not rewritten.
    /// </summary>
    public static Task<int> EditDomainAsync(string path, string domain, Func<byte[], byte[]?> edit, string? commentedEntryPrefix = null, CancellationToken ct = default)
    {
        var (d, prefix) = (Encoding.ASCII.GetBytes(domain), Encoding.ASCII.GetBytes(commentedEntryPrefix ?? ""));
        return UnderLockAsync(path, full => Transform(full, line => IsForDomain(line, d, prefix), edit, tail: null, modeIfNew: 0), ct);
    }

    /// <summary>
    /// Appends the lines whose key is not in the file yet (so provisioning twice adds nothing); creates the file with
    /// <paramref name="modeIfNew"/> when absent. Returns how many lines were added.
    /// </summary>
    public static Task<int> AppendAsync(string path, IReadOnlyList<string> lines, UnixFileMode modeIfNew = (UnixFileMode)0b110_100_000,
        CancellationToken ct = default)
    {
        var wanted = lines.ToDictionary(l => Encoding.UTF8.GetString(KeyOf(Encoding.UTF8.GetBytes(l))), l => l);
        var domains = wanted.Keys.Select(k => Encoding.UTF8.GetBytes(k[(k.LastIndexOf('@') + 1)..])).Distinct().ToList();
        var present = new HashSet<string>();
        bool Seen(ReadOnlySpan<byte> line)
        {
            foreach (var d in domains)
                if (IsForDomain(line, d)) { present.Add(Encoding.UTF8.GetString(KeyOf(line))); break; }
            return false;
        }
        return UnderLockAsync(path, full => Transform(full, Seen, _ => null,
            () => wanted.Where(w => !present.Contains(w.Key)).Select(w => w.Value).ToList(), modeIfNew), ct);
    }

    /// <summary>The lines of <paramref name="domain"/>, for inspection; empty when the file is absent.</summary>
    public static IReadOnlyList<string> Matching(string path, string domain, string? commentedEntryPrefix = null)
    {
        var (d, prefix) = (Encoding.ASCII.GetBytes(domain), Encoding.ASCII.GetBytes(commentedEntryPrefix ?? ""));
        var found = new List<string>();
        using var src = OpenSource(Path.GetFullPath(path));
        if (src is null) return found;
        Stream(src, (line, _) =>
        {
            if (IsForDomain(line, d, prefix)) found.Add(Encoding.UTF8.GetString(line));
            return null;
        });
        return found;
    }

    /// <summary>Whether a line (without its newline) is an entry of exactly <paramref name="domain"/>.</summary>
    public static bool IsForDomain(ReadOnlySpan<byte> line, ReadOnlySpan<byte> domain, ReadOnlySpan<byte> commentedEntryPrefix = default)
    {
        if (line.Length > 0 && line[0] == (byte)'#')
        {
            if (commentedEntryPrefix.IsEmpty || !line.StartsWith(commentedEntryPrefix)) return false;
            line = line[commentedEntryPrefix.Length..];
        }
        var key = KeyOf(line);
        var at = key.LastIndexOf((byte)'@');
        return at >= 0 && Ascii.EqualsIgnoreCase(key[(at + 1)..], domain);
    }

    private static ReadOnlySpan<byte> KeyOf(ReadOnlySpan<byte> line)
    {
        var end = line.IndexOfAny(KeyEnd);
        return end < 0 ? line : line[..end];
    }

    /// <summary>Runs <paramref name="transform"/> on the full path while holding the file's lock, waited for without holding a thread.</summary>
    private static async Task<int> UnderLockAsync(string path, Func<string, int> transform, CancellationToken ct)
    {
        var full = Path.GetFullPath(path);
        using var fileLock = await LockAsync(full + ".lock", ct);
        return transform(full);
    }

    /// <summary>Rewrites the file; the caller holds its lock.</summary>
    private static int Transform(string full, Func<ReadOnlySpan<byte>, bool> selects, Func<byte[], byte[]?> edit,
        Func<IReadOnlyList<string>>? tail, UnixFileMode modeIfNew)
    {
        var dir = Path.GetDirectoryName(full)!;
        using var src = OpenSource(full);
        if (src is null && tail is null) return 0;

        uint uid = 0, gid = 0, mode = (uint)modeIfNew;
        var keepOwner = false;
        if (src is not null)
        {
            if (StatFd((int)src.DangerousGetHandle(), out var st) != 0) throw Fail(full, "cannot stat", Errno);
            (uid, gid, mode, keepOwner) = (st.Uid, st.Gid, st.Mode & 0xFFFu, true);
        }

        var temp = Path.Join(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        var fd = Libc.Open(AT_FDCWD, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0b110_000_000);
        if (fd < 0) throw Fail(temp, "cannot create", Errno);
        var renamed = false;
        try
        {
            using (var dst = new SafeFileHandle(fd, ownsHandle: true))
            {
                if (keepOwner && Fchown(fd, uid, gid) != 0) throw Fail(temp, "cannot set owner", Errno);
                if (Fchmod(fd, mode) != 0) throw Fail(temp, "cannot set mode", Errno);

                long written = 0;
                var changed = 0;
                var endsWithNewline = true;
                if (src is not null)
                {
                    var dropping = false;
                    Stream(src, (line, raw) =>
                    {
                        endsWithNewline = raw[^1] == '\n';
                        var continuation = line.Length > 0 && line[0] is (byte)' ' or (byte)'\t';
                        if (continuation ? !dropping : !selects(line))
                        {
                            dropping = false;
                            return null;
                        }
                        changed++;
                        if (continuation) return [];
                        var original = line.ToArray();
                        var replacement = edit(original);
                        dropping = replacement is null;
                        if (replacement is null) return [];
                        if (replacement.AsSpan().SequenceEqual(original)) { changed--; return null; }
                        return [.. replacement, .. raw[line.Length..]];
                    }, keep => Write(dst, keep, ref written));
                }
                var extra = tail?.Invoke() ?? [];
                if (extra.Count > 0)
                {
                    var text = new StringBuilder();
                    if (!endsWithNewline) text.Append('\n');
                    foreach (var line in extra) text.Append(line).Append('\n');
                    Write(dst, Encoding.UTF8.GetBytes(text.ToString()), ref written);
                    changed += extra.Count;
                }
                if (changed == 0) return 0;
                if (Fsync(fd) != 0) throw Fail(temp, "cannot fsync", Errno);
                File.Move(temp, full, overwrite: true); // rename(2): atomic within the folder
                renamed = true;
                FileWriter.SyncFolder(dir);
                return changed;
            }
        }
        finally
        {
            if (!renamed) File.Delete(temp);
        }
    }

    /// <summary>Sees one line (without and with its newline); returns null to keep it, or the bytes that replace it (empty: drop).</summary>
    private delegate byte[]? LineVisitor(ReadOnlySpan<byte> line, ReadOnlySpan<byte> raw);

    private delegate void KeepWriter(ReadOnlySpan<byte> kept);

    /// <summary>
    /// Reads the file in large chunks and shows each line to <paramref name="visit"/>. The output goes to
    /// <paramref name="keep"/> in order: runs of kept lines in one piece, replacements in between.
    /// </summary>
    private static void Stream(SafeFileHandle src, LineVisitor visit, KeepWriter? keep = null)
    {
        var buf = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            long offset = 0;
            var filled = 0;
            var eof = false;
            while (true)
            {
                if (!eof)
                {
                    var n = RandomAccess.Read(src, buf.AsSpan(filled), offset);
                    if (n == 0) eof = true;
                    offset += n;
                    filled += n;
                }
                int pos = 0, keepFrom = 0;
                while (pos < filled)
                {
                    var nl = buf.AsSpan(pos, filled - pos).IndexOf((byte)'\n');
                    if (nl < 0 && !eof) break;
                    var end = nl < 0 ? filled : pos + nl + 1;
                    var raw = buf.AsSpan(pos, end - pos);
                    if (visit(raw[..(nl < 0 ? raw.Length : nl)], raw) is { } replacement)
                    {
                        keep?.Invoke(buf.AsSpan(keepFrom, pos - keepFrom));
                        keep?.Invoke(replacement);
                        keepFrom = end;
                    }
                    pos = end;
                }
                keep?.Invoke(buf.AsSpan(keepFrom, pos - keepFrom));
                if (eof && pos == filled) return;
                buf.AsSpan(pos, filled - pos).CopyTo(buf);
                filled -= pos;
                if (filled == buf.Length) // one line longer than the buffer: grow
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(buf.Length * 2);
                    buf.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buf);
                    buf = bigger;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    private static void Write(SafeFileHandle dst, ReadOnlySpan<byte> bytes, ref long offset)
    {
        if (bytes.IsEmpty) return;
        RandomAccess.Write(dst, bytes, offset);
        offset += bytes.Length;
    }

    /// <summary>Opens the file without following a link; null when absent. Renaming over a link would replace it.</summary>
    private static SafeFileHandle? OpenSource(string full)
    {
        var fd = Libc.Open(AT_FDCWD, full, O_RDONLY | O_NOFOLLOW);
        if (fd >= 0) return new SafeFileHandle(fd, ownsHandle: true);
        var e = Errno;
        if (e == ENOENT) return null;
        if (e == ELOOP) throw new ResourceException($"{full} is a symbolic link: refusing to rewrite it");
        throw Fail(full, "cannot open", e);
    }

    /// <summary>
    /// Takes the lock file's flock. A busy lock is polled with a timer, not a sleeping thread: request paths (the API,
    /// the UI's circuits) wait here while another account's mail lines are rewritten.
    /// </summary>
    private static async Task<SafeFileHandle> LockAsync(string lockPath, CancellationToken ct)
    {
        var fd = Libc.Open(AT_FDCWD, lockPath, O_RDWR | O_CREAT | O_NOFOLLOW, 0b110_000_000);
        if (fd < 0) throw Fail(lockPath, "cannot open lock", Errno);
        var handle = new SafeFileHandle(fd, ownsHandle: true); // closing releases the flock
        var clock = Stopwatch.StartNew();
        while (Flock(fd, LOCK_EX | LOCK_NB) != 0)
        {
            var e = Errno;
            if (e is not (EAGAIN or EINTR)) { handle.Dispose(); throw Fail(lockPath, "cannot lock", e); }
            if (clock.Elapsed > LockTimeout)
            {
                handle.Dispose();
                throw new ResourceException($"{lockPath} is held by another writer for more than {LockTimeout.TotalSeconds:0} s");
            }
            try { await Task.Delay(5, ct); }
            catch (OperationCanceledException) { handle.Dispose(); throw; }
        }
        return handle;
    }

    private static ResourceException Fail(string path, string what, int errno) => new($"{path}: {what}: {Describe(errno)}");
}
