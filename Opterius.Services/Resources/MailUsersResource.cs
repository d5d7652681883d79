using System.Security.Cryptography;
using System.Text;
using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The domain's Dovecot users, lines <c>user@domain:{SSHA512}hash:uid:gid::home::</c> in <c>/etc/dovecot/users</c>
/// (a passwd-file). Suspension comments the lines out behind <see cref="SuspendedPrefix"/>, so Dovecot no longer
/// knows the users and refuses their logins; unsuspend strips the prefix and gives back the very same bytes.
/// </summary>
public sealed class MailUsersResource(ServerLayout layout, MailboxesResource mailboxes) : IAccountResource, ISuspendableResource
{
    public string Key => "mail_users";

    /// <summary>No ':' or blank in it, so a suspended line's key still ends in @domain and is removed with the domain.</summary>
    public const string SuspendedPrefix = "#suspended#";

    private static readonly byte[] Prefix = Encoding.ASCII.GetBytes(SuspendedPrefix);

    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        var owner = mailboxes.MailOwner(a);
        var lines = MailboxesResource.DefaultMailboxes
            .Select(u => $"{u}@{a.Domain}:{Ssha512(account.Password)}:{owner.Uid}:{owner.Gid}::{mailboxes.Mailbox(a, u)}::")
            .ToList();
        await LineFile.AppendAsync(layout.DovecotUsers, lines, (UnixFileMode)0b110_100_000, ct);
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var lines = LineFile.Matching(layout.DovecotUsers, account.Domain, SuspendedPrefix);
        if (lines.Count == 0) return Task.FromResult(ResourceInspection.Nothing(Key, $"nothing there: no @{account.Domain} lines in {layout.DovecotUsers}"));
        // The user names only: the lines hold password hashes.
        var users = lines.Select(l => l.Split(':')[0]).ToList();
        var suspended = users.Count(u => u.StartsWith(SuspendedPrefix, StringComparison.Ordinal));
        return Task.FromResult(new ResourceInspection(Key, true, users.Select(u => u.Replace(SuspendedPrefix, "")).ToList(),
            lines.Sum(l => Encoding.UTF8.GetByteCount(l) + 1L), lines.Count,
            $"{lines.Count} mail user{(lines.Count == 1 ? "" : "s")} in {layout.DovecotUsers}{(suspended > 0 ? $" ({suspended} suspended)" : "")}"));
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var removed = await LineFile.RemoveDomainAsync(layout.DovecotUsers, account.Domain, SuspendedPrefix, ct);
        return removed == 0
            ? RemoveOutcome.Skipped($"nothing there: no @{account.Domain} lines in {layout.DovecotUsers}")
            : RemoveOutcome.Done($"removed {removed} line{(removed == 1 ? "" : "s")} from {layout.DovecotUsers}");
    }

    public Task SuspendAsync(AccountIdentity account, CancellationToken ct) =>
        LineFile.EditDomainAsync(layout.DovecotUsers, account.Domain, line => line.AsSpan().StartsWith(Prefix) ? line : [.. Prefix, .. line], SuspendedPrefix, ct);

    public Task UnsuspendAsync(AccountIdentity account, CancellationToken ct) =>
        LineFile.EditDomainAsync(layout.DovecotUsers, account.Domain, Unsuspended, SuspendedPrefix, ct);

    /// <summary>A line as unsuspend gives it back (the very bytes before suspension); a final backup archives the lines so.</summary>
    public static byte[] Unsuspended(byte[] line) => line.AsSpan().StartsWith(Prefix) ? line[Prefix.Length..] : line;

    /// <summary>Dovecot's SSHA512 scheme: base64(SHA-512(password + salt) + salt).</summary>
    public static string Ssha512(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = SHA512.HashData([.. Encoding.UTF8.GetBytes(password), .. salt]);
        return "{SSHA512}" + Convert.ToBase64String([.. hash, .. salt]);
    }
}
