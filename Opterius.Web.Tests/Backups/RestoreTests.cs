using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Agent;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Backups;

/// <summary>Restores with the resources in the panel's process (the panel as root).</summary>
[Collection(nameof(ServingTests))]
public sealed class RestoreTests(ServingApp app) : RestoreScenarios(app), IClassFixture<ServingApp>;

/// <summary>The same restores with the panel on the agent (a real child process as root), as a server runs them.</summary>
[Collection(nameof(ServingTests))]
public sealed class RestoreThroughTheAgentTests(AgentServingApp app) : RestoreScenarios(app), IClassFixture<AgentServingApp>;

/// <summary>
/// Delete with a final backup, then restore it through the API, against the run's real nginx, php-fpm, PowerDNS,
/// MariaDB and Postfix map: every file, table row, database grant, zone record, mail line and configuration comes back
/// as it was and the site is served again; a name taken since is refused with nothing changed.
/// </summary>
public abstract class RestoreScenarios(ServingApp app)
{
    private static readonly Viewer Admin = new(0, true);

    private ServerLayout Layout => app.Get<ServerLayout>();

    /// <summary>Everything of an account a restore must give back, as exact text.</summary>
    private sealed record State(
        SortedDictionary<string, string> Home, SortedDictionary<string, string> Mail, SortedDictionary<string, string> HomeTimes,
        SortedDictionary<string, string> MailTimes, string Tables, string Grants, string Zone, string MailUsers, string MailRoutes,
        string Vhost, string Pool, string Crontab, int? Uid);

    [Fact]
    public async Task ADeletedAccountRestoredFromItsFinalBackupHasEveryFileRowGrantRecordAndLineBackAndIsServedAgain()
    {
        var account = await RichAccountAsync();
        var before = await StateAsync(account);
        foreach (var made in new[] { "PROCEDURE count_notes", "FUNCTION note_body", "TRIGGER notes_stamp", "EVENT purge_notes" }) Assert.Contains(made, before.Tables);
        var backup = await DeleteWithBackupAsync(app, account);
        Assert.False(Directory.Exists(Layout.Home(AccountIdentity.From(account))));
        Assert.Equal("", await DatabasesOfAsync(account.Username));

        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var location = response.Headers.Location!.ToString();
        Assert.Matches(@"^/api/v1/restores/\d+$", location);
        var hubEvents = await WatchRestoreAsync(long.Parse(location.Split('/')[^1]));
        var job = await FinishedAsync(client, location);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
        var steps = job.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("resource").GetString()!, s => s.GetProperty("status").GetString());
        Assert.Equal(BackupRestoration.Steps, steps.Keys);
        Assert.All(steps.Where(s => s.Key is not ("cron" or "ssl_certificate")), s => Assert.Equal(StepStatus.Done, s.Value));
        // The hub streams the same job: the state when it joined, then each transition, ending with the job's outcome.
        Assert.Equal(("job", "succeeded"), (hubEvents[^1].GetProperty("resource").GetString(), hubEvents[^1].GetProperty("status").GetString()));
        Assert.Contains(hubEvents, e => e.GetProperty("resource").GetString() == "home_directory" && e.GetProperty("status").GetString() == StepStatus.Done);
        var restored = await app.Get<AccountStore>().FindAsync(Admin, job.GetProperty("account_id").GetInt64(), default);
        Assert.NotNull(restored);
        Assert.Equal((account.Username, account.Domain, account.Email, AccountStatus.Active), (restored.Username, restored.Domain, restored.Email, restored.Status));
        // The ledger still binds the archived uid to these names and nothing has it: the account gets it back.
        Assert.Equal(account.Uid, restored.Uid);
        Assert.Contains($"its archived uid {account.Uid} was still its own", job.GetProperty("detail").GetString());

        var after = await StateAsync(restored);
        Assert.Equal(before.Home, after.Home);
        Assert.Equal(before.Mail, after.Mail);
        Assert.Equal(before.HomeTimes, after.HomeTimes);
        Assert.Equal(before.MailTimes, after.MailTimes);
        Assert.Equal(before.Tables, after.Tables);
        Assert.Equal(before.Grants, after.Grants);
        Assert.Equal(before.Zone, after.Zone);
        Assert.Equal(before.MailUsers, after.MailUsers);
        Assert.Equal(before.MailRoutes, after.MailRoutes);
        Assert.Equal(before.Vhost, after.Vhost);
        Assert.Equal(before.Pool, after.Pool);
        Assert.Equal(before.Crontab, after.Crontab);

        var (status, body) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.OK);
        Assert.True(status == HttpStatusCode.OK, $"{account.Domain} answered {(int)status}: {body}");
        Assert.Contains("restored page of the tenant", body);
        Assert.Equal("127.0.0.1", DaemonKit.Run("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", PrivateServices.Get("PDNS_PORT")!, account.Domain, "A").Trim());
        var audit = await app.Databases.PanelScalarAsync<string>(
            "SELECT CONCAT(action, ' ', outcome) FROM audit_log WHERE account_id = @id AND action = 'restore' ORDER BY id DESC LIMIT 1", new { id = restored.Id });
        Assert.Equal("restore restored", audit);
    }

    [Fact]
    public async Task ASuspendedAccountDeletedWithABackupComesBackActiveWithItsOwnVhostPoolAndMailLinesAndIsServedAgain()
    {
        var account = await RichAccountAsync();
        var before = await StateAsync(account);
        await app.Get<AccountSuspension>().SuspendAsync(app.AdminActor(), account.Id, default);
        var (suspended, _) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.ServiceUnavailable);
        Assert.True(suspended == HttpStatusCode.ServiceUnavailable, $"the suspended {account.Domain} answered {(int)suspended}, not 503");
        Assert.All(File.ReadAllLines(Layout.DovecotUsers).Where(l => l.Contains($"@{account.Domain}:")),
            l => Assert.StartsWith(MailUsersResource.SuspendedPrefix, l));
        var backup = await DeleteWithBackupAsync(app, account);

        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        var job = await FinishedAsync(client, response.Headers.Location!.ToString());

        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
        var steps = job.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("resource").GetString()!, s => s.GetProperty("status").GetString());
        Assert.All(steps.Where(s => s.Key is not ("cron" or "ssl_certificate")), s => Assert.Equal((s.Key, StepStatus.Done), (s.Key, s.Value)));
        Assert.Contains("it was suspended when it was backed up", job.GetProperty("detail").GetString());
        var restored = (await app.Get<AccountStore>().FindAsync(Admin, job.GetProperty("account_id").GetInt64(), default))!;
        Assert.Equal(AccountStatus.Active, restored.Status);
        // What unsuspend would have put back, not the 503 vhost, the pool moved aside or the commented-out logins.
        var after = await StateAsync(restored);
        Assert.Equal(before.Home, after.Home);
        Assert.Equal(before.Mail, after.Mail);
        Assert.Equal(before.Tables, after.Tables);
        Assert.Equal(before.Grants, after.Grants);
        Assert.Equal(before.Zone, after.Zone);
        Assert.Equal(before.MailUsers, after.MailUsers);
        Assert.Equal(before.MailRoutes, after.MailRoutes);
        Assert.Equal(before.Vhost, after.Vhost);
        Assert.Equal(before.Pool, after.Pool);
        Assert.Equal(before.Crontab, after.Crontab);
        Assert.DoesNotContain(File.ReadAllLines(Layout.DovecotUsers), l => l.StartsWith(MailUsersResource.SuspendedPrefix) && l.Contains($"@{account.Domain}:"));
        var (status, body) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.OK);
        Assert.True(status == HttpStatusCode.OK, $"{account.Domain} answered {(int)status}: {body}");
        Assert.Contains("restored page of the tenant", body);
    }

    [Fact]
    public async Task ASuspendedAccountWhoseOwnVhostWasNeverStoredComesBackWithTheVhostACreateMakesAndSaysSo()
    {
        var account = await RichAccountAsync();
        var before = await StateAsync(account);
        await app.Get<AccountSuspension>().SuspendAsync(app.AdminActor(), account.Id, default);
        File.Delete(Layout.NginxAvailable(AccountIdentity.From(account)) + NginxVhostResource.OriginalSuffix);
        var backup = await DeleteWithBackupAsync(app, account);

        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        var job = await FinishedAsync(client, response.Headers.Location!.ToString());

        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
        var detail = job.GetProperty("detail").GetString()!;
        Assert.Contains("its vhost was not stored, so it has the vhost a new account gets", detail);
        Assert.DoesNotContain("with its own vhost", detail);
        var restored = (await app.Get<AccountStore>().FindAsync(Admin, job.GetProperty("account_id").GetInt64(), default))!;
        // The account had the create path's vhost before it was suspended: the one made again is that very text.
        Assert.Equal(before.Vhost, (await StateAsync(restored)).Vhost);
        var (status, body) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.OK);
        Assert.True(status == HttpStatusCode.OK, $"{account.Domain} answered {(int)status}: {body}");
        Assert.Contains("restored page of the tenant", body);
    }

    [Fact]
    public async Task AnArchivedUidTheLedgerNoLongerBindsToTheNamesIsNotReusedAndItsFilesBecomeTheNewUids()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var home = Layout.Home(AccountIdentity.From(account));
        File.WriteAllText(Path.Join(home, "mine.txt"), "the tenant's");
        Run("chown", $"{account.Uid}:{account.Uid}", Path.Join(home, "mine.txt"));
        File.WriteAllText(Path.Join(home, "root-note.txt"), "the operator's");
        var before = Snapshot(home);
        var backup = await DeleteWithBackupAsync(app, account);
        // The archived uid's ledger line now names someone else: the uid is not this account's to take again.
        File.WriteAllText(Path.Join(Layout.UidLedger, account.Uid.ToString()!), "someone someone.test\n");

        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        var job = await FinishedAsync(client, response.Headers.Location!.ToString());

        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
        var restored = (await app.Get<AccountStore>().FindAsync(Admin, job.GetProperty("account_id").GetInt64(), default))!;
        Assert.NotEqual(account.Uid, restored.Uid);
        Assert.Contains($"new uid {restored.Uid}: the archived uid {account.Uid} was not free for it", job.GetProperty("detail").GetString());
        string Mapped(string v) => v.Replace($" {account.Uid}:{account.Uid}", $" {restored.Uid}:{restored.Uid}");
        Assert.Equal(before.ToDictionary(kv => kv.Key, kv => Mapped(kv.Value)), Snapshot(home).ToDictionary(kv => kv.Key, kv => kv.Value));
        Assert.StartsWith("file 644 0:0 ", Snapshot(home)[Path.Join(home, "root-note.txt")]);
        Assert.Contains(File.ReadAllLines(Layout.DovecotUsers), l => l.Contains($"@{account.Domain}:") && l.Contains($":{restored.Uid}:"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ARestoreWhoseUsernameOrDomainWasTakenSinceIs409NamingTheHolderAndChangesNothing(bool usernameTaken)
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        var p = TestAccounts.NewPrefix(6);
        var holder = usernameTaken ? await app.CreateAsync(account.Username, $"{p}.test") : await app.CreateAsync(p, account.Domain);
        var before = await NothingChangedAsync(holder);

        var response = await (await app.ClientAsync()).PostAsync($"/api/v1/backups/{backup.Id}/restore", null);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var error = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("conflict", error.GetProperty("error").GetString());
        Assert.Contains(usernameTaken ? $"taken by account {holder.Id} ({holder.Domain})" : $"taken by account {holder.Id} ({holder.Username})",
            error.GetProperty("message").GetString());
        Assert.Equal(before, await NothingChangedAsync(holder));
    }

    [Fact]
    public async Task ATamperedArchiveIsRefusedAndTheRestoreUndoesTheUserItMadeLeavingNothing()
    {
        var account = await RichAccountAsync();
        var backup = await DeleteWithBackupAsync(app, account);
        ArchiveBuilder.ChangeOneByte(Path.Join(app.BackupPath, backup.FileName), "restored page of the ");
        var before = await ServerOfAsync(app, account);

        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await FinishedAsync(client, response.Headers.Location!.ToString());

        Assert.Equal("failed", job.GetProperty("status").GetString());
        var steps = job.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("resource").GetString()!, s => s);
        Assert.Equal(StepStatus.Done, steps["system_user"].GetProperty("status").GetString());
        Assert.Equal(StepStatus.Failed, steps["archive"].GetProperty("status").GetString());
        Assert.Contains("home/public_html/index.php", steps["archive"].GetProperty("detail").GetString());
        Assert.Contains("does not match the manifest", steps["archive"].GetProperty("detail").GetString());
        Assert.All(steps.Values.Skip(2), s => Assert.Equal(StepStatus.Pending, s.GetProperty("status").GetString()));
        Assert.Contains("the account does not exist", job.GetProperty("detail").GetString());
        Assert.Equal(before, await ServerOfAsync(app, account));
        Assert.Equal("restore failed", await app.Databases.PanelScalarAsync<string>(
            "SELECT CONCAT(action, ' ', outcome) FROM audit_log WHERE action = 'restore' AND account_username = @Username ORDER BY id DESC LIMIT 1", new { account.Username }));
    }

    [Fact]
    public async Task AVhostAnotherToolMadeWhileTheRestoreRanFailsItSayingSoAndThatVhostSurvivesByteForByte()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var a = AccountIdentity.From(account);
        var backup = await DeleteWithBackupAsync(app, account);
        var nothing = await ServerOfAsync(app, account);
        var foreign = System.Text.Encoding.UTF8.GetBytes($"# {a.Domain}: made by another tool while the restore ran\n");
        // After the create's own checks and the reservation: once the user is made, before any part of the archive is.
        using var racing = app.Get<RestoreEvents>().Stream.Subscribe(null, e =>
        {
            if (e.Resource == "system_user" && e.Status == StepStatus.Done && !File.Exists(Layout.NginxAvailable(a)))
                File.WriteAllBytes(Layout.NginxAvailable(a), foreign);
        }, out _);
        try
        {
            var client = await app.ClientAsync();
            var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            var job = await FinishedAsync(client, response.Headers.Location!.ToString());

            Assert.Equal("failed", job.GetProperty("status").GetString());
            var steps = job.GetProperty("steps").EnumerateArray().ToDictionary(s => s.GetProperty("resource").GetString()!, s => s);
            Assert.Equal(StepStatus.Failed, steps["nginx_vhost"].GetProperty("status").GetString());
            Assert.Contains($"{Layout.NginxAvailable(a)} already exists; it is left as it is", steps["nginx_vhost"].GetProperty("detail").GetString());
            Assert.Contains("the account does not exist", job.GetProperty("detail").GetString());
            Assert.Equal(foreign, File.ReadAllBytes(Layout.NginxAvailable(a)));
            Assert.False(Path.Exists(Layout.NginxEnabled(a)));
            // Everything the restore made went again: what is left of the names is the other tool's vhost alone.
            File.Delete(Layout.NginxAvailable(a));
            Assert.Equal(nothing, await ServerOfAsync(app, account));
        }
        finally { File.Delete(Layout.NginxAvailable(a)); }
    }

    /// <summary>What the server holds of an account's names: its row, user, group, home, mail, databases, zone and lines.</summary>
    internal static async Task<string> ServerOfAsync(ServingApp app, Account account)
    {
        var a = AccountIdentity.From(account);
        var layout = app.Get<ServerLayout>();
        string Named(string file) => string.Join('\n', File.ReadAllLines(file).Where(l => l.Contains(a.Username) || l.Contains(a.Domain)));
        var zone = await new MySqlConnection(app.Databases.PowerDns).ExecuteScalarAsync<long>("SELECT COUNT(*) FROM domains WHERE name = @Domain", new { a.Domain });
        return string.Join('\n',
            await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE username = @Username OR domain = @Domain", new { a.Username, a.Domain }),
            Named(layout.Passwd), Named(layout.Group), Path.Exists(layout.Home(a)), Path.Exists(layout.Mailboxes(a)), await DatabasesOfAsync(a.Username), zone,
            Named(layout.DovecotUsers), Named(layout.PostfixVmailbox), Path.Exists(layout.NginxAvailable(a)), Path.Exists(layout.FpmPool(a)), Path.Exists(layout.Crontab(a)));
    }

    [Fact]
    public async Task AnUnknownOrPurgedBackupIs404AndChangesNothing()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        await app.Get<FinalBackups>().PurgeAsync(app.AdminActor(), backup.Id, default);
        var client = await app.ClientAsync();
        var before = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");

        foreach (var id in new[] { backup.Id.ToString(), "999999", "abc", "0" })
        {
            var response = await client.PostAsync($"/api/v1/backups/{id}/restore", null);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
        }
        Assert.Equal(before, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
        Assert.False(Directory.Exists(Layout.Home(AccountIdentity.From(account))));
    }

    /// <summary>An account with starter content, and a home with what a restore must get exactly right.</summary>
    private async Task<Account> RichAccountAsync()
    {
        var p = TestAccounts.NewPrefix(6);
        var account = await app.CreateAsync(p, $"{p}.test");
        var home = Layout.Home(AccountIdentity.From(account));
        var uid = account.Uid!.Value;
        void Own(string path) => Run("chown", "-h", $"{uid}:{uid}", path);
        // The site's own page, run by its PHP pool: served again proves the vhost, the pool and the home.
        File.WriteAllText(Path.Join(home, "public_html", "index.php"), "<?php echo '<h1>restored page of the ' . 'tenant</h1>';\n");
        Directory.CreateDirectory(Path.Join(home, "private", "deep"));
        Own(Path.Join(home, "private"));
        Own(Path.Join(home, "private", "deep"));
        File.SetUnixFileMode(Path.Join(home, "private"), (UnixFileMode)0b111_101_000);
        File.WriteAllBytes(Path.Join(home, "private", "deep", "blob.bin"), Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7)).ToArray());
        Own(Path.Join(home, "private", "deep", "blob.bin"));
        File.SetUnixFileMode(Path.Join(home, "private", "deep", "blob.bin"), (UnixFileMode)0b110_000_000);
        File.WriteAllText(Path.Join(home, "private", "run.sh"), "#!/bin/sh\necho hi\n");
        Own(Path.Join(home, "private", "run.sh"));
        File.SetUnixFileMode(Path.Join(home, "private", "run.sh"), (UnixFileMode)0b111_101_000);
        File.WriteAllText(Path.Join(home, "root-note.txt"), "left here by the operator\n"); // root's, and stays root's
        File.CreateSymbolicLink(Path.Join(home, "public_html", "latest"), "index.php");
        Own(Path.Join(home, "public_html", "latest"));
        File.CreateSymbolicLink(Path.Join(home, "dangling"), "/nowhere/at/all");
        // Times of years ago, to the archive's 100 ns: a folder's is its own only once what it holds is written.
        var old = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc).AddTicks(1_234_567);
        File.SetLastWriteTimeUtc(Path.Join(home, "private", "run.sh"), old.AddDays(2));
        Directory.SetLastWriteTimeUtc(Path.Join(home, "private", "deep"), old);
        Directory.SetLastWriteTimeUtc(Path.Join(home, "private"), old.AddDays(1));
        await using (var c = new MySqlConnection(PrivateServices.RootConnectionString($"{account.Username}_wp")))
        {
            await c.ExecuteAsync("CREATE TABLE notes (id INT PRIMARY KEY AUTO_INCREMENT, body TEXT, at DATETIME(6)) ENGINE=InnoDB");
            await c.ExecuteAsync("INSERT INTO notes (body, at) VALUES ('first', '2026-01-02 03:04:05.678901'), ('quote '' and \\\\ backslash', NULL), ('ünïcode ✓', NOW(6))");
            // What a site's schema holds besides tables: a dump without them would restore a site that no longer works.
            await c.ExecuteAsync("CREATE TRIGGER notes_stamp BEFORE INSERT ON notes FOR EACH ROW SET NEW.at = COALESCE(NEW.at, '2000-01-01')");
            await c.ExecuteAsync("CREATE PROCEDURE count_notes(OUT n INT) SELECT COUNT(*) INTO n FROM notes");
            await c.ExecuteAsync("CREATE FUNCTION note_body(i INT) RETURNS TEXT DETERMINISTIC READS SQL DATA RETURN (SELECT body FROM notes WHERE id = i)");
            await c.ExecuteAsync("CREATE EVENT purge_notes ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DO DELETE FROM notes WHERE body = 'never'");
        }
        await using (var c = new MySqlConnection(app.Databases.PowerDns))
            await c.ExecuteAsync("""
                INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
                SELECT id, CONCAT('shop.', name), 'CNAME', name, 600, 0, 0, 1 FROM domains WHERE name = @Domain
                """, new { account.Domain });
        return account;
    }

    private async Task<State> StateAsync(Account account)
    {
        var a = AccountIdentity.From(account);
        string Lines(string file, Func<string, bool> match) => string.Join('\n', File.ReadAllLines(file).Where(match));
        string Read(string path) => File.Exists(path) ? $"{Stat(path)}\n{File.ReadAllText(path)}" : "";
        string grants;
        await using (var c = new MySqlConnection(PrivateServices.RootConnectionString()))
            grants = string.Join('\n', await c.QueryAsync<string>($"SHOW GRANTS FOR `{a.Username}`@`localhost`"));
        string zone;
        await using (var c = new MySqlConnection(app.Databases.PowerDns))
            zone = string.Join('\n', await c.QueryAsync<string>("""
                SELECT CONCAT_WS(' ', r.name, r.type, r.content, r.ttl, r.prio, r.disabled, r.auth, d.type, d.account)
                FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.name = @Domain ORDER BY r.name, r.type, r.content
                """, new { a.Domain }));
        return new State(Snapshot(Layout.Home(a)), Snapshot(Layout.Mailboxes(a)), Times(Layout.Home(a)), Times(Layout.Mailboxes(a)),
            await DatabasesOfAsync(a.Username), grants, zone,
            Lines(Layout.DovecotUsers, l => l.Split(':')[0].EndsWith("@" + a.Domain, StringComparison.Ordinal)),
            Lines(Layout.PostfixVmailbox, l => l.Split(' ', '\t')[0].EndsWith("@" + a.Domain, StringComparison.Ordinal)),
            Read(Layout.NginxAvailable(a)), Read(Layout.FpmPool(a)), Read(Layout.Crontab(a)), account.Uid);
    }

    /// <summary>Every entry's modification time (seconds and 100 ns, the archive's precision), never following a link.</summary>
    private static SortedDictionary<string, string> Times(string top) =>
        new(Snapshot(top).Keys.ToDictionary(path => path, ModifiedAt), StringComparer.Ordinal);

    private static unsafe string ModifiedAt(string path)
    {
        Libc.Statx st;
        fixed (byte* p = Libc.Z(path))
            Assert.Equal(0, Libc.StatAt(Libc.AT_FDCWD, p, out st));
        return $"{st.MtimeSeconds}.{st.MtimeNanoseconds / 100:D7}";
    }

    /// <summary>
    /// Every database of the user: each table's definition and every row, in key order, then its routines, triggers and
    /// events as the server shows them (their creation times aside, which a restore cannot keep).
    /// </summary>
    internal static async Task<string> DatabasesOfAsync(string username)
    {
        await using var c = new MySqlConnection(PrivateServices.RootConnectionString());
        await c.OpenAsync();
        var text = new List<string>();
        // Each object by name, then the columns of its SHOW CREATE that say what it is.
        async Task ShowAsync(string namesSql, string db, string show, params string[] columns)
        {
            foreach (var name in await c.QueryAsync<string>(namesSql, new { db }))
            {
                var shown = (IDictionary<string, object>)await c.QueryFirstAsync($"SHOW CREATE {show} `{db}`.`{name}`");
                text.Add($"{db} {show} {name}: {string.Join(" | ", columns.Select(column => shown[column]))}");
            }
        }
        foreach (var db in await c.QueryAsync<string>("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(@p)) = @p ORDER BY 1", new { p = username + "_" }))
        {
            const string routines = "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db AND ROUTINE_TYPE = ";
            await ShowAsync(routines + "'PROCEDURE' ORDER BY 1", db, "PROCEDURE", "sql_mode", "Create Procedure");
            await ShowAsync(routines + "'FUNCTION' ORDER BY 1", db, "FUNCTION", "sql_mode", "Create Function");
            await ShowAsync("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = @db ORDER BY 1", db, "TRIGGER", "sql_mode", "SQL Original Statement");
            await ShowAsync("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db ORDER BY 1", db, "EVENT", "sql_mode", "time_zone", "Create Event");
            text.Add(string.Join('\n', await c.QueryAsync<string>(
                "SELECT CONCAT_WS(' ', EVENT_NAME, STATUS, DEFINER) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db ORDER BY 1", new { db })));
            foreach (var table in await c.QueryAsync<string>("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db ORDER BY 1", new { db }))
            {
                var create = await c.QueryFirstAsync($"SHOW CREATE TABLE `{db}`.`{table}`");
                text.Add($"{db}.{table}: {((IDictionary<string, object>)create)["Create Table"]}");
                await using var cmd = new MySqlCommand($"SELECT * FROM `{db}`.`{table}` ORDER BY 1", c);
                await using var reader = await cmd.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                    text.Add(string.Join(" | ", Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
            }
        }
        return string.Join('\n', text);
    }

    internal static async Task<FinalBackup> DeleteWithBackupAsync(ServingApp app, Account account)
    {
        var job = await (await app.Get<AccountDeletionService>().StartAsync(app.AdminActor(), account.Id, true, default)).Completion;
        Assert.True(job.Status == JobStatus.Succeeded, string.Join("; ", job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}")));
        return Assert.Single((await app.Get<BackupStore>().ListAsync(Admin, 1, 10, account.Id, default)).Items);
    }

    private async Task<List<JsonElement>> WatchRestoreAsync(long job)
    {
        var server = app.Server;
        var token = await app.TokenAsync();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, "/hubs/deletions"), o =>
            {
                o.Transports = HttpTransportType.LongPolling;
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.AccessTokenProvider = () => Task.FromResult<string?>(token);
            }).Build();
        await hub.StartAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var events = new List<JsonElement>();
        await foreach (var e in hub.StreamAsync<JsonElement>("WatchRestore", job, timeout.Token)) events.Add(e);
        return events;
    }

    internal static async Task<JsonElement> FinishedAsync(HttpClient client, string location)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(90); DateTime.UtcNow < deadline; await Task.Delay(200))
        {
            var job = (await client.GetFromJsonAsync<JsonElement>(location)).GetProperty("data");
            if (job.GetProperty("status").GetString() != "running") return job;
        }
        throw new TimeoutException($"{location} still running after 90 s");
    }

    /// <summary>What a refused restore must leave as it was: the accounts, restore jobs, the holder's files and the names' home.</summary>
    private async Task<string> NothingChangedAsync(Account holder)
    {
        var accounts = await app.Databases.PanelScalarAsync<string>("SELECT GROUP_CONCAT(CONCAT_WS(':', id, username, domain, status, uid) ORDER BY id) FROM accounts");
        var jobs = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM restore_jobs");
        var files = string.Join('\n', Snapshot(Layout.Home(AccountIdentity.From(holder))).Select(kv => $"{kv.Key} {kv.Value}"));
        return $"{accounts}\n{jobs}\n{files}\n{File.ReadAllText(Layout.Passwd)}";
    }
}
