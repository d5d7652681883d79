using Dapper;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Commands;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Daemons;

/// <summary>The run's private PowerDNS answers from its gmysql database and forgets a zone once its rows are gone.</summary>
public sealed class PrivatePowerDnsTests
{
    private const string InsertZone = "INSERT INTO domains (name, type) VALUES (@Zone, 'NATIVE')";
    private const string InsertRecord = """
        INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
        SELECT id, @Name, @Type, @Content, 60, 0, 0, 1 FROM domains WHERE name = @Zone
        """;
    private const string DeleteRecords = "DELETE FROM records WHERE domain_id = (SELECT id FROM domains WHERE name = @Zone)";
    private const string DeleteZone = "DELETE FROM domains WHERE name = @Zone";

    private static string Dig(string name) =>
        DaemonKit.Run("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", PrivateServices.Get("PDNS_PORT")!, name, "A").Trim();

    [Fact]
    public async Task AZoneWrittenToTheDatabaseIsAnsweredAndAfterItsRowsAreDeletedAndTheCachePurgedItIsNot()
    {
        var database = PrivateServices.PowerDnsDatabase ?? throw new InvalidOperationException("PowerDNS is not installed");
        var zone = $"{DaemonKit.Username("dns")}.test";
        await using (var c = new MySqlConnection(PrivateServices.RootConnectionString(database)))
        {
            await c.ExecuteAsync(InsertZone, new { Zone = zone });
            await c.ExecuteAsync(InsertRecord, new { Zone = zone, Name = zone, Type = "SOA", Content = $"ns1.{zone} hostmaster.{zone} 1 10800 3600 604800 60" });
            await c.ExecuteAsync(InsertRecord, new { Zone = zone, Name = zone, Type = "A", Content = "127.0.0.9" });
        }

        Assert.Equal("127.0.0.9", Dig(zone));

        await using (var c = new MySqlConnection(PrivateServices.RootConnectionString(database)))
        {
            await c.ExecuteAsync(DeleteRecords, new { Zone = zone });
            await c.ExecuteAsync(DeleteZone, new { Zone = zone });
        }
        using var services = DaemonKit.Services();
        await services.GetRequiredService<CommandRunner>().RunAsync("PdnsPurge", null, default);

        Assert.Equal("", Dig(zone));
    }
}
