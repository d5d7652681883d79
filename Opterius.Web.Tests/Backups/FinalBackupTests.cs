using System.Formats.Tar;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Configuration;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;
using ZstdSharp;

namespace Opterius.Web.Tests.Backups;

/// <summary>One entry of an archive as read back with TarReader: kind, mode, owner, link target and content hash.</summary>
public sealed record ArchivedEntry(TarEntryType Type, string Mode, int Uid, int Gid, string? Link, string? Sha256, byte[]? Content);

public static class ArchiveReader
{
    public static Dictionary<string, ArchivedEntry> Read(string file, out List<string> order)
    {
        var entries = new Dictionary<string, ArchivedEntry>(StringComparer.Ordinal);
        order = [];
        using var stream = new DecompressionStream(File.OpenRead(file));
        using var tar = new TarReader(stream);
        while (tar.GetNextEntry() is { } e)
        {
            byte[]? content = null;
            if (e.DataStream is { } data)
            {
                using var copy = new MemoryStream();
                data.CopyTo(copy);
                content = copy.ToArray();
            }
            order.Add(e.Name);
            entries[e.Name] = new(e.EntryType, Convert.ToString((int)e.Mode, 8), e.Uid, e.Gid,
                e.EntryType == TarEntryType.SymbolicLink ? e.LinkName : null,
                content is null ? null : Convert.ToHexString(SHA256.HashData(content)), content);
        }
        return entries;
    }

    /// <summary>The archive's view of a tree, in the shape of <see cref="FileResourceSandbox.Snapshot"/>.</summary>
    public static SortedDictionary<string, string> TreeOf(Dictionary<string, ArchivedEntry> entries, string prefix, string top)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, e) in entries.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var path = Path.TrimEndingDirectorySeparator(Path.Join(top, name[prefix.Length..]));
            if (name == prefix) path = top;
            var st = $"{e.Mode} {e.Uid}:{e.Gid}";
            result[path] = e.Type switch
            {
                TarEntryType.Directory => $"dir {st}",
                TarEntryType.SymbolicLink => $"link {e.Link} {st}",
                _ => $"file {st} {e.Sha256}",
            };
        }
        return result;
    }
}

public sealed class FinalBackupTests(PanelApp app) : IClassFixture<PanelApp>
{
    private static readonly Viewer Admin = new(0, true);

    private ServerLayoutOf Layout => new(app);

    private async Task<DeletionJob> DeleteWithBackupAsync(Account account) =>
        await (await app.Get<AccountDeletionService>().StartAsync(app.AdminActor(), account.Id, true, default)).Completion;

    private async Task<FinalBackup> BackupOfAsync(long accountId) =>
        Assert.Single((await app.Get<BackupStore>().ListAsync(Admin, 1, 100, accountId, default)).Items);

    [Fact]
    public async Task ABackupBeforeDeletionHoldsEveryFileDatabaseZoneRecordAndMailLineAsTheyWere()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = Layout.Home(account);
        var owner = (uint)account.Uid!.Value;
        File.WriteAllText(Path.Join(home, "public_html", "secret.txt"), "only the tenant's");
        File.SetUnixFileMode(Path.Join(home, "public_html", "secret.txt"), (UnixFileMode)0b110_000_000);
        File.CreateSymbolicLink(Path.Join(home, "public_html", "latest"), "index.php");
        File.CreateSymbolicLink(Path.Join(home, "dangling"), "/nowhere/at/all");
        FileResourceSandbox.Run("chown", "-h", $"{owner}:{owner}", Path.Join(home, "public_html", "secret.txt"), Path.Join(home, "dangling"));
        var expectedHome = FileResourceSandbox.Snapshot(home);
        var expectedMail = FileResourceSandbox.Snapshot(Layout.Mailboxes(account));
        Assert.True(expectedMail.Count > 1, "the starter content should have made mailboxes");
        var dovecot = File.ReadAllLines(Layout.DovecotUsers).Where(l => l.Contains($"@{account.Domain}:")).ToList();
        Assert.NotEmpty(dovecot);

        var job = await DeleteWithBackupAsync(account);

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(DeletionOrder.FinalBackup, job.Steps[0].Resource);
        Assert.Equal(StepStatus.Done, job.Steps[0].Status);
        Assert.False(Directory.Exists(home));
        var backup = await BackupOfAsync(account.Id);
        Assert.True(backup.Available);
        var file = Path.Join(app.BackupPath, backup.FileName);
        Assert.Equal($"{backup.Id}.tar.zst", backup.FileName);
        Assert.Equal(backup.Bytes, new FileInfo(file).Length);
        Assert.Equal(backup.Sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));
        Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(file));
        Assert.Equal([file], Directory.EnumerateFiles(app.BackupPath).Where(f => Path.GetFileName(f).StartsWith($"{backup.Id}.", StringComparison.Ordinal)));

        var entries = ArchiveReader.Read(file, out var order);
        Assert.Equal("account.json", order[0]);
        Assert.Equal("manifest.json", order[^1]);
        Assert.Equal(expectedHome, ArchiveReader.TreeOf(entries, "home/", home));
        Assert.Equal(expectedMail, ArchiveReader.TreeOf(entries, "mail/", Layout.Mailboxes(account)));
        Assert.Equal("only the tenant's", Encoding.UTF8.GetString(entries["home/public_html/secret.txt"].Content!));
        Assert.Equal(owner, (uint)entries["home/public_html/secret.txt"].Uid);

        var wp = Encoding.UTF8.GetString(entries[$"databases/{account.Username}_wp.sql"].Content!);
        Assert.Contains("Hello world", wp);
        Assert.Contains($"CREATE DATABASE", wp);
        Assert.Contains("Coffee mug", Encoding.UTF8.GetString(entries[$"databases/{account.Username}_shop.sql"].Content!));
        Assert.Contains($"CREATE USER `{account.Username}`@", Encoding.UTF8.GetString(entries["database_users.sql"].Content!));
        using var zone = JsonDocument.Parse(entries["dns_zone.json"].Content!);
        Assert.Equal(account.Domain, zone.RootElement.GetProperty("domain").GetProperty("name").GetString());
        Assert.Contains(zone.RootElement.GetProperty("records").EnumerateArray(), r => r.GetProperty("type").GetString() == "SOA");
        Assert.Equal(dovecot, Encoding.UTF8.GetString(entries["mail_lines/dovecot_users"].Content!).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"@{account.Domain}", Encoding.UTF8.GetString(entries["mail_lines/postfix_vmailbox"].Content!));
        Assert.Contains("server_name", Encoding.UTF8.GetString(entries["config/nginx_vhost.conf"].Content!));
        Assert.True(entries.ContainsKey("config/php_fpm_pool.conf"));
        Assert.True(entries.ContainsKey("cron/crontab"));
        Assert.Contains(entries.Keys, k => k.StartsWith($"ssl/archive/{account.Domain}/", StringComparison.Ordinal));

        using var manifest = JsonDocument.Parse(entries["manifest.json"].Content!);
        var homePart = manifest.RootElement.GetProperty("parts").EnumerateArray().Single(p => p.GetProperty("path").GetString() == "home/");
        var secret = homePart.GetProperty("files").EnumerateArray().Single(f => f.GetProperty("path").GetString() == "home/public_html/secret.txt");
        Assert.Equal(entries["home/public_html/secret.txt"].Sha256!.ToLowerInvariant(), secret.GetProperty("sha256").GetString());
        using var account_ = JsonDocument.Parse(entries["account.json"].Content!);
        Assert.Equal(account.Username, account_.RootElement.GetProperty("account").GetProperty("username").GetString());
    }

    [Fact]
    public async Task AHostileHomeNeverPutsAByteFromOutsideItIntoTheArchiveEvenWhenAFolderBecomesALinkMidWalk()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = Layout.Home(account);
        var outside = Directory.CreateTempSubdirectory("opterius-outside-").FullName;
        const string secret = "SECRET-OUTSIDE-THE-HOME-0451";
        File.WriteAllText(Path.Join(outside, "secret.txt"), secret);
        File.CreateSymbolicLink(Path.Join(home, "etc"), "/etc");
        File.CreateSymbolicLink(Path.Join(home, "passwd"), "/etc/passwd");
        File.CreateSymbolicLink(Path.Join(home, "secret.txt"), Path.Join(outside, "secret.txt"));
        Directory.CreateDirectory(Path.Join(home, "zz-swapped"));
        File.WriteAllText(Path.Join(home, "zz-swapped", "mine.txt"), "mine");
        var writer = app.Get<FinalBackupWriter>();
        var swapped = false;
        writer.EntryArchived = name =>
        {
            // The top folder has been read (its subfolders are names waiting to be walked): now the tenant swaps one for a link.
            if (swapped || !name.StartsWith("home/", StringComparison.Ordinal) || name == "home/" || name.EndsWith('/')) return;
            Directory.Move(Path.Join(home, "zz-swapped"), Path.Join(home, "zz-moved"));
            File.CreateSymbolicLink(Path.Join(home, "zz-swapped"), outside);
            swapped = true;
        };
        try
        {
            var job = await DeleteWithBackupAsync(account);
            Assert.Equal(JobStatus.Succeeded, job.Status);
        }
        finally { writer.EntryArchived = null; }
        Assert.True(swapped, "the walk never reached a top-level file");

        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, (await BackupOfAsync(account.Id)).FileName), out _);
        Assert.Equal(("/etc", TarEntryType.SymbolicLink), (entries["home/etc"].Link, entries["home/etc"].Type));
        Assert.Equal(("/etc/passwd", TarEntryType.SymbolicLink), (entries["home/passwd"].Link, entries["home/passwd"].Type));
        Assert.Equal(TarEntryType.SymbolicLink, entries["home/secret.txt"].Type);
        Assert.Equal((outside, TarEntryType.SymbolicLink), (entries["home/zz-swapped"].Link, entries["home/zz-swapped"].Type));
        Assert.DoesNotContain(entries.Keys, k => k.StartsWith("home/etc/", StringComparison.Ordinal) || k.StartsWith("home/zz-swapped/", StringComparison.Ordinal));
        var host = File.ReadAllText("/etc/passwd");
        Assert.All(entries.Where(e => e.Value.Content is { Length: > 0 } && e.Key.StartsWith("home/", StringComparison.Ordinal)), e =>
        {
            var text = Encoding.UTF8.GetString(e.Value.Content!);
            Assert.DoesNotContain(secret, text);
            Assert.NotEqual(host, text);
        });
        Directory.Delete(outside, recursive: true);
    }

    [Fact]
    public async Task NamesThatAreNotUtf8AreListedAsSkippedNeverArchivedUnderAMangledName()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = Layout.Home(account);
        // Latin-1 names (0xE9, an é in ISO-8859-1), which no UTF-8 decoding gives back: a file, and a folder with a file in it.
        FileResourceSandbox.Run("bash", "-c", "cd \"$1\" && echo latin > $'caf\\xe9.txt' && mkdir $'d\\xe9j\\xe0' && echo inside > $'d\\xe9j\\xe0/ok.txt'", "x", home);
        // A valid UTF-8 name that holds U+FFFD itself is a name like any other.
        File.WriteAllText(Path.Join(home, "real-\uFFFD.txt"), "valid");
        Assert.Equal(3, Directory.EnumerateFileSystemEntries(home).Count(p => p.Contains('\uFFFD')));

        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(account)).Status);

        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, (await BackupOfAsync(account.Id)).FileName), out _);
        Assert.Equal(["home/real-\uFFFD.txt"], entries.Keys.Where(k => k.Contains('\uFFFD')));
        using var manifest = JsonDocument.Parse(entries["manifest.json"].Content!);
        var skipped = manifest.RootElement.GetProperty("skipped").EnumerateArray().Select(x => x.GetString()!).ToList();
        Assert.Contains("home/caf\uFFFD.txt: its name is not valid UTF-8, so it is not archived (a restore could not give it back byte for byte)", skipped);
        Assert.Contains("home/d\uFFFDj\uFFFD/: its name is not valid UTF-8, so it is not archived (a restore could not give it back byte for byte)", skipped);
        Assert.DoesNotContain(skipped, x => x.Contains("ok.txt"));
    }

    [Fact]
    public async Task AnInvalidUtf8NameBesideAValidSiblingSpelledWithUFFFDIsSkippedAndTheSiblingArchivedOnce()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = Layout.Home(account);
        // caf\xe9.txt decodes to caf\uFFFD.txt, the very name of its valid sibling: one entry each, never two of one name.
        FileResourceSandbox.Run("bash", "-c", "cd \"$1\" && echo latin > $'caf\\xe9.txt'", "x", home);
        File.WriteAllText(Path.Join(home, "caf\uFFFD.txt"), "valid");
        Assert.Equal(2, Directory.EnumerateFileSystemEntries(home).Count(p => p.EndsWith("caf\uFFFD.txt")));

        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(account)).Status);

        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, (await BackupOfAsync(account.Id)).FileName), out var order);
        Assert.Single(order, n => n == "home/caf\uFFFD.txt");
        Assert.Equal("valid", Encoding.UTF8.GetString(entries["home/caf\uFFFD.txt"].Content!));
        using var manifest = JsonDocument.Parse(entries["manifest.json"].Content!);
        Assert.Equal(["home/caf\uFFFD.txt: its name is not valid UTF-8, so it is not archived (a restore could not give it back byte for byte)"],
            manifest.RootElement.GetProperty("skipped").EnumerateArray().Select(x => x.GetString()!));
    }

    [Fact]
    public async Task AnActiveAccountsLeftoverSuspendedOriginalNeverWinsOverItsLiveVhost()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var available = app.Get<ServerLayout>().NginxAvailable(AccountIdentity.From(account));
        var live = File.ReadAllBytes(available);
        File.WriteAllText(available + NginxVhostResource.OriginalSuffix, "# a leftover of an old suspension\n");

        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(account)).Status);

        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, (await BackupOfAsync(account.Id)).FileName), out _);
        Assert.Equal(live, entries["config/nginx_vhost.conf"].Content);
    }

    [Fact]
    public async Task ASuspendedAccountWhoseOwnVhostWasNeverStoredListsItsVhostAsSkippedAndNeverArchivesThe503One()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        await app.Get<AccountSuspension>().SuspendAsync(app.AdminActor(), account.Id, default);
        var available = app.Get<ServerLayout>().NginxAvailable(AccountIdentity.From(account));
        File.Delete(available + NginxVhostResource.OriginalSuffix);
        Assert.Contains("return 503;", File.ReadAllText(available));

        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(account)).Status);

        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, (await BackupOfAsync(account.Id)).FileName), out _);
        Assert.DoesNotContain("config/nginx_vhost.conf", entries.Keys);
        using var manifest = JsonDocument.Parse(entries["manifest.json"].Content!);
        Assert.Contains($"config/nginx_vhost.conf: {NginxVhostResource.NotStoredReason}",
            manifest.RootElement.GetProperty("skipped").EnumerateArray().Select(x => x.GetString()));
    }

    [Fact]
    public async Task AHardLinkInAHomeToARootFileOutsideItIsSkippedAndListedNeverArchived()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = Layout.Home(account);
        // Root's file on the home's own file system (as /etc/shadow is on a one-disk server), outside the home.
        var target = Path.Join(Path.GetDirectoryName(Path.GetDirectoryName(home))!, $"{account.Username}-shadow");
        const string secret = "SECRET-HARD-LINKED-0452";
        File.WriteAllText(target, secret);
        File.SetUnixFileMode(target, UnixFileMode.UserRead);
        FileResourceSandbox.Run("ln", target, Path.Join(home, "shadow"));
        try
        {
            Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(account)).Status);
        }
        finally { File.Delete(target); }

        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, (await BackupOfAsync(account.Id)).FileName), out _);
        Assert.DoesNotContain("home/shadow", entries.Keys);
        Assert.DoesNotContain(entries.Values, e => e.Content is { Length: > 0 } && Encoding.UTF8.GetString(e.Content).Contains(secret));
        using var manifest = JsonDocument.Parse(entries["manifest.json"].Content!);
        Assert.Contains("home/shadow: a hard link to a file of uid 0, not the account's",
            manifest.RootElement.GetProperty("skipped").EnumerateArray().Select(x => x.GetString()));
    }

    [Fact]
    public async Task ThePanelsManifestNamesTheFirst100SkippedEntriesAndCountsThemAllWhileTheArchiveNamesEach()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var fifos = Path.Join(Layout.Home(account), "fifos");
        Directory.CreateDirectory(fifos);
        FileResourceSandbox.Run("mkfifo", [.. Enumerable.Range(0, 150).Select(i => Path.Join(fifos, $"f{i:D3}"))]);

        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(account)).Status);

        var backup = await BackupOfAsync(account.Id);
        using var panel = JsonDocument.Parse(backup.Manifest!);
        Assert.Equal(FinalBackupWriter.SkippedShown, panel.RootElement.GetProperty("skipped").GetArrayLength());
        Assert.Equal(150, panel.RootElement.GetProperty("skipped_count").GetInt32());
        var entries = ArchiveReader.Read(Path.Join(app.BackupPath, backup.FileName), out _);
        using var archived = JsonDocument.Parse(entries["manifest.json"].Content!);
        Assert.Equal(150, archived.RootElement.GetProperty("skipped").GetArrayLength());
    }

    [Fact]
    public async Task ABackupUnderTheNeverPolicyIsRefusedWithValidationFailedAndNothingChanges()
    {
        await using var never = new PolicyApp(FinalBackupPolicy.Never);
        await never.InitializeAsync();
        var account = await never.CreateAsync(TestAccounts.NewPrefix());
        var client = await never.ClientAsync();
        var before = FileResourceSandbox.Snapshot(new ServerLayoutOf(never).Home(account));

        var response = await client.DeleteAsync($"/api/v1/accounts/{account.Id}?backup=true");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var body = await response.JsonOf();
        Assert.Equal("validation_failed", body.Error());
        Assert.Contains("never", body.GetProperty("message").GetString());
        Assert.Equal(AccountStatus.Active, (await never.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);
        Assert.Null(await never.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default));
        Assert.Equal(before, FileResourceSandbox.Snapshot(new ServerLayoutOf(never).Home(account)));
    }

    [Fact]
    public async Task TheDryRunPlanShowsTheBackupStepFirstAndChangesNothing()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var client = await app.ClientAsync();
        var body = await (await client.DeleteAsync($"/api/v1/accounts/{account.Id}?dry_run=true&backup=true")).JsonOf();
        var resources = body.GetProperty("data").GetProperty("resources").EnumerateArray().Select(r => r.GetProperty("resource").GetString()!).ToList();
        Assert.Equal(DeletionOrder.Steps(true), resources);
        Assert.Null(await app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default));
        Assert.Empty((await app.Get<BackupStore>().ListAsync(Admin, 1, 10, account.Id, default)).Items);
    }

    [Fact]
    public async Task ABackupPurgedBetweenItsRowAndItsLockIsNeverWrittenAndTheDeletionStopsRemovingNothing()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var before = FileResourceSandbox.Snapshot(Layout.Home(account));
        // A purge that lands right after the row is inserted, before the writer takes its lock: the row is purged the
        // moment its file name is set (the insert's second statement), as a purge by another process would leave it.
        await app.Databases.PanelScalarAsync<object?>("""
            CREATE TRIGGER purge_new_backup BEFORE UPDATE ON backups FOR EACH ROW
            IF OLD.file_name = '' AND NEW.file_name <> '' THEN
                SET NEW.purged_at = UTC_TIMESTAMP(6), NEW.purged_by = 'tests', NEW.purge_reason = 'purged before the lock';
            END IF
            """);
        DeletionJob job;
        try { job = await DeleteWithBackupAsync(account); }
        finally { await app.Databases.PanelScalarAsync<object?>("DROP TRIGGER purge_new_backup"); }

        Assert.Equal(JobStatus.Failed, job.Status);
        var step = job.Steps[0];
        Assert.Equal((DeletionOrder.FinalBackup, StepStatus.Failed), (step.Resource, step.Status));
        Assert.Contains("was purged before its archive was written", step.Detail);
        Assert.All(job.Steps.Skip(1), s => Assert.NotEqual(StepStatus.Done, s.Status));
        var backup = await BackupOfAsync(account.Id);
        Assert.False(backup.Complete, "a purged backup was completed");
        Assert.False(File.Exists(Path.Join(app.BackupPath, backup.FileName)), "an archive was written for a purged backup and nothing will ever remove it");
        Assert.Equal(AccountStatus.Active, (await app.Get<AccountStore>().FindAsync(Admin, account.Id, default))!.Status);
        Assert.Equal(before, FileResourceSandbox.Snapshot(Layout.Home(account)));
    }

    [Fact]
    public async Task CompletingABackupRowThatWasPurgedIsRefusedAndLeavesItPurgedAndIncomplete()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var store = app.Get<BackupStore>();
        var row = await store.InsertAsync(account, null, 1, default);
        Assert.True(await store.MarkPurgedAsync(row.Id, "tests", "purged while written", default));

        Assert.False(await store.CompleteAsync(row.Id, new WrittenBackup(row.FileName, 1, new string('0', 64), "{}"), default));

        var after = (await store.FindAsync(Admin, row.Id, default))!;
        Assert.NotNull(after.PurgedAt);
        Assert.False(after.Complete);
    }

    [Fact]
    public async Task PurgingABackupRemovesItsArchiveKeepsTheRowAndIsAuditedAndAResellerSeesOnlyItsOwn()
    {
        var reseller = await app.NewResellerAsync();
        var own = await app.CreateAsync(TestAccounts.NewPrefix(), ownerId: reseller.Id);
        var foreign = await app.CreateAsync(TestAccounts.NewPrefix());
        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(own)).Status);
        Assert.Equal(JobStatus.Succeeded, (await DeleteWithBackupAsync(foreign)).Status);
        var (ownBackup, foreignBackup) = (await BackupOfAsync(own.Id), await BackupOfAsync(foreign.Id));
        var resellerClient = await app.ClientAsync(Opterius.Services.Users.Roles.Reseller, reseller.Id);

        var list = await (await resellerClient.GetAsync("/api/v1/backups")).JsonOf();
        var ids = list.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("id").GetInt64()).ToList();
        Assert.Contains(ownBackup.Id, ids);
        Assert.DoesNotContain(foreignBackup.Id, ids);
        Assert.Equal(HttpStatusCode.NotFound, (await resellerClient.GetAsync($"/api/v1/backups/{foreignBackup.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await resellerClient.DeleteAsync($"/api/v1/backups/{foreignBackup.Id}")).StatusCode);
        Assert.True(File.Exists(Path.Join(app.BackupPath, foreignBackup.FileName)));
        Assert.Equal(HttpStatusCode.OK, (await resellerClient.GetAsync($"/api/v1/backups/{ownBackup.Id}")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await resellerClient.DeleteAsync($"/api/v1/backups/{ownBackup.Id}")).StatusCode);

        Assert.False(File.Exists(Path.Join(app.BackupPath, ownBackup.FileName)));
        var purged = (await app.Get<BackupStore>().FindAsync(Admin, ownBackup.Id, default))!;
        Assert.NotNull(purged.PurgedAt);
        var body = await (await resellerClient.GetAsync($"/api/v1/backups/{ownBackup.Id}")).JsonOf();
        Assert.Equal("purged", body.GetProperty("data").GetProperty("status").GetString());
        var audit = await app.Get<AuditLog>().ListAsync(new AuditQuery(Action: "backup_purge", Account: own.Username), default);
        Assert.Contains(audit.Items, e => e.Outcome == "purged" && e.Detail!.Contains($"backup {ownBackup.Id}"));
    }

    [Fact]
    public async Task TheRetentionTaskPurgesABackupPastItsExpiryAsRetentionAndLeavesTheOthers()
    {
        var old = await app.CreateAsync(TestAccounts.NewPrefix());
        var fresh = await app.CreateAsync(TestAccounts.NewPrefix());
        await DeleteWithBackupAsync(old);
        await DeleteWithBackupAsync(fresh);
        var (oldBackup, freshBackup) = (await BackupOfAsync(old.Id), await BackupOfAsync(fresh.Id));
        await using (var c = new MySqlConnection(app.Databases.Panel))
            await c.ExecuteAsync("UPDATE backups SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE WHERE id = @Id", new { oldBackup.Id });

        await app.Get<FinalBackups>().PurgeExpiredAsync(default);

        Assert.False(File.Exists(Path.Join(app.BackupPath, oldBackup.FileName)));
        Assert.True(File.Exists(Path.Join(app.BackupPath, freshBackup.FileName)));
        var purged = (await app.Get<BackupStore>().FindAsync(Admin, oldBackup.Id, default))!;
        Assert.Equal("retention", purged.PurgedBy);
        Assert.Null((await app.Get<BackupStore>().FindAsync(Admin, freshBackup.Id, default))!.PurgedAt);
        var audit = await app.Get<AuditLog>().ListAsync(new AuditQuery(Action: "backup_purge", Actor: "retention", Account: old.Username), default);
        Assert.Single(audit.Items);
    }
}

/// <summary>The panel with another final backup policy.</summary>
public sealed class PolicyApp(string policy) : PanelApp
{
    protected override void ConfigureWebHost(Microsoft.AspNetCore.Hosting.IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureAppConfiguration((_, c) => c.AddInMemoryCollection(new Dictionary<string, string?> { ["Opterius:Deletion:FinalBackup"] = policy }));
    }
}

/// <summary>The paths the server layout gives an account of this app.</summary>
public sealed class ServerLayoutOf(PanelApp app)
{
    private readonly ServerLayout _layout = app.Get<ServerLayout>();
    public string Home(Account a) => _layout.Home(AccountIdentity.From(a));
    public string Mailboxes(Account a) => _layout.Mailboxes(AccountIdentity.From(a));
    public string DovecotUsers => _layout.DovecotUsers;
}
