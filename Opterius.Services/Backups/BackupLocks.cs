using System.Security.Cryptography;
using System.Text;
using Dapper;
using MySqlConnector;

namespace Opterius.Services.Backups;

/// <summary>
/// One holder at a time per backup, across panel processes: a restore holds its backup's lock for as long as it runs,
/// the final backup step while it writes the archive, a purge while it removes it. A MariaDB named lock on a connection
/// of its own, never pooled: closing it always frees the lock (a pooled connection is not reset when it goes back, so a
/// lock whose release failed, or granted as the caller gave up, would stay held by an idle connection nobody owns), and
/// a process that dies (a crash, a kill) frees it with its connection, so a lock that can be taken names a backup
/// nobody is working on.
/// </summary>
public sealed class BackupLocks
{
    private const string TakeSql = "SELECT GET_LOCK(@name, @seconds)";

    /// <summary>
    /// A restore holds its lock idle for as long as it runs: the server's wait_timeout (8 hours by default, often
    /// minutes on a hardened one) must not close it meanwhile. A year, the largest the server takes on every platform.
    /// </summary>
    private const string KeepSql = "SET SESSION wait_timeout = 31536000";

    private readonly string _connectionString;
    private readonly string _prefix;

    public BackupLocks(string connectionString)
    {
        var builder = new MySqlConnectionStringBuilder(connectionString) { Pooling = false };
        _connectionString = builder.ConnectionString;
        // Named locks are server-wide and at most 64 characters: the panel's database (up to 64 itself) is in the name as
        // a hash, so two panels on one server never share a lock, and "opterius:backup:" + 16 hex + ":" + an id fits.
        var database = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(builder.Database)))[..16];
        _prefix = $"opterius:backup:{database}:";
    }

    /// <summary>The server's name of the backup's lock (at most 64 characters).</summary>
    public string NameOf(long backupId) => _prefix + backupId;

    /// <returns>The lock, held until disposed; null when another holder kept it for <paramref name="wait"/>.</returns>
    public async Task<BackupLock?> TryTakeAsync(long backupId, TimeSpan wait, CancellationToken ct)
    {
        var c = new MySqlConnection(_connectionString);
        try
        {
            await c.OpenAsync(ct);
            await c.ExecuteAsync(new CommandDefinition(KeepSql, cancellationToken: ct));
            if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(TakeSql, new { name = NameOf(backupId), seconds = wait.TotalSeconds }, cancellationToken: ct)) == 1)
                return new BackupLock(c, NameOf(backupId));
        }
        catch
        {
            // Closed, not pooled: a lock the server granted as the caller gave up goes with the connection.
            await c.DisposeAsync();
            throw;
        }
        await c.DisposeAsync();
        return null;
    }
}

/// <summary>A backup's lock, held by its own connection until disposed (which closes that connection, freeing it).</summary>
public sealed class BackupLock(MySqlConnection c, string name) : IAsyncDisposable
{
    private const string HeldSql = "SELECT IS_USED_LOCK(@name) = CONNECTION_ID()";

    /// <summary>
    /// Whether the lock is still this holder's: false once its connection was lost (killed, the server restarted, a
    /// timeout), when a purge or another restore may already hold it.
    /// </summary>
    public async Task<bool> IsHeldAsync(CancellationToken ct)
    {
        try { return await c.ExecuteScalarAsync<long?>(new CommandDefinition(HeldSql, new { name }, cancellationToken: ct)) == 1; }
        // A killed connection fails as a MySqlException, a broken socket, or a connection closed under it: lost, each.
        catch (Exception e) when (e is not OperationCanceledException) { return false; }
    }

    // Closing the connection frees the lock: no RELEASE_LOCK to fail and leave it held.
    public ValueTask DisposeAsync() => c.DisposeAsync();
}
