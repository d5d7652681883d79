using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using MySqlConnector;
using Opterius.Services.Deletion;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// Final backups, restores and scheduled deletions through the unprivileged panel's API: the agent (root) writes and
/// reads the archives, the panel (its unit's user) holds only rows, and its own scheduler and record key do the rest.
/// </summary>
public sealed partial class UnprivilegedPanelTests
{
    [Fact]
    public async Task AnAccountDeletedWithAFinalBackupThroughTheUnprivilegedPanelIsKeptRootOnlyAndRestoresServedWithItsFilesIdentical()
    {
        var client = Client();
        var made = await client.CreateOverApiAsync();
        Assert.Contains($"<h1>{made.Domain}</h1>", (await DaemonKit.GetUntilAsync(made.Domain, HttpStatusCode.OK)).Body);
        var home = ApiKit.HomeOf(made.Username);
        var upload = Path.Join(home, "public_html", "upload.bin");
        File.WriteAllBytes(upload, RandomNumberGenerator.GetBytes(256 * 1024));
        var uid = ApiLifecycle.PasswdUid(made.Username)!.Value;
        DaemonKit.Run("chown", $"{uid}:{uid}", upload);
        var checksum = Sha256Of(upload);

        var deleted = await client.DeleteAsync($"/api/v1/accounts/{made.Id}?backup=true");

        Assert.True(deleted.StatusCode == HttpStatusCode.NoContent, await deleted.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync(made.Domain, HttpStatusCode.NotFound)).Status);
        Assert.False(Directory.Exists(home));
        var listed = (await (await client.GetAsync($"/api/v1/backups?account_id={made.Id}")).JsonOf()).GetProperty("data");
        var backup = Assert.Single(listed.EnumerateArray());
        Assert.Equal("available", backup.GetProperty("status").GetString());
        var backupId = backup.GetProperty("id").GetInt64();
        // Where the agent.json the agent runs with says; the panel's user can neither read the archive nor enter its folder.
        var folder = (string)JsonNode.Parse(File.ReadAllText(split.Under("/etc/opterius/agent.json")))!["Opterius"]!["Deletion"]!["BackupPath"]!;
        var archive = Path.Join(folder, backup.GetProperty("file_name").GetString());
        Assert.Equal("600 root", DaemonKit.Run("stat", "-c", "%a %U", archive).Trim());
        Assert.Equal("700 root", DaemonKit.Run("stat", "-c", "%a %U", folder).Trim());
        var read = await WithCredentialsOf(split.Panel.Pid, "head", "-c", "1", archive);
        Assert.NotEqual(0, read.ExitCode);
        Assert.Contains("Permission denied", read.Output);

        var restore = await client.PostAsync($"/api/v1/backups/{backupId}/restore", null);

        Assert.True(restore.StatusCode == HttpStatusCode.Accepted, await restore.Content.ReadAsStringAsync());
        var job = await FinishedAsync(client, restore.Headers.Location!.ToString(), "running");
        Assert.True(job.GetProperty("status").GetString() == "succeeded", job.ToString());
        Assert.Contains($"<h1>{made.Domain}</h1>", (await DaemonKit.GetUntilAsync(made.Domain, HttpStatusCode.OK)).Body);
        Assert.Equal(checksum, Sha256Of(upload));

        // Nothing of it is left for the run's next tests: the restored account and the archive go.
        var restored = job.GetProperty("account_id").GetInt64();
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/accounts/{restored}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/backups/{backupId}")).StatusCode);
        Assert.False(File.Exists(archive));
    }

    [Fact]
    public async Task ADeletionScheduledThroughTheUnprivilegedPanelForAMomentAgoIsRunByItsSchedulerAndItsRecordVerifiesWithThePanelsKey()
    {
        var client = Client();
        var made = await client.CreateOverApiAsync();
        var token = (await (await client.GetAsync("/api/v1/whoami")).JsonOf()).GetProperty("data").GetProperty("name").GetString();
        var before = DateTime.UtcNow;
        var at = DateTimeOffset.UtcNow.AddSeconds(-20).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

        var scheduled = await client.PostAsync($"/api/v1/accounts/{made.Id}/schedule-deletion", ApiKit.Json($$"""{"at": "{{at}}"}"""));

        var after = DateTime.UtcNow;
        Assert.True(scheduled.StatusCode == HttpStatusCode.Accepted, await scheduled.Content.ReadAsStringAsync());
        Assert.Equal("suspended", (await scheduled.JsonOf()).GetProperty("data").GetProperty("status").GetString());
        // Nothing here starts it: the panel's own scheduler does, at its next pass (SchedulerSeconds, 60 by default).
        await FinishedAsync(client, $"/api/v1/accounts/{made.Id}", null, seconds: 180);
        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync(made.Domain, HttpStatusCode.NotFound)).Status);
        Assert.Null(ApiLifecycle.PasswdUid(made.Username));

        long jobId;
        await using (var db = new MySqlConnection(split.PanelDatabase))
        {
            var audit = (await db.QueryAsync<(string Actor, string Kind, string? Ip, string Outcome)>("""
                SELECT actor, actor_kind, source_ip, outcome FROM audit_log
                WHERE account_id = @Id AND action = 'schedule_deletion' ORDER BY id
                """, made)).ToList();
            Assert.Equal([(token!, "token", "127.0.0.1", "scheduled"), ("scheduler", "system", null, "started")], audit);
            jobId = await db.ExecuteScalarAsync<long>("SELECT id FROM deletion_jobs WHERE account_id = @Id AND requested_by = 'scheduler'", made);
        }
        var record = await client.GetAsync($"/api/v1/deletions/{jobId}/record");
        Assert.True(record.StatusCode == HttpStatusCode.OK, await record.Content.ReadAsStringAsync());
        var key = await client.GetStringAsync("/api/v1/deletions/record-key");
        var verified = ErasureRecords.Verify(await record.Content.ReadAsByteArrayAsync(), key);
        Assert.Equal((made.Id, made.Username), (verified.Account.Id, verified.Account.Username));
        Assert.Equal(("scheduler", "system"), (verified.Requester?.Actor, verified.Requester?.Kind));
        Assert.Equal((token, "token", "127.0.0.1"), (verified.ScheduledBy?.Actor, verified.ScheduledBy?.Kind, verified.ScheduledBy?.SourceIp));
        Assert.InRange(verified.ScheduledBy!.At, before.AddSeconds(-1), after.AddSeconds(1));
        Assert.True(verified.Verification?.Passed, "the verification after the last step found something left");
    }

    /// <summary>
    /// Polls <paramref name="location"/> until its <c>status</c> is no longer <paramref name="whileStatus"/> (the body's
    /// data), or, with null, until it answers 404 (an account that is gone); fails after <paramref name="seconds"/>.
    /// </summary>
    private static async Task<JsonElement> FinishedAsync(HttpClient client, string location, string? whileStatus, int seconds = 120)
    {
        string last = "";
        for (var deadline = DateTime.UtcNow.AddSeconds(seconds); DateTime.UtcNow < deadline; await Task.Delay(250))
        {
            var response = await client.GetAsync(location);
            if (whileStatus is null && response.StatusCode == HttpStatusCode.NotFound) return default;
            var data = (await response.JsonOf()).GetProperty("data");
            last = data.ToString();
            if (whileStatus is not null && data.GetProperty("status").GetString() != whileStatus) return data;
        }
        throw new TimeoutException($"{location} was still {(whileStatus ?? "there")} after {seconds} s: {last}");
    }

    private static string Sha256Of(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
