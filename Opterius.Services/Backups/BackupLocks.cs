using Dapper;
using MySqlConnector;
using Opterius.Services.Data;

namespace Opterius.Services.Backups;

/// <summary>
/// One holder at a time per backup, across panel processes: a restore holds its backup's lock for as long as it runs,
/// the final backup step while it writes the archive, a purge while it removes it. A MariaDB named lock on a connection
/// of its own: a process that dies (a crash, a kill) frees it with its connection, so a lock that can be taken names a
/// backup nobody is working on.
/// </summary>
public sealed class BackupLocks(PanelDb db)
{
    private const string TakeSql = "SELECT GET_LOCK(CONCAT('opterius:backup:', DATABASE(), ':', @id), @seconds)";
    private const string ReleaseSql = "DO RELEASE_LOCK(CONCAT('opterius:backup:', DATABASE(), ':', @id))";

    /// <returns>The lock, held until disposed; null when another holder kept it for <paramref name="wait"/>.</returns>
    public async Task<IAsyncDisposable?> TryTakeAsync(long backupId, TimeSpan wait, CancellationToken ct)
    {
        var c = await db.OpenAsync(ct);
        try
        {
            if (await c.ExecuteScalarAsync<long?>(new CommandDefinition(TakeSql, new { id = backupId, seconds = wait.TotalSeconds }, cancellationToken: ct)) == 1)
                return new Held(c, backupId);
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
        await c.DisposeAsync();
        return null;
    }

    private sealed class Held(MySqlConnection c, long id) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            // Released before the connection goes back to the pool; one that broke meanwhile freed it with its session.
            try { await c.ExecuteAsync(new CommandDefinition(ReleaseSql, new { id })); }
            catch (MySqlException) { }
            finally { await c.DisposeAsync(); }
        }
    }
}
