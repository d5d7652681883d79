using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Backups;
using Opterius.Services.Data;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Backups;

/// <summary>
/// The restorer in process over a sandbox root, with archives built by hand: what it writes (modes, owners, links as
/// links, the archived uid's files given to the new uid) and what it refuses before anything is made (a changed byte,
/// '..', an absolute path, a hard link) or at the entry that would write through a link.
/// </summary>
public sealed class RestoreArchiveTests : IDisposable
{
    private const int OldUid = 200001, NewUid = 200011, Other = 200005;
    private readonly FileResourceSandbox _box = new();
    private readonly string _backups;
    private readonly BackupRestorer _restorer;
    private readonly List<RestoreReport> _reports = [];
    private readonly IConfiguration _config;
    private readonly IOptions<DeletionOptions> _options;

    public RestoreArchiveTests()
    {
        _backups = Path.Combine(_box.Folder, "backups");
        File.AppendAllText(_box.Layout.Passwd, $"bob:x:{NewUid}:{NewUid}::/home/bob:/bin/bash\n");
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:MariaDbAdmin"] = PrivateServices.RootConnectionString(),
        }).Build();
        var options = Options.Create(new DeletionOptions { BackupPath = _backups });
        (_config, _options) = (config, options);
        // Tree-only archives never reach a database: the connections are never opened.
        var parts = new RestoreParts(_box.Layout, new MariaDbAdmin(PrivateServices.RootConnectionString()),
            new PowerDnsDb(PrivateServices.RootConnectionString()), _box.Reloader, _box.Commands, config, options,
            new DatabaseUsersResource(new MariaDbAdmin(PrivateServices.RootConnectionString())));
        _restorer = new BackupRestorer(_box.Layout, parts, options);
    }

    public void Dispose() => _box.Dispose();

    private static ArchiveBuilder Bob() => new("bob", "bob.test", OldUid, OldUid);

    private Task RestoreAsync(long id) => _restorer.RestoreAsync(id, Identity("bob", "bob.test", NewUid), _reports.Add, CancellationToken.None);

    private string Home => Path.Combine(_box.Root, "home", "bob");

    private SortedDictionary<string, string> Everything()
    {
        var all = Snapshot(_box.Root);
        foreach (var (k, v) in Snapshot(_box.Outside)) all[k] = v;
        return all;
    }

    [Fact]
    public async Task ATreeComesBackWithItsModesOwnersAndLinksAndTheArchivedUidsFilesAreTheNewUids()
    {
        Bob().Folder("home", 0b111_001_001)
            .Folder("home/public_html", 0b111_101_101)
            .File("home/public_html/index.php", "<?php echo 'hi';", 0b110_100_000)
            .File("home/public_html/run.sh", "#!/bin/sh\n", 0b111_101_000)
            .File("home/root-owned.txt", "root's", 0b110_000_000, owner: 0)
            .File("home/others.txt", "someone else's", 0b110_100_100, owner: Other)
            .Link("home/etc-link", "/etc/passwd")
            .Link("home/public_html/relative", "../root-owned.txt")
            .Folder("home/private", 0b111_000_000)
            .File("home/private/empty", "", 0b100_000_000)
            .Write(_backups, 1);

        await RestoreAsync(1);

        var got = Snapshot(Home).ToDictionary(kv => Path.GetRelativePath(Home, kv.Key), kv => kv.Value);
        Assert.Equal($"dir 711 {NewUid}:{NewUid}", got["."]);
        Assert.Equal($"dir 755 {NewUid}:{NewUid}", got["public_html"]);
        Assert.StartsWith($"file 640 {NewUid}:{NewUid} ", got["public_html/index.php"]);
        Assert.StartsWith($"file 750 {NewUid}:{NewUid} ", got["public_html/run.sh"]);
        Assert.StartsWith("file 600 0:0 ", got["root-owned.txt"]);
        Assert.StartsWith($"file 644 {Other}:{Other} ", got["others.txt"]);
        Assert.Equal($"link /etc/passwd 777 {NewUid}:{NewUid}", got["etc-link"]);
        Assert.Equal($"link ../root-owned.txt 777 {NewUid}:{NewUid}", got["public_html/relative"]);
        Assert.Equal($"dir 700 {NewUid}:{NewUid}", got["private"]);
        Assert.StartsWith($"file 400 {NewUid}:{NewUid} ", got["private/empty"]);
        Assert.Equal(10, got.Count);
        Assert.Equal("<?php echo 'hi';", File.ReadAllText(Path.Combine(Home, "public_html", "index.php")));
        Assert.Equal(new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc), File.GetLastWriteTimeUtc(Path.Combine(Home, "others.txt")));
        Assert.Equal(
            ["archive running", "archive done", "home_directory running", "home_directory made", "home_directory done"],
            _reports.Where(r => r.Status != StepStatus.Running || r.Detail is null || r.Resource == RestoreReport.ArchiveStep)
                .Select(r => $"{r.Resource} {r.Status}").Distinct());
    }

    [Fact]
    public async Task AnArchiveWithOneByteChangedIsRefusedAndNothingIsMade()
    {
        Bob().Folder("home").File("home/index.html", "the original page").Write(_backups, 2);
        ArchiveBuilder.ChangeOneByte(Path.Combine(_backups, "2.tar.zst"), "the original page");
        var before = Everything();

        var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestoreAsync(2));

        Assert.Contains("home/index.html", e.Message);
        Assert.Contains("does not match the manifest", e.Message);
        Assert.Equal(before, Everything());
        Assert.DoesNotContain(_reports, r => r.Resource != RestoreReport.ArchiveStep);
    }

    [Fact]
    public async Task AnArchiveWhoseEntriesAreNotInTheManifestsOrderIsRefusedAndNothingIsMade()
    {
        // Every entry is in the manifest with its own bytes, but not at its place: the order is part of what is verified.
        Bob().Folder("home").File("home/a.txt", "first").File("home/b.txt", "second").ListedInReverse().Write(_backups, 9);
        var before = Everything();

        var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestoreAsync(9));

        Assert.Contains("archive entry 'home/a.txt' is not in the manifest at its place (the manifest lists 'home/b.txt' there)", e.Message);
        Assert.Equal(before, Everything());
        Assert.False(Path.Exists(Home));
        Assert.DoesNotContain(_reports, r => r.Resource != RestoreReport.ArchiveStep);
    }

    [Theory]
    [InlineData("home/../../outside/planted")]
    [InlineData("home/a/../../../outside/planted")]
    [InlineData("/outside/planted")]
    [InlineData("home/./planted")]
    public async Task AnArchiveHoldingDotDotOrAnAbsolutePathIsRefusedBeforeAnythingIsWritten(string name)
    {
        Bob().Folder("home").Folder("home/a").File("home/ok.txt", "fine").File(name, "planted").Write(_backups, 3);
        var before = Everything();

        var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestoreAsync(3));

        Assert.Contains(name, e.Message);
        Assert.Equal(before, Everything());
        Assert.False(Path.Exists(Home));
    }

    [Fact]
    public async Task AHardLinkEntryIsRefusedBeforeAnythingIsWritten()
    {
        Bob().Folder("home").File("home/a", "a").HardLink("home/b", "home/a").Write(_backups, 4);
        var before = Everything();

        var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestoreAsync(4));

        Assert.Contains("HardLink", e.Message);
        Assert.Equal(before, Everything());
    }

    [Fact]
    public async Task ALinkThenAFileThroughItNeverWritesOutsideTheHome()
    {
        var outside = Path.Combine(_box.Outside, "etc");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "passwd"), "root:x:0:0::/root:/bin/bash\n");
        // Verifies (every entry is in the manifest): the refusal is the writer's, at the entry that would go through the link.
        Bob().Folder("home").Link("home/x", outside).File("home/x/passwd", "owned\n").File("home/x/new", "planted").Write(_backups, 5);
        var outsideBefore = Snapshot(_box.Outside);

        var e = await Assert.ThrowsAsync<ResourceException>(() => RestoreAsync(5));

        Assert.Contains("x is a link or a file, not a folder", e.Message);
        Assert.Equal(outsideBefore, Snapshot(_box.Outside));
        // Made (its top was free) before the refusal: the caller's undo removes what it wrote.
        Assert.Equal("home_directory made", _reports.Select(r => $"{r.Resource} {r.Status}").Last());
    }

    [Fact]
    public async Task ALinkAndAFileOfTheSameNameAreRefusedBeforeAnythingIsWritten()
    {
        var target = Path.Combine(_box.Outside, "victim");
        File.WriteAllText(target, "untouched");
        Bob().Folder("home").Link("home/y", target).File("home/y", "through the link?").Write(_backups, 6);
        var before = Everything();

        var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestoreAsync(6));

        Assert.Contains("appears twice", e.Message);
        Assert.Equal(before, Everything());
    }

    [Fact]
    public async Task AnArchiveOfAnotherAccountIsRefusedBeforeAnythingIsWritten()
    {
        new ArchiveBuilder("carol", "carol.test", OldUid, OldUid).Folder("home").File("home/a", "a").Write(_backups, 7);
        var before = Everything();

        var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestoreAsync(7));

        Assert.Contains("is of 'carol' / 'carol.test'", e.Message);
        Assert.Equal(before, Everything());
    }

    /// <summary>Parts with the run's own MariaDB client command (as scripts/services.sh configures it), over the real server.</summary>
    private RestoreParts PartsWithTheClient(string[]? client = null, int commandTimeoutSeconds = 60)
    {
        Directory.CreateDirectory(_backups); // the client's defaults file goes there
        using var json = JsonDocument.Parse(File.ReadAllText(PrivateServices.CommandsJson));
        var argv = client ?? json.RootElement.GetProperty("Opterius").GetProperty("Commands").GetProperty(RestoreParts.ClientCommand)
            .EnumerateArray().Select(a => a.GetString()!).ToArray();
        var runner = new CommandRunner(Options.Create(new OpteriusOptions
        {
            Root = _box.Root, CommandTimeoutSeconds = commandTimeoutSeconds, Commands = new() { [RestoreParts.ClientCommand] = argv },
        }));
        return new RestoreParts(_box.Layout, new MariaDbAdmin(PrivateServices.RootConnectionString()),
            new PowerDnsDb(PrivateServices.RootConnectionString()), _box.Reloader, runner, _config, _options,
            new DatabaseUsersResource(new MariaDbAdmin(PrivateServices.RootConnectionString())));
    }

    private static Task RestorePartAsync(RestoreParts parts, string key, string name, string content, string username) =>
        parts.RestoreAsync(key, name, new MemoryStream(Encoding.UTF8.GetBytes(content)), Identity(username, $"{username}.test", NewUid),
            new OwnerMap(OldUid, OldUid, new FileOwner(NewUid, NewUid)), () => { }, CancellationToken.None);

    [Fact]
    public async Task ADumpHoldingAClientShellCommandNeverRunsIt()
    {
        var user = "d" + Guid.NewGuid().ToString("N")[..8];
        var database = $"{user}_site";
        var marker = Path.Combine(_box.Outside, "client-command-ran");
        var dump = $"CREATE DATABASE `{database}`;\nUSE `{database}`;\n\\! touch {marker}\nCREATE TABLE t (id INT);\n";
        try
        {
            var e = await Record.ExceptionAsync(() => RestorePartAsync(PartsWithTheClient(), "databases", $"databases/{database}.sql", dump, user));

            Assert.False(File.Exists(marker), "the dump's \\! line ran as a shell command");
            // With client commands off the line reaches the server as SQL, a syntax error: the restore fails, nothing ran.
            Assert.Contains("restoring database", Assert.IsAssignableFrom<ResourceException>(e).Message);
        }
        finally
        {
            await using var c = new MySqlConnection(PrivateServices.RootConnectionString());
            await c.ExecuteAsync($"DROP DATABASE IF EXISTS `{database}`");
        }
    }

    [Fact]
    public async Task AGrantOnAnUnescapedPrefixPatternIsRefusedBeforeAnyStatementRuns()
    {
        var user = "g" + Guid.NewGuid().ToString("N")[..8];
        // `{user}_%` also matches {user}2_x, another account's databases: only `{user}\_...` is the account's.
        var text = $"CREATE USER `{user}`@`localhost`;\nGRANT ALL PRIVILEGES ON `{user}_%`.* TO `{user}`@`localhost`;\n";
        try
        {
            var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestorePartAsync(PartsWithTheClient(), "database_users", "database_users.sql", text, user));

            Assert.Contains($"ON `{user}_%`.*", e.Message);
            await using var c = new MySqlConnection(PrivateServices.RootConnectionString());
            Assert.Equal(0, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM mysql.user WHERE User = @user", new { user }));
        }
        finally
        {
            await using var c = new MySqlConnection(PrivateServices.RootConnectionString());
            await c.ExecuteAsync($"DROP USER IF EXISTS `{user}`@`localhost`");
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("CREATE USER `{0}`@`%`;\n")]
    public async Task AGrantToAUserTheArchiveDoesNotCreateIsRefusedBeforeAnyStatementRunsAndNoDatabaseUserIsMade(string create)
    {
        var user = "g" + Guid.NewGuid().ToString("N")[..8];
        // No CREATE USER for user@localhost: under a sql_mode without NO_AUTO_CREATE_USER the grant alone would make it, passwordless.
        var text = string.Format(create, user) + $"GRANT USAGE ON *.* TO `{user}`@`localhost`;\nGRANT ALL PRIVILEGES ON `{user}\\_db`.* TO `{user}`@`localhost`;\n";
        try
        {
            var e = await Assert.ThrowsAsync<ArchiveRefusedException>(() => RestorePartAsync(PartsWithTheClient(), "database_users", "database_users.sql", text, user));

            Assert.Contains($"`{user}`@`localhost` has no CREATE USER", e.Message);
            await using var c = new MySqlConnection(PrivateServices.RootConnectionString());
            Assert.Equal(0, await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM mysql.user WHERE User = @user", new { user }));
        }
        finally
        {
            await using var c = new MySqlConnection(PrivateServices.RootConnectionString());
            await c.ExecuteAsync($"DROP USER IF EXISTS `{user}`@`localhost`, `{user}`@`%`");
        }
    }

    [Fact]
    public void ATreeTopStaysRootsAnd0700WhileItIsWrittenAndGetsItsArchivedOwnerAndModeLast()
    {
        var top = Path.Combine(_box.Root, "home", "bob");
        var w = TreeWriter.Create(top, NewUid, NewUid);
        w.SetTop(0b111_101_000, NewUid, NewUid, DateTimeOffset.UnixEpoch);
        w.Folder("public_html", 0b111_101_101, NewUid, NewUid, DateTimeOffset.UnixEpoch);
        w.File("public_html/index.php", new MemoryStream("<?php"u8.ToArray()), 0b110_100_100, NewUid, NewUid, DateTimeOffset.UnixEpoch);

        Assert.Equal("700 0:0", Stat(top));
        Assert.Equal($"755 {NewUid}:{NewUid}", Stat(Path.Combine(top, "public_html")));

        w.Dispose();

        Assert.Equal($"750 {NewUid}:{NewUid}", Stat(top));
    }

    [Fact]
    public async Task ASetIdFileOfAnotherOwnerComesBackWithoutItsSetIdBitsAndTheAccountsKeepsThem()
    {
        Bob().Folder("home", 0b111_101_000)
            .File("home/root-suid", "#!/bin/sh\n", 0b110_111_101_101, owner: 0)
            .File("home/others-sgid", "#!/bin/sh\n", 0b010_111_101_101, owner: Other)
            .File("home/own-suid", "#!/bin/sh\n", 0b100_111_101_101)
            .Write(_backups, 8);

        await RestoreAsync(8);

        Assert.Equal("755 0:0", Stat(Path.Combine(Home, "root-suid")));
        Assert.Equal($"755 {Other}:{Other}", Stat(Path.Combine(Home, "others-sgid")));
        Assert.Equal($"4755 {NewUid}:{NewUid}", Stat(Path.Combine(Home, "own-suid")));
    }

    [Fact]
    public async Task ADatabaseImportRunsPastTheCommandTimeoutUnderTheDumpTimeout()
    {
        var user = "t" + Guid.NewGuid().ToString("N")[..8];
        // A client slower than Opterius:CommandTimeoutSeconds (1 s here) but well inside DumpTimeoutSeconds (3600).
        var parts = PartsWithTheClient(["sh", "-c", "sleep 2; cat > /dev/null"], commandTimeoutSeconds: 1);

        await RestorePartAsync(parts, "databases", $"databases/{user}_big.sql", "SELECT 1;\n", user);
    }
}
