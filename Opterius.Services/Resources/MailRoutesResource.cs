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
        if (await LineFile.AppendAsync(layout.PostfixVmailbox, lines, (UnixFileMode)0b110_100_100, ct) > 0) await RebuildAsync(ct);
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
        var removed = await LineFile.RemoveDomainAsync(layout.PostfixVmailbox, account.Domain, ct);
        // A run that removed the lines but failed to rebuild the map leaves it older than the file: rebuild on resume.
        if (removed == 0 && !MapIsStale())
            return RemoveOutcome.Skipped($"nothing there: no @{account.Domain} lines in {layout.PostfixVmailbox}");
        var what = removed == 0 ? $"no @{account.Domain} lines left in {layout.PostfixVmailbox}"
            : $"removed {removed} line{(removed == 1 ? "" : "s")} from {layout.PostfixVmailbox}";
        var notRebuilt = await RebuildAsync(ct);
        return notRebuilt is null
            ? RemoveOutcome.Done($"{what}; map rebuilt")
            : RemoveOutcome.Skipped($"{what}; map not rebuilt: {notRebuilt}");
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
