using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Opterius.Web.Agent;

/// <summary>
/// The host's users as the agent's socket needs them: who a peer is (<c>SO_PEERCRED</c>) and what uid and group
/// a configured user name has (<c>getpwnam</c>, the host's NSS, not the sandbox root's passwd).
/// </summary>
internal static partial class UnixUsers
{
    private const string Lib = "libc.so.6";
    private const int SolSocket = 1, SoPeerCred = 17;

    public sealed record UnixUser(string Name, int Uid, int Gid);

    /// <summary>The peer's pid and uid from the kernel (struct ucred: pid, uid, gid), or null when the socket has none.</summary>
    public static (int Pid, int Uid)? Peer(Socket? socket)
    {
        if (socket is null) return null;
        var cred = new byte[12];
        return socket.GetRawSocketOption(SolSocket, SoPeerCred, cred) == 12
            ? (BitConverter.ToInt32(cred, 0), BitConverter.ToInt32(cred, 4))
            : null;
    }

    /// <summary>The user named <paramref name="name"/> in the host's user database, or null.</summary>
    public static UnixUser? Find(string name)
    {
        var entry = GetPwNam(name);
        // struct passwd: pw_name, pw_passwd (pointers), then pw_uid and pw_gid.
        return entry == IntPtr.Zero ? null : new(name, Marshal.ReadInt32(entry, 2 * IntPtr.Size), Marshal.ReadInt32(entry, 2 * IntPtr.Size + 4));
    }

    /// <summary>Gives <paramref name="path"/> this group, keeping its owner.</summary>
    public static void SetGroup(string path, int gid)
    {
        if (Chown(path, -1, gid) != 0)
            throw new IOException($"cannot set the group of {path} to {gid}: errno {Marshal.GetLastPInvokeError()}");
    }

    [LibraryImport(Lib, EntryPoint = "getpwnam", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetPwNam(string name);

    [LibraryImport(Lib, EntryPoint = "chown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Chown(string path, int owner, int group);
}
