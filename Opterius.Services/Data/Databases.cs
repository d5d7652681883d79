using MySqlConnector;

namespace Opterius.Services.Data;

/// <summary>The panel's own database: accounts, users, tokens, jobs, audit.</summary>
public sealed class PanelDb(MySqlDataSource source)
{
    public ValueTask<MySqlConnection> OpenAsync(CancellationToken ct) => source.OpenConnectionAsync(ct);
}

/// <summary>The PowerDNS gmysql database.</summary>
public sealed class PowerDnsDb(MySqlDataSource source)
{
    public ValueTask<MySqlConnection> OpenAsync(CancellationToken ct) => source.OpenConnectionAsync(ct);
}

/// <summary>
/// A server account allowed to create and drop tenant databases and users. Every connection it hands out has
/// NO_BACKSLASH_ESCAPES cleared from its session mode: a hardened server may set it globally, and then both
/// MySqlConnector's parameter escaping and <see cref="SqlNames.Literal"/> (which double backslashes) would send
/// a different string than the one meant, so a password, a grant's database pattern or a name would silently
/// change. The session mode is the client's to choose; the rest of the server's mode is kept.
/// </summary>
public sealed class MariaDbAdmin(MySqlDataSource source)
{
    private const string BackslashEscapesSql = "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')";

    public async ValueTask<MySqlConnection> OpenAsync(CancellationToken ct)
    {
        var c = await source.OpenConnectionAsync(ct);
        try
        {
            await using var command = new MySqlCommand(BackslashEscapesSql, c);
            await command.ExecuteNonQueryAsync(ct);
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }
}
