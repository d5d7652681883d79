using System.Security.Claims;
using AngleSharp.Dom;
using Bunit;
using Dapper;
using MudBlazor;
using MySqlConnector;
using Opterius.Services.Backups;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Auth;
using Opterius.Web.Components.Pages.Backups;
using Opterius.Web.Tests.Backups;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Ui;

/// <summary>The Backups page over the real backup store, restore service and audit: who sees what, purge, restore.</summary>
public sealed class BackupsPageTests : BunitContext, IAsyncLifetime, IClassFixture<PanelApp>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly PanelApp _app;
    private readonly Bunit.TestDoubles.BunitAuthorizationContext _auth;
    private readonly string _tag = UiKit.NewUsername("b");
    private PanelUser _reseller = default!;
    private (IRenderedComponent<MudDialogProvider> Dialogs, IRenderedComponent<MudSnackbarProvider> Snacks)? _providers;

    public BackupsPageTests(PanelApp app)
    {
        _app = app;
        _auth = this.UsePanel(app);
    }

    public async Task InitializeAsync() => _reseller = await _app.NewResellerAsync();

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    private async Task<long> InsertBackupAsync(string username, long ownerId, string manifest = """{"format":1,"parts":[]}""", long bytes = 2048)
    {
        await using var c = new MySqlConnection(_app.Databases.Panel);
        var id = await c.ExecuteScalarAsync<long>("""
            INSERT INTO backups (account_id, username, domain, owner_id, file_name, bytes, sha256, manifest, created_at, completed_at, expires_at)
            VALUES (0, @username, @domain, @ownerId, '', @bytes, REPEAT('a', 64), @manifest, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL 30 DAY);
            SELECT LAST_INSERT_ID();
            """, new { username, domain = $"{username}.test", ownerId, manifest, bytes });
        await c.ExecuteAsync("UPDATE backups SET file_name = CONCAT(id, '.tar.zst') WHERE id = @id", new { id });
        return id;
    }

    private (IRenderedComponent<BackupsPage> Page, IRenderedComponent<MudDialogProvider> Dialogs, IRenderedComponent<MudSnackbarProvider> Snacks) RenderAs(PanelUser user)
    {
        _auth.SetAuthorized(user.Username);
        _auth.SetClaims(new Claim(PanelClaims.UserId, user.Id.ToString()), new Claim(PanelClaims.Role, user.Role), new Claim(PanelClaims.Name, user.Username));
        // The providers once per context: a second page (another user) shares them.
        if (_providers is null)
        {
            Render<MudPopoverProvider>();
            _providers = (Render<MudDialogProvider>(), Render<MudSnackbarProvider>());
        }
        return (Render<BackupsPage>(), _providers.Value.Dialogs, _providers.Value.Snacks);
    }

    /// <summary>The grid's rows of this test: account → state.</summary>
    private Dictionary<string, string> Rows(IRenderedComponent<BackupsPage> page) =>
        page.FindAll("[data-testid=backups-grid] tbody tr")
            .Where(tr => tr.QuerySelector("[data-state]") is not null && tr.QuerySelector("td")!.TextContent.Trim().StartsWith(_tag, StringComparison.Ordinal))
            .ToDictionary(tr => tr.QuerySelector("td")!.TextContent.Trim(), tr => tr.QuerySelector("[data-state]")!.GetAttribute("data-state")!);

    /// <summary>Answers the message box the page opens (later than the click that asks for it) with its button <paramref name="text"/>.</summary>
    private static async Task AnswerAsync(IRenderedComponent<MudDialogProvider> dialogs, string text)
    {
        IElement Button() => dialogs.FindAll("button").Single(b => b.TextContent.Trim() == text);
        dialogs.WaitForAssertion(() => Button(), Patience);
        await dialogs.ClickAsync(Button);
    }

    [Fact]
    public async Task AResellerSeesOnlyItsOwnBackupsAndAnAdminSeesEveryOne()
    {
        await InsertBackupAsync($"{_tag}mine", _reseller.Id);
        await InsertBackupAsync($"{_tag}admins", _app.Admin.Id);

        var (page, _, _) = RenderAs(_reseller);
        page.WaitForAssertion(() => Assert.Equal([$"{_tag}mine"], Rows(page).Keys), Patience);
        Assert.DoesNotContain($"{_tag}admins", page.Markup);

        var (adminPage, _, _) = RenderAs(_app.Admin);
        adminPage.WaitForAssertion(() => Assert.Equal([$"{_tag}admins", $"{_tag}mine"], Rows(adminPage).Keys.Order()), Patience);
        Assert.All(Rows(adminPage).Values, s => Assert.Equal("kept", s));
    }

    [Fact]
    public async Task PurgeNowAsksFirstCancelKeepsItAndConfirmingPurgesItAndIsAudited()
    {
        var id = await InsertBackupAsync($"{_tag}gone", _reseller.Id);
        var (page, dialogs, _) = RenderAs(_reseller);
        page.WaitForAssertion(() => Assert.Equal("kept", Rows(page)[$"{_tag}gone"]), Patience);

        await page.ClickAsync("[data-action=purge]");
        await AnswerAsync(dialogs, "Cancel");
        Assert.Null(await _app.Databases.PanelScalarAsync<DateTime?>("SELECT purged_at FROM backups WHERE id = @id", new { id }));

        await page.ClickAsync("[data-action=purge]");
        await AnswerAsync(dialogs, "Purge now");

        page.WaitForAssertion(() => Assert.Equal("purged", Rows(page)[$"{_tag}gone"]), Patience);
        Assert.DoesNotContain(page.FindAll("[data-action=purge]"), b => b.GetAttribute("aria-label") == $"purge {_tag}gone");
        Assert.NotNull(await _app.Databases.PanelScalarAsync<DateTime?>("SELECT purged_at FROM backups WHERE id = @id", new { id }));
        Assert.Equal("purged", await _app.Databases.PanelScalarAsync<string>(
            "SELECT outcome FROM audit_log WHERE action = 'backup_purge' AND detail LIKE CONCAT('backup ', @id, ' %') ORDER BY id DESC LIMIT 1", new { id }));
    }

    [Fact]
    public async Task RestoringABackupWhoseUsernameIsTakenShowsTheConflictAndChangesNothing()
    {
        var username = $"{_tag}taken";
        var id = await InsertBackupAsync(username, _reseller.Id);
        new ArchiveBuilder(username, $"{username}.test", 200001, 200001).Folder("home").Write(_app.BackupPath, id);
        var holder = await _app.InsertAccountAsync(username, _app.Admin.Id);
        var accounts = await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        var (page, dialogs, snacks) = RenderAs(_reseller);
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-action=restore]")), Patience);

        await page.ClickAsync("[data-action=restore]");
        await AnswerAsync(dialogs, "Restore");

        snacks.WaitForAssertion(() => Assert.Contains($"refused (conflict)", snacks.Markup), Patience);
        // The holder is the admin's: a reseller learns that the name is taken, not which account holds it.
        Assert.Contains($"The username '{username}' is taken by another owner's account.", snacks.Markup);
        Assert.DoesNotContain($"account {holder.Id}", snacks.Markup);
        Assert.Empty(page.FindAll("[data-testid=restore-progress]"));
        Assert.Equal(accounts, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
        Assert.Equal(0, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM restore_jobs WHERE backup_id = @id", new { id }));
    }

    [Fact]
    public async Task ARestoreShowsItsStepsLiveAndATamperedArchiveEndsFailedAtTheArchiveStepWithNothingLeft()
    {
        var username = $"{_tag}live";
        var id = await InsertBackupAsync(username, _app.Admin.Id);
        var archive = new ArchiveBuilder(username, $"{username}.test", 200001, 200001).Folder("home").File("home/index.html", "the page").Write(_app.BackupPath, id);
        ArchiveBuilder.ChangeOneByte(archive, "the page");
        var (page, dialogs, _) = RenderAs(_app.Admin);
        page.WaitForAssertion(() => Assert.Single(page.FindAll($"[aria-label='restore {username}']")), Patience);

        await page.ClickAsync($"[aria-label='restore {username}']");
        await AnswerAsync(dialogs, "Restore");

        page.WaitForAssertion(() => Assert.Equal("failed", page.Find("[data-testid=restore-progress]").GetAttribute("data-status")), Patience);
        string Step(string resource) => page.Find($"[data-testid=restore-progress] tr[data-resource={resource}]").GetAttribute("data-step-status")!;
        Assert.Equal(StepStatus.Done, Step("system_user"));
        Assert.Equal(StepStatus.Failed, Step("archive"));
        Assert.Equal(StepStatus.Pending, Step("home_directory"));
        Assert.Contains("does not match the manifest", page.Find("[data-testid=restore-detail]").TextContent);
        Assert.Equal(0, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE username = @username", new { username }));
        Assert.DoesNotContain($"\n{username}:", "\n" + File.ReadAllText(Path.Combine(PrivateServices.SandboxRoot, "etc", "passwd")));
        Assert.Equal("failed", await _app.Databases.PanelScalarAsync<string>("SELECT status FROM restore_jobs WHERE backup_id = @id", new { id }));
    }

    [Fact]
    public async Task TheRestoreDialogShowsWhatTheArchiveWillRestoreBeforeTheAdminConfirmsAndCancelRestoresNothing()
    {
        var username = $"{_tag}shown";
        // The manifest summary as the final backup writer stores it with the row: each part, its kind, files and bytes.
        var manifest = $$"""
            {"format":1,"parts":[
              {"path":"home/","kind":"home","file_count":1200,"bytes":52428800,"sha256":"a"},
              {"path":"mail/","kind":"mailboxes","file_count":340,"bytes":10485760,"sha256":"b"},
              {"path":"databases/{{username}}_wp.sql","kind":"databases","file_count":1,"bytes":3145728,"sha256":"c"},
              {"path":"databases/{{username}}_shop.sql","kind":"databases","file_count":1,"bytes":1048576,"sha256":"d"},
              {"path":"dns_zone.json","kind":"dns_zone","file_count":1,"bytes":2048,"sha256":"e"},
              {"path":"config/nginx_vhost.conf","kind":"nginx_vhost","file_count":1,"bytes":900,"sha256":"f"}],
             "skipped":[],"total_files":1544,"total_bytes":67111812}
            """;
        var id = await InsertBackupAsync(username, _reseller.Id, manifest, bytes: 20_000_000);
        new ArchiveBuilder(username, $"{username}.test", 200001, 200001).Folder("home").Write(_app.BackupPath, id);
        var backup = (await _app.Get<BackupStore>().FindAsync(new Opterius.Services.Accounts.Viewer(0, true), id, default))!;
        var (page, dialogs, _) = RenderAs(_app.Admin);
        page.WaitForAssertion(() => Assert.Single(page.FindAll($"[aria-label='restore {username}']")), Patience);

        await page.ClickAsync($"[aria-label='restore {username}']");

        dialogs.WaitForAssertion(() => Assert.NotEmpty(dialogs.FindAll("[data-testid=restore-preview]")), Patience);
        string Field(string name) => dialogs.Find($"[data-testid=restore-preview] [data-field={name}]").TextContent.Trim();
        Assert.Equal(username, Field("username"));
        Assert.Equal($"{username}.test", Field("domain"));
        Assert.Equal($"{username}@{username}.test", Field("email")); // read from the archive's own account.json
        Assert.Equal(_reseller.Username, Field("owner"));
        Assert.Equal(backup.CreatedAt.ToString("yyyy-MM-dd HH:mm"), Field("taken"));
        Assert.Equal(backup.ExpiresAt.ToString("yyyy-MM-dd HH:mm"), Field("expires"));
        Assert.Equal(ByteSize.Human(20_000_000), Field("size"));
        string Part(string key) => dialogs.Find($"[data-testid=restore-preview] [data-part={key}]").TextContent;
        Assert.Contains("1,200 files", Part("home_directory"));
        Assert.Contains(ByteSize.Human(52428800), Part("home_directory"));
        Assert.Contains("340 files", Part("mailboxes"));
        Assert.Contains("2 databases", Part("databases"));
        Assert.Contains(ByteSize.Human(3145728 + 1048576), Part("databases"));
        Assert.Contains(ByteSize.Human(2048), Part("dns_zone"));
        Assert.Contains("Web server vhost", Part("nginx_vhost"));
        Assert.Empty(dialogs.FindAll("[data-testid=restore-preview] [data-part=cron]")); // not in the archive, not promised

        await AnswerAsync(dialogs, "Cancel");
        dialogs.WaitForAssertion(() => Assert.Empty(dialogs.FindAll("[data-testid=restore-preview]")), Patience);
        Assert.Empty(page.FindAll("[data-testid=restore-progress]"));
        Assert.Equal(0, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM restore_jobs WHERE backup_id = @id", new { id }));
        Assert.Equal(0, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE username = @username", new { username }));
    }

    [Theory]
    [InlineData("{\"format\":1,\"parts\":[")]                 // cut short: not JSON
    [InlineData("[1, 2]")]                                      // JSON, but not an object
    [InlineData("{\"format\":1,\"parts\":[3, \"home\", null]}")] // parts that are not objects
    public async Task ARestoreDialogOverAManifestThatCannotBeReadOpensWithNoPartsInsteadOfFailing(string manifest)
    {
        var username = $"{_tag}bad{Random.Shared.Next(1000)}";
        var id = await InsertBackupAsync(username, _app.Admin.Id, manifest);
        new ArchiveBuilder(username, $"{username}.test", 200001, 200001).Folder("home").Write(_app.BackupPath, id);
        var (page, dialogs, _) = RenderAs(_app.Admin);
        page.WaitForAssertion(() => Assert.Single(page.FindAll($"[aria-label='restore {username}']")), Patience);

        await page.ClickAsync($"[aria-label='restore {username}']");

        dialogs.WaitForAssertion(() => Assert.NotEmpty(dialogs.FindAll("[data-testid=restore-preview] [data-testid=restore-no-parts]")), Patience);
        Assert.Empty(dialogs.FindAll("[data-testid=restore-preview] [data-part]"));
        await AnswerAsync(dialogs, "Cancel");
        dialogs.WaitForAssertion(() => Assert.Empty(dialogs.FindAll("[data-testid=restore-preview]")), Patience);
        Assert.Equal(0, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM restore_jobs WHERE backup_id = @id", new { id }));
    }

    [Fact]
    public async Task AManifestPartWithANullSizeOrNoFileCountIsShownWithZeroOfThem()
    {
        var username = $"{_tag}nulls";
        const string manifest = """
            {"format":1,"parts":[
              {"path":"home/","kind":"home","bytes":null,"sha256":"a"},
              {"path":"mail/","kind":"mailboxes","file_count":"many","bytes":4096,"sha256":"b"}]}
            """;
        var id = await InsertBackupAsync(username, _app.Admin.Id, manifest);
        new ArchiveBuilder(username, $"{username}.test", 200001, 200001).Folder("home").Write(_app.BackupPath, id);
        var (page, dialogs, _) = RenderAs(_app.Admin);
        page.WaitForAssertion(() => Assert.Single(page.FindAll($"[aria-label='restore {username}']")), Patience);

        await page.ClickAsync($"[aria-label='restore {username}']");

        dialogs.WaitForAssertion(() => Assert.NotEmpty(dialogs.FindAll("[data-testid=restore-preview]")), Patience);
        string Part(string key) => dialogs.Find($"[data-testid=restore-preview] [data-part={key}]").TextContent;
        Assert.Contains($"0 files, {ByteSize.Human(0)}", Part("home_directory"));
        Assert.Contains($"0 files, {ByteSize.Human(4096)}", Part("mailboxes"));
        await AnswerAsync(dialogs, "Cancel");
    }

    [Fact]
    public async Task ABackupWhoseArchiveIsGoneSaysSoInsteadOfOfferingARestore()
    {
        var username = $"{_tag}noarchive";
        var id = await InsertBackupAsync(username, _app.Admin.Id);
        var (page, dialogs, snacks) = RenderAs(_app.Admin);
        page.WaitForAssertion(() => Assert.Single(page.FindAll($"[aria-label='restore {username}']")), Patience);

        await page.ClickAsync($"[aria-label='restore {username}']");

        snacks.WaitForAssertion(() => Assert.Contains($"Restore of {username} refused (not_found)", snacks.Markup), Patience);
        Assert.Empty(dialogs.FindAll("[data-testid=restore-preview]"));
        Assert.Equal(0, await _app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM restore_jobs WHERE backup_id = @id", new { id }));
    }
}
