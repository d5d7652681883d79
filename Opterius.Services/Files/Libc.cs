using System.Runtime.InteropServices;

namespace Opterius.Services.Files;

/// <summary>
/// The few libc calls the file primitives need. .NET's managed file API resolves full paths at every step;
/// these work relative to directory descriptors, so a tenant swapping a folder for a link cannot redirect them.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc.so.6";

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_REMOVEDIR = 0x200;
    public const int AT_EMPTY_PATH = 0x1000;

    public const int O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2;
    public const int O_CREAT = 0x40, O_EXCL = 0x80, O_TRUNC = 0x200, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;

    // These two differ between x86-64 and the generic (arm64) ABI.
    public static readonly int O_DIRECTORY = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x10000 : 0x4000;
    public static readonly int O_NOFOLLOW = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 0x20000 : 0x8000;

    public const int LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;

    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EAGAIN = 11, EBUSY = 16, EEXIST = 17, ENOTDIR = 20, EISDIR = 21,
        EINVAL = 22, ENOTEMPTY = 39, ELOOP = 40;

    public const byte DT_UNKNOWN = 0, DT_DIR = 4, DT_REG = 8, DT_LNK = 10;

    public const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_IFREG = 0x8000;

    private const uint STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_UID = 0x8, STATX_GID = 0x10, STATX_INO = 0x100,
        STATX_SIZE = 0x200, STATX_MTIME = 0x40;
    public const uint STATX_MNT_ID = 0x1000;
    private const uint StatxMask = STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO | STATX_SIZE | STATX_MTIME | STATX_MNT_ID;

    /// <summary>struct statx: the same layout on every Linux architecture, unlike struct stat.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(16)] public uint Nlink;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Ino;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(112)] public long MtimeSeconds;
        [FieldOffset(120)] public uint MtimeNanoseconds;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
        [FieldOffset(144)] public ulong MountIdField;

        public readonly uint Type => Mode & S_IFMT;
        public readonly bool IsDirectory => Type == S_IFDIR;
        public readonly bool IsSymlink => Type == S_IFLNK;
        public readonly ulong Device => ((ulong)DevMajor << 32) | DevMinor;

        /// <summary>
        /// The mount the entry is on (Linux 5.8+). Unlike <see cref="Device"/> it tells a bind mount of the same file
        /// system apart; null when the kernel did not report it.
        /// </summary>
        public readonly ulong? MountId => (Mask & STATX_MNT_ID) != 0 ? MountIdField : null;
    }

    [LibraryImport(Lib, EntryPoint = "openat", SetLastError = true)]
    public static partial int OpenAt(int dirfd, byte* path, int flags, uint mode);

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "getdents64", SetLastError = true)]
    public static partial nint GetDents64(int fd, byte* buffer, nuint count);

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true)]
    private static partial int StatxCall(int dirfd, byte* path, int flags, uint mask, Statx* buffer);

    [LibraryImport(Lib, EntryPoint = "readlinkat", SetLastError = true)]
    private static partial nint ReadLinkAtCall(int dirfd, byte* path, byte* buffer, nuint size);

    /// <summary>The target text of the link <paramref name="name"/> in the folder open at <paramref name="dirfd"/>; null (errno set) when it is no link.</summary>
    public static string? ReadLinkAt(int dirfd, byte* name)
    {
        // PATH_MAX: Linux refuses to store a longer target.
        var buffer = stackalloc byte[4096];
        var n = ReadLinkAtCall(dirfd, name, buffer, 4096);
        return n < 0 ? null : System.Text.Encoding.UTF8.GetString(buffer, (int)n);
    }

    [LibraryImport(Lib, EntryPoint = "unlinkat", SetLastError = true)]
    public static partial int UnlinkAt(int dirfd, byte* path, int flags);

    [LibraryImport(Lib, EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport(Lib, EntryPoint = "fchown", SetLastError = true)]
    public static partial int Fchown(int fd, uint uid, uint gid);

    [LibraryImport(Lib, EntryPoint = "fchmod", SetLastError = true)]
    public static partial int Fchmod(int fd, uint mode);

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(Lib, EntryPoint = "renameat", SetLastError = true)]
    public static partial int RenameAt(int olddirfd, byte* oldpath, int newdirfd, byte* newpath);

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>statx of a name relative to a directory, never following a final link; returns 0 or -1 (errno).</summary>
    public static int StatAt(int dirfd, byte* name, out Statx st)
    {
        fixed (Statx* p = &st) return StatxCall(dirfd, name, AT_SYMLINK_NOFOLLOW, StatxMask, p);
    }

    /// <summary>statx of a path, following links (for comparing identities only, never to act on what it finds).</summary>
    public static int StatFollowing(string path, out Statx st)
    {
        fixed (byte* p = Z(path))
        fixed (Statx* b = &st) return StatxCall(AT_FDCWD, p, 0, StatxMask, b);
    }

    /// <summary>statx of an open descriptor.</summary>
    public static int StatFd(int fd, out Statx st)
    {
        byte empty = 0;
        fixed (Statx* p = &st) return StatxCall(fd, &empty, AT_EMPTY_PATH, StatxMask, p);
    }

    /// <summary>A NUL-terminated UTF-8 copy of a path for the calls above.</summary>
    public static byte[] Z(string path)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(path) + 1];
        System.Text.Encoding.UTF8.GetBytes(path, bytes);
        return bytes;
    }

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    /// <summary>Opens a path with the given flags (relative to a directory descriptor or AT_FDCWD).</summary>
    public static int Open(int dirfd, string path, int flags, uint mode = 0)
    {
        fixed (byte* p = Z(path)) return OpenAt(dirfd, p, flags | O_CLOEXEC, mode);
    }

    [LibraryImport(Lib, EntryPoint = "realpath", SetLastError = true)]
    private static partial nint RealPathCall(byte* path, byte* resolved);

    [LibraryImport(Lib, EntryPoint = "free")]
    private static partial void Free(nint pointer);

    [LibraryImport(Lib, EntryPoint = "getpwuid_r")]
    private static partial int GetPwUidR(uint uid, byte* pwd, byte* buffer, nuint length, nint* result);

    [LibraryImport(Lib, EntryPoint = "getgrgid_r")]
    private static partial int GetGrGidR(uint gid, byte* grp, byte* buffer, nuint length, nint* result);

    private const int ERANGE = 34, ESRCH = 3;

    /// <summary>The path with every link resolved (for comparing places only, never to act on); null when it does not lead anywhere.</summary>
    public static string? RealPath(string path)
    {
        nint resolved;
        fixed (byte* p = Z(path)) resolved = RealPathCall(p, null);
        if (resolved == 0) return null;
        try { return Marshal.PtrToStringUTF8(resolved); }
        finally { Free(resolved); }
    }

    /// <summary>Whether the machine's user database (NSS: files, LDAP, systemd...) knows the uid.</summary>
    public static bool KnowsUid(int uid) => Knows((entry, buffer, length, result) => GetPwUidR((uint)uid, entry, buffer, length, result));

    /// <summary>Whether the machine's group database (NSS) knows the gid.</summary>
    public static bool KnowsGid(int gid) => Knows((entry, buffer, length, result) => GetGrGidR((uint)gid, entry, buffer, length, result));

    private delegate int LookUp(byte* entry, byte* buffer, nuint length, nint* result);

    private static bool Knows(LookUp lookUp)
    {
        var entry = stackalloc byte[64]; // struct passwd is 48 bytes, struct group 32, on 64-bit Linux
        for (var length = 16 * 1024; ; length *= 2)
        {
            var buffer = new byte[length];
            nint result;
            int error;
            fixed (byte* b = buffer) error = lookUp(entry, b, (nuint)length, &result);
            if (error == ERANGE && length < 16 * 1024 * 1024) continue;
            // Some NSS modules say "no such entry" with an error rather than a null result.
            if (error is ENOENT or ESRCH) return false;
            if (error != 0) throw new IOException($"cannot read the user database: {Describe(error)}");
            return result != 0;
        }
    }
}
