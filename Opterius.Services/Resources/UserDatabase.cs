using Opterius.Services.Accounts;

namespace Opterius.Services.Resources;

/// <summary>A line of the root's /etc/passwd.</summary>
public sealed record PasswdEntry(string Name, int Uid, int Gid, string Home, string Shell);

/// <summary>A line of the root's /etc/group.</summary>
public sealed record GroupEntry(string Name, int Gid, IReadOnlyList<string> Members);

/// <summary>
/// Reads the root's user database (/etc/passwd, /etc/group, /etc/shadow, /etc/login.defs). It never writes
/// them: the configured useradd, usermod, userdel and groupdel do. Every step that acts on a uid asks
/// <see cref="CheckedUid"/> first, so a uid that now belongs to another name is never touched.
/// </summary>
public static class UserDatabase
{
    public static IReadOnlyList<PasswdEntry> Users(ServerLayout layout) =>
        Fields(layout.Passwd, 7)
            .Where(f => int.TryParse(f[2], out _) && int.TryParse(f[3], out _))
            .Select(f => new PasswdEntry(f[0], int.Parse(f[2]), int.Parse(f[3]), f[5], f[6]))
            .ToList();

    public static IReadOnlyList<GroupEntry> Groups(ServerLayout layout) =>
        Fields(layout.Group, 4)
            .Where(f => int.TryParse(f[2], out _))
            .Select(f => new GroupEntry(f[0], int.Parse(f[2]), f[3].Split(',', StringSplitOptions.RemoveEmptyEntries)))
            .ToList();

    public static PasswdEntry? Find(ServerLayout layout, string username) => Users(layout).FirstOrDefault(u => u.Name == username);

    /// <summary>The user's /etc/shadow password field and expiry (days since 1970, null when none); null when it has no line.</summary>
    public static (string Password, long? ExpiresOnDay)? Shadow(ServerLayout layout, string username) =>
        Fields(layout.Shadow, 2).FirstOrDefault(f => f[0] == username) is { } f
            ? (f[1], f.Length > 7 && long.TryParse(f[7], out var day) ? day : null)
            : null;

    /// <summary>A number from login.defs (UID_MIN, UID_MAX...), or <paramref name="fallback"/> (useradd's own default).</summary>
    public static int LoginDefs(ServerLayout layout, string key, int fallback)
    {
        if (!File.Exists(layout.LoginDefs)) return fallback;
        foreach (var line in File.ReadLines(layout.LoginDefs))
        {
            var f = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f.Length >= 2 && f[0] == key && int.TryParse(f[1], out var value)) return value;
        }
        return fallback;
    }

    /// <summary>
    /// The account's stored uid, once it is certain it is still the account's; null when the account has none
    /// and no user has its name. Throws when the uid now belongs to another name, the name to another uid, or a
    /// user has the name of an account that stored no uid (it was not made by this account, e.g. an existing
    /// user a create refused): then nothing may be done in the uid's or the name's name.
    /// </summary>
    public static int? CheckedUid(ServerLayout layout, AccountIdentity account)
    {
        var users = Users(layout);
        var byName = users.FirstOrDefault(u => u.Name == account.Username);
        if (account.Uid is not { } uid)
            return byName is null
                ? null
                : throw new ResourceException($"the account stored no uid, so system user '{byName.Name}' (uid {byName.Uid}) is not provably its own: refusing to act on it");
        if (users.FirstOrDefault(u => u.Uid == uid && u.Name != account.Username) is { } other)
            throw new ResourceException($"uid {uid} now belongs to '{other.Name}', not to '{account.Username}': refusing to act on it");
        if (byName is not null && byName.Uid != uid)
            throw new ResourceException($"'{account.Username}' now has uid {byName.Uid}, not the account's uid {uid}: refusing to act on either");
        // No passwd line holds the uid any more (the user is gone): it is still the account's, as uids are never handed out twice.
        return uid;
    }

    private static IEnumerable<string[]> Fields(string path, int count) =>
        File.Exists(path)
            ? File.ReadLines(path).Select(l => l.Split(':')).Where(f => f.Length >= count && f[0].Length > 0)
            : [];
}
