using System.Net;
using System.Net.Http.Json;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Tokens;
using static Opterius.Web.Tests.Deletion.DeletionTesting;

namespace Opterius.Web.Tests.Deletion;

/// <summary>
/// The panel for scheduled deletions: its scheduler looks only at start-up and then once an hour, so a test decides
/// when a pass runs (a new panel process starting, or <see cref="ScheduledDeletions.RunDueAsync"/>), never a clock.
/// </summary>
public sealed class ScheduleApp : ApiApp
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureAppConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?> { [$"{DeletionOptions.Section}:SchedulerSeconds"] = "3600" }));
    }

    /// <summary>Another panel process on the same databases and server: its own services, lease holder and scheduler.</summary>
    public WebApplicationFactory<Program> Twin() => WithWebHostBuilder(_ => { });
}

/// <summary>Scheduled termination: suspend now, delete when due (once, across processes), cancel or unsuspend keeps it.</summary>
public sealed class ScheduledDeletionTests(ScheduleApp app) : IClassFixture<ScheduleApp>
{
    private static string Url(long id, string verb) => $"/api/v1/accounts/{id}/{verb}";

    private static StringContent Body(string json) => ApiKit.Json(json);

    private Task SetDueInThePastAsync(long id) =>
        app.Databases.PanelScalarAsync<object?>("UPDATE accounts SET deletion_due_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE id = @id", new { id });

    private Task<long> AuditRowsAsync(long id, string action, string outcome, string? actor = null) =>
        app.Databases.PanelScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_log WHERE account_id = @id AND action = @action AND outcome = @outcome AND (@actor IS NULL OR actor = @actor)",
            new { id, action, outcome, actor });

    private Task<string> SchedulerOfAsync(long id) =>
        app.Databases.PanelScalarAsync<string>(
            "SELECT actor FROM audit_log WHERE account_id = @id AND action = 'schedule_deletion' AND outcome = 'scheduled'", new { id });

    private Task<long> JobsOfAsync(long id) =>
        app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM deletion_jobs WHERE account_id = @id", new { id });

    private async Task WaitUntilGoneAsync(long id) =>
        await WaitForAsync(async () => await app.StatusOf(id) is null && await JobsOfAsync(id) == 1
            && (await app.Get<DeletionJobStore>().LatestForAccountAsync(id, default))!.Finished);

    [Fact]
    public async Task SchedulingSuspendsTheAccountNowAndEveryReadShowsWhenItWillBeDeleted()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var before = DateTime.UtcNow;

        var response = await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 7}"""));

        var after = DateTime.UtcNow;
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var data = (await response.JsonOf()).GetProperty("data");
        Assert.Equal(made.Id, data.GetProperty("id").GetInt64());
        Assert.Equal("suspended", data.GetProperty("status").GetString());
        var due = data.GetProperty("deletion_due_at").GetDateTime();
        Assert.Equal(DateTimeKind.Utc, due.Kind);
        Assert.InRange(due, before.AddDays(7).AddSeconds(-1), after.AddDays(7).AddSeconds(1));
        Assert.Equal("suspended", await app.StatusOf(made.Id));
        Assert.True(File.Exists(ApiKit.VhostOf(made.Domain)), "the vhost stays until the deletion runs");

        var one = (await (await client.GetAsync($"/api/v1/accounts/{made.Id}")).JsonOf()).GetProperty("data");
        Assert.Equal(due, one.GetProperty("deletion_due_at").GetDateTime());
        var list = (await (await client.GetAsync($"/api/v1/accounts?search={made.Username}")).JsonOf()).GetProperty("data");
        Assert.Equal(due, Assert.Single(list.EnumerateArray()).GetProperty("deletion_due_at").GetDateTime());

        Assert.Equal(1, await AuditRowsAsync(made.Id, "suspend", "suspended"));
        var row = await app.Databases.PanelScalarAsync<string>(
            "SELECT CONCAT(actor_kind, ' ', source_ip, ' ', detail) FROM audit_log WHERE account_id = @Id AND action = 'schedule_deletion' AND outcome = 'scheduled'", made);
        Assert.StartsWith($"token {ApiApp.ClientIp} deletion due at {due:yyyy-MM-dd HH:mm:ss} UTC (final backup: no)", row);
    }

    [Fact]
    public async Task ADeletionThatFellDueWhileThePanelWasDownRunsWhenThePanelStarts()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 3}"""))).StatusCode);
        var account = (await app.Get<Opterius.Services.Accounts.AccountStore>().FindAsync(new(0, true), made.Id, default))!;
        await SetDueInThePastAsync(made.Id);

        await using var restarted = app.Twin();
        _ = restarted.Services; // starts it: its scheduler's first look is at start-up

        await WaitUntilGoneAsync(made.Id);
        var job = (await app.Get<DeletionJobStore>().LatestForAccountAsync(made.Id, default))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal("scheduler", job.RequestedBy);
        Assert.All(job.Steps, s => Assert.True(s.Status is StepStatus.Done or StepStatus.Skipped, $"{s.Resource} is {s.Status}"));
        Assert.All((await app.InspectAllAsync(account)).Values, i => Assert.False(i.Exists, $"{i.Resource} is still there"));
        Assert.Equal(1, await AuditRowsAsync(made.Id, "delete", "started", "scheduler"));
        Assert.Equal(1, await AuditRowsAsync(made.Id, "schedule_deletion", "started", "scheduler"));

        // Its erasure record names both: the scheduler ran it, the token scheduled it.
        var record = ErasureRecords.Verify((await app.Get<ErasureRecords>().IssueAsync(new(0, true), job.Id, default))!, app.Get<ErasureRecords>().PublicKeyPem);
        Assert.Equal(("scheduler", "system"), (record.Requester?.Actor, record.Requester?.Kind));
        var scheduledBy = await app.Databases.PanelScalarAsync<string>(
            "SELECT actor FROM audit_log WHERE account_id = @Id AND action = 'schedule_deletion' AND outcome = 'scheduled'", made);
        Assert.Equal((scheduledBy, "token", ApiApp.ClientIp), (record.ScheduledBy?.Actor, record.ScheduledBy?.Kind, record.ScheduledBy?.SourceIp));
    }

    [Fact]
    public async Task ACancelledDeletionNeverRunsAndTheAccountStaysSuspended()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 0}"""))).StatusCode);

        var cancelled = await client.PostAsync(Url(made.Id, "cancel-deletion"), null);

        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        var data = (await cancelled.JsonOf()).GetProperty("data");
        Assert.Equal("suspended", data.GetProperty("status").GetString());
        Assert.False(data.TryGetProperty("deletion_due_at", out _));
        var snapshot = await app.SnapshotAsync(made.Id);

        Assert.Empty(await app.Get<ScheduledDeletions>().RunDueAsync(default));
        await using (var restarted = app.Twin())
        {
            _ = restarted.Services;
            Assert.Empty(await restarted.Services.GetRequiredService<ScheduledDeletions>().RunDueAsync(default));
        }

        Assert.Equal(snapshot, await app.SnapshotAsync(made.Id));
        Assert.Equal(0, await JobsOfAsync(made.Id));
        Assert.Equal(1, await AuditRowsAsync(made.Id, "cancel_deletion", "cancelled", await SchedulerOfAsync(made.Id)));
        var again = await client.PostAsync(Url(made.Id, "cancel-deletion"), null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("has no scheduled deletion", (await again.JsonOf()).GetProperty("message").GetString());
    }

    [Fact]
    public async Task UnsuspendingAScheduledAccountCancelsItsDeletion()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 0}"""))).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, "unsuspend"), null)).StatusCode);

        Assert.Empty(await app.Get<ScheduledDeletions>().RunDueAsync(default));
        Assert.Equal("active", await app.StatusOf(made.Id));
        Assert.Null(await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made));
        Assert.Equal(0, await JobsOfAsync(made.Id));
        Assert.Equal(1, await AuditRowsAsync(made.Id, "cancel_deletion", "cancelled", await SchedulerOfAsync(made.Id)));
    }

    [Fact]
    public async Task UnsuspendingWhileTheSchedulerHasClaimedItIsRefusedAndTheScheduleStays()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 0}"""))).StatusCode);
        await app.Databases.PanelScalarAsync<object?>("""
            UPDATE accounts SET deletion_claimed_by = 'a starting panel/1', deletion_claimed_until = UTC_TIMESTAMP(6) + INTERVAL 1 MINUTE WHERE id = @Id
            """, made);
        var snapshot = await app.SnapshotAsync(made.Id);
        var due = await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made);

        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsync(Url(made.Id, "unsuspend"), null)).StatusCode);

        Assert.Equal("suspended", await app.StatusOf(made.Id));
        Assert.Equal(snapshot, await app.SnapshotAsync(made.Id));
        Assert.Equal(due, await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made));
        Assert.Equal(0, await JobsOfAsync(made.Id));
        await app.Databases.PanelScalarAsync<object?>("UPDATE accounts SET deletion_claimed_by = NULL, deletion_claimed_until = NULL WHERE id = @Id", made);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, "cancel-deletion"), null)).StatusCode);
    }

    [Fact]
    public async Task ADeadProcesssClaimIsTakenOverOnceItExpiresAndTheDeletionRunsOnce()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1}"""))).StatusCode);
        await SetDueInThePastAsync(made.Id);
        await app.Databases.PanelScalarAsync<object?>("""
            UPDATE accounts SET deletion_claimed_by = 'a dead panel/1', deletion_claimed_until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = @Id
            """, made);

        Assert.Single(await app.Get<ScheduledDeletions>().RunDueAsync(default));

        await WaitUntilGoneAsync(made.Id);
        Assert.Equal(JobStatus.Succeeded, (await app.Get<DeletionJobStore>().LatestForAccountAsync(made.Id, default))!.Status);
        Assert.Equal(1, await AuditRowsAsync(made.Id, "schedule_deletion", "started", "scheduler"));
    }

    [Theory]
    [InlineData("unsuspend", "active")]
    [InlineData("cancel-deletion", "suspended")]
    public async Task AScheduleWithdrawnAfterTheSchedulersClaimExpiredIsNeverDeletedByThatScheduler(string verb, string stays)
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 0}"""))).StatusCode);
        // A scheduler claimed it and then stalled past its claim's expiry before opening the job.
        const string claim = "a stalled panel/1";
        await app.Databases.PanelScalarAsync<object?>("""
            UPDATE accounts SET deletion_claimed_by = @claim, deletion_claimed_until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = @Id
            """, new { claim, made.Id });
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, verb), null)).StatusCode);
        var snapshot = await app.SnapshotAsync(made.Id);

        await Assert.ThrowsAsync<ScheduleWithdrawnException>(() =>
            app.Get<AccountDeletionService>().StartAsync(ScheduledDeletions.Scheduler, made.Id, null, default, claim));

        Assert.Equal(stays, await app.StatusOf(made.Id));
        Assert.Equal(0, await JobsOfAsync(made.Id));
        Assert.Equal(snapshot, await app.SnapshotAsync(made.Id));
    }

    [Fact]
    public async Task CancellingWhileTheSchedulerHasClaimedItButNotYetStartedSaysRetryInAFewSecondsAndChangesNothing()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 0}"""))).StatusCode);
        await app.Databases.PanelScalarAsync<object?>("""
            UPDATE accounts SET deletion_claimed_by = 'a starting panel/1', deletion_claimed_until = UTC_TIMESTAMP(6) + INTERVAL 1 MINUTE WHERE id = @Id
            """, made);
        var snapshot = await app.SnapshotAsync(made.Id);
        var due = await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made);

        var refused = await client.PostAsync(Url(made.Id, "cancel-deletion"), null);

        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        var message = (await refused.JsonOf()).GetProperty("message").GetString();
        Assert.Contains("being started, retry in a few seconds", message);
        Assert.DoesNotContain("already started", message);
        Assert.Equal(snapshot, await app.SnapshotAsync(made.Id));
        Assert.Equal(due, await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made));
        Assert.Equal(1, await AuditRowsAsync(made.Id, "cancel_deletion", "refused"));
        await app.Databases.PanelScalarAsync<object?>("UPDATE accounts SET deletion_claimed_by = NULL, deletion_claimed_until = NULL WHERE id = @Id", made);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, "cancel-deletion"), null)).StatusCode);
    }

    [Fact]
    public async Task AManualDeletionOfAScheduledAccountClearsItsScheduleWhenItsJobOpens()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 3}"""))).StatusCode);
        var account = (await app.Get<Opterius.Services.Accounts.AccountStore>().FindAsync(new(0, true), made.Id, default))!;

        // Opened and then the process died: nothing runs it, the account row stays.
        Assert.NotNull(await app.Get<DeletionJobStore>().OpenAsync(account, "a manual delete", default));

        Assert.Equal("deleting", await app.StatusOf(made.Id));
        Assert.Equal((0L, 0L), (
            await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE id = @Id AND deletion_due_at IS NOT NULL", made),
            await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts WHERE id = @Id AND deletion_scheduled_by IS NOT NULL", made)));
        await (await app.Get<AccountDeletionService>().StartAsync(Opterius.Services.Audit.Actor.Cli(), made.Id, default)).Completion;
        await WaitUntilGoneAsync(made.Id);
    }

    [Fact]
    public async Task TwoPanelProcessesRunABurstOfDueDeletionsEachExactlyOnce()
    {
        var client = await app.ClientAsync();
        var burst = new List<ApiKit.Made>();
        for (var i = 0; i < 3; i++)
        {
            var made = await client.CreateOverApiAsync();
            Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 2}"""))).StatusCode);
            await SetDueInThePastAsync(made.Id);
            burst.Add(made);
        }

        await using var first = app.Twin();
        await using var second = app.Twin();
        // Both start at the same moment (each scheduler's start-up look), and each also looks once more on its own.
        await Task.WhenAll(
            Task.Run(() => first.Services.GetRequiredService<ScheduledDeletions>().RunDueAsync(default)),
            Task.Run(() => second.Services.GetRequiredService<ScheduledDeletions>().RunDueAsync(default)));

        foreach (var made in burst)
        {
            await WaitUntilGoneAsync(made.Id);
            Assert.Equal(JobStatus.Succeeded, (await app.Get<DeletionJobStore>().LatestForAccountAsync(made.Id, default))!.Status);
            Assert.Equal(1, await AuditRowsAsync(made.Id, "schedule_deletion", "started", "scheduler"));
            Assert.Equal(1, await AuditRowsAsync(made.Id, "delete", "started", "scheduler"));
            Assert.Equal(0, await app.Databases.PanelScalarAsync<long>(
                "SELECT COUNT(*) FROM audit_log WHERE account_id = @Id AND action = 'delete' AND detail LIKE 'joined%'", made));
        }
    }

    [Fact]
    public async Task ABurstOfDueDeletionsRunsNoMoreThanTheCapAtOnceTheRestWaitingForTheNextPassAndEveryOneFinishes()
    {
        const int burst = 5, cap = 2;
        var client = await app.ClientAsync();
        var due = new List<ApiKit.Made>();
        for (var i = 0; i < burst; i++)
        {
            var made = await client.CreateOverApiAsync();
            Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1}"""))).StatusCode);
            await SetDueInThePastAsync(made.Id);
            due.Add(made);
        }
        await using var capped = app.WithWebHostBuilder(b => b.UseSetting($"{DeletionOptions.Section}:SchedulerMaxInFlight", cap.ToString()));
        var scheduler = capped.Services.GetRequiredService<ScheduledDeletions>(); // its start-up pass is one of the passes

        // Passes as the timer makes them, until every account is gone.
        var ids = due.Select(m => m.Id).ToArray();
        for (var deadline = DateTime.UtcNow.AddMinutes(3); await app.Databases.PanelScalarAsync<long>(
                 "SELECT COUNT(*) FROM accounts WHERE id IN @ids", new { ids }) > 0; await Task.Delay(100))
        {
            Assert.True(DateTime.UtcNow < deadline, "the burst did not finish within 3 minutes");
            Assert.InRange((await scheduler.RunDueAsync(default)).Count, 0, cap);
        }

        // The journal's times say how many ran at once: a job started only once another had finished.
        await using var db = new MySqlConnection(app.Databases.Panel);
        var jobs = (await db.QueryAsync<(DateTime Created, DateTime? Finished, string Status)>(
            "SELECT created_at, finished_at, status FROM deletion_jobs WHERE account_id IN @ids", new { ids })).ToList();
        Assert.Equal(burst, jobs.Count);
        Assert.All(jobs, j => Assert.Equal(JobStatus.Succeeded, j.Status));
        var atOnce = jobs.SelectMany(j => new[] { (At: j.Created, Change: 1), (At: j.Finished!.Value, Change: -1) })
            .OrderBy(e => e.At).ThenBy(e => e.Change).Aggregate((Now: 0, Most: 0), (r, e) => (r.Now + e.Change, Math.Max(r.Most, r.Now + e.Change))).Most;
        Assert.InRange(atOnce, 1, cap);
    }

    [Theory]
    [InlineData("blocked")]
    [InlineData("started")]
    public async Task WithACapOfOneAStartWhoseAuditWriteFailsGivesItsSlotBackAndTheNextDueAccountStillRuns(string failing)
    {
        var client = await app.ClientAsync();
        var first = await client.CreateOverApiAsync();
        var next = await client.CreateOverApiAsync();
        foreach (var (made, hours) in new[] { (first, 2), (next, 1) })
        {
            Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1}"""))).StatusCode);
            await app.Databases.PanelScalarAsync<object?>(
                "UPDATE accounts SET deletion_due_at = UTC_TIMESTAMP(6) - INTERVAL @hours HOUR WHERE id = @Id", new { made.Id, hours });
        }
        // A real failure of the database after the start was handled: the first account's blocked or started audit row.
        var trigger = $"fail_audit_{first.Id}";
        await app.Databases.PanelScalarAsync<object?>($"""
            CREATE TRIGGER {trigger} BEFORE INSERT ON audit_log FOR EACH ROW
            IF NEW.account_id = {first.Id} AND NEW.action = 'schedule_deletion' AND NEW.outcome = '{failing}' THEN
              SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit write failed';
            END IF
            """);
        try
        {
            if (failing == "blocked") new LicenseIssuer(new ShiftedClock(TimeSpan.FromDays(-2))).Issue(app.SigningKeyPath, app.LicensePath, "test", null, 1);
            await using var capped = app.WithWebHostBuilder(b => b.UseSetting($"{DeletionOptions.Section}:SchedulerMaxInFlight", "1"));
            var scheduler = capped.Services.GetRequiredService<ScheduledDeletions>(); // its start-up pass is one of the passes
            async Task PassAsync()
            {
                try { await scheduler.RunDueAsync(default); }
                catch (MySqlException e) when (e.Message.Contains("audit write failed")) { } // the pass says so; its slot must not go with it
            }
            await PassAsync();
            Assert.Equal(1, await app.Databases.PanelScalarAsync<long>(
                "SELECT COUNT(*) FROM accounts WHERE id = @Id AND (deletion_blocked IS NOT NULL OR status <> 'suspended')", first));
            if (failing == "blocked") app.IssueLicense(maxAccounts: null, expiresDays: 30);

            var ids = new[] { first.Id, next.Id };
            for (var deadline = DateTime.UtcNow.AddSeconds(90); await app.Databases.PanelScalarAsync<long>(
                     "SELECT COUNT(*) FROM accounts WHERE id IN @ids", new { ids }) > 0; await Task.Delay(100))
            {
                Assert.True(DateTime.UtcNow < deadline, "a due account never ran: the failed start kept its slot");
                await PassAsync();
            }
            foreach (var made in new[] { first, next })
            {
                await WaitUntilGoneAsync(made.Id);
                Assert.Equal(JobStatus.Succeeded, (await app.Get<DeletionJobStore>().LatestForAccountAsync(made.Id, default))!.Status);
            }
        }
        finally
        {
            await app.Databases.PanelScalarAsync<object?>($"DROP TRIGGER IF EXISTS {trigger}");
            app.IssueLicense(maxAccounts: null, expiresDays: 30);
        }
    }

    [Theory]
    [InlineData("cancel-deletion")]
    [InlineData("unsuspend")]
    public async Task AStalledClaimNeverStartsTheDeletionOfAnAccountScheduledAgainAfterItsScheduleWasWithdrawn(string verb)
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 0}"""))).StatusCode);
        // A scheduler claimed it and then stalled past its claim's expiry; meanwhile it is withdrawn and scheduled for next week.
        const string claim = "a stalled panel/2";
        await app.Databases.PanelScalarAsync<object?>("""
            UPDATE accounts SET deletion_claimed_by = @claim, deletion_claimed_until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = @Id
            """, new { claim, made.Id });
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, verb), null)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 7}"""))).StatusCode);
        var snapshot = await app.SnapshotAsync(made.Id);
        var due = await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made);

        await Assert.ThrowsAsync<ScheduleWithdrawnException>(() =>
            app.Get<AccountDeletionService>().StartAsync(ScheduledDeletions.Scheduler, made.Id, null, default, claim));

        Assert.Equal("suspended", await app.StatusOf(made.Id));
        Assert.Equal(due, await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made));
        Assert.Equal(0, await JobsOfAsync(made.Id));
        Assert.Equal(snapshot, await app.SnapshotAsync(made.Id));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, "cancel-deletion"), null)).StatusCode);
    }

    [Fact]
    public async Task Migration011LeavesWhenAPendingDeletionWasScheduledUnknownWhenTheAuditsLastScheduleIsAnotherActors()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 3}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, "cancel-deletion"), null)).StatusCode);
        var cli = Opterius.Services.Audit.Actor.Cli();
        await app.Get<DeletionSchedule>().ScheduleAsync(cli, made.Id, new ScheduleRequest(3, null, false), default);
        // The schedule as a panel without db/011 kept it, its own audit row lost: the last 'scheduled' row is the token's.
        await app.Databases.PanelScalarAsync<object?>("""
            DELETE FROM audit_log WHERE account_id = @Id AND action = 'schedule_deletion' AND outcome = 'scheduled' AND actor_kind = 'cli';
            UPDATE accounts SET deletion_scheduled_by_kind = NULL, deletion_scheduled_by_ip = NULL, deletion_scheduled_at = NULL WHERE id = @Id;
            DELETE FROM schema_migrations WHERE version = '011_scheduled_by.sql'
            """, made);

        Assert.Equal(["011_scheduled_by.sql"], await app.Get<Opterius.Services.Data.Migrator>().MigrateAsync(default));

        Assert.Equal($"{cli.Name} - - -", await app.Databases.PanelScalarAsync<string>("""
            SELECT CONCAT_WS(' ', deletion_scheduled_by, COALESCE(deletion_scheduled_by_kind, '-'), COALESCE(deletion_scheduled_by_ip, '-'),
                             COALESCE(deletion_scheduled_at, '-'))
            FROM accounts WHERE id = @Id
            """, made));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync(Url(made.Id, "cancel-deletion"), null)).StatusCode);
    }

    [Fact]
    public async Task TheRecordOfAScheduledDeletionWhoseJobLacksWhoScheduledItNamesTheSchedulerFromTheAuditLog()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1}"""))).StatusCode);
        await SetDueInThePastAsync(made.Id);
        var job = await Assert.Single(await app.Get<ScheduledDeletions>().RunDueAsync(default)).Completion;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        // As a job opened by a binary without db/011 (an upgrade's window) or one its backfill could not fill.
        await app.Databases.PanelScalarAsync<object?>(
            "UPDATE deletion_jobs SET scheduled_by = NULL, scheduled_by_kind = NULL, scheduled_by_ip = NULL, scheduled_at = NULL WHERE id = @Id", job);

        var records = app.Get<ErasureRecords>();
        var record = ErasureRecords.Verify((await records.IssueAsync(new(0, true), job.Id, default))!, records.PublicKeyPem);

        Assert.Equal((await SchedulerOfAsync(made.Id), "token", ApiApp.ClientIp),
            (record.ScheduledBy?.Actor, record.ScheduledBy?.Kind, record.ScheduledBy?.SourceIp));
    }

    [Fact]
    public async Task AResellerSchedulesAndCancelsOnlyItsOwnAccounts()
    {
        var reseller = await app.NewResellerAsync();
        var resellers = await app.ClientAsync(Opterius.Services.Users.Roles.Reseller, reseller.Id);
        var own = await resellers.CreateOverApiAsync();
        var admins = await app.ClientAsync();
        var foreign = await admins.CreateOverApiAsync();
        var foreignSuspended = await admins.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.OK, (await admins.PostAsync(Url(foreignSuspended.Id, "suspend"), null)).StatusCode);
        var before = await app.SnapshotAsync(foreign.Id);
        var beforeSuspended = await app.SnapshotAsync(foreignSuspended.Id);

        Assert.Equal(HttpStatusCode.Accepted, (await resellers.PostAsync(Url(own.Id, "schedule-deletion"), Body("""{"after_days": 5}"""))).StatusCode);
        var scheduled = await resellers.PostAsync(Url(foreign.Id, "schedule-deletion"), Body("""{"after_days": 5}"""));
        var cancelled = await resellers.PostAsync(Url(foreign.Id, "cancel-deletion"), null);
        var suspendedOne = await resellers.PostAsync(Url(foreignSuspended.Id, "schedule-deletion"), Body("""{"after_days": 5}"""));

        Assert.Equal(HttpStatusCode.NotFound, scheduled.StatusCode);
        Assert.Equal("not_found", (await scheduled.JsonOf()).Error());
        Assert.Equal(HttpStatusCode.NotFound, cancelled.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, suspendedOne.StatusCode);
        Assert.Equal(before, await app.SnapshotAsync(foreign.Id));
        Assert.Equal(beforeSuspended, await app.SnapshotAsync(foreignSuspended.Id));
        Assert.Equal(HttpStatusCode.OK, (await resellers.PostAsync(Url(own.Id, "cancel-deletion"), null)).StatusCode);
    }

    [Fact]
    public async Task WithTheLicenseBlockedADueDeletionStaysScheduledIsAuditedOnceAndRunsOnceTheLicenseIsBack()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var other = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1}"""))).StatusCode);
        await SetDueInThePastAsync(made.Id);
        var scheduler = app.Get<ScheduledDeletions>();

        // Signed with the right key two days ago, for one day.
        new LicenseIssuer(new ShiftedClock(TimeSpan.FromDays(-2))).Issue(app.SigningKeyPath, app.LicensePath, "test", null, 1);
        try
        {
            var refused = await client.PostAsync(Url(other.Id, "schedule-deletion"), Body("""{"after_days": 1}"""));
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("license_required", (await refused.JsonOf()).Error());
            Assert.Equal("active", await app.StatusOf(other.Id));

            Assert.Empty(await scheduler.RunDueAsync(default));
            Assert.Empty(await scheduler.RunDueAsync(default));

            Assert.Equal("suspended", await app.StatusOf(made.Id));
            Assert.NotNull(await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", made));
            Assert.Equal(0, await JobsOfAsync(made.Id));
            Assert.Equal(1, await AuditRowsAsync(made.Id, "schedule_deletion", "blocked", "scheduler"));
        }
        finally { app.IssueLicense(maxAccounts: null, expiresDays: 30); }

        var started = Assert.Single(await scheduler.RunDueAsync(default));
        Assert.Equal(JobStatus.Succeeded, (await started.Completion).Status);
        Assert.Null(await app.StatusOf(made.Id));
    }

    [Fact]
    public async Task AScheduleThatAskedForAFinalBackupDeletesWithTheBackupWrittenFirstAndTheRecordSaysItIsKept()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1, "backup": true}"""))).StatusCode);
        await SetDueInThePastAsync(made.Id);

        var started = Assert.Single(await app.Get<ScheduledDeletions>().RunDueAsync(default));
        var job = await started.Completion;

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal((DeletionOrder.FinalBackup, StepStatus.Done), (job.Steps[0].Resource, job.Steps[0].Status));
        Assert.Null(await app.StatusOf(made.Id));
        var archive = await app.Databases.PanelScalarAsync<string?>(
            "SELECT file_name FROM backups WHERE job_id = @Id AND sha256 IS NOT NULL AND purged_at IS NULL", new { job.Id });
        Assert.NotNull(archive);
        Assert.True(File.Exists(Path.Combine(app.BackupPath, archive!)), $"the final backup {archive} is not in {app.BackupPath}");
        var record = await client.GetAsync($"/api/v1/deletions/{job.Id}/record");
        Assert.Equal(HttpStatusCode.OK, record.StatusCode);
        Assert.Equal("kept", (await record.JsonOf()).GetProperty("record").GetProperty("final_backup").GetProperty("status").GetString());
    }

    [Theory]
    [InlineData("{}", "after_days", "give after_days")]
    [InlineData("""{"after_days": 3, "at": "2099-01-01T00:00:00Z"}""", "at", "not both")]
    [InlineData("""{"after_days": -1}""", "after_days", "from 0 to 365")]
    [InlineData("""{"after_days": 366}""", "after_days", "from 0 to 365")]
    [InlineData("""{"after_days": "7"}""", "after_days", "whole number of days")]
    [InlineData("""{"after_days": 1.5}""", "after_days", "whole number of days")]
    [InlineData("""{"at": "2020-01-01T00:00:00Z"}""", "at", "is in the past")]
    [InlineData("""{"at": "2030-01-01T00:00:00"}""", "at", "with its zone")]
    [InlineData("""{"at": "next tuesday"}""", "at", "with its zone")]
    [InlineData("""{"at": "2999-01-01T00:00:00Z"}""", "at", "within 365 days")]
    [InlineData("""{"after_days": 3, "backup": "yes"}""", "backup", "true or false")]
    [InlineData("[3]", "body", "must be a JSON object")]
    public async Task ABadScheduleIsRefusedNamingTheFieldAndChangesNothing(string body, string field, string saying)
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var before = await app.SnapshotAsync(made.Id);

        var response = await client.PostAsync(Url(made.Id, "schedule-deletion"), Body(body));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var error = await response.JsonOf();
        Assert.Equal("validation_failed", error.Error());
        Assert.Contains(saying, error.GetProperty("details").GetProperty(field).GetString());
        Assert.Equal(before, await app.SnapshotAsync(made.Id));
        Assert.Equal(1, await AuditRowsAsync(made.Id, "schedule_deletion", "validation_failed"));
    }

    [Fact]
    public async Task SchedulingAnAccountAlreadyScheduledOrFailedIsAConflictSayingWhatToDo()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 9}"""))).StatusCode);
        var before = await app.SnapshotAsync(made.Id);

        var twice = await client.PostAsync(Url(made.Id, "schedule-deletion"), Body("""{"after_days": 1}"""));

        Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);
        Assert.Contains($"POST /api/v1/accounts/{made.Id}/cancel-deletion, then schedule it again", (await twice.JsonOf()).GetProperty("message").GetString());
        Assert.Equal(before, await app.SnapshotAsync(made.Id));

        var failed = await client.CreateOverApiAsync();
        await app.Databases.PanelScalarAsync<object?>("UPDATE accounts SET status = 'deletion_failed' WHERE id = @Id", failed);
        var refused = await client.PostAsync(Url(failed.Id, "schedule-deletion"), Body("""{"after_days": 1}"""));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains($"DELETE /api/v1/accounts/{failed.Id} resumes the deletion", (await refused.JsonOf()).GetProperty("message").GetString());
        Assert.Null(await app.Databases.PanelScalarAsync<DateTime?>("SELECT deletion_due_at FROM accounts WHERE id = @Id", failed));
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/accounts/{failed.Id}")).StatusCode); // leaves nothing behind
    }
}
