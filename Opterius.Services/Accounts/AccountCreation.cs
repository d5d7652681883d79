using System.Net.Mail;
using Microsoft.Extensions.Logging;
using MySqlConnector;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Packages;
using Opterius.Services.Resources;

namespace Opterius.Services.Accounts;

public sealed record CreateAccountRequest(string? Username, string? Domain, string? Email, string? Password, long? PackageId);

/// <summary>
/// The create path: validates, reserves the row (status <c>creating</c>), provisions every resource through
/// the same classes a deletion removes, then marks it active. A failure half-way removes what was made and
/// the row, so no half account is ever listed as active.
/// </summary>
public sealed class AccountCreation(
    AccountStore accounts,
    PackageStore packages,
    IEnumerable<IAccountResource> resources,
    ISystemUsers systemUser,
    LicenseService license,
    AuditLog audit,
    ILogger<AccountCreation> log)
{
    private readonly IReadOnlyList<IAccountResource> _order =
        DeletionOrder.Keys.Reverse().Select(k => resources.Single(r => r.Key == k)).ToList();

    public async Task<Account> CreateAsync(Actor actor, long ownerId, CreateAccountRequest request, CancellationToken ct)
    {
        license.EnsureValid();
        var package = await ValidateAsync(request, ct);
        var max = license.Current.MaxAccounts;
        if (max is { } limit && await accounts.CountAsync(ct) >= limit)
            throw new AccountLimitReachedException($"The license allows {limit} accounts and all are in use: delete an account or upgrade the license.");

        var username = request.Username!;
        var domain = request.Domain!.ToLowerInvariant();
        await ThrowIfTakenAsync(username, domain, ct);
        long id;
        try { id = await accounts.InsertAsync(username, domain, request.Email!, package.Id, ownerId, package.PhpVersion, ct); }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            throw new AccountConflictException($"The username '{username}' or the domain '{domain}' is already in use.");
        }

        var identity = new AccountIdentity(id, username, domain, package.PhpVersion, null);
        var made = new List<IAccountResource>();
        try
        {
            foreach (var resource in _order)
            {
                made.Add(resource);
                // Not cancelled by a caller who went away: a started create completes or is undone.
                await resource.ProvisionAsync(new NewAccount(identity, request.Email!, request.Password!), CancellationToken.None);
                if (resource.Key == systemUser.Key)
                {
                    identity = identity with { Uid = await systemUser.FindUidAsync(username, CancellationToken.None) };
                    await accounts.SetUidAsync(id, identity.Uid, CancellationToken.None);
                }
            }
        }
        catch (Exception e)
        {
            var failed = made[^1].Key;
            log.LogError(e, "Creating account {Username} failed at {Resource}; removing what was made", username, failed);
            await UndoAsync(identity, made, ct);
            await accounts.DeleteRowAsync(id, CancellationToken.None);
            await audit.WriteAsync(actor, "create", id, username, "failed", $"{failed}: {e.Message}", CancellationToken.None);
            throw new ProvisioningFailedException(failed, e.Message);
        }

        if (!await accounts.TransitionAsync(id, [AccountStatus.Creating], AccountStatus.Active, CancellationToken.None))
            throw new AccountConflictException($"Account '{username}' changed while it was being created.");
        await audit.WriteAsync(actor, "create", id, username, "created", $"{domain}, package {package.Name}", CancellationToken.None);
        return await accounts.FindAsync(new Viewer(0, true), id, CancellationToken.None)
            ?? throw new AccountConflictException($"Account '{username}' was removed while it was being created.");
    }

    private async Task UndoAsync(AccountIdentity identity, List<IAccountResource> made, CancellationToken ct)
    {
        foreach (var resource in made.AsEnumerable().Reverse())
        {
            try { await resource.RemoveAsync(identity, CancellationToken.None); }
            catch (Exception e) { log.LogError(e, "Could not undo {Resource} of {Username}", resource.Key, identity.Username); }
        }
    }

    private async Task<HostingPackage> ValidateAsync(CreateAccountRequest r, CancellationToken ct)
    {
        var errors = new Dictionary<string, string>();
        if (!AccountNames.IsValidUsername(r.Username))
            errors["username"] = "username must be 3-32 lower-case letters and digits, starting with a letter, and not a system name";
        if (!AccountNames.IsValidDomain(r.Domain?.ToLowerInvariant()))
            errors["domain"] = "domain must be a fully qualified domain name such as example.com";
        if (!IsEmail(r.Email)) errors["email"] = "email must be a valid address such as owner@example.com";
        if (r.Password is null || r.Password.Length is < 8 or > 128) errors["password"] = "password must be 8-128 characters";
        else if (r.Password.Any(char.IsControl) || r.Password.Contains(':')) errors["password"] = "password must not contain ':' or control characters";
        var package = r.PackageId is { } pid && pid > 0 ? await packages.FindAsync(pid, ct) : null;
        if (package is null) errors["package_id"] = "package_id must be the id of an existing package (GET /api/v1/packages)";
        if (errors.Count > 0) throw new AccountValidationException(errors);
        return package!;
    }

    private static bool IsEmail(string? email) =>
        email is { Length: <= 254 } && MailAddress.TryCreate(email, out var a) && a.Address == email && !email.Any(char.IsControl) && email.Contains('.');

    private async Task ThrowIfTakenAsync(string username, string domain, CancellationToken ct)
    {
        var (u, d) = await accounts.TakenAsync(username, domain, ct);
        if (u || d)
            throw new AccountConflictException(u ? $"The username '{username}' is already in use." : $"The domain '{domain}' is already in use.");
    }
}
