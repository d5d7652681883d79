using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using static Opterius.Services.Resources.ServiceConfigFiles;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's nginx server block: <c>sites-available/{domain}.conf</c> and its <c>sites-enabled</c> link,
/// PHP handed to the account's own pool socket. Every change is followed by a coalesced <c>nginx -t</c> and
/// reload (never a restart). Every vhost takes its <c>listen</c> lines from one shared snippet, so the
/// port is the server's decision, not each vhost's.
/// </summary>
public sealed class NginxVhostResource(ServerLayout layout, ServiceReloader reloader, IOptions<OpteriusOptions> options)
    : IAccountResource, ISuspendableResource
{
    public string Key => "nginx_vhost";

    /// <summary>Where a suspended vhost's own configuration waits, byte for byte, for unsuspend.</summary>
    public const string OriginalSuffix = ".suspended-original";

    /// <summary>Why a final backup has no vhost of a suspended account whose own configuration was never kept beside it.</summary>
    public const string NotStoredReason = "the account is suspended and its own vhost was never stored beside the 503 one, so it is not archived (a restore makes the vhost a new account gets)";

    public string ListenSnippet => layout.Under("/etc/nginx/snippets/opterius-listen.conf");
    public string SuspensionPage => layout.Under("/var/www/suspended/index.html");

    /// <summary>
    /// Writes the vhost and enables it, refusing when any of its files exists already (someone else's site is never
    /// overwritten). A failure half-way, including a configuration nginx rejects, removes exactly what this wrote.
    /// </summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var (available, enabled) = (layout.NginxAvailable(a), layout.NginxEnabled(a));
        try
        {
            using (await reloader.EditAsync("nginx", ct))
            {
                if (Paths(a).FirstOrDefault(IsPresent) is { } present)
                    throw new AlreadyThereException($"{present} already exists; it is left as it is");
                await EnsureSharedFilesAsync(ct);
                await WriteAtomicAsync(available, Vhost(a), ct);
                Link(enabled, available);
            }
            await ReloadAsync(reloader, "nginx", $"adding {a.Domain}", ct);
        }
        catch (Exception e) when (e is not AlreadyThereException)
        {
            // A vhost nginx refuses must not stay enabled: it would block every other site's reload.
            using (await reloader.EditAsync("nginx", CancellationToken.None))
            {
                File.Delete(enabled);
                File.Delete(available);
            }
            throw;
        }
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var present = Paths(account).Where(IsPresent).ToList();
        if (present.Count == 0) return Task.FromResult(ResourceInspection.Nothing(Key, $"no vhost for {account.Domain}"));
        var suspended = IsPresent(layout.NginxAvailable(account) + OriginalSuffix);
        var enabled = IsPresent(layout.NginxEnabled(account));
        return Task.FromResult(new ResourceInspection(Key, true, present, present.Sum(SizeOf), present.Count,
            $"vhost {account.Domain}{(suspended ? " (suspended)" : "")}{(enabled ? "" : " (not enabled)")}"));
    }

    /// <summary>
    /// The sites-enabled link, then the reload, then the files. The vhost files outlive the link until nginx has
    /// reloaded without the site: they are what a resumed step (after a failed or unconfigured reload) finds, so
    /// it reloads and reports done instead of "nothing there". A link never dangles: it goes first.
    /// </summary>
    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var present = Paths(account).Where(IsPresent).ToList();
        var enabled = layout.NginxEnabled(account);
        using var approach = reloader.Expect("nginx"); // a reload other removals open meanwhile waits for this one
        using (await reloader.EditAsync("nginx", ct))
            if (IsPresent(enabled)) File.Delete(enabled);
        await ReloadAfterRemovalAsync(reloader, "nginx", account.Domain, present.Count > 0, ct, approach);
        if (present.Count == 0) return RemoveOutcome.Skipped($"nothing there: no vhost for {account.Domain}");
        using (await reloader.EditAsync("nginx", ct))
            foreach (var path in present.Where(IsPresent)) File.Delete(path);
        return RemoveOutcome.Done($"removed {string.Join(", ", present)}; nginx reloaded");
    }

    /// <summary>Keeps the vhost beside itself and answers every request with 503 and the suspension page.</summary>
    public async Task SuspendAsync(AccountIdentity account, CancellationToken ct)
    {
        var available = layout.NginxAvailable(account);
        var original = available + OriginalSuffix;
        if (!File.Exists(available) && !File.Exists(original)) return;
        using (await reloader.EditAsync("nginx", ct))
        {
            await EnsureSharedFilesAsync(ct);
            // Copied, not moved: the enabled link must point at a file at every moment.
            if (!File.Exists(original)) await WriteAtomicAsync(original, await File.ReadAllBytesAsync(available, ct), ct);
            await WriteAtomicAsync(available, SuspendedVhost(account), ct);
        }
        await ReloadAsync(reloader, "nginx", $"suspending {account.Domain}", ct);
    }

    public async Task UnsuspendAsync(AccountIdentity account, CancellationToken ct)
    {
        var available = layout.NginxAvailable(account);
        using (await reloader.EditAsync("nginx", ct))
        {
            var own = UnsuspendedVhost(account);
            if (own != available) File.Move(own, available, overwrite: true);
            else if (!File.Exists(available)) return;
        }
        await ReloadAsync(reloader, "nginx", $"unsuspending {account.Domain}", ct);
    }

    /// <summary>
    /// The file holding the vhost as it serves when not suspended: its own configuration kept beside it while suspended,
    /// else the vhost itself. Unsuspend puts this one in place.
    /// </summary>
    public string UnsuspendedVhost(AccountIdentity account)
    {
        var available = layout.NginxAvailable(account);
        return File.Exists(available + OriginalSuffix) ? available + OriginalSuffix : available;
    }

    /// <summary>
    /// The file a final backup archives as the account's vhost, so a restore serves the site: the live vhost of an active
    /// account (a leftover of an old suspension beside it is not its configuration); for a suspended one its own kept
    /// beside it, or null when that was never stored and the live file is the 503 vhost (<see cref="NotStoredReason"/>).
    /// </summary>
    public string? ArchivedVhost(AccountIdentity account, bool suspended)
    {
        var available = layout.NginxAvailable(account);
        if (!suspended) return available;
        if (File.Exists(available + OriginalSuffix)) return available + OriginalSuffix;
        return IsSuspendedVhost(account, available) ? null : available;
    }

    // Told by the first line SuspendAsync writes; read without following a link (sites-available is root's).
    private static bool IsSuspendedVhost(AccountIdentity a, string available)
    {
        if (!File.Exists(available) || new FileInfo(available).LinkTarget is not null) return false;
        using var reader = new StreamReader(available);
        return reader.ReadLine()?.StartsWith($"# Opterius Panel: {a.Domain} of account {a.Username} is suspended;", StringComparison.Ordinal) == true;
    }

    private IEnumerable<string> Paths(AccountIdentity a)
    {
        yield return layout.NginxEnabled(a);
        yield return layout.NginxAvailable(a);
        yield return layout.NginxAvailable(a) + OriginalSuffix;
    }

    // Created only when missing: an operator's own listen lines and suspension page are theirs.
    private async Task EnsureSharedFilesAsync(CancellationToken ct)
    {
        if (!File.Exists(ListenSnippet)) await WriteAtomicAsync(ListenSnippet, "listen 80;\n", ct);
        if (!File.Exists(SuspensionPage)) await WriteAtomicAsync(SuspensionPage, SuspensionHtml, ct);
    }

    private string Vhost(AccountIdentity a) => $$"""
        # Opterius Panel: {{a.Domain}} of account {{a.Username}}. Written by the panel; local edits are replaced.
        server {
            include {{ConfigPath(ListenSnippet)}};
            server_name {{a.Domain}} www.{{a.Domain}};
            root {{ConfigPath(Path.Join(layout.Home(a), "public_html"))}};
            index index.php index.html;

            location / {
                try_files $uri $uri/ =404;
            }

            location ~ \.php$ {
                try_files $uri =404;
                include fastcgi_params;
                fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
                fastcgi_pass unix:{{FpmSocket(layout, options.Value, a)}};
            }
        }

        """;

    private string SuspendedVhost(AccountIdentity a) => $$"""
        # Opterius Panel: {{a.Domain}} of account {{a.Username}} is suspended; its own configuration is {{a.Domain}}.conf{{OriginalSuffix}}.
        server {
            include {{ConfigPath(ListenSnippet)}};
            server_name {{a.Domain}} www.{{a.Domain}};
            root {{ConfigPath(Path.GetDirectoryName(SuspensionPage)!)}};

            location / {
                return 503;
            }

            error_page 503 @suspended;
            location @suspended {
                rewrite ^ /index.html break;
            }
        }

        """;

    private const string SuspensionHtml = """
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title>Account suspended</title></head>
        <body><h1>This account is suspended</h1><p>Please contact the hosting provider.</p></body>
        </html>

        """;
}
