using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Deletion;

/// <summary>
/// The journal's and the erasure record's times are UTC whatever the database server's time zone (the dialog prints
/// them as UTC). It sets the server's global time zone, so it runs alone.
/// </summary>
[Collection(nameof(DeletionClockTests))]
public sealed class DeletionClockTests(PanelApp app) : IClassFixture<PanelApp>
{
    [Fact]
    public async Task AJobsTimesAreUtcWhenTheDatabaseServerRunsInAnotherTimeZone()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var zone = await app.Databases.PanelScalarAsync<string>("SELECT @@GLOBAL.time_zone");
        await app.Databases.PanelScalarAsync<object?>("SET GLOBAL time_zone = '+05:00'");
        try
        {
            // Pooled connections keep the time zone they were opened with: a panel started now opens new ones.
            MySqlConnection.ClearAllPools();
            Assert.Equal("+05:00", await app.Databases.PanelScalarAsync<string>("SELECT @@SESSION.time_zone"));
            await using var panel = app.SecondPanel();

            var job = await (await panel.GetRequiredService<AccountDeletionService>().StartAsync(app.AdminActor(), account.Id, default)).Completion;

            Assert.Equal(JobStatus.Succeeded, job.Status);
            var now = DateTime.UtcNow;
            foreach (var (what, at) in new[] { ("created", job.CreatedAt), ("finished", job.FinishedAt!.Value), ("verified", job.Verification!.CheckedAt) })
                Assert.True(Math.Abs((now - at).TotalMinutes) < 2, $"the job's {what} time {at:u} is not UTC (now {now:u})");
            Assert.All(job.Steps, s => Assert.True(Math.Abs((now - s.UpdatedAt).TotalMinutes) < 2, $"{s.Resource} updated at {s.UpdatedAt:u}, now {now:u}"));
        }
        finally { await RestoreTimeZoneAsync(zone); }
    }

    [Fact]
    public async Task AScheduledDeletionsRecordNamesWhoScheduledItAndWhenInUtcWhenTheDatabaseSessionRunsInAnotherTimeZone()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var zone = await app.Databases.PanelScalarAsync<string>("SELECT @@GLOBAL.time_zone");
        await app.Databases.PanelScalarAsync<object?>("SET GLOBAL time_zone = '+05:00'");
        try
        {
            MySqlConnection.ClearAllPools();
            await using var panel = app.SecondPanel();
            var before = DateTime.UtcNow;
            await panel.GetRequiredService<DeletionSchedule>().ScheduleAsync(app.AdminActor(), account.Id, new ScheduleRequest(0, null, false), default);
            var after = DateTime.UtcNow;

            var started = Assert.Single(await panel.GetRequiredService<ScheduledDeletions>().RunDueAsync(default));
            var job = await started.Completion;

            Assert.Equal(JobStatus.Succeeded, job.Status);
            var records = panel.GetRequiredService<ErasureRecords>();
            var record = ErasureRecords.Verify((await records.IssueAsync(new(0, true), job.Id, default))!, records.PublicKeyPem);
            Assert.Equal((app.Admin.Username, "user", "127.0.0.1"), (record.ScheduledBy?.Actor, record.ScheduledBy?.Kind, record.ScheduledBy?.SourceIp));
            Assert.Equal(DateTimeKind.Utc, record.ScheduledBy!.At.Kind);
            Assert.InRange(record.ScheduledBy.At, before.AddSeconds(-1), after.AddSeconds(1));
        }
        finally { await RestoreTimeZoneAsync(zone); }
    }

    [Fact]
    public async Task Migration011GivesAScheduledDeletionThatRanBeforeItWhoScheduledItAndWhenInUtcWhenTheDatabaseSessionRunsInAnotherTimeZone()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var zone = await app.Databases.PanelScalarAsync<string>("SELECT @@GLOBAL.time_zone");
        await app.Databases.PanelScalarAsync<object?>("SET GLOBAL time_zone = '+05:00'");
        try
        {
            MySqlConnection.ClearAllPools();
            await using var panel = app.SecondPanel();
            var before = DateTime.UtcNow;
            await panel.GetRequiredService<DeletionSchedule>().ScheduleAsync(app.AdminActor(), account.Id, new ScheduleRequest(0, null, false), default);
            var after = DateTime.UtcNow;
            var job = await Assert.Single(await panel.GetRequiredService<ScheduledDeletions>().RunDueAsync(default)).Completion;
            Assert.Equal(JobStatus.Succeeded, job.Status);
            // The job as a panel without db/011 left it: nothing of who scheduled it but the audit log, its times in +05:00.
            await app.Databases.PanelScalarAsync<object?>("""
                UPDATE deletion_jobs SET scheduled_by = NULL, scheduled_by_kind = NULL, scheduled_by_ip = NULL, scheduled_at = NULL WHERE id = @Id;
                DELETE FROM schema_migrations WHERE version = '011_scheduled_by.sql'
                """, job);

            Assert.Equal(["011_scheduled_by.sql"], await panel.GetRequiredService<Opterius.Services.Data.Migrator>().MigrateAsync(default));

            Assert.Equal($"{app.Admin.Username} user 127.0.0.1", await app.Databases.PanelScalarAsync<string>(
                "SELECT CONCAT_WS(' ', scheduled_by, scheduled_by_kind, scheduled_by_ip) FROM deletion_jobs WHERE id = @Id", job));
            var at = await app.Databases.PanelScalarAsync<DateTime>("SELECT scheduled_at FROM deletion_jobs WHERE id = @Id", job);
            Assert.InRange(at, before.AddSeconds(-1), after.AddSeconds(1));
        }
        finally { await RestoreTimeZoneAsync(zone); }
    }

    private async Task RestoreTimeZoneAsync(string zone)
    {
        await app.Databases.PanelScalarAsync<object?>("SET GLOBAL time_zone = @zone", new { zone });
        MySqlConnection.ClearAllPools();
    }
}

[CollectionDefinition(nameof(DeletionClockTests), DisableParallelization = true)]
public sealed class DeletionClockCollection;
