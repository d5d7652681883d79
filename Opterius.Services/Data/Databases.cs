using MySqlConnector;

namespace Opterius.Services.Data;

/// <summary>
/// A pool of connections to one MariaDB database. Every physical connection has NO_BACKSLASH_ESCAPES cleared from
/// its session mode once, when it is opened (or reset): a hardened server may set it globally, and then
/// MySqlConnector's parameter escaping and <see cref="SqlNames.Literal"/> (both double a backslash) would send a
/// different string than the one meant — a password, a grant's pattern, a SOA contact's <c>\.</c>, a search's
/// escaped <c>_</c> would silently change. The session mode is the client's to choose; the rest of the server's
/// mode is kept. A pooled connection reused without a reset keeps its session, so the hot paths pay no round trip.
/// </summary>
public abstract class MariaDbSource(string connectionString) : IAsyncDisposable
{
    private const string BackslashEscapesSql = "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')";

    private readonly MySqlDataSource _source = new MySqlDataSourceBuilder(connectionString)
        .UseConnectionOpenedCallback(async (context, ct) =>
        {
            if (context.Conditions == MySqlConnectionOpenedConditions.None) return;
            await using var command = new MySqlCommand(BackslashEscapesSql, context.Connection);
            await command.ExecuteNonQueryAsync(ct);
        })
        .Build();

    public ValueTask<MySqlConnection> OpenAsync(CancellationToken ct) => _source.OpenConnectionAsync(ct);

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return _source.DisposeAsync();
    }
}

/// <summary>The panel's own database: accounts, users, tokens, jobs, audit.</summary>
public sealed class PanelDb(string connectionString) : MariaDbSource(connectionString);

/// <summary>The PowerDNS gmysql database.</summary>
public sealed class PowerDnsDb(string connectionString) : MariaDbSource(connectionString);

/// <summary>A server account allowed to create and drop tenant databases and users.</summary>
public sealed class MariaDbAdmin(string connectionString) : MariaDbSource(connectionString);
