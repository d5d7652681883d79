using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's crontab, <c>/var/spool/cron/crontabs/{username}</c>, owned by the user, mode 600 as
/// <c>crontab(1)</c> leaves it. Removing it stops the account's scheduled jobs.
/// </summary>
public sealed class CronResource(ServerLayout layout) : IAccountResource
{
    public string Key => "cron";

    /// <summary>The demo's sample job; an existing crontab is refused, never replaced.</summary>
    public Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var path = layout.Crontab(a);
        if (ServiceConfigFiles.IsAnythingAt(path))
            throw new AlreadyThereException($"{path} already exists; it is left as it is");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!); // the spool's own mode and group are the system's
        // One write of a file that was not there: if it fails, what it left is this create's, so it goes.
        try { Write(a, path); }
        catch
        {
            if (ServiceConfigFiles.IsPresent(path)) File.Delete(path);
            throw;
        }
        return Task.CompletedTask;
    }

    private void Write(AccountIdentity a, string path) =>
        FileWriter.Write(path, $"""
            # crontab of {a.Username} ({a.Domain}), made by Opterius Panel
            MAILTO=""
            # m h dom mon dow command
            */15 * * * * php {layout.Home(a)}/public_html/index.php > /dev/null 2>&1

            """, (UnixFileMode)0b110_000_000, FileOwner.ForAccount(layout.Passwd, a.Username, a.Uid));

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var path = layout.Crontab(account);
        var info = new FileInfo(path);
        if (!info.Exists && info.LinkTarget is null) return ResourceInspection.Nothing(Key, $"nothing there: no crontab for {account.Username}");
        if (info.LinkTarget is not null) return new(Key, true, [path], 0, 0, $"{path} is a symbolic link (removed as a link)");
        var jobs = (await File.ReadAllLinesAsync(path, ct)).Count(IsJob);
        return new(Key, true, [path], info.Length, jobs, $"crontab of {account.Username}: {jobs} job{(jobs == 1 ? "" : "s")}");
    }

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var path = layout.Crontab(account);
        var info = new FileInfo(path);
        if (Directory.Exists(path) && info.LinkTarget is null) throw new ResourceException($"{path} is a folder, not a crontab");
        if (!info.Exists && info.LinkTarget is null)
            return Task.FromResult(RemoveOutcome.Skipped($"nothing there: no crontab for {account.Username}"));
        File.Delete(path); // unlink: a link is removed itself, never its target
        return Task.FromResult(RemoveOutcome.Done($"removed {path}"));
    }

    // A job line starts with a schedule (digits, '*', '@reboot'...); the rest are comments and variables.
    private static bool IsJob(string line)
    {
        var t = line.TrimStart();
        return t.Length > 0 && (char.IsAsciiDigit(t[0]) || t[0] is '*' or '@');
    }
}
