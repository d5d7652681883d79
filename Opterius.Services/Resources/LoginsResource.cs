using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// Whether the account's Linux user can still log in: the first step of a deletion, so no tenant gets a new
/// process in while the rest is removed. Locking runs <c>UserLock</c> (<c>usermod -L -e 1 -s /usr/sbin/nologin</c>):
/// password locked, account expired (PAM then refuses SSH keys too) and shell <c>nologin</c>. Logins count as
/// open while any of the three is missing. The user itself goes in <c>system_user</c>.
/// </summary>
public sealed class LoginsResource(ServerLayout layout, CommandRunner commands) : IAccountResource
{
    public string Key => "logins";

    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => Task.CompletedTask;

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        UserDatabase.CheckedUid(layout, account);
        if (UserDatabase.Find(layout, account.Username) is not { } user) return ResourceInspection.Nothing(Key, $"no system user {account.Username}");
        return OpenWays(user) is { Count: > 0 } open
            ? new ResourceInspection(Key, true, [user.Name], 0, 1, $"logins of {user.Name} open: {string.Join(", ", open)}")
            : ResourceInspection.Nothing(Key, $"logins of {user.Name} locked");
    }, ct);

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        UserDatabase.CheckedUid(layout, account);
        if (UserDatabase.Find(layout, account.Username) is not { } user) return RemoveOutcome.Skipped($"no system user {account.Username}");
        var open = OpenWays(user);
        if (open.Count == 0) return RemoveOutcome.Skipped($"logins of {user.Name} already locked");
        if (!commands.IsConfigured("UserLock"))
            throw new ResourceException($"not configured: set Opterius:Commands:UserLock; logins of {user.Name} left open ({string.Join(", ", open)})");
        await ResourceException.WhenCommandFails(() => commands.RunAsync("UserLock", new Dictionary<string, string> { ["username"] = user.Name }, ct));
        if (UserDatabase.Find(layout, user.Name) is { } after && OpenWays(after) is { Count: > 0 } still)
            throw new ResourceException($"UserLock finished but logins of {user.Name} are still open: {string.Join(", ", still)}");
        return RemoveOutcome.Done($"logins of {user.Name} locked: password locked, account expired, shell {SystemUserResource.SuspendedShell} (was: {string.Join(", ", open)})");
    }

    private List<string> OpenWays(PasswdEntry user)
    {
        var open = new List<string>();
        if (Path.GetFileName(user.Shell) is not ("nologin" or "false")) open.Add($"shell {user.Shell}");
        var shadow = UserDatabase.Shadow(layout, user.Name);
        if (shadow is not { Password: var password } || !password.StartsWith('!')) open.Add("password not locked");
        // An expired account is refused by PAM for every way in, SSH keys included, which a locked password alone is not.
        if (shadow?.ExpiresOnDay is not { } day || day > DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 86400) open.Add("account not expired");
        return open;
    }
}
