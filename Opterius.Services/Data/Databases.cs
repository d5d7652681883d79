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

/// <summary>A server account allowed to create and drop tenant databases and users.</summary>
public sealed class MariaDbAdmin(MySqlDataSource source)
{
    public ValueTask<MySqlConnection> OpenAsync(CancellationToken ct) => source.OpenConnectionAsync(ct);
}
