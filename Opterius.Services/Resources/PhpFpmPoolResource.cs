using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using static Opterius.Services.Resources.ServiceConfigFiles;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's PHP-FPM pool: <c>/etc/php/{php_version}/fpm/pool.d/{domain}.conf</c>, named after the
/// domain, listening on the socket its vhost passes PHP to. Every change is followed by a coalesced
/// <c>php-fpm -t</c> and reload. A suspended pool is moved aside (the include glob only reads <c>*.conf</c>)
/// and moved back unchanged.
/// </summary>
public sealed class PhpFpmPoolResource(ServerLayout layout, ServiceReloader reloader, IOptions<OpteriusOptions> options)
    : IAccountResource, ISuspendableResource
{
    public string Key => "php_fpm_pool";

    public const string SuspendedSuffix = ".suspended";

    /// <summary>Where a removed pool waits, outside the <c>*.conf</c> include glob, until php-fpm has reloaded without it.</summary>
    public const string RemovingSuffix = ".removing";

    private OpteriusOptions Options => options.Value;

    /// <summary>Writes the pool, refusing when it (or its suspended copy) exists already; a failure half-way removes it again.</summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var pool = layout.FpmPool(a);
        Directory.CreateDirectory(Path.GetDirectoryName(FpmSocket(layout, Options, a))!);
        try
        {
            using (await reloader.EditAsync("php-fpm", ct))
            {
                if (Paths(a).FirstOrDefault(IsPresent) is { } present)
                    throw new AlreadyThereException($"{present} already exists; it is left as it is");
                await WriteAtomicAsync(pool, Pool(a), ct);
            }
            await ReloadAsync(reloader, "php-fpm", $"adding the pool of {a.Domain}", ct);
        }
        catch (Exception e) when (e is not AlreadyThereException)
        {
            // A pool php-fpm refuses must not stay: the next reload of any account would fail on it.
            using (await reloader.EditAsync("php-fpm", CancellationToken.None)) File.Delete(pool);
            throw;
        }
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var present = Paths(account).Where(IsPresent).ToList();
        if (present.Count == 0) return Task.FromResult(ResourceInspection.Nothing(Key, $"no PHP {account.PhpVersion} pool for {account.Domain}"));
        var pool = layout.FpmPool(account);
        var state = IsPresent(pool + RemovingSuffix) ? " (removed; php-fpm not reloaded yet)" : !File.Exists(pool) ? " (suspended)" : "";
        return Task.FromResult(new ResourceInspection(Key, true, present, present.Sum(SizeOf), present.Count,
            $"PHP {account.PhpVersion} pool {account.Domain}{state}"));
    }

    /// <summary>
    /// The pool is moved out of the include glob, php-fpm reloaded, then the files deleted. The moved pool is what a
    /// resumed step (after a failed or unconfigured reload) finds, so it reloads and reports done, never "nothing there".
    /// </summary>
    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var present = Paths(account).Where(IsPresent).ToList();
        var pool = layout.FpmPool(account);
        using var approach = reloader.Expect("php-fpm"); // a reload other removals open meanwhile waits for this one
        using (await reloader.EditAsync("php-fpm", ct))
            if (IsPresent(pool)) File.Move(pool, pool + RemovingSuffix, overwrite: true);
        await ReloadAfterRemovalAsync(reloader, "php-fpm", $"the pool of {account.Domain}", present.Count > 0, ct, approach);
        if (present.Count == 0) return RemoveOutcome.Skipped($"nothing there: no pool for {account.Domain}");
        using (await reloader.EditAsync("php-fpm", ct))
            foreach (var path in Paths(account).Where(IsPresent)) File.Delete(path);
        return RemoveOutcome.Done($"removed {string.Join(", ", present)}; php-fpm reloaded");
    }

    public async Task SuspendAsync(AccountIdentity account, CancellationToken ct)
    {
        var pool = layout.FpmPool(account);
        using (await reloader.EditAsync("php-fpm", ct))
        {
            if (File.Exists(pool)) File.Move(pool, pool + SuspendedSuffix, overwrite: true);
            else if (!File.Exists(pool + SuspendedSuffix)) return;
        }
        await ReloadAsync(reloader, "php-fpm", $"suspending the pool of {account.Domain}", ct);
    }

    public async Task UnsuspendAsync(AccountIdentity account, CancellationToken ct)
    {
        var pool = layout.FpmPool(account);
        using (await reloader.EditAsync("php-fpm", ct))
        {
            var own = UnsuspendedPool(account);
            if (own != pool) File.Move(own, pool, overwrite: true);
            else if (!File.Exists(pool)) return;
        }
        await ReloadAsync(reloader, "php-fpm", $"unsuspending the pool of {account.Domain}", ct);
    }

    /// <summary>
    /// The file holding the pool as it runs when not suspended: the one moved aside while suspended, else the pool itself.
    /// Unsuspend moves this one back; a final backup archives it, so a restore runs the pool again.
    /// </summary>
    public string UnsuspendedPool(AccountIdentity account)
    {
        var pool = layout.FpmPool(account);
        return File.Exists(pool + SuspendedSuffix) ? pool + SuspendedSuffix : pool;
    }

    private IEnumerable<string> Paths(AccountIdentity a)
    {
        yield return layout.FpmPool(a);
        yield return layout.FpmPool(a) + SuspendedSuffix;
        yield return layout.FpmPool(a) + RemovingSuffix;
    }

    // listen.owner is the web server's user so nginx can connect; the pool itself runs as the account
    // (production) or as PoolUser when a private php-fpm can only see the host's users.
    private string Pool(AccountIdentity a)
    {
        var user = string.IsNullOrEmpty(Options.PoolUser) ? a.Username : Options.PoolUser;
        var group = string.IsNullOrEmpty(Options.PoolGroup) ? a.Username : Options.PoolGroup;
        var home = ConfigPath(layout.Home(a));
        return $"""
            ; Opterius Panel: PHP pool of {a.Domain}, account {a.Username}. Written by the panel; local edits are replaced.
            [{a.Domain}]
            user = {ConfigPath(user)}
            group = {ConfigPath(group)}
            listen = {FpmSocket(layout, Options, a)}
            listen.owner = www-data
            listen.group = www-data
            listen.mode = 0660
            pm = ondemand
            pm.max_children = 5
            pm.process_idle_timeout = 10s
            pm.max_requests = 500
            chdir = /
            php_admin_value[open_basedir] = {home}/:/tmp/
            php_admin_value[upload_tmp_dir] = /tmp
            php_admin_flag[log_errors] = on

            """;
    }
}
