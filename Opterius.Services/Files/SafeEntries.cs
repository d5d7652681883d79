using System.Runtime.InteropServices;
using Opterius.Services.Resources;
using static Opterius.Services.Files.Libc;

namespace Opterius.Services.Files;

/// <summary>An entry directly in a folder: its path and whether it is a folder (a tree) or anything else.</summary>
public sealed record FolderEntry(string Path, bool IsFolder);

/// <summary>
/// Single entries of a shared folder (<c>/tmp</c>, <c>/var/mail</c>), found, measured and removed without
/// following a link: a folder entry is a <see cref="SafeTree"/>, anything else is unlinked itself.
/// </summary>
public static unsafe class SafeEntries
{
    /// <summary>The entries directly in <paramref name="folder"/> that <paramref name="uid"/> owns (never following a link); empty when it is absent.</summary>
    public static IReadOnlyList<FolderEntry> OwnedBy(string folder, uint uid)
    {
        var fd = Libc.Open(AT_FDCWD, folder, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
        {
            if (Errno is ENOENT or ENOTDIR) return [];
            throw new ResourceException($"{folder}: cannot open: {Describe(Errno)}");
        }
        var found = new List<FolderEntry>();
        try
        {
            SafeTree.ForEachEntry(fd, SafeTree.NewEntryBuffer(), (name, _) =>
            {
                if (StatAt(fd, name, out var st) == 0 && st.Uid == uid)
                    found.Add(new(Path.Join(folder, Marshal.PtrToStringUTF8((nint)name)), st.IsDirectory));
            }, errno => new ResourceException($"{folder}: cannot read folder: {Describe(errno)}"));
            return found;
        }
        finally { Close(fd); }
    }

    /// <summary>
    /// Removes one entry: a folder as a tree (<see cref="SafeTree.Remove"/>), anything else unlinked (a link itself,
    /// never what it points at). With <paramref name="owner"/>, an entry that uid does not own is refused. Null when absent.
    /// </summary>
    public static TreeRemoval? Remove(string path, uint? owner = null)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var parentFd = Libc.Open(AT_FDCWD, Path.GetDirectoryName(full)!, O_RDONLY | O_DIRECTORY);
        if (parentFd < 0)
        {
            if (Errno is ENOENT or ENOTDIR) return null;
            throw new ResourceException($"{full}: cannot open its folder: {Describe(Errno)}");
        }
        try
        {
            fixed (byte* n = Z(Path.GetFileName(full)))
            {
                if (StatAt(parentFd, n, out var st) != 0)
                    return Errno == ENOENT ? null : throw new ResourceException($"{full}: cannot stat: {Describe(Errno)}");
                if (owner is { } uid && st.Uid != uid)
                    throw new ResourceException($"{full} belongs to uid {st.Uid}, not {uid}: refusing to remove it");
                if (st.IsDirectory) return SafeTree.Remove(full, owner);
                if (UnlinkAt(parentFd, n, 0) == 0) return new TreeRemoval(1, 0);
                return Errno == ENOENT ? null : throw new ResourceException($"{full}: cannot remove: {Describe(Errno)}");
            }
        }
        finally { Close(parentFd); }
    }

    /// <summary>What one entry holds: a folder's tree, or one file and its size. Null when absent.</summary>
    public static TreeMeasure? Measure(string path)
    {
        var full = Path.GetFullPath(path);
        fixed (byte* p = Z(full))
        {
            if (StatAt(AT_FDCWD, p, out var st) != 0)
                return Errno is ENOENT or ENOTDIR ? null : throw new ResourceException($"{full}: cannot stat: {Describe(Errno)}");
            return st.IsDirectory ? SafeTree.Measure(full) : new TreeMeasure((long)st.Size, 1, 0);
        }
    }
}
