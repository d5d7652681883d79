using System.Diagnostics;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Resources;

public sealed class DnsZoneResourceTests : IAsyncLifetime
{
    private const string Domain = "example.com";
    private static readonly string[] Neighbours = ["sub.example.com", "xexample.com", "example.com.au"];
    private static readonly string[] ZoneTables = ["records", "comments", "domainmetadata", "cryptokeys"];

    private SqlResourceKit _kit = null!;
    private readonly string _bob = SqlResourceKit.UniqueUsername();
    private readonly string _purgeMark = Path.Combine(Path.GetTempPath(), $"opterius-pdns-purge-{Guid.NewGuid():N}");

    public async Task InitializeAsync() => _kit = await SqlResourceKit.CreateAsync();

    public Task DisposeAsync()
    {
        File.Delete(_purgeMark);
        return Task.CompletedTask;
    }

    private DnsZoneResource Zones(SqlResourceKit kit) => new(kit.PowerDns, kit.Reloader, SqlResourceKit.Provisioning);

    [Fact]
    public async Task AProvisionedZoneIsInspectedThenRemovedWithAllItsRowsWhileLikeNamedZonesKeepTheirs()
    {
        var zones = Zones(_kit);
        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default);
        await AddSideRowsAsync(Domain);
        await CreateNeighbourZonesAsync();
        var id = await ZoneIdAsync(Domain);
        var neighboursBefore = await SnapshotAsync(exceptDomainId: id);

        var plan = await zones.InspectAsync(SqlResourceKit.Identity(_bob, Domain), default);

        Assert.True(plan.Exists);
        Assert.Equal(new[] { Domain }, plan.Items);
        Assert.Equal(8, plan.Count);
        var types = await _kit.QueryAsync<string>(_kit.Databases.PowerDns, "SELECT DISTINCT type FROM records WHERE domain_id = @id ORDER BY type", new { id });
        Assert.Equal(new[] { "A", "MX", "NS", "SOA", "TXT" }, types);

        var failure = await Assert.ThrowsAsync<ResourceException>(() => zones.RemoveAsync(SqlResourceKit.Identity(_bob, Domain), default));

        // No PdnsPurge in this kit: the rows are gone, and the step fails saying the cache was not purged and why.
        Assert.StartsWith("not configured: set Opterius:Commands:PdnsPurge;", failure.Message);
        Assert.Null(await ZoneIdOrNullAsync(Domain));
        foreach (var table in ZoneTables)
            Assert.Empty(await _kit.QueryAsync<long>(_kit.Databases.PowerDns, $"SELECT id FROM {table} WHERE domain_id = @id", new { id }));
        Assert.Equal(neighboursBefore, await SnapshotAsync(exceptDomainId: id));
        Assert.Equal(3, (await _kit.QueryAsync<string>(_kit.Databases.PowerDns, "SELECT name FROM domains")).Count);
    }

    [Fact]
    public async Task RemovingAZoneThatIsNotThereIsSkippedAndTouchesNoOtherZone()
    {
        await CreateNeighbourZonesAsync();
        var before = await SnapshotAsync(exceptDomainId: -1);

        var outcome = await Zones(_kit).RemoveAsync(SqlResourceKit.Identity(_bob, Domain), default);

        Assert.Equal(StepStatus.Skipped, outcome.Status);
        Assert.False((await Zones(_kit).InspectAsync(SqlResourceKit.Identity(_bob, Domain), default)).Exists);
        Assert.Equal(before, await SnapshotAsync(exceptDomainId: -1));
    }

    [Fact]
    public async Task AFailedRemovalRollsBackSoEveryRowOfTheZoneIsStillThereAndTheNextAttemptRemovesThemAll()
    {
        var zones = Zones(_kit);
        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default);
        await AddSideRowsAsync(Domain);
        var before = await SnapshotAsync(exceptDomainId: -1);
        // The domains row is deleted last: refusing it makes the transaction fail after the other four deletes ran.
        await _kit.ExecAsync(_kit.Databases.PowerDns,
            "CREATE TRIGGER refuse_zone_delete BEFORE DELETE ON domains FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'");

        var failure = await Assert.ThrowsAsync<ResourceException>(() => zones.RemoveAsync(SqlResourceKit.Identity(_bob, Domain), default));

        Assert.Contains("injected failure", failure.Message);
        Assert.Equal(before, await SnapshotAsync(exceptDomainId: -1));

        await _kit.ExecAsync(_kit.Databases.PowerDns, "DROP TRIGGER refuse_zone_delete");
        // This kit has no PdnsPurge: the rows go, and the step fails on the purge alone.
        await Assert.ThrowsAsync<ResourceException>(() => zones.RemoveAsync(SqlResourceKit.Identity(_bob, Domain), default));

        Assert.Equal("", await SnapshotAsync(exceptDomainId: -1));
    }

    [Fact]
    public async Task AConfiguredCachePurgeRunsAfterTheRowsAreGoneAndTheStepIsDone()
    {
        var kit = await SqlResourceKit.CreateAsync(new(StringComparer.OrdinalIgnoreCase) { ["PdnsPurge"] = ["touch", _purgeMark] });
        var zones = Zones(kit);
        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default);

        var outcome = await zones.RemoveAsync(SqlResourceKit.Identity(_bob, Domain), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.True(File.Exists(_purgeMark));
        Assert.False((await zones.InspectAsync(SqlResourceKit.Identity(_bob, Domain), default)).Exists);
    }

    [Fact]
    public async Task AResumeAfterAnUnconfiguredPurgeFindsThePendingPurgeRunsItAndIsDone()
    {
        var zones = Zones(_kit);
        var bob = SqlResourceKit.Identity(_bob, Domain);
        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default);
        await CreateNeighbourZonesAsync();
        await Assert.ThrowsAsync<ResourceException>(() => zones.RemoveAsync(bob, default));
        var neighbours = await SnapshotAsync(exceptDomainId: -1);

        var pending = await zones.InspectAsync(bob, default);
        var configured = await SqlResourceKit.CreateAsync(new(StringComparer.OrdinalIgnoreCase) { ["PdnsPurge"] = ["touch", _purgeMark] },
            powerDnsDatabase: new MySqlConnector.MySqlConnectionStringBuilder(_kit.Databases.PowerDns).Database);
        var resumed = await Zones(configured).RemoveAsync(bob, default);

        Assert.True(pending.Exists);
        Assert.Contains("purge has not run", pending.Summary);
        Assert.Equal(StepStatus.Done, resumed.Status);
        Assert.Contains("earlier run", resumed.Detail);
        Assert.True(File.Exists(_purgeMark));
        Assert.False((await zones.InspectAsync(bob, default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await Zones(configured).RemoveAsync(bob, default)).Status);
        Assert.Equal(neighbours, await SnapshotAsync(exceptDomainId: -1));
    }

    [Fact]
    public async Task ProvisioningAZoneThatAnotherAccountOwnsIsRefusedAndChangesNothing()
    {
        await CreateZoneAsync(Domain, owner: "someoneelse");
        var before = await SnapshotAsync(exceptDomainId: -1);

        await Assert.ThrowsAsync<AlreadyThereException>(() => Zones(_kit).ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default));

        Assert.Equal(before, await SnapshotAsync(exceptDomainId: -1));
    }

    [Fact]
    public async Task AZoneLeftUnderTheSameAccountNameIsRefusedNeverAdoptedAndKeepsEveryRecord()
    {
        var zones = Zones(_kit);
        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default);
        await AddSideRowsAsync(Domain);
        var before = await SnapshotAsync(exceptDomainId: -1);

        var refused = await Assert.ThrowsAsync<AlreadyThereException>(() => zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, Domain), default));

        Assert.Contains($"a DNS zone {Domain} already exists", refused.Message);
        Assert.Equal(before, await SnapshotAsync(exceptDomainId: -1));
        Assert.Single(await _kit.QueryAsync<string>(_kit.Databases.PowerDns, "SELECT name FROM domains"));
    }

    [Fact]
    public async Task TheRealPowerDnsAnswersForAProvisionedZoneAndStopsAnsweringOnceItIsRemoved()
    {
        // The served database is shared by the run, so this zone has a name of its own.
        // scripts/install.sh installs PowerDNS: a run without it is a broken run, not a pass.
        var served = PrivateServices.PowerDnsDatabase ?? throw new InvalidOperationException("the private PowerDNS is not running (scripts/install.sh)");
        var socketDir = PrivateServices.Get("PDNS_SOCKET_DIR") ?? throw new InvalidOperationException("the private PowerDNS has no socket folder");
        var kit = await SqlResourceKit.CreateAsync(new(StringComparer.OrdinalIgnoreCase)
        {
            ["PdnsPurge"] = ["pdns_control", $"--config-dir={socketDir}", $"--socket-dir={socketDir}", "purge"],
        }, powerDnsDatabase: served);
        var domain = $"{_bob}.example";
        var zones = Zones(kit);
        await zones.ProvisionAsync(SqlResourceKit.NewAccount(_bob, domain), default);

        Assert.Equal("127.0.0.1", await DigAsync($"www.{domain}", "A"));
        Assert.Equal($"10 mail.{domain}.", await DigAsync(domain, "MX"));
        Assert.Equal("\"v=spf1 a mx -all\"", await DigAsync(domain, "TXT"));

        var outcome = await zones.RemoveAsync(SqlResourceKit.Identity(_bob, domain), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Equal("", await DigAsync($"www.{domain}", "A"));
    }

    private static async Task<string> DigAsync(string name, string type)
    {
        var psi = new ProcessStartInfo("dig") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "@127.0.0.1", "-p", PrivateServices.Get("PDNS_PORT")!, "+short", "+tries=1", "+time=2", name, type })
            psi.ArgumentList.Add(arg);
        using var dig = Process.Start(psi)!;
        var output = await dig.StandardOutput.ReadToEndAsync();
        await dig.WaitForExitAsync();
        return output.Trim();
    }

    private async Task CreateNeighbourZonesAsync()
    {
        // sub.example.com is its own zone owned by somebody else; the others only look alike.
        foreach (var name in Neighbours)
        {
            await CreateZoneAsync(name, owner: "someoneelse");
            await AddSideRowsAsync(name);
        }
    }

    private async Task CreateZoneAsync(string name, string owner)
    {
        await _kit.ExecAsync(_kit.Databases.PowerDns, "INSERT INTO domains (name, type, account) VALUES (@name, 'NATIVE', @owner)", new { name, owner });
        var id = await ZoneIdAsync(name);
        await _kit.ExecAsync(_kit.Databases.PowerDns, """
            INSERT INTO records (domain_id, name, type, content, ttl) VALUES
              (@id, @name, 'SOA', CONCAT('ns1.', @name, ' hostmaster.', @name, ' 1 10800 3600 604800 3600'), 3600),
              (@id, @name, 'A', '192.0.2.7', 3600),
              (@id, CONCAT('www.', @name), 'A', '192.0.2.7', 3600)
            """, new { id, name });
    }

    /// <summary>A comment, a metadata entry and a key: the tables only a removal by domain_id reaches.</summary>
    private async Task AddSideRowsAsync(string name)
    {
        var id = await ZoneIdAsync(name);
        await _kit.ExecAsync(_kit.Databases.PowerDns, """
            INSERT INTO comments (domain_id, name, type, modified_at, account, comment) VALUES (@id, @name, 'A', 1700000000, 'x', CONCAT('note on ', @name));
            INSERT INTO domainmetadata (domain_id, kind, content) VALUES (@id, 'ALLOW-AXFR-FROM', '192.0.2.1');
            INSERT INTO cryptokeys (domain_id, flags, active, published, content) VALUES (@id, 257, 1, 1, CONCAT('key of ', @name));
            """, new { id, name });
    }

    private async Task<int> ZoneIdAsync(string name) => await ZoneIdOrNullAsync(name) ?? throw new InvalidOperationException($"no zone {name}");

    private async Task<int?> ZoneIdOrNullAsync(string name) =>
        (await _kit.QueryAsync<int?>(_kit.Databases.PowerDns, "SELECT id FROM domains WHERE name = @name", new { name })).SingleOrDefault();

    /// <summary>Every row of the five PowerDNS tables, except those of one zone id.</summary>
    private async Task<string> SnapshotAsync(int exceptDomainId)
    {
        var parts = new List<string> { await _kit.SnapshotAsync(_kit.Databases.PowerDns, "SELECT * FROM domains WHERE id <> @exceptDomainId ORDER BY id", new { exceptDomainId }) };
        foreach (var table in ZoneTables)
            parts.Add(await _kit.SnapshotAsync(_kit.Databases.PowerDns, $"SELECT * FROM {table} WHERE domain_id <> @exceptDomainId ORDER BY id", new { exceptDomainId }));
        return string.Join("\n", parts.Where(p => p.Length > 0));
    }
}
