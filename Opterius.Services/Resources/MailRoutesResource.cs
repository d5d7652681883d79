using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The domain's Postfix routes, lines <c>user@domain  domain/user/</c> in <c>/etc/postfix/vmailbox</c>. After a
/// change the map is rebuilt by the coalesced <c>postmap</c> reload (command <c>Opterius:Commands:Postmap</c>).
/// </summary>
public sealed class MailRoutesResource(ServerLayout layout, ServiceReloader reloader) : IAccountResource
{
    public string Key => "mail_routes";

    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var lines = MailboxesResource.DefaultMailboxes.Select(u => $"{u}@{a.Domain}  {a.Domain}/{u}/").ToList();
        if (LineFile.Append(layout.PostfixVmailbox, lines, (UnixFileMode)0b110_100_100) > 0) await RebuildAsync(ct);
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var lines = LineFile.Matching(layout.PostfixVmailbox, account.Domain);
        if (lines.Count == 0) return Task.FromResult(ResourceInspection.Nothing(Key, $"nothing there: no @{account.Domain} lines in {layout.PostfixVmailbox}"));
        return Task.FromResult(new ResourceInspection(Key, true, lines.Select(l => l.Split(' ', '\t')[0]).ToList(),
            lines.Sum(l => System.Text.Encoding.UTF8.GetByteCount(l) + 1L), lines.Count,
            $"{lines.Count} mail route{(lines.Count == 1 ? "" : "s")} in {layout.PostfixVmailbox}"));
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var removed = LineFile.RemoveDomain(layout.PostfixVmailbox, account.Domain);
        // A run that removed the lines but failed to rebuild the map leaves it older than the file: rebuild on resume.
        if (removed == 0 && !MapIsStale())
            return RemoveOutcome.Skipped($"nothing there: no @{account.Domain} lines in {layout.PostfixVmailbox}");
        var what = removed == 0 ? $"no @{account.Domain} lines left in {layout.PostfixVmailbox}"
            : $"removed {removed} line{(removed == 1 ? "" : "s")} from {layout.PostfixVmailbox}";
        // The lines stay removed; the stale map is what a resumed step finds, and rebuilds.
        if (await RebuildAsync(ct) is { } notConfigured)
            throw new ResourceException($"{notConfigured}; {what}, but Postfix still routes @{account.Domain} from the old map until postmap rebuilds it");
        return RemoveOutcome.Done($"{what}; map rebuilt");
    }

    /// <summary>Runs postmap; returns why it did not run (the command is not configured), or null when it did.</summary>
    private async Task<string?> RebuildAsync(CancellationToken ct)
    {
        try { return (await reloader.ReloadAsync("postmap", ct)).NotConfigured; }
        catch (CommandFailedException e) { throw new ResourceException($"postmap failed: {e.Message}", e); }
    }

    private bool MapIsStale()
    {
        var source = new FileInfo(layout.PostfixVmailbox);
        if (!source.Exists) return false;
        return new[] { ".db", ".lmdb", ".cdb" }.Select(ext => new FileInfo(source.FullName + ext))
            .Any(map => map.Exists && map.LastWriteTimeUtc < source.LastWriteTimeUtc);
    }
}
