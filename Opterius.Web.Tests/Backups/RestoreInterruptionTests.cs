using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Resources;
using Opterius.Services.Tokens;
using Opterius.Web.Tests.Agent;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Backups.RestoreScenarios;

namespace Opterius.Web.Tests.Backups;

/// <summary>
/// A restore that does not run to its end alone: its panel crashes half-way, or a purge of its backup meets it. Each
/// restore is held at its zone for as long as the test needs (the test holds the gap lock where the zone's row goes),
/// after its user, home, mail, databases and database users are written.
/// </summary>
[Collection(nameof(ServingTests))]
public sealed class RestoreInterruptionTests(ServingApp app) : IClassFixture<ServingApp>
{
    [Fact]
    public async Task ARestoreInterruptedByAPanelCrashIsUndoneAtTheNextStartUpAndFailsSayingToRunItAgainWhichThenSucceeds()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var home = app.Get<ServerLayout>().Home(AccountIdentity.From(account));
        var backup = await DeleteWithBackupAsync(app, account);
        var nothing = await ServerOfAsync(app, account);
        var jobs = app.Get<RestoreJobStore>();

        RestoreJob crashed;
        await using (await HoldZoneAsync(account.Domain))
        {
            // A panel process of its own (the CLI's restore), killed while it waits at the zone: what a crash leaves.
            await using var panel = await BinaryProcess.StartAsync([], ["backups", "restore", "--id", backup.Id.ToString()], CliSettings(),
                $"{"dns_zone",-16} running");
            var jobId = await app.Databases.PanelScalarAsync<long>("SELECT MAX(id) FROM restore_jobs WHERE backup_id = @Id", new { backup.Id });
            crashed = (await UntilAsync(() => jobs.FindAsync(jobId, default), j => j!.Steps.Single(s => s.Resource == "home_directory").Status == StepStatus.Done))!;
            await panel.StopAsync();
        }
        Assert.Equal("running", (await jobs.FindAsync(crashed.Id, default))!.Status);
        Assert.True(Directory.Exists(home), "the crashed restore had written the home");

        await using (var restarted = app.WithWebHostBuilder(_ => { }))
        {
            _ = restarted.Services; // starts it: its start-up finishes what the crashed process left
            var finished = (await UntilAsync(() => jobs.FindAsync(crashed.Id, default), j => j!.Finished, seconds: 60))!;

            Assert.Equal("failed", finished.Status);
            Assert.Contains("the panel stopped while this restore ran", finished.Detail);
            Assert.Contains("run the restore again", finished.Detail);
            Assert.Equal(StepStatus.Done, finished.Steps.Single(s => s.Resource == "home_directory").Status);
            Assert.Equal(nothing, await ServerOfAsync(app, account));
            Assert.Equal("restore failed", await app.Databases.PanelScalarAsync<string>(
                "SELECT CONCAT(action, ' ', outcome) FROM audit_log WHERE action = 'restore' AND account_username = @Username ORDER BY id DESC LIMIT 1", new { account.Username }));
        }

        // The names are free again and the backup unchanged: the restore run again succeeds.
        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var again = await FinishedAsync(client, response.Headers.Location!.ToString());
        Assert.True(again.GetProperty("status").GetString() == "succeeded", again.ToString());
    }

    [Fact]
    public async Task AStartUpLeavesARestoreAnotherLivePanelProcessIsRunningToThatProcessWhichFinishesIt()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        var client = await app.ClientAsync();
        var jobs = app.Get<RestoreJobStore>();
        string location;
        int finishedByTheOther;
        await using (await HoldZoneAsync(account.Domain))
        {
            var restore = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
            Assert.Equal(HttpStatusCode.Accepted, restore.StatusCode);
            location = restore.Headers.Location!.ToString();
            var jobId = long.Parse(location.Split('/')[^1]);
            await UntilAsync(() => jobs.FindAsync(jobId, default), j => j!.Steps.Single(s => s.Resource == "dns_zone").Status == StepStatus.Running);

            // A second panel process starting now (an overlapping restart): the restore is this app's, alive.
            await using var other = app.WithWebHostBuilder(_ => { });
            finishedByTheOther = await other.Services.GetRequiredService<BackupRestoration>().FinishInterruptedAsync(default);
            Assert.Equal("running", (await jobs.FindAsync(jobId, default))!.Status);
        }
        var job = await FinishedAsync(client, location);

        Assert.Equal(0, finishedByTheOther);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
    }

    [Fact]
    public async Task PurgingABackupWhileItIsBeingRestoredIs409ForTheApiAndRetentionAndTheRestoreEndsWithTheArchiveKept()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        var client = await app.ClientAsync();
        HttpResponseMessage purge;
        int retention;
        string location;
        await using (await HoldZoneAsync(account.Domain))
        {
            var restore = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
            Assert.Equal(HttpStatusCode.Accepted, restore.StatusCode);
            location = restore.Headers.Location!.ToString();
            var jobId = long.Parse(location.Split('/')[^1]);
            await UntilAsync(() => app.Get<RestoreJobStore>().FindAsync(jobId, default), j => j!.Steps.Single(s => s.Resource == "dns_zone").Status == StepStatus.Running);

            purge = await client.DeleteAsync($"/api/v1/backups/{backup.Id}");
            await app.Databases.PanelScalarAsync<object?>("UPDATE backups SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id = @Id", new { backup.Id });
            retention = await app.Get<FinalBackups>().PurgeExpiredAsync(default);
        }
        var job = await FinishedAsync(client, location);
        await app.Databases.PanelScalarAsync<object?>("UPDATE backups SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 1 DAY WHERE id = @Id", new { backup.Id });

        Assert.Equal(HttpStatusCode.Conflict, purge.StatusCode);
        var error = await purge.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("conflict", error.GetProperty("error").GetString());
        Assert.Contains($"Backup {backup.Id} is being restored (restore job {job.GetProperty("id").GetInt64()})", error.GetProperty("message").GetString());
        Assert.Equal(0, retention);
        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
        Assert.True(File.Exists(Path.Join(app.BackupPath, backup.FileName)), "the archive of a backup being restored was purged");
        Assert.Null((await app.Get<BackupStore>().FindAsync(new Viewer(0, true), backup.Id, default))!.PurgedAt);
    }

    [Fact]
    public async Task RestoringABackupWhileItIsBeingPurgedIs409ChangingNothingAndOnceThePurgeEndsIs404()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        var nothing = await ServerOfAsync(app, account);
        var client = await app.ClientAsync();
        Task<HttpResponseMessage> purging;
        HttpResponseMessage restore;
        // The purge waits to mark its row purged (the test holds the row) once its archive is gone.
        await using (await HoldAsync(app.Databases.Panel, "SELECT id FROM backups WHERE id = @Id FOR UPDATE", new { backup.Id }))
        {
            purging = client.DeleteAsync($"/api/v1/backups/{backup.Id}");
            await UntilAsync(() => Task.FromResult(File.Exists(Path.Join(app.BackupPath, backup.FileName))), exists => !exists);
            restore = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await purging).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, restore.StatusCode);
        var error = await restore.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("conflict", error.GetProperty("error").GetString());
        Assert.Contains($"Backup {backup.Id} is being purged", error.GetProperty("message").GetString());
        Assert.Equal(0, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM restore_jobs WHERE backup_id = @Id", new { backup.Id }));
        Assert.Equal(nothing, await ServerOfAsync(app, account));
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null)).StatusCode);
    }

    [Fact]
    public async Task ABackupsLockIsFreedWithItsOwnConnectionWhichIsClosedNeverKeptInAPool()
    {
        var locks = app.Get<BackupLocks>();
        var name = locks.NameOf(long.MaxValue);
        Assert.True(name.Length <= 64, $"'{name}' is longer than the 64 characters of a named lock");
        long holder;
        await using (var held = await locks.TryTakeAsync(long.MaxValue, TimeSpan.Zero, default))
        {
            Assert.NotNull(held);
            holder = await app.Databases.PanelScalarAsync<long>("SELECT IS_USED_LOCK(@name)", new { name });
            Assert.True(await held.IsHeldAsync(default));
        }

        Assert.Null(await app.Databases.PanelScalarAsync<long?>("SELECT IS_USED_LOCK(@name)", new { name }));
        Assert.Equal(0, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = @holder", new { holder }));
    }

    [Fact]
    public async Task ARestoreWhoseJobCannotBeOpenedReleasesItsReservationSoTheNamesAreFreeAndTheRestoreRunAgainSucceeds()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        var nothing = await ServerOfAsync(app, account);
        await app.Databases.PanelScalarAsync<object?>(
            "CREATE TRIGGER refuse_restore_jobs BEFORE INSERT ON restore_jobs FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'restore_jobs refused by the test'");
        try
        {
            var e = await Assert.ThrowsAsync<MySqlException>(() => app.Get<BackupRestoration>().StartAsync(app.AdminActor(), backup.Id, default));
            Assert.Contains("refused by the test", e.Message);
        }
        finally { await app.Databases.PanelScalarAsync<object?>("DROP TRIGGER refuse_restore_jobs"); }

        Assert.Equal(0, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE username = @Username OR domain = @Domain", new { account.Username, account.Domain }));
        Assert.Equal(nothing, await ServerOfAsync(app, account));
        Assert.Null(await app.Databases.PanelScalarAsync<long?>("SELECT IS_USED_LOCK(@name)", new { name = app.Get<BackupLocks>().NameOf(backup.Id) }));
        var client = await app.ClientAsync();
        var response = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var again = await FinishedAsync(client, response.Headers.Location!.ToString());
        Assert.True(again.GetProperty("status").GetString() == "succeeded", again.ToString());
    }

    [Fact]
    public async Task ARestoreWhoseLockWasLostMidWayFailsSayingSoAndUndoesWhatItMade()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix(6));
        var backup = await DeleteWithBackupAsync(app, account);
        var nothing = await ServerOfAsync(app, account);
        var client = await app.ClientAsync();
        string location;
        await using (await HoldZoneAsync(account.Domain))
        {
            var restore = await client.PostAsync($"/api/v1/backups/{backup.Id}/restore", null);
            Assert.Equal(HttpStatusCode.Accepted, restore.StatusCode);
            location = restore.Headers.Location!.ToString();
            var jobId = long.Parse(location.Split('/')[^1]);
            await UntilAsync(() => app.Get<RestoreJobStore>().FindAsync(jobId, default), j => j!.Steps.Single(s => s.Resource == "dns_zone").Status == StepStatus.Running);

            // What a restart of MariaDB, or its wait_timeout, does to the lock's idle connection.
            var holder = await app.Databases.PanelScalarAsync<long?>("SELECT IS_USED_LOCK(@name)", new { name = app.Get<BackupLocks>().NameOf(backup.Id) })
                ?? throw new InvalidOperationException($"backup {backup.Id}'s lock is not held while it is restored");
            await app.Databases.PanelScalarAsync<object?>($"KILL CONNECTION {holder}");
        }
        var job = await FinishedAsync(client, location);

        Assert.True(job.GetProperty("status").GetString() == "failed", job.ToString());
        Assert.Contains($"the lock on backup {backup.Id} was lost while it was restored", job.GetProperty("detail").GetString());
        Assert.Contains("what this restore had made was removed again", job.GetProperty("detail").GetString());
        Assert.Equal(nothing, await ServerOfAsync(app, account));
        Assert.Equal(0, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE username = @Username", new { account.Username }));
    }

    /// <summary>The gap lock where the zone's domains row goes: a restore's insert of it waits until this is disposed.</summary>
    private Task<IAsyncDisposable> HoldZoneAsync(string domain) =>
        HoldAsync(app.Databases.PowerDns, "SELECT id FROM domains WHERE name = @domain FOR UPDATE", new { domain });

    private static async Task<IAsyncDisposable> HoldAsync(string connectionString, string sql, object args)
    {
        var c = new MySqlConnection(connectionString);
        await c.OpenAsync();
        var tx = await c.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        await c.ExecuteAsync(sql, args, tx);
        return new Held(c, tx);
    }

    private sealed class Held(MySqlConnection c, MySqlTransaction tx) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await tx.RollbackAsync();
            await c.DisposeAsync();
        }
    }

    private static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, int seconds = 90)
    {
        var value = await read();
        for (var deadline = DateTime.UtcNow.AddSeconds(seconds); !done(value); value = await read())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"still {JsonSerializer.Serialize(value)} after {seconds} s");
            await Task.Delay(100);
        }
        return value;
    }

    /// <summary>The panel's configuration for a process of its own on this app's databases, root and backups (the CLI).</summary>
    private Dictionary<string, string?> CliSettings() => new()
    {
        ["OPTERIUS_CONFIG"] = PrivateServices.CommandsJson,
        ["ConnectionStrings:Panel"] = app.Databases.Panel,
        ["ConnectionStrings:PowerDns"] = app.Databases.PowerDns,
        ["ConnectionStrings:MariaDbAdmin"] = app.Databases.Admin,
        ["Opterius:Jwt:SigningKey"] = JwtOptions.NewSigningKey(),
        ["Opterius:Root"] = PrivateServices.SandboxRoot,
        ["Opterius:Https:Port"] = "0",
        ["Opterius:License:Path"] = app.LicensePath,
        ["Opterius:License:PublicKey"] = Opterius.Services.Licensing.LicenseIssuer.PublicKeyFileFor(app.SigningKeyPath),
        ["Opterius:Deletion:BackupPath"] = app.BackupPath,
        ["Opterius:Deletion:RecordSigningKey"] = app.RecordKeyPath,
    };
}
