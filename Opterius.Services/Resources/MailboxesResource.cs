using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The domain's mail store, <c>/var/mail/vdomains/{domain}/</c>: one Maildir per mailbox (<c>{user}/cur,new,tmp</c>),
/// as Postfix's <c>virtual_mailbox_base</c> and Dovecot's <c>mail_location = maildir:~</c> expect. Removal is a
/// <see cref="SafeTree"/> walk.
/// </summary>
public sealed class MailboxesResource(ServerLayout layout) : IAccountResource, IReportsRemovalProgress
{
    public string Key => "mailboxes";

    /// <summary>The mailboxes every new account starts with; mail_users and mail_routes list the same ones.</summary>
    public static readonly IReadOnlyList<string> DefaultMailboxes = ["admin", "info"];

    /// <summary>The owner of mail files when the account has no user yet: the conventional <c>vmail</c> uid and gid.</summary>
    public const int VmailId = 5000;

    private const UnixFileMode Private = (UnixFileMode)0b111_000_000;   // 0700
    private const UnixFileMode Message = (UnixFileMode)0b110_000_000;   // 0600

    /// <summary>The uid:gid mail of this account is stored with (the account's user when it has one).</summary>
    public FileOwner MailOwner(AccountIdentity a) =>
        FileOwner.ForAccount(layout.Passwd, a.Username, a.Uid) ?? new FileOwner(VmailId, VmailId);

    public string Mailbox(AccountIdentity a, string user) => Path.Join(layout.Mailboxes(a), user);

    /// <summary>The demo's sample mailboxes; an existing mail folder is refused, a failure half-way removes it.</summary>
    public Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var dir = layout.Mailboxes(a);
        if (ServiceConfigFiles.IsAnythingAt(dir))
            throw new AlreadyThereException($"{dir} already exists; it is left as it is");
        try { Make(a); }
        catch
        {
            SafeTree.Remove(dir);
            throw;
        }
        return Task.CompletedTask;
    }

    private void Make(AccountIdentity a)
    {
        var owner = MailOwner(a);
        Directory.CreateDirectory(layout.MailDomainsParent);
        FileWriter.MakeDirectory(layout.Mailboxes(a), Private, owner);
        foreach (var user in DefaultMailboxes)
        {
            var box = Mailbox(a, user);
            FileWriter.MakeDirectory(box, Private, owner);
            foreach (var sub in new[] { "cur", "new", "tmp" }) FileWriter.MakeDirectory(Path.Join(box, sub), Private, owner);
            var now = DateTimeOffset.UtcNow;
            // Maildir's unique name: time, delivery id, host; ",S=" carries the size as Dovecot writes it.
            var body = Welcome(a, user, now);
            var name = $"{now.ToUnixTimeSeconds()}.M{now.Millisecond}P{Environment.ProcessId}.opterius,S={System.Text.Encoding.UTF8.GetByteCount(body)}";
            FileWriter.Write(Path.Join(box, "new", name), body, Message, owner);
        }
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var dir = layout.Mailboxes(account);
        if (SafeTree.Measure(dir) is not { } m) return ResourceInspection.Nothing(Key, $"nothing there: {dir} does not exist");
        PlannedTrees.Remember(dir, m);
        // Mailboxes are the real folders directly inside; a link there is counted by the measure, not as a mailbox.
        var boxes = new DirectoryInfo(dir).EnumerateDirectories()
            .Where(d => !d.Attributes.HasFlag(FileAttributes.ReparsePoint)).Select(d => d.Name).Order(StringComparer.Ordinal).ToList();
        return new ResourceInspection(Key, true, [dir, .. boxes.Select(b => $"{b}@{account.Domain}")], m.Bytes, boxes.Count,
            $"{boxes.Count} mailbox{(boxes.Count == 1 ? "" : "es")}, {m.Files} files, {ByteSize.Human(m.Bytes)}");
    }, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => Remove(account, null, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, Action<RemovalProgress> progress, CancellationToken ct) =>
        Remove(account, progress, ct);

    private Task<RemoveOutcome> Remove(AccountIdentity account, Action<RemovalProgress>? progress, CancellationToken ct) => Task.Run(() =>
    {
        var dir = layout.Mailboxes(account);
        return SafeTree.Remove(dir, progress: progress is null ? null : PlannedTrees.Reporting(dir, progress), workers: SafeTree.RemovalWorkers) is { } r
            ? RemoveOutcome.Done($"removed {dir}: {r.Files} files, {r.Directories} folders")
            : RemoveOutcome.Skipped($"nothing there: {dir} does not exist");
    }, ct);

    private static string Welcome(AccountIdentity a, string user, DateTimeOffset now) => $"""
        Return-Path: <postmaster@{a.Domain}>
        From: Opterius Panel <postmaster@{a.Domain}>
        To: <{user}@{a.Domain}>
        Subject: Welcome to {a.Domain}
        Date: {now:ddd, dd MMM yyyy HH:mm:ss} +0000
        Message-ID: <{Guid.NewGuid():N}@{a.Domain}>
        MIME-Version: 1.0
        Content-Type: text/plain; charset=utf-8

        The mailbox {user}@{a.Domain} is ready.

        """.ReplaceLineEndings("\r\n");
}
