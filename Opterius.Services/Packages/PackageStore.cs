using Dapper;
using Opterius.Services.Data;

namespace Opterius.Services.Packages;

public sealed record HostingPackage(long Id, string Name, int DiskMb, int MaxDatabases, int MaxMailboxes, string PhpVersion);

public sealed class PackageStore(PanelDb db)
{
    private const string Columns = "id AS Id, name AS Name, disk_mb AS DiskMb, max_databases AS MaxDatabases, max_mailboxes AS MaxMailboxes, php_version AS PhpVersion";

    public async Task<IReadOnlyList<HostingPackage>> ListAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<HostingPackage>(new CommandDefinition($"SELECT {Columns} FROM packages ORDER BY id", cancellationToken: ct))).AsList();
    }

    public async Task<HostingPackage?> FindAsync(long id, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<HostingPackage>(new CommandDefinition($"SELECT {Columns} FROM packages WHERE id = @id", new { id }, cancellationToken: ct));
    }

    /// <summary>Creates the package when missing (demo seed); returns its id.</summary>
    public async Task<long> EnsureAsync(string name, int diskMb, int maxDatabases, int maxMailboxes, string phpVersion, CancellationToken ct)
    {
        const string sql = """
            INSERT INTO packages (name, disk_mb, max_databases, max_mailboxes, php_version)
            VALUES (@name, @diskMb, @maxDatabases, @maxMailboxes, @phpVersion)
            ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id);
            SELECT LAST_INSERT_ID();
            """;
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteScalarAsync<long>(new CommandDefinition(sql, new { name, diskMb, maxDatabases, maxMailboxes, phpVersion }, cancellationToken: ct));
    }
}
