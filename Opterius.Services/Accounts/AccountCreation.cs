using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Packages;
using Opterius.Services.Resources;

namespace Opterius.Services.Accounts;

public sealed record CreateAccountRequest(string? Username, string? Domain, string? Email, string? Password, long? PackageId);

/// <summary>An account whose names the create's checks passed and whose row (status <c>creating</c>) holds them.</summary>
public sealed record ReservedAccount(long OwnerId, HostingPackage Package, NewAccount Account);

/// <summary>
/// How <see cref="AccountCreation.MakeAsync"/> makes the parts: <see cref="New"/> provisions each; a restore asks for
/// the archived <see cref="Uid"/> again and has <see cref="Restore"/> write the <see cref="Restored"/> parts (calling back
/// each key as it starts, then once it is made: its own checks found nothing there). <see cref="Provisioned"/>: parts of
/// <see cref="Restored"/> the backup could not hold, provisioned as for a new account instead. <see cref="Step"/> hears each
/// provision's transitions; <see cref="Action"/> is the audit's.
/// </summary>
public sealed record AccountParts(string Action, int? Uid = null, Func<AccountIdentity, Action<string>, Action<string>, Task>? Restore = null,
    Action<string, string, string?>? Step = null, string Note = "", IReadOnlySet<string>? Provisioned = null)
{
    public static readonly AccountParts New = new("create");

    /// <summary>The parts a backup holds; the others (user, logins, processes, the uid's files) are provisioned as for a new account.</summary>
    public static readonly IReadOnlySet<string> Restored = new HashSet<string>
    {
        "home_directory", "mailboxes", "databases", "database_users", "dns_zone", "nginx_vhost", "php_fpm_pool", "cron",
        "ssl_certificate", "mail_users", "mail_routes",
    };
}

/// <summary>
/// The create path: validates, refuses names that are taken or that something on the server already uses,
/// reserves the row (status <c>creating</c>), provisions every resource through the same classes a deletion
/// removes, then marks it active. A failure half-way removes what this create made, and only that, and the row,
/// so no half account is ever listed as active and nothing that was there before is ever touched.
/// </summary>
public sealed class AccountCreation(
    AccountStore accounts,
    DeletionJobStore deletionJobs,
    PackageStore packages,
    IEnumerable<IAccountResource> resources,
    ISystemUsers systemUser,
    IDnsZones dnsZone,
    LicenseService license,
    AuditLog audit,
    AccountEvents events,
    IOptions<ProvisioningOptions> provisioning,
    ILogger<AccountCreation> log)
{
    private readonly IReadOnlyList<IAccountResource> _order =
        DeletionOrder.Keys.Reverse().Select(k => resources.Single(r => r.Key == k)).ToList();

    /// <summary>
    /// The demo's samples, provisioned only with <see cref="ProvisioningOptions.StarterContent"/>: databases with rows,
    /// mailboxes whose logins use the account password (and their Dovecot and Postfix lines), a cron job. The rest is
    /// what a hosting account is: user, home with a placeholder page, database login, zone, certificate, pool, vhost.
    /// </summary>
    private static readonly IReadOnlySet<string> StarterOnly = new HashSet<string> { "databases", "mailboxes", "mail_users", "mail_routes", "cron" };


    public async Task<Account> CreateAsync(Actor actor, long ownerId, CreateAccountRequest request, CancellationToken ct) =>
        await MakeAsync(actor, await ReserveAsync(actor, ownerId, request, null, ct), AccountParts.New, CancellationToken.None);

    /// <summary>
    /// The create's checks (license, fields, names taken or related, anything of the names on the server) and the row
    /// that reserves the names (status <c>creating</c>); nothing else is made yet. <paramref name="phpVersion"/> overrides
    /// the package's (a restore keeps the archived account's).
    /// </summary>
    public async Task<ReservedAccount> ReserveAsync(Actor actor, long ownerId, CreateAccountRequest request, string? phpVersion, CancellationToken ct)
    {
        license.EnsureValid();
        var package = await ValidateAsync(request, ct);
        var username = request.Username!;
        var domain = request.Domain!.ToLowerInvariant();
        var identity = new AccountIdentity(0, username, domain, phpVersion ?? package.PhpVersion, null);

        // Quick refusals first (no lock), then what exists on the server, then the same checks again under the
        // lock with the insert: the row reserves the names for the provisioning that follows.
        var mayName = (AccountDomain a) => actor.IsAdmin || a.OwnerId == ownerId;
        ThrowIfClaimed(await accounts.ClaimsAsync(username, domain, ownerId, ct), username, domain, ownerId, mayName);
        ThrowIfServerName(domain);
        await ThrowIfRelatedZonesAsync(domain, ownerId, ct);
        await ThrowIfOnServerAsync(identity, ct);
        long id;
        try
        {
            id = await accounts.InsertCheckedAsync(username, domain, request.Email!, package.Id, ownerId, identity.PhpVersion,
                claims => ThrowIfClaimed(claims, username, domain, ownerId, mayName), ct);
        }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            throw new AccountConflictException($"The username '{username}' or the domain '{domain}' is already in use.");
        }
        events.Publish(new(id, ownerId, AccountStatus.Creating));
        return new ReservedAccount(ownerId, package, new NewAccount(identity with { Id = id }, request.Email!, request.Password!));
    }

    /// <summary>
    /// Makes a reserved account's parts in the create order: each provisioned, or (a restore) the user provisioned with
    /// the uid asked for when the ledger still binds it to these names, then the rest restored by <see cref="AccountParts.Restore"/>.
    /// A failure removes what was made, and only that, and the row; the account is active once everything is there.
    /// </summary>
    public async Task<Account> MakeAsync(Actor actor, ReservedAccount reserved, AccountParts parts, CancellationToken ct)
    {
        var newAccount = reserved.Account;
        var identity = newAccount.Identity;
        var (id, username, domain) = (identity.Id, identity.Username, identity.Domain);
        var made = new List<IAccountResource>();
        string? current = null;
        try
        {
            var provisioned = parts.Restore is null
                ? _order.Where(r => provisioning.Value.StarterContent || !StarterOnly.Contains(r.Key))
                : _order.Where(r => !AccountParts.Restored.Contains(r.Key) || parts.Provisioned?.Contains(r.Key) == true);
            foreach (var resource in provisioned)
            {
                current = resource.Key;
                parts.Step?.Invoke(resource.Key, StepStatus.Running, null);
                if (resource.Key == systemUser.Key)
                {
                    // The uid is stored before UserAdd runs: whatever it leaves (a user made before it failed, a crash
                    // of the panel) is then provably this account's, for the undo below or a later deletion.
                    identity = identity with { Uid = await systemUser.ReserveUidAsync(identity with { Uid = parts.Uid }, CancellationToken.None) };
                    await accounts.SetUidAsync(id, identity.Uid, CancellationToken.None);
                    made.Add(resource);
                }
                // Not cancelled by a caller who went away: a started create completes or is undone.
                await resource.ProvisionAsync(newAccount with { Identity = identity }, CancellationToken.None);
                // Journalled only once made: a resource that refused or failed cleaned up its own partial work,
                // and whatever made it refuse was not this create's to remove.
                if (!made.Contains(resource)) made.Add(resource);
                parts.Step?.Invoke(resource.Key, StepStatus.Done, resource.Key == systemUser.Key ? $"uid {identity.Uid}" : null);
            }
            if (parts.Restore is { } restore)
            {
                // A part is this restore's once the restorer made it (written or half-written): the undo removes it. One
                // its own checks refused (another tool made it since the checks above) was never this restore's.
                await restore(identity, key => current = key, key =>
                {
                    if (_order.FirstOrDefault(r => r.Key == key) is { } resource && !made.Contains(resource)) made.Add(resource);
                });
            }
        }
        catch (Exception e)
        {
            var failed = current ?? "create";
            log.LogError(e, "Creating account {Username} failed at {Resource}; removing what was made", username, failed);
            if (await UndoAsync(actor, identity, reserved.OwnerId, made, parts.Action, $"{failed}: {e.Message}") is { } left)
                throw new ProvisioningFailedException(failed, $"{e.Message}; the account {id} is kept as deletion_failed: {left}", id);
            // A part that appeared on the server after the check above (another tool racing this create) is a
            // conflict like any other, not a failure of the server.
            if (e is AlreadyThereException) throw new AccountConflictException($"{failed}: {e.Message}. Nothing was kept; remove it or choose other names.");
            throw new ProvisioningFailedException(failed, e.Message);
        }

        if (!await accounts.TransitionAsync(id, [AccountStatus.Creating], AccountStatus.Active, CancellationToken.None))
            throw new AccountConflictException($"Account '{username}' changed while it was being created.");
        await audit.WriteAsync(actor, parts.Action, id, username, parts.Restore is null ? "created" : "restored",
            $"{domain}, package {reserved.Package.Name}{parts.Note}", CancellationToken.None);
        events.Publish(new(id, reserved.OwnerId, AccountStatus.Active));
        return await accounts.FindAsync(new Viewer(0, true), id, CancellationToken.None)
            ?? throw new AccountConflictException($"Account '{username}' was removed while it was being created.");
    }

    /// <summary>
    /// Finishes a create or restore that a stop of the panel interrupted (its row still <c>creating</c>): removes the
    /// parts <paramref name="made"/> says it made, and only those, then the row, as the undo of a create that failed.
    /// </summary>
    /// <returns>What the undo did, for the job's detail.</returns>
    public async Task<string> AbandonAsync(Actor actor, Account account, Func<string, bool> made, string action, string why)
    {
        var identity = AccountIdentity.From(account);
        log.LogWarning("Account {Username} was left creating by a stop of the panel ({Why}); removing what was made", account.Username, why);
        return await UndoAsync(actor, identity, account.OwnerId, _order.Where(r => made(r.Key)).ToList(), action, why) is { } left
            ? $"what it had made could not all be removed, so account {account.Id} is kept as deletion_failed: {left}"
            : "what it had made was removed again and the account does not exist";
    }

    /// <summary>
    /// The undo of a create that did not finish: what it made goes, and only that, then its row. Audited as failed with
    /// <paramref name="why"/>; null once everything is gone, else what is left (the row is kept as deletion_failed then).
    /// </summary>
    private async Task<string?> UndoAsync(Actor actor, AccountIdentity identity, long ownerId, List<IAccountResource> made, string action, string why)
    {
        var (id, username) = (identity.Id, identity.Username);
        var notUndone = await RemoveMadeAsync(identity, made);
        if (notUndone.Count > 0)
        {
            // What the undo could not remove is provably this account's (its uid, its names): the row stays, so the
            // next DELETE of this id finishes the clean-up instead of leaving parts no account and no DELETE can reach.
            var left = $"{string.Join("; ", notUndone.Select(n => $"{n.Key} could not be undone: {n.Value}"))}; DELETE /api/v1/accounts/{id} finishes it";
            await deletionJobs.RecordFailedUndoAsync(identity, ownerId, actor.Name, UndoSteps(made, notUndone), CancellationToken.None);
            await audit.WriteAsync(actor, action, id, username, "failed", $"{why}; {left}", CancellationToken.None);
            events.Publish(new(id, ownerId, AccountStatus.DeletionFailed));
            return left;
        }
        await accounts.DeleteRowAsync(id, CancellationToken.None);
        events.Publish(new(id, ownerId, null));
        await audit.WriteAsync(actor, action, id, username, "failed", why, CancellationToken.None);
        return null;
    }

    /// <returns>The resources the undo could not remove, with why.</returns>
    private async Task<Dictionary<string, string>> RemoveMadeAsync(AccountIdentity identity, List<IAccountResource> made)
    {
        var notUndone = new Dictionary<string, string>();
        foreach (var resource in made.AsEnumerable().Reverse())
        {
            try { await resource.RemoveAsync(identity, CancellationToken.None); }
            catch (Exception e)
            {
                log.LogError(e, "Could not undo {Resource} of {Username}", resource.Key, identity.Username);
                notUndone[resource.Key] = e.Message;
            }
        }
        return notUndone;
    }

    /// <summary>The deletion steps of an undo that did not finish: removed, never made, or still to remove (failed).</summary>
    private static List<(string Resource, string Status, string Detail)> UndoSteps(List<IAccountResource> made, Dictionary<string, string> notUndone) =>
        DeletionOrder.Keys.Select(key =>
            notUndone.TryGetValue(key, out var why) ? (key, StepStatus.Failed, $"the create's undo could not remove it: {why}")
            : made.Any(r => r.Key == key) ? (key, StepStatus.Done, "removed by the undo of the create that failed")
            // Pending, not skipped: nothing looked, so the DELETE that finishes the clean-up runs it and says what it found.
            : (key, StepStatus.Pending, "not made by the create, which failed before it")).ToList();

    /// <summary>
    /// The license's limit, a taken username or domain, and a domain related to another owner's: equal, a parent
    /// (the new zone would be the other tenant's parent) or under it (PowerDNS would answer the more specific new
    /// zone, e.g. <c>mail.{their domain}</c>). An owner may add names under its own domains. The account holding a name
    /// is named (id and names) only to a caller who may see it (<paramref name="mayName"/>); to others it is "another
    /// owner's account", so a reseller learns nothing of another's accounts but that a name is taken.
    /// </summary>
    private void ThrowIfClaimed(AccountClaims claims, string username, string domain, long ownerId, Func<AccountDomain, bool> mayName)
    {
        if (license.Current.MaxAccounts is { } limit && claims.Count >= limit)
            throw new AccountLimitReachedException($"The license allows {limit} accounts and all are in use: delete an account or upgrade the license.");
        if (claims.UsernameHolder is { } user)
            throw new AccountConflictException(mayName(user)
                ? $"The username '{username}' is taken by account {user.Id} ({user.Domain})."
                : $"The username '{username}' is taken by another owner's account.");
        if (claims.RelatedDomains.FirstOrDefault(d => d.Domain == domain) is { } same)
            throw new AccountConflictException(mayName(same)
                ? $"The domain '{domain}' is taken by account {same.Id} ({same.Username})."
                : $"The domain '{domain}' is taken by another owner's account.");
        if (claims.RelatedDomains.FirstOrDefault(d => d.OwnerId != ownerId) is { } other)
        {
            var whose = mayName(other) ? $"account {other.Id} ({other.Username}) of another owner" : "another owner's account";
            throw new AccountConflictException(domain.EndsWith("." + other.Domain, StringComparison.Ordinal)
                ? $"The domain '{domain}' is under '{other.Domain}', which belongs to {whose}."
                : $"The domain '{domain}' is a parent of '{other.Domain}', which belongs to {whose}.");
        }
    }

    /// <summary>
    /// The server's own name belongs to the server, with the names under it and above it: an account's zone of a parent
    /// (<c>example.com</c> of <c>srv1.example.com</c>) would answer the server's name, its vhost and certificate would
    /// take the server's place. This holds for admins too; an operator whose own domain is to be an account gives the
    /// server a host name outside it.
    /// </summary>
    private void ThrowIfServerName(string domain)
    {
        var host = provisioning.Value.EffectiveHostname();
        if (domain == host || domain.EndsWith("." + host, StringComparison.Ordinal))
            throw new AccountConflictException($"The domain '{domain}' is the server's own host name '{host}' (Opterius:Provisioning:Hostname) or under it.");
        if (host.EndsWith("." + domain, StringComparison.Ordinal))
            throw new AccountConflictException($"The domain '{domain}' is a parent of the server's own host name '{host}': its zone would answer "
                + "for the server. To host that domain here, set Opterius:Provisioning:Hostname to a name outside it.");
    }

    /// <summary>
    /// PowerDNS zones no account owns (the provider's own, an operator's) above or below the new domain: the new zone
    /// would answer names of theirs (<c>mail.provider.net</c>) or they would answer names of the new one. Only an
    /// owner's own account zones may be related to its new domain (the accounts check above refused other owners').
    /// </summary>
    private async Task ThrowIfRelatedZonesAsync(string domain, long ownerId, CancellationToken ct)
    {
        var zones = await dnsZone.RelatedZonesAsync(domain, ct);
        var own = await accounts.OwnDomainsAsync(ownerId, zones, ct);
        if (zones.FirstOrDefault(z => !own.Contains(z)) is not { } zone) return;
        throw new AccountConflictException(zone.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase)
            ? $"The domain '{domain}' has the DNS zone '{zone}' under it, which is no account of this owner's: remove that zone or choose another domain."
            : $"The domain '{domain}' is under the DNS zone '{zone}', which is no account of this owner's: its zone would answer names of '{zone}'.");
    }

    /// <summary>
    /// Every resource inspected for the new names before anything is made: whatever already exists (a system user or
    /// its group, both of which system_user reports, a zone, vhost, pool, certificate, mail folder or lines, home, crontab,
    /// databases, database users) belongs to no account, since the names are free in the accounts table, and is never
    /// adopted or overwritten.
    /// </summary>
    private async Task ThrowIfOnServerAsync(AccountIdentity identity, CancellationToken ct)
    {
        var found = await WhatIsThere.FindAsync(_order, identity, ct);
        if (found.Count > 0)
            throw new AccountConflictException(
                $"'{identity.Username}' / '{identity.Domain}' already exist on the server without an account: {string.Join("; ", found)}. Nothing was changed; remove them or choose other names.");
    }

    private async Task<HostingPackage> ValidateAsync(CreateAccountRequest r, CancellationToken ct)
    {
        var errors = AccountRules.Check(r);
        var package = r.PackageId is { } pid && pid > 0 ? await packages.FindAsync(pid, ct) : null;
        if (package is null) errors[AccountRules.PackageId] = AccountRules.PackageMessage;
        if (errors.Count > 0) throw new AccountValidationException(errors);
        return package!;
    }
}
