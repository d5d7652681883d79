using Dapper;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Data;
using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>
/// The persisted journal: deletion_jobs, one deletion_steps row per resource, and the deletion_checks of the
/// verification after the last step. A running job is leased to one panel process (<see cref="Holder"/>): every
/// write of its journal is fenced by that lease, so a process that lost it can never overwrite the new holder's.
/// Lease times are the database's clock in UTC (UTC_TIMESTAMP, whatever the session's time zone), the one clock every
/// panel process shares. Transactions lock in one order, accounts, then jobs, then steps and checks, so no two of them
/// wait for each other in a circle; a deadlock InnoDB still reports (gap locks of inserts) is retried.
/// </summary>
public sealed class DeletionJobStore(PanelDb db, IOptions<DeletionOptions> options)
{
    /// <summary>This process's name in a lease; new at every start, so a restarted panel never mistakes its predecessor's lease for its own.</summary>
    public string Holder { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    /// <summary>How often the holder renews its lease: three renewals fit in the half a lease it may go without one.</summary>
    public TimeSpan HeartbeatInterval => TimeSpan.FromSeconds(options.Value.LeaseSeconds / 6.0);

    /// <summary>
    /// How long after sending its last renewal that arrived a holder may start a step or go on with one: half a lease.
    /// Nobody takes a job over before half a lease past its expiry (<see cref="Takeable"/>), so a holder always stops
    /// a full lease before another process can start.
    /// </summary>
    public TimeSpan FreshFor => TimeSpan.FromSeconds(options.Value.LeaseSeconds / 2.0);

    /// <summary>How often a process waiting for another holder's job reads its journal.</summary>
    public TimeSpan PollInterval => TimeSpan.FromSeconds(Math.Min(1, options.Value.LeaseSeconds / 3.0));

    private long LeaseMicroseconds => options.Value.LeaseSeconds * 1_000_000L;

    private const string JobColumns = """
        id AS Id, account_id AS AccountId, username AS Username, domain AS Domain, owner_id AS OwnerId, status AS Status,
        requested_by AS RequestedBy, created_at AS CreatedAt, finished_at AS FinishedAt,
        lease_holder AS LeaseHolder, lease_expires_at AS LeaseExpiresAt, verified_at AS VerifiedAt
        """;

    private sealed record JobRow(long Id, long AccountId, string Username, string Domain, long OwnerId, string Status,
        string RequestedBy, DateTime CreatedAt, DateTime? FinishedAt, string? LeaseHolder, DateTime? LeaseExpiresAt, DateTime? VerifiedAt);

    /// <summary>
    /// A lease another process may take: none, or expired for half of the holder's own lease length (its expiry
    /// minus its last heartbeat; this process's when a row has no heartbeat). That half is the grace in which a holder
    /// that could not renew has already stopped its step.
    /// </summary>
    private const string Takeable = """
        (lease_holder IS NULL OR lease_expires_at IS NULL
            OR lease_expires_at + INTERVAL (GREATEST(COALESCE(TIMESTAMPDIFF(MICROSECOND, lease_heartbeat, lease_expires_at), @micros), 0) DIV 2) MICROSECOND
                <= UTC_TIMESTAMP(6))
        """;

    private const string OpenJob = $"""
        UPDATE deletion_jobs SET status = 'running', finished_at = NULL, updated_at = UTC_TIMESTAMP(6), verified_at = NULL,
            lease_holder = @Holder, lease_heartbeat = UTC_TIMESTAMP(6), lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL @micros MICROSECOND
        WHERE id = @existing AND (status <> 'running' OR lease_holder = @Holder OR {Takeable})
        """;

    /// <summary>
    /// Opens the account's job and leases it to this process: its unfinished one (a failed step goes back to
    /// pending so it runs again) or a new one, and marks the account <c>deleting</c>, in one transaction. A job
    /// another process holds a live lease on is returned unchanged (its <see cref="DeletionJob.LeaseHolder"/> is
    /// not <see cref="Holder"/>): the caller waits for it.
    /// </summary>
    /// <param name="finalBackup">true: the job keeps a final backup (one reopened without it gains the step, unless it
    /// already removed something: then 409); false: a reopened job's backup step that has not run is dropped; null: a
    /// reopened job keeps its steps, a new one has no backup.</param>
    /// <returns>The job, or null when the account row is already gone (a deletion just finished it).</returns>
    public Task<DeletionJob?> OpenAsync(Account account, string requestedBy, CancellationToken ct) => OpenAsync(account, requestedBy, null, null, ct);

    /// <summary>
    /// <see cref="OpenAsync(Account, string, CancellationToken)"/> with a final backup choice and, for the scheduler, its
    /// <paramref name="scheduleClaim"/>: then the job opens only while that claim still holds a live schedule of a suspended
    /// account (checked under the account row's lock, so a cancel or unsuspend that got in first wins), and the schedule is
    /// cleared in the same transaction.
    /// </summary>
    /// <param name="finalBackup">true: the job keeps a final backup (one reopened without it gains the step, unless it
    /// already removed something: then 409); false: a reopened job's backup step that has not run is dropped; null: a
    /// reopened job keeps its steps, a new one has no backup.</param>
    /// <exception cref="ScheduleWithdrawnException">The schedule was cancelled, the account unsuspended, or another claim took it.</exception>
    public Task<DeletionJob?> OpenAsync(Account account, string requestedBy, bool? finalBackup, string? scheduleClaim, CancellationToken ct) =>
        RetryOnDeadlockAsync(() => OpenOnceAsync(account, requestedBy, finalBackup, scheduleClaim, ct));

    private async Task<DeletionJob?> OpenOnceAsync(Account account, string requestedBy, bool? finalBackup, string? scheduleClaim, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        var status = await c.ExecuteScalarAsync<string?>(new CommandDefinition(
            "SELECT status FROM accounts WHERE id = @Id FOR UPDATE", account, tx, cancellationToken: ct));
        ScheduledBy? scheduledBy = null;
        if (scheduleClaim is not null)
        {
            // Read before the schedule is cleared: the job keeps who scheduled it for its erasure record.
            scheduledBy = await c.QuerySingleOrDefaultAsync<ScheduledBy>(new CommandDefinition(ScheduledBySql, account, tx, cancellationToken: ct));
            // Under the row's lock: a cancel or unsuspend that came first (even after the claim expired) wins, and
            // one that comes later waits for this commit and finds the account deleting.
            var claimed = await c.ExecuteAsync(new CommandDefinition(ClearScheduleSql, new { account.Id, scheduleClaim }, tx, cancellationToken: ct));
            if (claimed == 0) throw new ScheduleWithdrawnException(account.Username);
        }
        if (status is null) return null;
        if (status == AccountStatus.Creating)
            throw new AccountConflictException($"Account '{account.Username}' is still being created: delete it once it is active.");
        var jobId = await c.ExecuteScalarAsync<long?>(new CommandDefinition(
            "SELECT id FROM deletion_jobs WHERE account_id = @Id AND status IN ('running','failed') ORDER BY id DESC LIMIT 1 FOR UPDATE",
            account, tx, cancellationToken: ct));
        var micros = LeaseMicroseconds;
        if (jobId is { } existing)
        {
            var leased = await c.ExecuteAsync(new CommandDefinition(OpenJob, new { existing, Holder, micros }, tx, cancellationToken: ct));
            if (leased == 0)
            {
                await tx.CommitAsync(ct);
                return await FindAsync(existing, ct);
            }
            // The last run's checks stay until the next verification overwrites them; verified_at = NULL hides them.
            await c.ExecuteAsync(new CommandDefinition(
                "UPDATE deletion_steps SET status = 'pending', updated_at = UTC_TIMESTAMP(6) WHERE job_id = @existing AND status IN ('failed','running')",
                new { existing }, tx, cancellationToken: ct));
            await AddMissingStepsAsync(c, tx, existing, ct, finalBackup);
        }
        else
        {
            jobId = await c.ExecuteScalarAsync<long>(new CommandDefinition("""
                INSERT INTO deletion_jobs (account_id, username, domain, owner_id, status, requested_by, created_at, updated_at,
                    lease_holder, lease_heartbeat, lease_expires_at)
                VALUES (@Id, @Username, @Domain, @OwnerId, 'running', @requestedBy, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),
                    @Holder, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL @micros MICROSECOND);
                SELECT LAST_INSERT_ID();
                """, new { account.Id, account.Username, account.Domain, account.OwnerId, requestedBy, Holder, micros }, tx, cancellationToken: ct));
            await InsertStepsAsync(c, tx, jobId.Value, DeletionOrder.Steps(finalBackup == true).Select((key, i) => (i + 1, key, StepStatus.Pending, (string?)null)), ct);
        }
        if (scheduledBy is not null)
            await c.ExecuteAsync(new CommandDefinition(KeepScheduledBySql, new { jobId, scheduledBy.Actor, scheduledBy.ActorKind, scheduledBy.SourceIp, scheduledBy.ScheduledAt }, tx, cancellationToken: ct));
        // Any open (manual or the scheduler's) ends a schedule: one left behind would survive a crash or a failed job.
        await c.ExecuteAsync(new CommandDefinition(OpenAccountSql, account, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return (await FindAsync(jobId.Value, ct))!;
    }

    private const string OpenAccountSql = $"UPDATE accounts SET status = 'deleting', {DeletionSchedule.Cleared} WHERE id = @Id";

    private sealed record ScheduledBy(string Actor, string ActorKind, string? SourceIp, DateTime ScheduledAt);

    private const string ScheduledBySql = """
        SELECT deletion_scheduled_by AS Actor, deletion_scheduled_by_kind AS ActorKind, deletion_scheduled_by_ip AS SourceIp,
               deletion_scheduled_at AS ScheduledAt
        FROM accounts WHERE id = @Id AND deletion_scheduled_by IS NOT NULL AND deletion_scheduled_by_kind IS NOT NULL AND deletion_scheduled_at IS NOT NULL
        """;

    private const string KeepScheduledBySql = """
        UPDATE deletion_jobs SET scheduled_by = @Actor, scheduled_by_kind = @ActorKind, scheduled_by_ip = @SourceIp, scheduled_at = @ScheduledAt
        WHERE id = @jobId
        """;

    // Still due too: a claim is made only on a due schedule, and one cleared and made again since is not the one claimed.
    private const string ClearScheduleSql = $"""
        UPDATE accounts SET {DeletionSchedule.Cleared}
        WHERE id = @Id AND deletion_claimed_by = @scheduleClaim AND deletion_due_at <= UTC_TIMESTAMP(6) AND status = 'suspended'
        """;

    private const string InsertStep = "INSERT INTO deletion_steps (job_id, position, resource, status, detail, updated_at) VALUES ";
    private const string InsertStepRow = "(@jobId, @position{0}, @key{0}, @status{0}, @detail{0}, UTC_TIMESTAMP(6))";

    /// <summary>
    /// The job's new steps in one statement (see <see cref="Values"/>), in the caller's transaction: the one way steps are
    /// written (a new or older job's, pending; a failed undo's, with what each step found).
    /// </summary>
    private static async Task InsertStepsAsync(MySqlConnection c, MySqlTransaction tx, long jobId,
        IEnumerable<(int Position, string Key, string Status, string? Detail)> steps, CancellationToken ct)
    {
        var rows = new DynamicParameters(new { jobId });
        var count = 0;
        foreach (var (position, key, status, detail) in steps)
        {
            rows.Add($"position{count}", position);
            rows.Add($"key{count}", key);
            rows.Add($"status{count}", status);
            rows.Add($"detail{count}", detail);
            count++;
        }
        if (count > 0)
            await c.ExecuteAsync(new CommandDefinition(InsertStep + Values(InsertStepRow, count), rows, tx, cancellationToken: ct));
    }

    /// <summary>
    /// The VALUES of an INSERT of <paramref name="count"/> rows, each <paramref name="row"/> with its number for {0} in its
    /// parameters' names: every row in one statement, one round trip, not one a row (the SQL differs only by the number of rows).
    /// </summary>
    private static string Values(string row, int count) =>
        string.Join(", ", Enumerable.Range(0, count).Select(i => string.Format(System.Globalization.CultureInfo.InvariantCulture, row, i)));

    /// <summary>
    /// A job journalled by an older panel lacks the steps added since (e.g. logins, user_files): they go in as pending,
    /// each at its place in <see cref="DeletionOrder"/>, and the steps it has are renumbered around them with their
    /// statuses kept, in the caller's transaction, so the job runs and verifies every resource of today's order.
    /// </summary>
    /// <remarks>
    /// The final backup step follows <paramref name="finalBackup"/> (see <see cref="OpenAsync(Account, string, bool?, string?, CancellationToken)"/>):
    /// it is added first only while nothing of the account was removed, and a backup that was done stays in the journal.
    /// </remarks>
    private static async Task AddMissingStepsAsync(MySqlConnection c, MySqlTransaction tx, long jobId, CancellationToken ct, bool? finalBackup = null)
    {
        var had = (await c.QueryAsync<(string Resource, string Status)>(new CommandDefinition(
            "SELECT resource, status FROM deletion_steps WHERE job_id = @jobId ORDER BY position", new { jobId }, tx, cancellationToken: ct))).AsList();
        var backup = had.FirstOrDefault(s => s.Resource == DeletionOrder.FinalBackup);
        var keep = finalBackup ?? backup.Resource is not null;
        if (backup.Resource is not null && !keep && backup.Status is StepStatus.Done) keep = true;
        if (keep && backup.Resource is null && had.Any(s => s.Status is StepStatus.Done or StepStatus.Skipped))
            throw new AccountConflictException("This deletion already removed parts of the account without a final backup: "
                + "a backup now would not hold them. Call DELETE again without backup=true to finish it.");
        if (!keep && backup.Resource is not null)
            await c.ExecuteAsync(new CommandDefinition("DELETE FROM deletion_steps WHERE job_id = @jobId AND resource = @FinalBackup",
                new { jobId, DeletionOrder.FinalBackup }, tx, cancellationToken: ct));
        var names = had.Select(s => s.Resource).Where(r => keep || r != DeletionOrder.FinalBackup).ToList();
        var wanted = DeletionOrder.Steps(keep);
        var dropped = !keep && backup.Resource is not null;
        if (!dropped && names.Take(wanted.Count).SequenceEqual(wanted)) return;
        // A step this panel no longer knows keeps its place after today's order (it fails for want of a handler, as before).
        var order = wanted.Concat(names.Where(r => !wanted.Contains(r)))
            .Select((key, i) => new { jobId, position = i + 1, key }).ToList();
        // Out of the way first: (job_id, position) is the primary key, and the positions move past each other.
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE deletion_steps SET position = position + 1000000 WHERE job_id = @jobId", new { jobId }, tx, cancellationToken: ct));
        await c.ExecuteAsync(new CommandDefinition(
            "UPDATE deletion_steps SET position = @position WHERE job_id = @jobId AND resource = @key",
            order.Where(s => names.Contains(s.key)), tx, cancellationToken: ct));
        await InsertStepsAsync(c, tx, jobId, order.Where(s => !names.Contains(s.key)).Select(s => (s.position, s.key, StepStatus.Pending, (string?)null)), ct);
    }

    /// <summary>
    /// A create whose undo could not remove everything it made keeps its account, <c>deletion_failed</c>, with a failed
    /// job whose steps say what is left (<paramref name="steps"/>, one per key of <see cref="DeletionOrder"/>): the next
    /// DELETE runs the failed ones again and verifies every resource, through the one deletion path. In one transaction,
    /// the account row first (the store's lock order).
    /// </summary>
    public async Task RecordFailedUndoAsync(AccountIdentity account, long ownerId, string requestedBy,
        IReadOnlyList<(string Resource, string Status, string Detail)> steps, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await c.ExecuteAsync(new CommandDefinition("UPDATE accounts SET status = 'deletion_failed' WHERE id = @Id", account, tx, cancellationToken: ct));
        var jobId = await c.ExecuteScalarAsync<long>(new CommandDefinition("""
            INSERT INTO deletion_jobs (account_id, username, domain, owner_id, status, requested_by, created_at, updated_at, finished_at)
            VALUES (@Id, @Username, @Domain, @ownerId, 'failed', @requestedBy, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6));
            SELECT LAST_INSERT_ID();
            """, new { account.Id, account.Username, account.Domain, ownerId, requestedBy }, tx, cancellationToken: ct));
        await InsertStepsAsync(c, tx, jobId, steps.Select((s, i) => (i + 1, s.Resource, s.Status, (string?)s.Detail)), ct);
        await tx.CommitAsync(ct);
    }

    private const string RenewLease = """
        UPDATE deletion_jobs SET lease_heartbeat = UTC_TIMESTAMP(6), lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL @micros MICROSECOND
        WHERE id = @jobId AND status = 'running' AND lease_holder = @Holder
        """;

    /// <summary>The holder's heartbeat; false when the lease is no longer this process's (another took the job over).</summary>
    public async Task<bool> RenewLeaseAsync(long jobId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteAsync(new CommandDefinition(RenewLease, new { jobId, Holder, micros = LeaseMicroseconds }, cancellationToken: ct)) > 0;
    }

    private const string CanTakeOver = $"SELECT COUNT(*) FROM deletion_jobs WHERE id = @jobId AND status = 'running' AND (lease_holder = @Holder OR {Takeable})";

    private const string TakeOver = $"""
        UPDATE deletion_jobs SET lease_holder = @Holder, lease_heartbeat = UTC_TIMESTAMP(6),
            lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL @micros MICROSECOND, updated_at = UTC_TIMESTAMP(6)
        WHERE id = @jobId AND status = 'running' AND (lease_holder = @Holder OR {Takeable})
        """;

    /// <summary>
    /// Leases a running job whose holder stopped renewing to this process (or gives back this process's own, after it
    /// stopped because it could not renew in time); the step it was in goes back to pending (every step is idempotent,
    /// so running it again is safe). False while another holder's lease or its grace lasts.
    /// </summary>
    public async Task<bool> TryTakeOverAsync(long jobId, CancellationToken ct)
    {
        var args = new { jobId, Holder, micros = LeaseMicroseconds };
        // A follower asks every second: a plain read first, so waiting takes no lock the holder's writes would queue behind.
        await using (var c = await db.OpenAsync(ct))
            if (await c.ExecuteScalarAsync<long>(new CommandDefinition(CanTakeOver, args, cancellationToken: ct)) == 0) return false;
        return await RetryOnDeadlockAsync(async () =>
        {
            await using var c = await db.OpenAsync(ct);
            await using var tx = await c.BeginTransactionAsync(ct);
            if (await c.ExecuteAsync(new CommandDefinition(TakeOver, args, tx, cancellationToken: ct)) == 0) return false;
            await c.ExecuteAsync(new CommandDefinition(
                "UPDATE deletion_steps SET status = 'pending', updated_at = UTC_TIMESTAMP(6) WHERE job_id = @jobId AND status = 'running'",
                args, tx, cancellationToken: ct));
            await AddMissingStepsAsync(c, tx, jobId, ct);
            await tx.CommitAsync(ct);
            return true;
        });
    }

    public async Task<DeletionJob?> FindAsync(long jobId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var job = await c.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(
            $"SELECT {JobColumns} FROM deletion_jobs WHERE id = @jobId", new { jobId }, cancellationToken: ct));
        return job is null ? null : await WithStepsAsync(c, job, ct);
    }

    /// <summary>The account's newest job, finished or not.</summary>
    public async Task<DeletionJob?> LatestForAccountAsync(long accountId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var job = await c.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(
            $"SELECT {JobColumns} FROM deletion_jobs WHERE account_id = @accountId ORDER BY id DESC LIMIT 1", new { accountId }, cancellationToken: ct));
        return job is null ? null : await WithStepsAsync(c, job, ct);
    }

    /// <summary>The account's jobs, newest first, each with its steps and verification (its deletion history).</summary>
    public async Task<IReadOnlyList<DeletionJob>> ForAccountAsync(long accountId, int limit, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<JobRow>(new CommandDefinition(
            $"SELECT {JobColumns} FROM deletion_jobs WHERE account_id = @accountId ORDER BY id DESC LIMIT @limit", new { accountId, limit }, cancellationToken: ct));
        var jobs = new List<DeletionJob>();
        foreach (var row in rows) jobs.Add(await WithStepsAsync(c, row, ct));
        return jobs;
    }

    /// <summary>
    /// The accounts of every running job, whoever holds it: a process that crashed a moment ago still holds a live
    /// lease, and whoever resumes its job waits for that lease to run out (<see cref="TryTakeOverAsync"/>).
    /// </summary>
    public async Task<IReadOnlyList<long>> RunningAccountIdsAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<long>(new CommandDefinition(
            "SELECT DISTINCT account_id FROM deletion_jobs WHERE status = 'running'", cancellationToken: ct))).AsList();
    }

    private const string SetStep = $"""
        UPDATE deletion_jobs j STRAIGHT_JOIN deletion_steps s ON s.job_id = j.id
        SET {Touch}, s.status = @status, s.detail = @detail, s.updated_at = UTC_TIMESTAMP(6),
            s.started_at = IF(@status = 'running', UTC_TIMESTAMP(6), s.started_at)
        WHERE {Leased} AND s.position = @position
        """;

    /// <summary>
    /// Records a step's transition; false (nothing written) when this process no longer holds the job's lease, or when
    /// the job has no step at <paramref name="position"/> (a caller's bug: the statement cannot tell the two apart).
    /// </summary>
    /// <remarks>One statement in autocommit, fenced in itself (see <see cref="Leased"/>): one round trip, not four.</remarks>
    public Task<bool> SetStepAsync(long jobId, int position, string status, string? detail, CancellationToken ct) =>
        RetryOnDeadlockAsync(async () =>
        {
            await using var c = await db.OpenAsync(ct);
            return await c.ExecuteAsync(new CommandDefinition(SetStep, new { jobId, position, status, detail, Holder }, cancellationToken: ct)) > 0;
        });

    private const string StartSteps = $"""
        UPDATE deletion_jobs j STRAIGHT_JOIN deletion_steps s ON s.job_id = j.id
        SET {Touch}, s.status = 'running', s.detail = NULL, s.updated_at = UTC_TIMESTAMP(6), s.started_at = UTC_TIMESTAMP(6)
        WHERE {Leased} AND s.position IN @positions
        """;

    /// <summary>
    /// Journals every step of a stage as running in one statement (a stage's steps start together); false without the
    /// lease, or when none of <paramref name="positions"/> is one of the job's steps (a caller's bug the statement cannot
    /// tell from a lost lease). One write instead of one a step: under a burst of deletions each commit waits for the log's flush.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="positions"/> is empty: a caller's bug, not a lost lease.</exception>
    public Task<bool> StartStepsAsync(long jobId, IReadOnlyList<int> positions, CancellationToken ct)
    {
        // Dapper makes an empty IN one that matches nothing, and "nothing matched" would read as a lost lease: say which it is.
        if (positions.Count == 0) throw new ArgumentException("A stage starts at least one step.", nameof(positions));
        return RetryOnDeadlockAsync(async () =>
        {
            await using var c = await db.OpenAsync(ct);
            return await c.ExecuteAsync(new CommandDefinition(StartSteps, new { jobId, positions, Holder }, cancellationToken: ct)) > 0;
        });
    }

    private const string SavePlan = """
        UPDATE deletion_jobs SET account_email = COALESCE(account_email, @Email),
            requester = IF(plan_json IS NULL, @Name, requester), requester_kind = IF(plan_json IS NULL, @Kind, requester_kind),
            requester_ip = IF(plan_json IS NULL, @SourceIp, requester_ip),
            planned_at = IF(plan_json IS NULL, UTC_TIMESTAMP(6), planned_at), plan_json = COALESCE(plan_json, @plan)
        WHERE id = @jobId
        """;

    /// <summary>
    /// Keeps the plan of the job's first run (what was there when the deletion began), who asked for it and the account's
    /// email, for the erasure record: the account row goes when the job succeeds. A resumed run's smaller plan does not replace it.
    /// </summary>
    public async Task SavePlanAsync(long jobId, Account account, Audit.Actor requester, IReadOnlyList<Resources.ResourceInspection> plan, CancellationToken ct)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(plan, PlanJson);
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition(SavePlan,
            new { jobId, account.Email, requester.Name, requester.Kind, requester.SourceIp, plan = json }, cancellationToken: ct));
    }

    private static readonly System.Text.Json.JsonSerializerOptions PlanJson = new() { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower };

    private const string Verified = $"UPDATE deletion_jobs j SET {Touch}, j.verified_at = UTC_TIMESTAMP(6) WHERE {Leased}";

    private const string SaveCheck = "INSERT INTO deletion_checks (job_id, position, resource, status, summary) VALUES ";
    private const string SaveCheckRow = "(@jobId, @position{0}, @resource{0}, @status{0}, @summary{0})";
    private const string SaveCheckUpdate = " ON DUPLICATE KEY UPDATE resource = VALUES(resource), status = VALUES(status), summary = VALUES(summary)";

    /// <summary>Stores what inspecting every resource after the last step found (replacing an earlier run's); false without the lease.</summary>
    public Task<bool> SaveVerificationAsync(long jobId, IReadOnlyList<ResourceCheck> checks, CancellationToken ct) =>
        RetryOnDeadlockAsync(() => SaveVerificationOnceAsync(jobId, checks, ct));

    private async Task<bool> SaveVerificationOnceAsync(long jobId, IReadOnlyList<ResourceCheck> checks, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        // The fence and the job's own change in one statement; the checks need their own (a job row cannot join an insert).
        if (await c.ExecuteAsync(new CommandDefinition(Verified, new { jobId, Holder }, tx, cancellationToken: ct)) == 0) return false;
        // One row per step, overwritten in place, all in one statement (Values): a DELETE of the old rows would take gap
        // locks that deadlock with another job's verification inserting its own rows at the same moment.
        var rows = new DynamicParameters(new { jobId });
        for (var i = 0; i < checks.Count; i++)
        {
            rows.Add($"position{i}", i + 1);
            rows.Add($"resource{i}", checks[i].Resource);
            rows.Add($"status{i}", checks[i].Status);
            rows.Add($"summary{i}", checks[i].Summary);
        }
        if (checks.Count > 0)
            await c.ExecuteAsync(new CommandDefinition(
                SaveCheck + Values(SaveCheckRow, checks.Count) + SaveCheckUpdate,
                rows, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>The job failed: it and the account say so, together, and the lease is released. False without the lease.</summary>
    public async Task<bool> FailAsync(DeletionJob job, CancellationToken ct) =>
        await FinishAsync(job, JobStatus.Failed, "UPDATE accounts SET status = 'deletion_failed' WHERE id = @AccountId", ct);

    /// <summary>
    /// The job failed before it changed anything (its final backup could not be written): the account goes back to what
    /// it was, active or suspended, since it still serves exactly as before; the next DELETE resumes the job.
    /// </summary>
    public async Task<bool> FailUntouchedAsync(DeletionJob job, CancellationToken ct) =>
        await FinishAsync(job, JobStatus.Failed,
            "UPDATE accounts SET status = IF(suspended_at IS NULL, 'active', 'suspended') WHERE id = @AccountId", ct);

    /// <summary>Every resource is gone: the account row goes and the job is finished, together. False without the lease.</summary>
    public async Task<bool> SucceedAsync(DeletionJob job, CancellationToken ct) =>
        await FinishAsync(job, JobStatus.Succeeded, "DELETE FROM accounts WHERE id = @AccountId", ct);

    // The account row first, as OpenAsync locks it: a DELETE arriving as the job finishes waits instead of deadlocking.
    // Then the fenced job row, in the same round trip (statements of one command run in order, in the transaction).
    private const string Finish = $"""
        SELECT id FROM accounts WHERE id = @AccountId FOR UPDATE;
        UPDATE deletion_jobs j SET {Touch}, j.status = @status, j.finished_at = UTC_TIMESTAMP(6), j.lease_expires_at = NULL
        WHERE {Leased}
        """;

    // The holder stays on the finished job: it names the process that ran it last.
    private Task<bool> FinishAsync(DeletionJob job, string status, string accountChange, CancellationToken ct) =>
        RetryOnDeadlockAsync(() => FinishOnceAsync(job, status, accountChange, ct));

    private async Task<bool> FinishOnceAsync(DeletionJob job, string status, string accountChange, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        // The rows the SELECT locks are not counted: what comes back is the fenced UPDATE's.
        if (await c.ExecuteAsync(new CommandDefinition(Finish, new { job.AccountId, jobId = job.Id, status, Holder }, tx, cancellationToken: ct)) == 0) return false;
        await c.ExecuteAsync(new CommandDefinition(accountChange, job, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>InnoDB rolls a deadlock's victim back whole, so running its transaction again from the start is safe.</summary>
    internal static async Task<T> RetryOnDeadlockAsync<T>(Func<Task<T>> transaction)
    {
        for (var attempt = 1; ; attempt++)
        {
            try { return await transaction(); }
            catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.LockDeadlock && attempt < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(10, 50) * attempt));
            }
        }
    }

    /// <summary>
    /// The fence of every journal write, in the WHERE of the write's own statement (the job aliased <c>j</c>): it matches
    /// only while this process holds the lease, and the statement locks and touches (<see cref="Touch"/>) the job row before
    /// the steps it changes, as a takeover does (the job, then its steps): a takeover either waits for the write or has
    /// already made it miss, and a write that misses changes nothing. The job is read by its primary key, a constant, so
    /// it is always the first row the statement locks; <c>STRAIGHT_JOIN</c> keeps the steps after it. A statement that
    /// misses may still lock the step rows it scans after the job row; harmless, since the job row is locked first (the
    /// takeover's order) and the statements that join the steps run in autocommit, which releases every lock as they end.
    /// </summary>
    private const string Leased = "j.id = @jobId AND j.lease_holder = @Holder";

    // It must stay, even where nothing else of the job changes: a SET on j is what makes the statement's read of the job
    // row an X lock (with no column of j set, MariaDB takes only an S lock there), and the fence rests on that lock.
    private const string Touch = "j.updated_at = UTC_TIMESTAMP(6)";

    private static async Task<DeletionJob> WithStepsAsync(MySqlConnection c, JobRow job, CancellationToken ct)
    {
        var steps = await c.QueryAsync<DeletionStep>(new CommandDefinition(
            "SELECT position AS Position, resource AS Resource, status AS Status, detail AS Detail, updated_at AS UpdatedAt FROM deletion_steps WHERE job_id = @Id ORDER BY position",
            job, cancellationToken: ct));
        DeletionVerification? verification = null;
        if (job.VerifiedAt is { } at)
        {
            var checks = await c.QueryAsync<ResourceCheck>(new CommandDefinition(
                "SELECT resource AS Resource, status AS Status, summary AS Summary FROM deletion_checks WHERE job_id = @Id ORDER BY position",
                job, cancellationToken: ct));
            verification = new(at, checks.AsList());
        }
        return new(job.Id, job.AccountId, job.Username, job.Domain, job.OwnerId, job.Status, job.RequestedBy, job.CreatedAt, job.FinishedAt,
            steps.AsList(), job.LeaseHolder, job.LeaseExpiresAt, verification);
    }
}
