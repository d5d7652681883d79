using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's home, <c>/home/{username}/</c>, with its web root <c>public_html/</c>. Removal is a
/// <see cref="SafeTree"/> walk: the tenant owns everything inside, so nothing in it is trusted, not even
/// while it is being deleted.
/// </summary>
public sealed class HomeDirectoryResource(ServerLayout layout) : IAccountResource, IReportsRemovalProgress
{
    public string Key => "home_directory";

    private const UnixFileMode Traversable = (UnixFileMode)0b111_001_001;   // 0711: nginx may pass, not list
    private const UnixFileMode Public = (UnixFileMode)0b111_101_101;        // 0755
    private const UnixFileMode Private = (UnixFileMode)0b111_000_000;       // 0700
    private const UnixFileMode Readable = (UnixFileMode)0b110_100_100;      // 0644

    /// <summary>Makes the home with its placeholder site; an existing home is refused, a failure half-way removes it.</summary>
    public Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var home = layout.Home(a);
        if (ServiceConfigFiles.IsAnythingAt(home))
            throw new AlreadyThereException($"{home} already exists; it is left as it is");
        try { Make(a, home); }
        catch
        {
            SafeTree.Remove(home);
            throw;
        }
        return Task.CompletedTask;
    }

    private void Make(AccountIdentity a, string home)
    {
        var owner = FileOwner.ForAccount(layout.Passwd, a.Username, a.Uid);
        FileWriter.MakeDirectory(home, Traversable, owner);
        FileWriter.MakeDirectory(Path.Join(home, "public_html"), Public, owner);
        FileWriter.MakeDirectory(Path.Join(home, "logs"), Private, owner);
        FileWriter.MakeDirectory(Path.Join(home, "tmp"), Private, owner);
        FileWriter.Write(Path.Join(home, "public_html", "index.php"), IndexPhp(a), Readable, owner);
        FileWriter.Write(Path.Join(home, "public_html", "robots.txt"), "User-agent: *\nDisallow:\n", Readable, owner);
        FileWriter.Write(Path.Join(home, ".profile"), "# ~/.profile of a hosting account\nexport PATH=\"$HOME/bin:$PATH\"\n", Readable, owner);
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var home = layout.Home(account);
        if (SafeTree.Measure(home) is not { } m) return ResourceInspection.Nothing(Key, $"nothing there: {home} does not exist");
        PlannedTrees.Remember(home, m);
        var mounts = m.MountPoints.Count == 0 ? "" : $"; {m.MountPoints.Count} mount point(s) inside will not be crossed: {string.Join(", ", m.MountPoints)}";
        return new ResourceInspection(Key, true, [home], m.Bytes, m.Files,
            $"{home}: {m.Files} files in {m.Directories} folders, {ByteSize.Human(m.Bytes)}{mounts}");
    }, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => Remove(account, null, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, Action<RemovalProgress> progress, CancellationToken ct) =>
        Remove(account, progress, ct);

    private Task<RemoveOutcome> Remove(AccountIdentity account, Action<RemovalProgress>? progress, CancellationToken ct) => Task.Run(() =>
    {
        var home = layout.Home(account);
        if (!Path.Exists(home) && new FileInfo(home).LinkTarget is null) return RemoveOutcome.Skipped($"nothing there: {home} does not exist");
        var uid = UserDatabase.CheckedUid(layout, account)
            ?? throw new ResourceException($"no uid is known for {account.Username}: cannot tell that {home} is its own, refusing to remove it");
        RefuseIfAnotherAccountsHome(account, home);
        return SafeTree.Remove(home, owner: (uint)uid, progress is null ? null : PlannedTrees.Reporting(home, progress), SafeTree.RemovalWorkers) is { } r
            ? RemoveOutcome.Done($"removed {home}: {r.Files} files, {r.Directories} folders")
            : RemoveOutcome.Skipped($"nothing there: {home} does not exist");
    }, ct);

    /// <summary>
    /// Another passwd entry whose home is this folder (by path or by inode) or lies inside it, as written or once its
    /// links are resolved (<c>/home/dave</c> a link to <c>/home/bob/x</c>): removing it would remove theirs.
    /// </summary>
    private void RefuseIfAnotherAccountsHome(AccountIdentity account, string home)
    {
        var here = Identify(home);
        var real = Libc.RealPath(home);
        foreach (var user in UserDatabase.Users(layout).Where(u => u.Name != account.Username && u.Home.StartsWith('/')))
        {
            var theirs = Path.TrimEndingDirectorySeparator(Path.GetFullPath(layout.Under(user.Home)));
            var who = $"'{user.Name}' (uid {user.Uid}, home {user.Home})";
            if (theirs == home || (here is not null && Identify(theirs) == here))
                throw new ResourceException($"{home} is also the home of {who}: refusing to remove it");
            if (Inside(theirs, home) || (real is not null && Libc.RealPath(theirs) is { } theirsReal && Inside(theirsReal, real)))
                throw new ResourceException($"{home} holds the home of {who}: refusing to remove it");
        }
    }

    private static bool Inside(string path, string folder) => path.StartsWith(folder + "/", StringComparison.Ordinal);

    /// <summary>The device and inode a path leads to (following links: only compared, never acted on); null when absent.</summary>
    private static (ulong Device, ulong Ino)? Identify(string path) =>
        Libc.StatFollowing(path, out var st) == 0 ? (st.Device, st.Ino) : null;

    private static string IndexPhp(AccountIdentity a) => $$"""
        <?php
        // Placeholder page of {{a.Domain}}, made by Opterius Panel. Replace it with the site.
        $domain = '{{a.Domain}}';
        ?>
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title><?= htmlspecialchars($domain) ?></title></head>
        <body>
        <h1><?= htmlspecialchars($domain) ?></h1>
        <p>This site is hosted by Opterius Panel and runs PHP <?= PHP_VERSION ?>.</p>
        </body>
        </html>

        """;
}
