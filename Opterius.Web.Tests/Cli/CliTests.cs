using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Dapper;
using MySqlConnector;
using Opterius.Services.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Cli;

/// <summary>The CLI as an operator runs it: the panel binary with a verb, configured by environment variables.</summary>
// Alone: the CLI is a process of its own, so its php-fpm test and reload cannot wait for the edits of the test classes
// that share the run's private php-fpm in this process (on a server one agent makes every edit).
[Collection(nameof(CliTests))]
public sealed class CliTests(PanelApp app) : IClassFixture<PanelApp>
{
    private sealed record Run(int ExitCode, string Out, string Error)
    {
        public string LastLine => Out.TrimEnd().Split('\n')[^1];
    }

    private readonly string _signingKey = app.Services.GetService(typeof(Microsoft.Extensions.Options.IOptions<JwtOptions>)) is Microsoft.Extensions.Options.IOptions<JwtOptions> o
        ? o.Value.SigningKey : throw new InvalidOperationException();

    private Task<Run> PanelAsync(params string[] args) => PanelAsync(new Dictionary<string, string>(), args);

    /// <summary>Runs the binary; a run still going after a minute (a server, when a CLI was meant) is killed and reported as exit -1.</summary>
    private async Task<Run> PanelAsync(Dictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Opterius.Web.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["ConnectionStrings__Panel"] = app.Databases.Panel;
        psi.Environment["ConnectionStrings__PowerDns"] = app.Databases.PowerDns;
        psi.Environment["ConnectionStrings__MariaDbAdmin"] = app.Databases.Admin;
        psi.Environment["Opterius__Jwt__SigningKey"] = _signingKey;
        psi.Environment["Opterius__Root"] = PrivateServices.SandboxRoot;
        psi.Environment["Opterius__Https__Port"] = "0"; // a run that serves by mistake must not take a real port
        foreach (var (key, value) in environment) psi.Environment[key] = value;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try { await p.WaitForExitAsync(deadline.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            return new(-1, await stdout, await stderr);
        }
        return new(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>What every refusal looks like: exit 2, one "error: ..." line with no stack trace, then the usage.</summary>
    private static void AssertRefused(Run run, string? saying = null)
    {
        Assert.True(run.ExitCode == 2, $"exit {run.ExitCode}; stdout: {run.Out}; stderr: {run.Error}");
        Assert.StartsWith("error: ", run.Error);
        if (saying is not null) Assert.Contains(saying, run.Error.Split('\n')[0]);
        Assert.Contains("usage: Opterius.Web VERB", run.Error);
        Assert.DoesNotContain("   at ", run.Error + run.Out);
        Assert.DoesNotContain("Exception", run.Error + run.Out);
    }

    [Fact]
    public async Task BackupsRestoreOfAnUnknownBackupSaysSoAndExits1AndABadIdIsRefusedWithTheUsage()
    {
        var environment = new Dictionary<string, string>
        {
            ["Opterius__License__Path"] = app.LicensePath,
            ["Opterius__License__PublicKey"] = Opterius.Services.Licensing.LicenseIssuer.PublicKeyFileFor(app.SigningKeyPath),
            ["Opterius__Deletion__BackupPath"] = app.BackupPath,
            ["OPTERIUS_CONFIG"] = PrivateServices.CommandsJson,
        };
        var accounts = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");

        var unknown = await PanelAsync(environment, "backups", "restore", "--id", "987654");

        Assert.True(unknown.ExitCode == 1, $"exit {unknown.ExitCode}; stdout: {unknown.Out}; stderr: {unknown.Error}");
        Assert.Equal("error: No backup with id 987654 exists.", unknown.Error.Trim());
        AssertRefused(await PanelAsync("backups", "restore", "--id", "abc"), "--id");
        Assert.Equal(accounts, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
    }

    [Fact]
    public async Task AccountsDeleteWithBackupPrintsEveryStepThenBackupsListShowsItAndBackupsPurgeRemovesIt()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var environment = new Dictionary<string, string>
        {
            ["OPTERIUS_CONFIG"] = PrivateServices.CommandsJson,
            ["Opterius__License__Path"] = app.LicensePath,
            ["Opterius__License__PublicKey"] = Opterius.Services.Licensing.LicenseIssuer.PublicKeyFileFor(app.SigningKeyPath),
            ["Opterius__Deletion__BackupPath"] = app.BackupPath,
        };

        var deleted = await PanelAsync(environment, "accounts", "delete", "--id", $"{account.Id}", "--backup");

        Assert.True(deleted.ExitCode == 0, $"exit {deleted.ExitCode}: {deleted.Out} {deleted.Error}");
        Assert.Contains(deleted.Out.Split('\n'), l => l.Contains("final_backup") && l.Contains("done"));
        Assert.Contains(deleted.Out.Split('\n'), l => l.Contains("home_directory") && l.Contains("done"));
        Assert.StartsWith($"deleted account {account.Id}", deleted.LastLine);
        var backup = Assert.Single((await app.Get<Opterius.Services.Backups.BackupStore>().ListAsync(new Opterius.Services.Accounts.Viewer(0, true), 1, 10, account.Id, default)).Items);
        Assert.True(File.Exists(Path.Join(app.BackupPath, backup.FileName)));

        var listed = await PanelAsync(environment, "backups", "list", "--account-id", $"{account.Id}");
        Assert.Equal(0, listed.ExitCode);
        Assert.Contains(listed.Out.Split('\n'), l => l.TrimStart().StartsWith($"{backup.Id} ") && l.Contains(account.Username) && l.Contains("kept until"));

        var purged = await PanelAsync(environment, "backups", "purge", "--id", $"{backup.Id}");
        Assert.Equal(0, purged.ExitCode);
        Assert.False(File.Exists(Path.Join(app.BackupPath, backup.FileName)));
        Assert.NotNull((await app.Get<Opterius.Services.Backups.BackupStore>().FindAsync(new Opterius.Services.Accounts.Viewer(0, true), backup.Id, default))!.PurgedAt);
        AssertRefused(await PanelAsync(environment, "backups", "purge", "--id", "0"), "--id must be a positive whole number");
    }

    [Fact]
    public async Task MigrateIsIdempotent()
    {
        var run = await PanelAsync("migrate");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("schema is up to date", run.Out);
    }

    [Fact]
    public async Task ATokenCreatedOnTheCommandLineWorksUntilItIsRevoked()
    {
        var name = $"cli-{Guid.NewGuid():N}"[..20];
        var created = await PanelAsync("tokens", "create", "--name", name, "--role", "admin", "--owner", app.Admin.Username, "--scopes", "accounts:read");
        Assert.Equal(0, created.ExitCode);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.LastLine);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/accounts")).StatusCode);

        var revoked = await PanelAsync("tokens", "revoke", "--name", name);

        Assert.Equal(0, revoked.ExitCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/accounts")).StatusCode);
    }

    [Fact]
    public async Task ATokenThatExpiredIsRefused()
    {
        var name = $"exp-{Guid.NewGuid():N}"[..20];
        var created = await PanelAsync("tokens", "create", "--name", name, "--role", "admin", "--owner", app.Admin.Username, "--expires-days", "1");
        Assert.Equal(0, created.ExitCode);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.LastLine);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/accounts")).StatusCode);

        // The JWT's own exp is still a day away: the stored expiry is what ends it.
        await using (var c = new MySqlConnection(app.Databases.Panel))
            await c.ExecuteAsync("UPDATE api_tokens SET expires_at = NOW() - INTERVAL 1 DAY WHERE name = @name", new { name });

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/accounts")).StatusCode);
    }

    [Theory]
    [InlineData("tokens", "create", "--name", "x")]                                  // no role
    [InlineData("tokens", "create", "--name", "x", "--role", "superuser")]           // bad role
    [InlineData("tokens", "create", "--name", "x", "--role", "reseller")]            // reseller without owner
    [InlineData("tokens", "create", "--name", "x", "--role", "admin", "--expires-days", "-4")]
    [InlineData("tokens", "revoke", "--name", "no-such-token")]
    [InlineData("users", "create", "--username", "u", "--password", "short", "--role", "admin")]
    [InlineData("users", "create", "--username")]
    [InlineData("tokens", "explode")]
    public async Task BadInputExitsWithTwoSaysWhyAndChangesNothing(params string[] args)
    {
        var before = await CountAsync();
        var run = await PanelAsync(args);
        Assert.Equal(2, run.ExitCode);
        Assert.StartsWith("error: ", run.Error);
        Assert.Equal(before, await CountAsync());
    }

    [Theory]
    [InlineData("tokns", "create", "--name", "x", "--role", "admin")]
    [InlineData("migrat")]
    [InlineData("license", "isue", "--signing-key", "k", "--out", "l")]
    [InlineData("token")]
    public async Task AMisspeltVerbExitsWithTwoAndTheUsageInsteadOfServing(params string[] args)
    {
        var before = await CountAsync();
        var run = await PanelAsync(args);
        AssertRefused(run, "unknown command");
        Assert.Equal(before, await CountAsync());
    }

    [Theory]
    [InlineData("tokens", "create", "--name", "typo1", "--role", "admin", "--owner", "ADMIN", "--scope", "accounts:read")]
    [InlineData("tokens", "create", "--name", "typo2", "--role", "admin", "--owner", "ADMIN", "--expires-day", "7")]
    [InlineData("tokens", "create", "--name", "typo3", "--role", "admin", "--owner", "ADMIN", "--name", "typo4")]
    [InlineData("tokens", "create", "--name", "--role", "admin")]
    [InlineData("tokens", "create", "--name", "typo5", "--role")]
    [InlineData("tokens", "revoke", "--name", "x", "--force", "yes")]
    [InlineData("users", "create", "--username", "typo6", "--password", "long-enough-1", "--role", "admin", "--admin", "yes")]
    [InlineData("migrate", "--force", "yes")]
    [InlineData("demo", "seed", "now")]
    public async Task AnUnknownRepeatedOrValuelessOptionIsRefusedAndNothingIsMade(params string[] args)
    {
        var before = await CountAsync();
        // With a real owner, so that nothing but the bad option can be the reason for the refusal.
        var run = await PanelAsync([.. args.Select(a => a == "ADMIN" ? app.Admin.Username : a)]);
        AssertRefused(run);
        Assert.Equal(before, await CountAsync());
    }

    [Fact]
    public async Task ALicenseWithAMisspeltLimitIsRefusedAndNoLicenseIsWritten()
    {
        var folder = Directory.CreateTempSubdirectory("opterius-cli-").FullName;
        try
        {
            var license = Path.Combine(folder, "license.json");
            var run = await PanelAsync("license", "issue", "--signing-key", Path.Combine(folder, "key.pem"), "--out", license, "--max-account", "5");
            AssertRefused(run, "--max-account");
            Assert.Empty(Directory.EnumerateFileSystemEntries(folder));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Theory]
    [InlineData("key-is-a-folder")]
    [InlineData("key-is-not-a-key")]
    [InlineData("out-under-a-file")]
    [InlineData("key-under-a-file")]
    public async Task ALicenseFileErrorIsOneClearLineWithExitTwo(string problem)
    {
        var folder = Directory.CreateTempSubdirectory("opterius-cli-").FullName;
        try
        {
            var key = Path.Combine(folder, "key.pem");
            var license = Path.Combine(folder, "license.json");
            var aFile = Path.Combine(folder, "plain-file");
            File.WriteAllText(aFile, "not a folder\n");
            switch (problem)
            {
                case "key-is-a-folder": Directory.CreateDirectory(key); break;
                case "key-is-not-a-key": File.WriteAllText(key, "not a PEM key\n"); break;
                case "out-under-a-file": license = Path.Combine(aFile, "license.json"); break;
                case "key-under-a-file": key = Path.Combine(aFile, "key.pem"); break;
            }

            var run = await PanelAsync("license", "issue", "--signing-key", key, "--out", license);

            AssertRefused(run);
            Assert.False(File.Exists(license));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Theory]
    [InlineData("ConnectionStrings__Panel", "Server=/nonexistent/mysqld.sock;Protocol=Unix;User ID=root;Connection Timeout=2")]
    [InlineData("Opterius__Jwt__SigningKey", "")]
    [InlineData("Opterius__Jwt__SigningKey", "too-short")]
    public async Task ABrokenConfigurationIsOneClearLineWithExitOneNotAStackTrace(string key, string value)
    {
        var before = await CountAsync();

        var run = await PanelAsync(new Dictionary<string, string> { [key] = value }, "tokens", "create", "--name", "cfg", "--role", "admin");

        Assert.True(run.ExitCode == 1, $"exit {run.ExitCode}; stderr: {run.Error}");
        Assert.StartsWith("error: ", run.Error);
        Assert.Single(run.Error.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", run.Error + run.Out);
        Assert.Equal(before, await CountAsync());
    }

    [Fact]
    public async Task AnAdminTokenWithoutOwnerBelongsToTheOnlyAdmin()
    {
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM panel_users WHERE role = 'admin'"));
        var name = $"own-{Guid.NewGuid():N}"[..20];

        var run = await PanelAsync("tokens", "create", "--name", name, "--role", "admin");

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal(app.Admin.Id, await app.Databases.PanelScalarAsync<long>("SELECT owner_id FROM api_tokens WHERE name = @name", new { name }));
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", run.LastLine);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/accounts")).StatusCode);
    }

    [Fact]
    public async Task WithSeveralAdminsAnAdminTokenWithoutOwnerAsksForOwnerAndMakesNothing()
    {
        var second = await app.Users.CreateAsync($"adm{Guid.NewGuid():N}"[..16], "second-admin-1", Opterius.Services.Users.Roles.Admin, default);
        try
        {
            var before = await CountAsync();
            var run = await PanelAsync("tokens", "create", "--name", "no-owner", "--role", "admin");
            AssertRefused(run, "--owner");
            Assert.Contains(second.Username, run.Error);
            Assert.Equal(before, await CountAsync());
        }
        finally
        {
            await using var c = new MySqlConnection(app.Databases.Panel);
            await c.ExecuteAsync("DELETE FROM panel_users WHERE id = @Id", new { second.Id });
        }
    }

    [Fact]
    public async Task DemoSeedRefusesAProductionRootAndMakesNothing()
    {
        var before = await CountAsync();
        var accounts = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");

        var run = await PanelAsync(new Dictionary<string, string> { ["Opterius__Root"] = "/" }, "demo", "seed");

        AssertRefused(run, "production root");
        Assert.Equal(before, await CountAsync());
        Assert.Equal(accounts, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
    }

    [Fact]
    public async Task HelpPrintsTheUsageOfEveryVerb()
    {
        var run = await PanelAsync("help");
        Assert.Equal(0, run.ExitCode);
        foreach (var verb in new[] { "migrate", "users create", "tokens create", "tokens revoke", "license issue", "demo seed",
                     "accounts schedule-deletion", "accounts cancel-deletion", "records key", "records verify" })
            Assert.Contains("  " + verb, run.Out);
    }

    /// <summary>What a CLI run needs to change accounts: the license and the sandbox's command set, as the server's config gives them.</summary>
    private Dictionary<string, string> Writer() => new()
    {
        ["OPTERIUS_CONFIG"] = PrivateServices.CommandsJson,
        ["Opterius__License__Path"] = app.LicensePath,
        ["Opterius__License__PublicKey"] = Opterius.Services.Licensing.LicenseIssuer.PublicKeyFileFor(app.SigningKeyPath),
        ["Opterius__Deletion__RecordSigningKey"] = app.RecordKeyPath,
    };

    [Fact]
    public async Task AccountsScheduleDeletionSuspendsAndSchedulesAndCancelDeletionKeepsTheAccount()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        const string dueSql = "SELECT CONCAT(status, ' ', deletion_backup, ' ', deletion_due_at IS NOT NULL, ' ', COALESCE(deletion_scheduled_by, '-')) FROM accounts WHERE id = @Id";

        var neither = await PanelAsync(Writer(), "accounts", "schedule-deletion", "--id", account.Id.ToString());
        var badAt = await PanelAsync(Writer(), "accounts", "schedule-deletion", "--id", account.Id.ToString(), "--at", "2030-01-01");
        var scheduled = await PanelAsync(Writer(), "accounts", "schedule-deletion", "--id", account.Id.ToString(), "--after-days", "3", "--backup");
        var state = await app.Databases.PanelScalarAsync<string>(dueSql, account);
        var cancelled = await PanelAsync(Writer(), "accounts", "cancel-deletion", "--id", account.Id.ToString());
        var again = await PanelAsync(Writer(), "accounts", "cancel-deletion", "--id", account.Id.ToString());

        AssertRefused(neither, "give after_days");
        AssertRefused(badAt, "--at must be an ISO 8601 time with its zone");
        Assert.True(scheduled.ExitCode == 0, scheduled.Error);
        Assert.Contains($"account '{account.Username}' (id {account.Id}) is suspended; its deletion is due at", scheduled.Out);
        Assert.EndsWith(", after a final backup", scheduled.Out.TrimEnd());
        Assert.Equal($"suspended 1 1 {Environment.UserName}", state);
        Assert.True(cancelled.ExitCode == 0, cancelled.Error);
        Assert.Contains("is cancelled; it stays suspended", cancelled.Out);
        Assert.Equal("suspended 0 0 -", await app.Databases.PanelScalarAsync<string>(dueSql, account));
        AssertRefused(again, "has no scheduled deletion");
    }

    [Fact]
    public async Task RecordsVerifyChecksAnErasureRecordOfflineAndRecordsKeyPrintsThePanelsKey()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var handle = await app.Get<Opterius.Services.Deletion.AccountDeletionService>().StartAsync(app.AdminActor(), account.Id, default);
        Assert.Equal("succeeded", (await handle.Completion).Status);
        var records = app.Get<Opterius.Services.Deletion.ErasureRecords>();
        var record = (await records.IssueAsync(new Opterius.Services.Accounts.Viewer(0, true), handle.Job.Id, default))!;
        var folder = Directory.CreateTempSubdirectory("opterius-cli-record-").FullName;
        try
        {
            var (file, changedFile, keyFile) = (Path.Combine(folder, "r.json"), Path.Combine(folder, "changed.json"), Path.Combine(folder, "key.pem"));
            await File.WriteAllBytesAsync(file, record);
            await File.WriteAllTextAsync(changedFile, System.Text.Encoding.UTF8.GetString(record).Replace(account.Domain, "x" + account.Domain[1..]));

            var key = await PanelAsync(Writer(), "records", "key");
            await File.WriteAllTextAsync(keyFile, key.Out);
            var verified = await PanelAsync("records", "verify", "--file", file, "--public-key", keyFile);
            var changed = await PanelAsync("records", "verify", "--file", changedFile, "--public-key", keyFile);

            Assert.Equal((0, records.PublicKeyPem), (key.ExitCode, key.Out));
            Assert.True(verified.ExitCode == 0, verified.Error);
            Assert.StartsWith($"verified: erasure record of deletion job {handle.Job.Id} ({account.Username}, {account.Domain})", verified.Out);
            Assert.Equal(1, changed.ExitCode);
            Assert.StartsWith($"error: {changedFile} does not verify with {keyFile}", changed.Error);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>What the CLI can change, row by row: tokens (revocation included), panel users, accounts.</summary>
    private async Task<string> CountAsync()
    {
        await using var c = new MySqlConnection(app.Databases.Panel);
        var rows = await c.QueryAsync<string>("""
            SELECT CONCAT_WS(' ', 'token', jti, name, role, owner_id, scopes, expires_at, COALESCE(revoked_at, '-')) FROM api_tokens
            UNION ALL SELECT CONCAT_WS(' ', 'user', id, username, role, password_hash) FROM panel_users
            UNION ALL SELECT CONCAT_WS(' ', 'account', id, username, status) FROM accounts
            ORDER BY 1
            """);
        return string.Join("\n", rows);
    }
}

[CollectionDefinition(nameof(CliTests), DisableParallelization = true)]
public sealed class CliTestsCollection;
