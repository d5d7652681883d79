using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Opterius.Services.Deletion;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Data;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using static Opterius.Services.Resources.ServiceConfigFiles;

namespace Opterius.Services.Backups;

/// <summary>
/// The parts of a backup that are not file trees, each written where the account's names put it and refused when
/// something is already there: database dumps through the MariaDB client as the admin account, database users and
/// their grants, the zone's rows, the vhost, pool, crontab and certificate renewal file, the Dovecot and Postfix lines.
/// A part's service is tested and reloaded once the part is written (<see cref="FinishAsync"/>).
/// </summary>
public sealed partial class RestoreParts(ServerLayout layout, MariaDbAdmin admin, PowerDnsDb powerDns, ServiceReloader reloader,
    CommandRunner commands, IConfiguration configuration, IOptions<DeletionOptions> options, DatabaseUsersResource databaseUsers)
{
    /// <summary>The configured MariaDB client (<c>Opterius:Commands:MariaDbClient</c>) reads a dump on its standard input.</summary>
    public const string ClientCommand = "MariaDbClient";

    /// <summary>
    /// Writes one entry of a part; <paramref name="made"/> is called once the part's own checks found nothing of it there,
    /// before anything is written (a part refused by them is not the restore's to undo).
    /// </summary>
    public async Task RestoreAsync(string key, string name, Stream content, AccountIdentity a, OwnerMap map, Action made, CancellationToken ct)
    {
        switch (key)
        {
            case "databases": await DatabaseAsync(name["databases/".Length..^".sql".Length], content, a, made, ct); break;
            case "database_users": await DatabaseUsersAsync(await TextAsync(content, ct), a, made, ct); break;
            case "dns_zone": await ZoneAsync(content, a, made, ct); break;
            case "nginx_vhost":
                using (await reloader.EditAsync("nginx", ct))
                {
                    var (available, enabled) = (layout.NginxAvailable(a), layout.NginxEnabled(a));
                    RefuseIfPresent(available, enabled);
                    made();
                    await WriteAtomicAsync(available, await BytesAsync(content, ct), ct);
                    Link(enabled, available);
                }
                break;
            case "php_fpm_pool":
                using (await reloader.EditAsync("php-fpm", ct))
                {
                    RefuseIfPresent(layout.FpmPool(a));
                    made();
                    await WriteAtomicAsync(layout.FpmPool(a), await BytesAsync(content, ct), ct);
                }
                break;
            case "cron":
                RefuseIfPresent(layout.Crontab(a));
                made();
                Directory.CreateDirectory(Path.GetDirectoryName(layout.Crontab(a))!);
                FileWriter.Write(layout.Crontab(a), await BytesAsync(content, ct), (UnixFileMode)0b110_000_000, map.Restored);
                break;
            case "ssl_certificate":
                // The trees are the restorer's; here only ssl/renewal/{lineage}.conf.
                var lineage = name["ssl/renewal/".Length..^".conf".Length];
                if (!BackupRestorer.IsLineage(lineage, a.Domain)) throw new ArchiveRefusedException($"archive entry '{name}' is no certificate lineage of {a.Domain}: refusing it");
                var renewal = layout.Under($"/etc/letsencrypt/renewal/{lineage}.conf");
                RefuseIfPresent(renewal);
                made();
                await WriteAtomicAsync(renewal, await BytesAsync(content, ct), ct);
                break;
            case "mail_users": await LinesAsync(layout.DovecotUsers, content, a, MailUsersResource.SuspendedPrefix, line => MapMailOwner(line, map), (UnixFileMode)0b110_100_000, made, ct); break;
            case "mail_routes": await LinesAsync(layout.PostfixVmailbox, content, a, null, line => line, (UnixFileMode)0b110_100_100, made, ct); break;
            default: throw new ArchiveRefusedException($"archive entry '{name}' has no restore here: refusing it");
        }
    }

    /// <summary>Tests and reloads the part's service once its <paramref name="n"/> entries are written; the part's detail.</summary>
    public async Task<string> FinishAsync(string key, AccountIdentity a, int n, CancellationToken ct)
    {
        switch (key)
        {
            case "nginx_vhost": return Reloaded(await ReloadAsync(reloader, "nginx", $"restoring {a.Domain}", ct), $"restored {layout.NginxAvailable(a)}, enabled");
            case "php_fpm_pool": return Reloaded(await ReloadAsync(reloader, "php-fpm", $"restoring the pool of {a.Domain}", ct), $"restored {layout.FpmPool(a)}");
            case "mail_routes": return Reloaded(await ReloadAsync(reloader, "postmap", $"restoring @{a.Domain}", ct), $"restored the @{a.Domain} lines of {layout.PostfixVmailbox}");
            case "dns_zone": return Reloaded(await ReloadAsync(reloader, "pdns", $"restoring {a.Domain}", ct), $"restored zone {a.Domain}");
            case "databases": return $"restored {n} database{(n == 1 ? "" : "s")}";
            case "database_users": return "restored the database users and their grants";
            case "mail_users": return $"restored the @{a.Domain} lines of {layout.DovecotUsers}";
            case "cron": return $"restored {layout.Crontab(a)}";
            default: return "restored";
        }
    }

    private static string Reloaded(string? notConfigured, string done) => notConfigured is null ? done : $"{done}; {notConfigured}";

    private static void RefuseIfPresent(params string[] paths)
    {
        if (paths.FirstOrDefault(IsAnythingAt) is { } present) throw new AlreadyThereException($"{present} already exists; it is left as it is");
    }

    // ---- databases ----

    private async Task DatabaseAsync(string database, Stream dump, AccountIdentity a, Action made, CancellationToken ct)
    {
        if (!database.StartsWith(a.Username + "_", StringComparison.Ordinal) || database.Length > 64 || !DatabaseName().IsMatch(database))
            throw new ArchiveRefusedException($"archive entry 'databases/{database}.sql' is no database of '{a.Username}' ({a.Username}_*): refusing it");
        await using (var c = await admin.OpenAsync(ct))
            if (await c.ExecuteScalarAsync<long>(new CommandDefinition(DatabaseExistsSql, new { Name = database }, cancellationToken: ct)) > 0)
                throw new AlreadyThereException($"a database {database} already exists; it is left as it is");
        if (!commands.IsConfigured(ClientCommand))
            throw new ResourceException($"not configured: set Opterius:Commands:{ClientCommand} (the mariadb client, reading the dump of {database} on its standard input)");
        made();
        // The client reads the admin account's credentials from a 0600 file in the root-only backup folder, never from its arguments.
        var defaults = Path.Join(Path.GetFullPath(options.Value.BackupPath), $"restore.{Guid.NewGuid():N}.my.cnf.tmp");
        try
        {
            FileWriter.Write(defaults, ClientDefaults(), (UnixFileMode)0b110_000_000);
            await ResourceException.WhenCommandFails(() => commands.RunAsync(ClientCommand,
                new Dictionary<string, string> { ["defaults_file"] = defaults, ["database"] = database }, dump, ct,
                TimeSpan.FromSeconds(options.Value.DumpTimeoutSeconds)), $"restoring database {database}");
        }
        finally { File.Delete(defaults); }
    }

    private const string DatabaseExistsSql = "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @Name";

    [GeneratedRegex("^[a-z][a-z0-9]*_[A-Za-z0-9_]+$")]
    private static partial Regex DatabaseName();

    private string ClientDefaults()
    {
        var cs = new MySqlConnectionStringBuilder(configuration.GetConnectionString("MariaDbAdmin")
            ?? throw new ResourceException("ConnectionStrings:MariaDbAdmin is not set"));
        static string Q(string v) => "\"" + v.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        var lines = new List<string> { "[client]", $"user={Q(cs.UserID)}" };
        if (cs.Password.Length > 0) lines.Add($"password={Q(cs.Password)}");
        if (cs.ConnectionProtocol == MySqlConnectionProtocol.UnixSocket) lines.Add($"socket={Q(cs.Server)}");
        else lines.AddRange([$"host={Q(cs.Server)}", $"port={cs.Port}", "protocol=TCP"]);
        return string.Join('\n', lines) + "\n";
    }

    // ---- database users ----

    [GeneratedRegex("^CREATE USER `(?<user>[^`]+)`@`(?<host>[^`]*)`[^;]*;$")]
    private static partial Regex CreateUser();

    [GeneratedRegex("^GRANT (?<privs>[A-Z ,()`a-z0-9_]+?) ON (?<on>\\*\\.\\*|`(?<db>[^`]+)`\\.(\\*|`[^`]+`)) TO `(?<user>[^`]+)`@`(?<host>[^`]*)`[^;]*;$")]
    private static partial Regex Grant();

    /// <summary>
    /// SHOW CREATE USER and SHOW GRANTS lines of the account's own users only (<c>{username}</c>, <c>{username}_*</c>),
    /// granting on its own databases only (or USAGE on *.*); any other statement is refused before one is run.
    /// </summary>
    private async Task DatabaseUsersAsync(string text, AccountIdentity a, Action made, CancellationToken ct)
    {
        var statements = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        bool Own(string user) => user == a.Username || user.StartsWith(a.Username + "_", StringComparison.Ordinal);
        // A grant's database is a LIKE pattern: an unescaped alice_% also matches alice2_x, so only alice\_ is the account's.
        bool OwnPattern(string db) => db.StartsWith(a.Username + "\\_", StringComparison.Ordinal);
        var run = new List<string>();
        var created = new HashSet<(string, string)>();
        var granted = new List<(string User, string Host)>();
        foreach (var s in statements)
        {
            if (CreateUser().Match(s) is { Success: true } cu && Own(cu.Groups["user"].Value))
            {
                created.Add((cu.Groups["user"].Value, cu.Groups["host"].Value));
                run.Add(s);
                continue;
            }
            if (Grant().Match(s) is { Success: true } g && Own(g.Groups["user"].Value)
                && (g.Groups["on"].Value == "*.*" ? g.Groups["privs"].Value == "USAGE" : OwnPattern(g.Groups["db"].Value)))
            {
                granted.Add((g.Groups["user"].Value, g.Groups["host"].Value));
                // USAGE on *.* is no privilege: CREATE USER gave the user (its authentication, REQUIRE and limits too). Running it would
                // need a global GRANT OPTION, which the agent's least-privilege MariaDB user does not have.
                if (g.Groups["on"].Value != "*.*") run.Add(s);
                continue;
            }
            throw new ArchiveRefusedException($"database_users.sql holds a statement that is not the account's own user or grant: '{(s.Length > 120 ? s[..120] + "…" : s)}': refusing it");
        }
        // A grant names only users the archive creates (with their authentication): one alone would make its user, passwordless,
        // under a sql_mode without NO_AUTO_CREATE_USER (and the USAGE lines are skipped, so nothing else would catch it).
        if (granted.FirstOrDefault(u => !created.Contains(u)) is { User: not null } orphan)
            throw new ArchiveRefusedException($"database_users.sql grants to a user it does not create: `{orphan.User}`@`{orphan.Host}` has no CREATE USER "
                + "in the archive, and a grant alone could make that user without a password: refusing it");
        // Any user of the account's names already there is another tool's: refused before one statement runs, never undone.
        if ((await databaseUsers.InspectAsync(a, ct)).Exists)
            throw new AlreadyThereException($"a database user of '{a.Username}' ({a.Username} or {a.Username}_*) already exists; it is left as it is");
        await using var c = await admin.OpenAsync(ct);
        // And the server never makes a user from a grant in this session, whatever its global sql_mode.
        await c.ExecuteAsync(new CommandDefinition(NoAutoCreateUserSql, cancellationToken: ct));
        made();
        foreach (var s in run)
        {
            try { await c.ExecuteAsync(new CommandDefinition(s, cancellationToken: ct)); }
            catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.CannotUser)
            {
                throw new AlreadyThereException($"a database user of '{a.Username}' already exists; it is left as it is ({e.Message})");
            }
        }
    }

    private const string NoAutoCreateUserSql = "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_AUTO_CREATE_USER')";

    // ---- zone ----

    private static readonly Dictionary<string, string[]> ZoneColumns = new()
    {
        ["domains"] = ["name", "master", "last_check", "type", "notified_serial", "account", "options", "catalog"],
        ["records"] = ["name", "type", "content", "ttl", "prio", "disabled", "ordername", "auth", "change_date"],
        ["comments"] = ["name", "type", "modified_at", "account", "comment"],
        ["domainmetadata"] = ["kind", "content"],
        ["cryptokeys"] = ["flags", "active", "published", "content"],
    };

    /// <summary>The zone's rows with new ids, in one transaction; only PowerDNS's own columns, only names of the domain.</summary>
    private async Task ZoneAsync(Stream content, AccountIdentity a, Action made, CancellationToken ct)
    {
        using var doc = await JsonDocument.ParseAsync(content, cancellationToken: ct);
        var root = doc.RootElement;
        var domainRow = root.TryGetProperty("domain", out var d) ? d : root.GetProperty("domains");
        if (domainRow.ValueKind == JsonValueKind.Array) domainRow = domainRow.EnumerateArray().Single();
        var zone = Row("domains", domainRow);
        if (zone.GetValueOrDefault("name") as string != a.Domain)
            throw new ArchiveRefusedException($"dns_zone.json is the zone '{zone.GetValueOrDefault("name")}', not {a.Domain}: refusing it");
        await using var c = await powerDns.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, ct);
        if (await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM domains WHERE name = @Domain", new { a.Domain }, tx, cancellationToken: ct)) > 0)
            throw new AlreadyThereException($"a DNS zone {a.Domain} already exists; it is left as it is");
        made();
        await InsertAsync(c, tx, "domains", zone, ct);
        var id = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT LAST_INSERT_ID()", transaction: tx, cancellationToken: ct));
        foreach (var table in new[] { "records", "comments", "domainmetadata", "cryptokeys" })
        {
            if (!root.TryGetProperty(table, out var rows)) continue;
            foreach (var element in rows.EnumerateArray())
            {
                var row = Row(table, element);
                if (row.GetValueOrDefault("name") is string n && n != a.Domain && !n.EndsWith("." + a.Domain, StringComparison.Ordinal))
                    throw new ArchiveRefusedException($"dns_zone.json has a {table} row for '{n}', outside {a.Domain}: refusing it");
                row["domain_id"] = id;
                await InsertAsync(c, tx, table, row, ct);
            }
        }
        await tx.CommitAsync(ct);
    }

    private static Dictionary<string, object?> Row(string table, JsonElement element)
    {
        var row = new Dictionary<string, object?>();
        foreach (var p in element.EnumerateObject())
        {
            if (p.Name is "id" or "domain_id") continue;
            if (!ZoneColumns[table].Contains(p.Name)) throw new ArchiveRefusedException($"dns_zone.json: '{p.Name}' is no column of {table}: refusing it");
            row[p.Name] = p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString(),
                JsonValueKind.Number => p.Value.TryGetInt64(out var l) ? l : p.Value.GetDouble(),
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.Null => null,
                _ => throw new ArchiveRefusedException($"dns_zone.json: {table}.{p.Name} is not a plain value: refusing it"),
            };
        }
        return row;
    }

    private static Task InsertAsync(MySqlConnection c, MySqlTransaction tx, string table, Dictionary<string, object?> row, CancellationToken ct)
    {
        // Table and column names come from ZoneColumns only; every value is a parameter.
        var columns = row.Keys.ToList();
        var sql = $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select((_, i) => $"@p{i}"))})";
        var parameters = new DynamicParameters();
        for (var i = 0; i < columns.Count; i++) parameters.Add($"p{i}", row[columns[i]]);
        return c.ExecuteAsync(new CommandDefinition(sql, parameters, tx, cancellationToken: ct));
    }

    // ---- mail lines ----

    private static async Task LinesAsync(string path, Stream content, AccountIdentity a, string? commentedPrefix, Func<string, string> map,
        UnixFileMode modeIfNew, Action made, CancellationToken ct)
    {
        var lines = (await TextAsync(content, ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var domain = Encoding.UTF8.GetBytes(a.Domain);
        var prefix = commentedPrefix is null ? [] : Encoding.UTF8.GetBytes(commentedPrefix);
        if (lines.FirstOrDefault(l => !LineFile.IsForDomain(Encoding.UTF8.GetBytes(l), domain, prefix)) is { } other)
            throw new ArchiveRefusedException($"a line of {Path.GetFileName(path)} in the archive is not for @{a.Domain}: refusing it");
        if (LineFile.Matching(path, a.Domain, commentedPrefix).Count > 0)
            throw new AlreadyThereException($"{path} already has @{a.Domain} lines; they are left as they are");
        made();
        await LineFile.AppendAsync(path, lines.Select(map).ToList(), modeIfNew, ct);
    }

    /// <summary>A Dovecot line's uid and gid fields (<c>user@domain:hash:uid:gid:...</c>) follow the account's new ones.</summary>
    private static string MapMailOwner(string line, OwnerMap map)
    {
        var f = line.Split(':');
        if (f.Length < 4 || !int.TryParse(f[2], out var uid) || !int.TryParse(f[3], out var gid)) return line;
        (f[2], f[3]) = (map.Uid(uid).ToString(), map.Gid(gid).ToString());
        return string.Join(':', f);
    }

    private static async Task<byte[]> BytesAsync(Stream s, CancellationToken ct)
    {
        using var copy = new MemoryStream();
        await s.CopyToAsync(copy, ct);
        return copy.ToArray();
    }

    private static async Task<string> TextAsync(Stream s, CancellationToken ct) => Encoding.UTF8.GetString(await BytesAsync(s, ct));
}
