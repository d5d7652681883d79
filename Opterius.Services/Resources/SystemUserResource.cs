using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's Linux user and its group, made and removed by the configured <c>UserAdd</c> and
/// <c>UserDel</c> commands (<c>useradd -R {root}</c> in a sandbox) and read back from the root's
/// <c>/etc/passwd</c>. The home directory is the <c>home_directory</c> resource's, never created here.
/// Suspended users get <see cref="SuspendedShell"/>; unsuspend gives back <see cref="DefaultShell"/>.
/// </summary>
public sealed class SystemUserResource(ServerLayout layout, CommandRunner commands) : IAccountResource, ISuspendableResource, ISystemUsers
{
    public string Key => "system_user";

    public const string SuspendedShell = "/usr/sbin/nologin";

    /// <summary>The shell every account is created with (the UserAdd command's <c>-s</c>), restored on unsuspend.</summary>
    public const string DefaultShell = "/bin/bash";

    private sealed record PasswdEntry(string Name, int Uid, int Gid, string Home, string Shell);

    /// <summary>The user's uid in the root's /etc/passwd, or null when there is no such user.</summary>
    public async Task<int?> FindUidAsync(string username, CancellationToken ct = default) =>
        (await FindAsync(username, ct))?.Uid;

    /// <summary>The name that has <paramref name="uid"/> in the root's /etc/passwd, or null when none has.</summary>
    public async Task<string?> FindNameAsync(int uid, CancellationToken ct = default) =>
        (await EntriesAsync(ct)).FirstOrDefault(e => e.Uid == uid)?.Name;

    /// <summary>Adds the user (no home: home_directory makes it). An existing user of that name is refused, never adopted.</summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var username = account.Identity.Username;
        if (!commands.IsConfigured("UserAdd")) return;
        if (await FindAsync(username, ct) is { } existing)
            throw new ResourceException($"a system user '{username}' (uid {existing.Uid}) already exists");
        await RunAsync("UserAdd", username, null, ct);
        if (await FindAsync(username, ct) is null)
            throw new ResourceException($"UserAdd finished but '{username}' is not in {layout.Passwd}");
    }

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var entry = await FindAsync(account.Username, ct);
        if (entry is null) return ResourceInspection.Nothing(Key, $"no system user {account.Username}");
        return new(Key, true, [$"{entry.Name} (uid {entry.Uid})"], 0, 1,
            $"system user {entry.Name}, uid {entry.Uid}{(entry.Shell == SuspendedShell ? ", login disabled" : "")}");
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var entry = await FindAsync(account.Username, ct);
        if (entry is null) return RemoveOutcome.Skipped($"no system user {account.Username}");
        if (!commands.IsConfigured("UserDel"))
            return RemoveOutcome.Skipped($"Opterius:Commands:UserDel not set; system user {entry.Name} (uid {entry.Uid}) left in place");
        await RunAsync("UserDel", entry.Name, null, ct);
        if (await FindAsync(entry.Name, ct) is not null)
            throw new ResourceException($"UserDel finished but '{entry.Name}' is still in {layout.Passwd}");
        return RemoveOutcome.Done($"system user {entry.Name} (uid {entry.Uid}) and its group removed");
    }

    public Task SuspendAsync(AccountIdentity account, CancellationToken ct) => SetShellAsync(account, SuspendedShell, ct);

    public Task UnsuspendAsync(AccountIdentity account, CancellationToken ct) => SetShellAsync(account, DefaultShell, ct);

    private async Task SetShellAsync(AccountIdentity account, string shell, CancellationToken ct)
    {
        var entry = await FindAsync(account.Username, ct);
        // Unsuspend only undoes a suspension: a shell someone else chose since is left alone.
        if (entry is null || entry.Shell == shell || (shell == DefaultShell && entry.Shell != SuspendedShell)) return;
        if (!commands.IsConfigured("UserMod"))
            throw new ResourceException($"Opterius:Commands:UserMod not set; cannot set the shell of {entry.Name} to {shell}");
        await RunAsync("UserMod", entry.Name, shell, ct);
    }

    private async Task RunAsync(string command, string username, string? shell, CancellationToken ct)
    {
        var values = new Dictionary<string, string> { ["username"] = username };
        if (shell is not null) values["shell"] = shell;
        try { await commands.RunAsync(command, values, ct); }
        catch (CommandFailedException e) { throw new ResourceException(e.Message, e); }
    }

    private async Task<PasswdEntry?> FindAsync(string username, CancellationToken ct) =>
        (await EntriesAsync(ct)).FirstOrDefault(e => e.Name == username);

    private async Task<IEnumerable<PasswdEntry>> EntriesAsync(CancellationToken ct)
    {
        if (!File.Exists(layout.Passwd)) return [];
        var entries = new List<PasswdEntry>();
        foreach (var line in await File.ReadAllLinesAsync(layout.Passwd, ct))
        {
            var f = line.Split(':');
            if (f.Length >= 7 && int.TryParse(f[2], out var uid) && int.TryParse(f[3], out var gid))
                entries.Add(new(f[0], uid, gid, f[5], f[6]));
        }
        return entries;
    }
}

/// <summary>
/// The server's user database as the create path needs it: the uid a new account's user was given. In process it
/// is <see cref="SystemUserResource"/>; a panel that uses the agent asks the agent.
/// </summary>
public interface ISystemUsers
{
    /// <summary>The key of the resource that makes the users (the create path asks once that step has run).</summary>
    string Key { get; }

    Task<int?> FindUidAsync(string username, CancellationToken ct = default);
}
