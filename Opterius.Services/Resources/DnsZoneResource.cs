using System.Net;
using System.Net.Sockets;
using Dapper;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Data;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's DNS zone: PowerDNS gmysql rows in <c>domains</c>, <c>records</c>, <c>comments</c>,
/// <c>domainmetadata</c> and <c>cryptokeys</c>. The zone is found by its exact name and everything else
/// by its <c>domain_id</c>, so <c>sub.{domain}</c> (its own zone), <c>x{domain}</c> and <c>{domain}.au</c>
/// are never touched.
/// </summary>
public sealed class DnsZoneResource(PowerDnsDb powerDns, ServiceReloader reloader, IOptions<ProvisioningOptions> provisioning) : IAccountResource, IDnsZones
{
    public string Key => "dns_zone";

    private const int Ttl = 3600;

    private const string FindZoneSql = "SELECT id AS Id, name AS Name, account AS Owner FROM domains WHERE name = @Domain";
    private const string InsertZoneSql = "INSERT INTO domains (name, type, account) VALUES (@Domain, 'NATIVE', @Owner)";
    private const string CountRecordsSql = "SELECT COUNT(*) FROM records WHERE domain_id = @Id";
    private const string InsertRecordSql = """
        INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
        VALUES (@DomainId, @Name, @Type, @Content, @Ttl, @Prio, 0, 1)
        """;

    // Children first, the domains row last: PowerDNS has no foreign keys, so a half-done removal would leave
    // rows that a later zone of the same id could inherit. One transaction means all of them or none.
    private static readonly string[] DeleteSql =
    [
        "DELETE FROM records WHERE domain_id = @Id",
        "DELETE FROM comments WHERE domain_id = @Id",
        "DELETE FROM domainmetadata WHERE domain_id = @Id",
        "DELETE FROM cryptokeys WHERE domain_id = @Id",
        "DELETE FROM domains WHERE id = @Id",
    ];

    private sealed record Zone(int Id, string Name, string? Owner);

    /// <summary>
    /// A NATIVE zone: SOA and NS from <see cref="ProvisioningOptions"/>, A/AAAA records of the server's addresses for
    /// the apex, www and mail, MX and SPF. The zone's <c>account</c> column names the owner. A zone of that name that
    /// exists already, whoever it names, is refused and left as it is: it is not this create's.
    /// </summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var (username, domain) = (account.Identity.Username, account.Identity.Domain);
        await using var c = await powerDns.OpenAsync(ct);
        // Read committed: no gap locks, so zones created side by side (a batch of new accounts) never deadlock.
        // One transaction: a failure half-way leaves no zone behind (nothing to clean up), never half a zone.
        await using var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
        if (await FindAsync(c, tx, domain, ct) is { } existing)
            throw new AlreadyThereException($"a DNS zone {domain} already exists (account '{existing.Owner}'); it is left as it is");
        await c.ExecuteAsync(new CommandDefinition(InsertZoneSql, new { Domain = domain, Owner = username }, tx, cancellationToken: ct));
        var zone = await FindAsync(c, tx, domain, ct) ?? throw new ResourceException($"zone {domain} vanished while being created");
        await c.ExecuteAsync(new CommandDefinition(InsertRecordSql, Records(zone.Id, domain), tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
    }

    private IEnumerable<object> Records(int id, string domain)
    {
        var p = provisioning.Value;
        var serial = DateTime.UtcNow.ToString("yyyyMMdd") + "01";
        object R(string name, string type, string content, int prio = 0) => new { DomainId = id, Name = name, Type = type, Content = content, Ttl, Prio = prio };
        yield return R(domain, "SOA", $"{p.Nameservers[0].ToLowerInvariant()} {p.SoaRname()} {serial} 10800 3600 604800 3600");
        foreach (var ns in p.Nameservers) yield return R(domain, "NS", ns.ToLowerInvariant());
        foreach (var address in p.Addresses.Select(IPAddress.Parse))
        {
            var type = address.AddressFamily == AddressFamily.InterNetworkV6 ? "AAAA" : "A";
            foreach (var name in new[] { domain, $"www.{domain}", $"mail.{domain}" }) yield return R(name, type, address.ToString());
        }
        // gmysql puts the prio column in front of an MX's content when it answers; "10 mail..." here would become "0 10 mail...".
        yield return R(domain, "MX", $"mail.{domain}", prio: 10);
        yield return R(domain, "TXT", "\"v=spf1 a mx -all\"");
    }

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        await using var c = await powerDns.OpenAsync(ct);
        var zone = await FindAsync(c, null, account.Domain, ct);
        if (zone is null)
            return await IsPurgePendingAsync(c, null, account.Domain, ct)
                ? new(Key, true, [account.Domain], 0, 0, $"zone {account.Domain} removed; the PowerDNS cache purge has not run yet")
                : ResourceInspection.Nothing(Key, $"no zone {account.Domain}");
        var records = await c.ExecuteScalarAsync<long>(new CommandDefinition(CountRecordsSql, new { zone.Id }, cancellationToken: ct));
        return new(Key, true, [zone.Name], 0, records, $"zone {zone.Name}, {records} record(s)");
    }

    // Parents by equality; children by the name's end (compared again below): no LIKE, so neither wildcards in a
    // name nor how the server reads backslashes change what is found.
    private const string RelatedZonesSql = "SELECT name FROM domains WHERE name IN @Parents OR RIGHT(name, @Length) = @Suffix";

    /// <summary>
    /// The zones other than <paramref name="domain"/>'s own that a zone of it would meet: its parents of two labels or
    /// more (the new zone would answer names under them, such as <c>mail.provider.net</c>) and the zones under it
    /// (which would answer names of the new one). Case is ignored, as PowerDNS ignores it when it answers.
    /// </summary>
    public async Task<IReadOnlyList<string>> RelatedZonesAsync(string domain, CancellationToken ct)
    {
        var labels = domain.Split('.');
        var parents = Enumerable.Range(1, Math.Max(0, labels.Length - 2)).Select(i => string.Join('.', labels[i..])).ToList();
        var suffix = "." + domain;
        await using var c = await powerDns.OpenAsync(ct);
        var names = await c.QueryAsync<string>(new CommandDefinition(RelatedZonesSql,
            new { Parents = parents, suffix.Length, Suffix = suffix }, cancellationToken: ct));
        return names.Where(n => parents.Contains(n, StringComparer.OrdinalIgnoreCase) || n.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The rows go in one transaction that also marks the zone's cache purge as pending; the mark is cleared once
    /// the purge ran. So a purge that failed or is not configured fails the step with the rows already gone (the zone
    /// stops answering once PowerDNS's caches expire), and the resumed step finds the mark, purges and reports done.
    /// </summary>
    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var domain = account.Domain;
        int? records = null;
        using var approach = reloader.Expect("pdns"); // a purge other removals open meanwhile waits for this one's rows
        await using var c = await powerDns.OpenAsync(ct);
        try
        {
            await using var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
            var zone = await FindAsync(c, tx, domain, ct, forUpdate: true);
            if (zone is null)
            {
                if (!await IsPurgePendingAsync(c, tx, domain, ct)) return RemoveOutcome.Skipped($"nothing there: no zone {domain}");
            }
            else
            {
                var counts = new List<int>();
                foreach (var sql in DeleteSql)
                    counts.Add(await c.ExecuteAsync(new CommandDefinition(sql, new { zone.Id }, tx, cancellationToken: ct)));
                await c.ExecuteAsync(new CommandDefinition(MarkPurgeSql, new { Domain = domain }, tx, cancellationToken: ct));
                await tx.CommitAsync(ct);
                records = counts[0];
            }
        }
        catch (MySqlException e)
        {
            throw new ResourceException($"cannot remove zone {domain}: {e.Message}", e);
        }

        var removed = records is { } n ? $"zone {domain} and its {n} record(s) removed" : $"zone {domain} had been removed by an earlier run";
        if ((await ResourceException.WhenCommandFails(() => reloader.ReloadAsync("pdns", ct, approach), $"{removed}, but the PowerDNS cache purge failed")).NotConfigured is { } notConfigured)
            throw new ResourceException($"{notConfigured}; {removed}, but PowerDNS may answer from its cache until it expires or is purged");
        try { await c.ExecuteAsync(new CommandDefinition(ClearPurgeSql, new { Domain = domain }, cancellationToken: ct)); }
        catch (MySqlException e) { throw new ResourceException($"{removed} and the cache purged, but its pending mark stays: {e.Message}", e); }
        return RemoveOutcome.Done($"{removed}; cache purged");
    }

    private const string MarkPurgeSql = "INSERT IGNORE INTO opterius_pending_purges (name) VALUES (@Domain)";
    private const string ClearPurgeSql = "DELETE FROM opterius_pending_purges WHERE name = @Domain";
    private const string PurgePendingSql = "SELECT COUNT(*) FROM opterius_pending_purges WHERE name = @Domain";

    private static async Task<bool> IsPurgePendingAsync(MySqlConnection c, MySqlTransaction? tx, string domain, CancellationToken ct) =>
        await c.ExecuteScalarAsync<long>(new CommandDefinition(PurgePendingSql, new { Domain = domain }, tx, cancellationToken: ct)) > 0;

    private const string FindZoneForUpdateSql = FindZoneSql + " FOR UPDATE";

    private static async Task<Zone?> FindAsync(MySqlConnection c, MySqlTransaction? tx, string domain, CancellationToken ct, bool forUpdate = false)
    {
        var rows = await c.QueryAsync<Zone>(new CommandDefinition(forUpdate ? FindZoneForUpdateSql : FindZoneSql, new { Domain = domain }, tx, cancellationToken: ct));
        // The column's collation ignores case and trailing spaces; the zone is ours only if the name is identical.
        return rows.SingleOrDefault(z => z.Name == domain);
    }
}

/// <summary>
/// The DNS zones a new domain would meet (its parents and the zones under it). In process it is
/// <see cref="DnsZoneResource"/>; a panel that uses the agent asks the agent, which holds the PowerDNS database.
/// </summary>
public interface IDnsZones
{
    Task<IReadOnlyList<string>> RelatedZonesAsync(string domain, CancellationToken ct);
}
