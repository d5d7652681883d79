using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's files outside its home that a later account could otherwise inherit: the mail spool
/// <c>/var/mail/{username}</c> (when the uid owns it), and every entry directly in <c>/tmp</c>, <c>/var/tmp</c> and
/// <c>/dev/shm</c> that the account's uid owns (sessions, sockets, a tenant's own folder there, walked with
/// <see cref="SafeTree"/>). Links are removed, never followed. Runs after the processes are gone and before
/// <c>system_user</c>, while the uid is still known to be the account's; a uid below
/// <see cref="OpteriusOptions.MinUid"/> is refused, so no file of the system's is ever touched.
/// </summary>
public sealed class UserFilesResource(ServerLayout layout, IOptions<OpteriusOptions> options) : IAccountResource
{
    public string Key => "user_files";

    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => Task.CompletedTask;

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        long bytes = 0, count = 0;
        var items = new List<string>();
        foreach (var (path, _) in Entries(account))
            if (SafeEntries.Measure(path) is { } m)
            {
                items.Add(path);
                bytes += m.Bytes;
                count += m.Files + m.Directories;
            }
        return items.Count == 0
            ? ResourceInspection.Nothing(Key, $"no mail spool and no files of {account.Username} in the temp folders")
            : new ResourceInspection(Key, true, items, bytes, count, $"{items.Count} entries ({count} files and folders, {ByteSize.Human(bytes)}): {string.Join(", ", items.Take(5))}{(items.Count > 5 ? ", ..." : "")}");
    }, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        long files = 0, folders = 0;
        var removed = new List<string>();
        foreach (var (path, owner) in Entries(account))
            if ((owner is { } uid ? SafeEntries.Remove(path, uid) : RefuseWithoutUid(account, path)) is { } r)
            {
                removed.Add(path);
                (files, folders) = (files + r.Files, folders + r.Directories);
            }
        return removed.Count == 0
            ? RemoveOutcome.Skipped($"no mail spool and no files of {account.Username} in the temp folders")
            : RemoveOutcome.Done($"removed {string.Join(", ", removed.Take(5))}{(removed.Count > 5 ? $" and {removed.Count - 5} more" : "")}: {files} files, {folders} folders");
    }, ct);

    /// <summary>
    /// The spool and the uid's temp entries, once the uid is checked, each with the owner it must have to be removed:
    /// the spool is named after the account but goes only when the uid owns it (one that was there before the account,
    /// another tool's or root's, is refused, so the undo of a failed create never takes it). Without a uid the spool
    /// is still reported (a create's check must see it), and its removal is refused.
    /// </summary>
    private List<(string Path, uint? Owner)> Entries(AccountIdentity account)
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        if (uid < options.Value.MinUid)
            throw new ResourceException($"refusing to remove the files of uid {uid}: below Opterius:MinUid {options.Value.MinUid}");
        var entries = new List<(string, uint?)>();
        if (uid is { } u)
            foreach (var folder in layout.SharedTempFolders)
                entries.AddRange(SafeEntries.OwnedBy(folder, (uint)u).Select(e => (e.Path, (uint?)u)));
        // Last: a spool that is refused fails the step after everything else of the uid's is gone.
        entries.Add((layout.MailSpool(account), (uint?)uid));
        return entries;
    }

    /// <summary>Nothing to do when nothing is there; something there that no uid proves the account's is refused.</summary>
    private static TreeRemoval? RefuseWithoutUid(AccountIdentity account, string path) =>
        SafeEntries.Measure(path) is null
            ? null
            : throw new ResourceException($"no uid is known for {account.Username}: cannot tell that {path} is its own, refusing to remove it");
}
