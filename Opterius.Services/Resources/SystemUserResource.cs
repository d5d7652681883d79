using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's Linux user and its private group, made and removed by the configured <c>UserAdd</c>,
/// <c>UserDel</c> and <c>GroupDel</c> commands (<c>useradd -R {root}</c> in a sandbox) and read back from the
/// root's <c>/etc/passwd</c> and <c>/etc/group</c>. The home directory is the <c>home_directory</c> resource's,
/// never created here. Suspended users get <see cref="SuspendedShell"/>; unsuspend gives back <see cref="DefaultShell"/>.
/// </summary>
/// <remarks>
/// A uid is handed out once: <c>UserAdd</c> gets <c>{uid}</c>, chosen above every uid and gid of the root's
/// range (login.defs, <see cref="OpteriusOptions.MinUid"/>) and above every uid ever handed out, each of which
/// stays reserved as a file in <see cref="ServerLayout.UidLedger"/>, and never one a live process runs with (or,
/// on the real root, one NSS knows). So files and processes a deleted account left anywhere can never become a
/// later account's. The create path reserves the uid and stores it on the account before UserAdd runs. Removal kills the uid's processes right before
/// <c>userdel</c> and never runs it while one lives; the group named like the user goes with it whatever
/// login.defs says, unless it is another user's primary group.
/// </remarks>
public sealed class SystemUserResource(ServerLayout layout, CommandRunner commands, ProcessesResource processes, IOptions<OpteriusOptions> options)
    : IAccountResource, ISuspendableResource, ISystemUsers
{
    public string Key => "system_user";

    public const string SuspendedShell = "/usr/sbin/nologin";

    /// <summary>The shell every account is created with (the UserAdd command's <c>-s</c>), restored on unsuspend.</summary>
    public const string DefaultShell = "/bin/bash";

    /// <summary>The user's uid in the root's /etc/passwd, or null when there is no such user.</summary>
    public Task<int?> FindUidAsync(string username, CancellationToken ct = default) =>
        Task.FromResult(UserDatabase.Find(layout, username)?.Uid);

    /// <summary>The name that has <paramref name="uid"/> in the root's /etc/passwd, or null when none has.</summary>
    public Task<string?> FindNameAsync(int uid, CancellationToken ct = default) =>
        Task.FromResult(UserDatabase.Users(layout).FirstOrDefault(u => u.Uid == uid)?.Name);

    /// <summary>
    /// Reserves the uid the account's user will get, before anything is made, so the account stores it first: then
    /// whatever UserAdd leaves behind (a user made before it failed, a crash) is provably the account's and its undo
    /// or deletion can remove it. An existing user or group of the name is refused before any uid is reserved. The
    /// ledger file binds the uid to the account's username and domain, which is what the agent checks before it changes
    /// anything of an account.
    /// </summary>
    public Task<int> ReserveUidAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        ThrowUnlessUserAddConfigured();
        ThrowIfTaken(account.Username);
        return account.Uid is { } wanted && IsFreeAgainFor(wanted, account) ? wanted : ReserveUid(account.Username, account.Domain);
    }, ct);

    /// <summary>
    /// A uid asked for again (a restore asks for the archived account's): given back only when its ledger file names this
    /// same username and domain, so it was this account's, and no user, group or process has it now.
    /// </summary>
    private bool IsFreeAgainFor(int uid, AccountIdentity account) =>
        IsReservedFor(uid, account.Username, account.Domain)
        && !UserDatabase.Users(layout).Any(u => u.Uid == uid) && !UserDatabase.Groups(layout).Any(g => g.Gid == uid)
        && ProcessesResource.Running(uid).Count == 0
        && !(layout.Root == "/" && (Libc.KnowsUid(uid) || Libc.KnowsGid(uid)));

    /// <summary>
    /// Adds the user with the uid <see cref="ReserveUidAsync"/> reserved for its name (no home: home_directory makes
    /// it). An existing user of that name is refused, never adopted; a user UserAdd made with another uid is removed again.
    /// </summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var username = account.Identity.Username;
        ThrowUnlessUserAddConfigured();
        if (account.Identity.Uid is not { } uid || !IsReservedFor(uid, username, account.Identity.Domain))
            throw new ResourceException($"uid {account.Identity.Uid?.ToString() ?? "(none)"} was not reserved for '{username}' in {layout.UidLedger}: refusing to make the user");
        ThrowIfTaken(username);
        await RunAsync("UserAdd", new() { ["username"] = username, ["uid"] = uid.ToString() }, ct);
        var made = UserDatabase.Find(layout, username) ?? throw new ResourceException($"UserAdd finished but '{username}' is not in {layout.Passwd}");
        if (made.Uid == uid) return;
        // UserAdd succeeded where the name was free a moment ago, so this user is this create's even with the wrong uid.
        var wrong = $"UserAdd gave '{username}' uid {made.Uid}, not the uid {uid} it was asked for";
        if (!commands.IsConfigured("UserDel"))
            throw new ResourceException($"{wrong}; not configured: set Opterius:Commands:UserDel; the user is left in place");
        await RunAsync("UserDel", new() { ["username"] = username }, ct);
        throw new ResourceException($"{wrong}; the user was removed again");
    }

    private void ThrowUnlessUserAddConfigured()
    {
        if (!commands.IsConfigured("UserAdd"))
            throw new ResourceException("not configured: set Opterius:Commands:UserAdd; without it the account would have no Linux user and no uid");
        if (!commands.Uses("UserAdd", "{uid}"))
            throw new ResourceException("Opterius:Commands:UserAdd must pass the uid the panel chose ('-u', '{uid}'), so no uid is ever handed out twice");
    }

    private void ThrowIfTaken(string username)
    {
        if (UserDatabase.Find(layout, username) is { } existing)
            throw new AlreadyThereException($"a system user '{username}' (uid {existing.Uid}) already exists");
        if (UserDatabase.Groups(layout).FirstOrDefault(g => g.Name == username) is { } group)
            throw new AlreadyThereException($"a group '{username}' (gid {group.Gid}) already exists");
    }

    /// <summary>
    /// Whether the uid ledger hands <paramref name="uid"/> to <paramref name="username"/>: the panel reserved it for
    /// that name. A user made any other way (the operator's own login) has no such file and is never the panel's.
    /// </summary>
    public bool IsReservedFor(int uid, string username, string domain)
    {
        var path = Path.Join(layout.UidLedger, uid.ToString());
        try { return File.ReadAllText(path) == LedgerLine(username, domain); }
        catch (IOException) { return false; }
    }

    private static string LedgerLine(string username, string domain) => $"{username} {domain}\n";

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        // What is there is reported as it is; whether it is provably the account's is the removal's to check.
        var entry = UserDatabase.Find(layout, account.Username);
        var group = PrivateGroup(account.Username);
        var items = new List<string>();
        if (entry is not null) items.Add($"{entry.Name} (uid {entry.Uid})");
        if (group is not null) items.Add($"group {group.Name} (gid {group.Gid})");
        if (items.Count == 0) return ResourceInspection.Nothing(Key, $"no system user {account.Username}");
        var summary = entry is null
            ? $"system user {account.Username} (uid {UserDatabase.CheckedUid(layout, account)}) gone, its group {group!.Name} left"
            : $"system user {entry.Name}, uid {entry.Uid}{(entry.Shell == SuspendedShell ? ", login disabled" : "")}";
        return new ResourceInspection(Key, true, items, 0, items.Count, summary);
    }, ct);

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        var name = account.Username;
        var entry = UserDatabase.Find(layout, name);
        // Right before userdel, and never userdel while one lives: KillAllAsync throws when any outlives it.
        var killed = uid is { } u ? await processes.KillAllAsync(u, ct) : 0;
        var done = new List<string>();
        if (killed > 0) done.Add($"{ProcessesResource.Count(killed)} of uid {uid} killed before userdel");
        if (entry is not null)
        {
            if (!commands.IsConfigured("UserDel"))
                throw new ResourceException($"not configured: set Opterius:Commands:UserDel; system user {name} (uid {entry.Uid}) left in place");
            await RunAsync("UserDel", new() { ["username"] = name }, ct);
            if (UserDatabase.Find(layout, name) is not null)
                throw new ResourceException($"UserDel finished but '{name}' is still in {layout.Passwd}");
            done.Insert(0, $"system user {name} (uid {entry.Uid}) removed");
            // userdel -R cannot see the real machine's processes; one that slipped in meanwhile goes now.
            if (await processes.KillAllAsync(entry.Uid, ct) is > 0 and var late) done.Add($"{ProcessesResource.Count(late)} that appeared during userdel killed");
        }
        if (entry is not null && UserDatabase.Groups(layout).FirstOrDefault(g => g.Name == name) is { } kept && PrivateGroup(name) is null)
        {
            // Another user's primary group: theirs now, not the account's, so it stays and the step says so.
            var holders = UserDatabase.Users(layout).Where(u => u.Gid == kept.Gid && u.Name != name).Select(u => u.Name);
            done.Add($"group {name} kept: primary group of {string.Join(", ", holders)} (gid {kept.Gid})");
        }
        else if (PrivateGroup(name) is { } group)
        {
            if (!commands.IsConfigured("GroupDel"))
                throw new ResourceException($"not configured: set Opterius:Commands:GroupDel; group {name} (gid {group.Gid}) left in place");
            await RunAsync("GroupDel", new() { ["username"] = name }, ct);
            if (UserDatabase.Groups(layout).Any(g => g.Name == name))
                throw new ResourceException($"GroupDel finished but group '{name}' is still in {layout.Group}");
            done.Add($"group {name} (gid {group.Gid}) removed" + (group.Members.Count > 0 ? $"; it had members {string.Join(", ", group.Members)}" : ""));
        }
        else if (entry is not null) done.Add($"group {name} removed by userdel");
        return done.Count == 0 ? RemoveOutcome.Skipped($"no system user {name}") : RemoveOutcome.Done(string.Join("; ", done));
    }

    public Task SuspendAsync(AccountIdentity account, CancellationToken ct) => SetShellAsync(account, SuspendedShell, ct);

    public Task UnsuspendAsync(AccountIdentity account, CancellationToken ct) => SetShellAsync(account, DefaultShell, ct);

    private async Task SetShellAsync(AccountIdentity account, string shell, CancellationToken ct)
    {
        var entry = UserDatabase.Find(layout, account.Username);
        // Unsuspend only undoes a suspension: a shell someone else chose since is left alone.
        if (entry is null || entry.Shell == shell || (shell == DefaultShell && entry.Shell != SuspendedShell)) return;
        if (!commands.IsConfigured("UserMod"))
            throw new ResourceException($"Opterius:Commands:UserMod not set; cannot set the shell of {entry.Name} to {shell}");
        await RunAsync("UserMod", new() { ["username"] = entry.Name, ["shell"] = shell }, ct);
    }

    /// <summary>
    /// The group named like the user, unless it is another user's primary group (then it is theirs, not the
    /// account's: it stays). useradd refuses to make a user whose name a group already has, so this group was
    /// made with the account or after it under its name; members it was given go with it.
    /// </summary>
    private GroupEntry? PrivateGroup(string username) =>
        UserDatabase.Groups(layout).FirstOrDefault(g => g.Name == username) is { } group
        && !UserDatabase.Users(layout).Any(u => u.Gid == group.Gid && u.Name != username)
            ? group
            : null;

    /// <summary>
    /// Reserves the next uid: above every uid and gid of the root's range and above every uid ever reserved,
    /// by creating its ledger file (O_EXCL), so two creates at once never get the same one.
    /// </summary>
    private int ReserveUid(string username, string domain)
    {
        var low = Math.Max(options.Value.MinUid, Math.Max(UserDatabase.LoginDefs(layout, "UID_MIN", 1000), UserDatabase.LoginDefs(layout, "GID_MIN", 1000)));
        var high = Math.Min(UserDatabase.LoginDefs(layout, "UID_MAX", 60000), UserDatabase.LoginDefs(layout, "GID_MAX", 60000));
        Directory.CreateDirectory(layout.UidLedger, (UnixFileMode)0b111_000_000);
        var used = UserDatabase.Users(layout).Select(u => u.Uid)
            .Concat(UserDatabase.Groups(layout).Select(g => g.Gid))
            .Concat(Directory.EnumerateFileSystemEntries(layout.UidLedger).Select(p => int.TryParse(Path.GetFileName(p), out var n) ? n : 0))
            .Where(n => n >= low && n <= high)
            .DefaultIfEmpty(low - 1)
            .Max();
        for (var uid = used + 1; uid <= high; uid++)
        {
            // A uid something still runs or is known with is not free, whatever the root's passwd says: the sandbox's
            // passwd knows none of the host's processes, and production's NSS users need not be in /etc/passwd.
            if (ProcessesResource.Running(uid).Count > 0 || (layout.Root == "/" && (Libc.KnowsUid(uid) || Libc.KnowsGid(uid)))) continue;
            var path = Path.Join(layout.UidLedger, uid.ToString());
            try
            {
                using var reserved = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = (UnixFileMode)0b110_000_000,
                });
                reserved.Write(System.Text.Encoding.UTF8.GetBytes(LedgerLine(username, domain)));
                reserved.Flush(flushToDisk: true);
                return uid;
            }
            catch (IOException) when (ServiceConfigFiles.IsAnythingAt(path)) { } // reserved by a create running at the same time
        }
        throw new ResourceException($"no uid left for '{username}': every uid from {low} to {high} (login.defs UID_MAX/GID_MAX) is or was in use");
    }

    private Task<CommandResult?> RunAsync(string command, Dictionary<string, string> values, CancellationToken ct) =>
        ResourceException.WhenCommandFails(() => commands.RunAsync(command, values, ct));

}

/// <summary>
/// The server's user database as the create path needs it: the uid a new account's user will get. In process it
/// is <see cref="SystemUserResource"/>; a panel that uses the agent asks the agent.
/// </summary>
public interface ISystemUsers
{
    /// <summary>The key of the resource that makes the users (the create path reserves the uid before that step runs).</summary>
    string Key { get; }

    /// <summary>
    /// Reserves the uid a new account's user will get, bound to its username and domain; refuses a name a user or group
    /// already has. An identity with a uid asks for that uid again (a restore): given only when the ledger binds it to
    /// the same names and nothing has it, else a new one.
    /// </summary>
    Task<int> ReserveUidAsync(AccountIdentity account, CancellationToken ct);
}
