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
        var hadLines = LineFile.Matching(layout.PostfixVmailbox, a.Domain).Count > 0;
        if (await LineFile.AppendAsync(layout.PostfixVmailbox, lines, (UnixFileMode)0b110_100_100, ct) == 0) return;
        try { await RebuildAsync(ct); }
        catch (ResourceException) when (!hadLines)
        {
            // Every line of the domain is this call's: take them out again, so the file and the map agree.
            await LineFile.RemoveDomainAsync(layout.PostfixVmailbox, a.Domain, ct: CancellationToken.None);
            throw;
        }
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var lines = LineFile.Matching(layout.PostfixVmailbox, account.Domain);
        if (lines.Count == 0)
            return Task.FromResult(File.Exists(RebuildMark(account))
                ? new ResourceInspection(Key, true, [$"@{account.Domain} in the map of {layout.PostfixVmailbox}"], 0, 0, $"@{account.Domain} lines removed; the map is not rebuilt yet")
                : ResourceInspection.Nothing(Key, $"nothing there: no @{account.Domain} lines in {layout.PostfixVmailbox}"));
        return Task.FromResult(new ResourceInspection(Key, true, lines.Select(l => l.Split(' ', '\t')[0]).ToList(),
            lines.Sum(l => System.Text.Encoding.UTF8.GetByteCount(l) + 1L), lines.Count,
            $"{lines.Count} mail route{(lines.Count == 1 ? "" : "s")} in {layout.PostfixVmailbox}"));
    }

    /// <summary>
    /// The lines go, then the map is rebuilt. A mark beside the file, made before the lines go and removed once
    /// postmap ran, is what a resumed step (after a failed or unconfigured postmap) finds: it rebuilds and says done.
    /// </summary>
    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var mark = RebuildMark(account);
        using var approach = reloader.Expect("postmap"); // a rebuild other removals open meanwhile waits for this one's lines
        // Durable before the lines go: after a crash the lines are there, or the mark is.
        if (LineFile.Matching(layout.PostfixVmailbox, account.Domain).Count > 0) FileWriter.Write(mark, [], (UnixFileMode)0b110_000_000, durable: true);
        var removed = await LineFile.RemoveDomainAsync(layout.PostfixVmailbox, account.Domain, ct: ct);
        if (removed == 0 && !File.Exists(mark))
            return RemoveOutcome.Skipped($"nothing there: no @{account.Domain} lines in {layout.PostfixVmailbox}");
        var what = removed == 0 ? $"no @{account.Domain} lines left in {layout.PostfixVmailbox}"
            : $"removed {removed} line{(removed == 1 ? "" : "s")} from {layout.PostfixVmailbox}";
        if (await RebuildAsync(ct, approach) is { } notConfigured)
            throw new ResourceException($"{notConfigured}; {what}, but Postfix still routes @{account.Domain} from the old map until postmap rebuilds it");
        File.Delete(mark);
        return RemoveOutcome.Done($"{what}; map rebuilt");
    }

    /// <summary>Runs postmap; returns why it did not run (the command is not configured), or null when it did.</summary>
    private async Task<string?> RebuildAsync(CancellationToken ct, ServiceReloader.Approach? approach = null) =>
        (await ResourceException.WhenCommandFails(() => reloader.ReloadAsync("postmap", ct, approach), "postmap failed")).NotConfigured;

    // A dot file of its own per domain beside the map: postfix never reads it, and one domain's rebuild never clears another's mark.
    private string RebuildMark(AccountIdentity a) =>
        Path.Join(Path.GetDirectoryName(layout.PostfixVmailbox)!, $".{Path.GetFileName(layout.PostfixVmailbox)}.{a.Domain}.postmap-pending");
}
