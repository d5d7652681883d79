using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using MySqlConnector;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Api;

/// <summary>
/// The panel configured as production is: no starter content, zones of documentation addresses and name servers,
/// a server host name of its own. It works on a sandbox root of its own (the run's private daemons still test and
/// reload), so a test can compare every byte of that root before and after a refused create.
/// </summary>
public sealed class ProductionLikeApp : ApiApp
{
    public const string Hostname = "panel.example.net";
    public const string IPv4 = "192.0.2.10";
    public const string IPv6 = "2001:db8::10";
    public static readonly string[] Nameservers = ["ns1.example.net", "ns2.example.net"];
    public const string SoaContact = "dns.admin@example.net";

    public string Root { get; } = DaemonKit.NewSandboxRoot();

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        // Debian's mail setups keep a vmail system user for virtual mailboxes: the name an attacker would try first.
        FileResourceSandbox.Run("useradd", "-R", Root, "-r", "-M", "-d", "/var/mail", "-s", "/usr/sbin/nologin", "vmail");
        // The files every vhost shares, as an installed server has them (the first vhost makes them when missing).
        Directory.CreateDirectory(Under("/etc/nginx/snippets"));
        File.WriteAllText(Under("/etc/nginx/snippets/opterius-listen.conf"), "listen 80;\n");
        Directory.CreateDirectory(Under("/var/www/suspended"));
        File.WriteAllText(Under("/var/www/suspended/index.html"), "<h1>This account is suspended</h1>\n");
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureAppConfiguration(config => config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Opterius:Root"] = Root,
            ["Opterius:Provisioning:StarterContent"] = "false",
            ["Opterius:Provisioning:Addresses:0"] = IPv4,
            ["Opterius:Provisioning:Addresses:1"] = IPv6,
            ["Opterius:Provisioning:Nameservers:0"] = Nameservers[0],
            ["Opterius:Provisioning:Nameservers:1"] = Nameservers[1],
            ["Opterius:Provisioning:SoaContact"] = SoaContact,
            ["Opterius:Provisioning:Hostname"] = Hostname,
        }));
    }

    public string Under(string path) => Path.Combine(Root, path.TrimStart('/'));

    /// <summary>
    /// Everything a create could touch: every file of the root (type, mode, owner, bytes or link target), every
    /// PowerDNS row and pending cache purge, the MariaDB databases, users and grants whose names start with <paramref name="username"/>, and
    /// the accounts table.
    /// </summary>
    public async Task<string> ServerStateAsync(string username)
    {
        // useradd and userdel keep a copy of the previous user database (passwd-, shadow-, group-, gshadow-): the
        // tools' own backups, not state of the server, so they are left out. So is the panel's uid ledger: a uid
        // handed out once (even to a create that was undone) is never handed out again, by design.
        var files = FileResourceSandbox.Snapshot(Root).Where(kv =>
            !(kv.Key.StartsWith(Under("/etc/"), StringComparison.Ordinal) && kv.Key.EndsWith('-'))
            && !kv.Key.StartsWith(Under("/var/lib/opterius"), StringComparison.Ordinal)
            // The lock file beside a line file (users.lock) is how rewrites of it exclude each other, not server state.
            && !(kv.Key.StartsWith(Under("/etc/"), StringComparison.Ordinal) && kv.Key.EndsWith(".lock", StringComparison.Ordinal)));
        var parts = new List<string> { string.Join('\n', files.Select(kv => $"{kv.Key} {kv.Value}")) };
        foreach (var table in new[] { "domains", "records", "comments", "domainmetadata", "cryptokeys" })
            parts.Add(await DumpAsync(Databases.PowerDns, $"SELECT * FROM {table} ORDER BY id"));
        parts.Add(await DumpAsync(Databases.PowerDns, "SELECT name FROM opterius_pending_purges ORDER BY name"));
        parts.Add(await DumpAsync(Databases.Admin, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1", username));
        parts.Add(await DumpAsync(Databases.Admin, "SELECT User, Host, Priv FROM mysql.global_priv ORDER BY User, Host", username));
        parts.Add(await DumpAsync(Databases.Admin, "SELECT User, Host, Db FROM mysql.db ORDER BY User, Host, Db", username));
        parts.Add(await DumpAsync(Databases.Panel, "SELECT id, username, domain, owner_id, status, uid FROM accounts ORDER BY id"));
        return string.Join("\n--\n", parts);
    }

    /// <summary>Every row as text; with <paramref name="prefix"/>, only rows whose first column starts with it.</summary>
    public static async Task<string> DumpAsync(string connectionString, string sql, string? prefix = null)
    {
        await using var c = new MySqlConnection(connectionString);
        await using var reader = await c.ExecuteReaderAsync(sql);
        var lines = new List<string>();
        while (await reader.ReadAsync())
        {
            var row = Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i))!).ToList();
            if (prefix is null || row[0].StartsWith(prefix, StringComparison.Ordinal)) lines.Add(string.Join(" | ", row));
        }
        return string.Join('\n', lines);
    }

    public async Task ExecAsync(string connectionString, string sql, object? args = null)
    {
        await using var c = new MySqlConnection(connectionString);
        await c.ExecuteAsync(sql, args);
    }
}
