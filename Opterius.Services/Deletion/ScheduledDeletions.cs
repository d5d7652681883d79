using Dapper;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Data;
using Opterius.Services.Licensing;

namespace Opterius.Services.Deletion;

/// <summary>
/// Runs the scheduled deletions that are due, through the one deletion service, as the actor <c>scheduler</c>. Each
/// due account is first claimed in the panel database (one UPDATE, so of two panel processes looking at the same
/// moment exactly one gets it), then started; a burst of due accounts starts together, so their reloads coalesce as
/// any batch of terminations does, but never more than <see cref="DeletionOptions.SchedulerMaxInFlight"/> at once: the
/// rest stay due, unclaimed, until a pass finds a free slot. A deletion that cannot start (license, conflict) stays
/// scheduled and is tried again at the next pass; each new reason is audited once, not at every pass.
/// </summary>
public sealed class ScheduledDeletions(
    PanelDb db,
    AccountDeletionService deletions,
    DeletionJobStore jobs,
    LicenseService license,
    AuditLog audit,
    AccountEvents events,
    IOptions<DeletionOptions> options,
    ILogger<ScheduledDeletions> log)
{
    public static readonly Actor Scheduler = Actor.System("scheduler");

    // Starts open their jobs one at a time (the deletion service's gate): a batch opens well within its claim.
    private const int Batch = 50;

    // The scheduled deletions this process runs: slots are taken before a claim and given back when a job ends (or did not start).
    private readonly Lock _slotsGate = new();
    private int _inFlight;

    private sealed record Due(long Id, string Username, DateTime DeletionDueAt, bool DeletionBackup, string? DeletionScheduledBy, string? DeletionBlocked, long OwnerId);

    // The claim (four leases) outlives the moment between it and the job's opening, which makes the account 'deleting';
    // a process that crashed in between holds up its accounts' unsuspend and cancel that long, and no longer. Blocked
    // ones last: a batch full of accounts that cannot start (license, backup) would otherwise hold back the rest.
    private const string ClaimSql = """
        UPDATE accounts SET deletion_claimed_by = @claim, deletion_claimed_until = UTC_TIMESTAMP(6) + INTERVAL @seconds SECOND
        WHERE deletion_due_at <= UTC_TIMESTAMP(6) AND status = 'suspended'
          AND (deletion_claimed_until IS NULL OR deletion_claimed_until <= UTC_TIMESTAMP(6))
        ORDER BY deletion_blocked IS NOT NULL, deletion_due_at LIMIT @limit;
        SELECT id AS Id, username AS Username, deletion_due_at AS DeletionDueAt, deletion_backup AS DeletionBackup,
               deletion_scheduled_by AS DeletionScheduledBy, deletion_blocked AS DeletionBlocked, owner_id AS OwnerId
        FROM accounts WHERE deletion_claimed_by = @claim
        """;

    /// <summary>Starts every deletion due now; the handles of those it started (their outcome is audited by the deletion service).</summary>
    public async Task<IReadOnlyList<DeletionHandle>> RunDueAsync(CancellationToken ct)
    {
        var started = new List<DeletionHandle>();
        while (true)
        {
            var slots = TakeSlots(Batch);
            if (slots == 0)
            {
                // Said once per pass: a scheduler whose slots never come back would otherwise stop starting deletions in silence.
                if (started.Count == 0)
                    log.LogInformation("No free slot for scheduled deletions: {InFlight} of {Max} (SchedulerMaxInFlight) in flight; due ones wait for a later pass",
                        InFlight, options.Value.SchedulerMaxInFlight);
                return started;
            }
            var claim = $"{jobs.Holder}/{Guid.NewGuid():N}";
            List<Due> due;
            try
            {
                // The claim walks the due index and then the rows, a release the other way round: InnoDB may pick one as a
                // deadlock's victim, rolled back whole, so it is simply made again.
                due = await DeletionJobStore.RetryOnDeadlockAsync(async () =>
                {
                    await using var c = await db.OpenAsync(ct);
                    return (await c.QueryAsync<Due>(new CommandDefinition(ClaimSql,
                        new { claim, seconds = 4 * options.Value.LeaseSeconds, limit = slots }, cancellationToken: ct))).AsList();
                });
            }
            catch
            {
                GiveBack(slots);
                throw;
            }
            GiveBack(slots - due.Count);
            // Each start owns its slot (StartInSlotAsync): one that throws still gives it back, whatever its siblings do.
            var handles = await Task.WhenAll(due.Select(d => StartInSlotAsync(d, claim)));
            started.AddRange(handles.OfType<DeletionHandle>());
            // A full claim that all started may have more behind it; one that could not start would be claimed again at once.
            if (due.Count < slots || handles.Any(h => h is null)) return started;
        }
    }

    private int TakeSlots(int most)
    {
        lock (_slotsGate)
        {
            var taken = Math.Clamp(options.Value.SchedulerMaxInFlight - _inFlight, 0, most);
            _inFlight += taken;
            return taken;
        }
    }

    private void GiveBack(int slots)
    {
        lock (_slotsGate) _inFlight -= slots;
    }

    private int InFlight
    {
        get { lock (_slotsGate) return _inFlight; }
    }

    /// <summary>
    /// Starts one due account in one slot: the slot goes with the job as soon as there is a handle (given back when the
    /// job ends, however it ends), and back at once when there is none, even when the start's release or audit throws.
    /// </summary>
    private async Task<DeletionHandle?> StartInSlotAsync(Due due, string claim)
    {
        DeletionHandle? handle = null;
        try { handle = await StartAsync(due, claim); }
        finally
        {
            if (handle is null) GiveBack(1);
        }
        if (handle is null) return null;
        // The deletion service owns the job's task; this only gives its slot back when it ends.
        _ = handle.Completion.ContinueWith(_ => GiveBack(1), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        // The job's open cleared the schedule and this claim with it (DeletionJobStore.OpenAsync): nothing to release. The
        // job runs whatever this row does, so a failed write is logged, not thrown (the deletion service audits the job too).
        try
        {
            await audit.WriteAsync(Scheduler, DeletionSchedule.Action, due.Id, due.Username, "started", $"{Scheduled(due)} started as job {handle.Job.Id}", CancellationToken.None);
        }
        catch (Exception e)
        {
            log.LogError(e, "Scheduled deletion of {Username} started as job {Job}, but its 'started' audit row could not be written", due.Username, handle.Job.Id);
        }
        return handle;
    }

    private static string Scheduled(Due due) =>
        $"the deletion due at {DeletionSchedule.Format(due.DeletionDueAt)} (scheduled by {due.DeletionScheduledBy ?? "unknown"})";

    /// <summary>The started deletion's handle, or null (released, or blocked and audited) when it could not start.</summary>
    private async Task<DeletionHandle?> StartAsync(Due due, string claim)
    {
        var ct = CancellationToken.None; // a claimed account is always either started or released
        try
        {
            // Checked here, so a blocked license is one audit row per reason, not a refused delete at every pass.
            license.EnsureValid();
            return await StartDeletionAsync(Scheduler, due.Id, due.DeletionBackup, claim, ct);
        }
        catch (ScheduleWithdrawnException)
        {
            // The cancel or unsuspend that withdrew it is audited already; only a claim it left behind is dropped.
            log.LogInformation("Scheduled deletion of {Username} was withdrawn before it started; nothing deleted", due.Username);
            await ReleaseAsync(due.Id, claim, ReleaseSql);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var reason = e switch
            {
                LicenseRequiredException => $"license_required: {e.Message}",
                AccountConflictException or AccountNotFoundException => e.Message,
                _ => $"{e.GetType().Name}: {e.Message}",
            };
            if (reason.Length > 250) reason = reason[..250]; // the column's size
            // Once per new reason with its stack, like the audit; a reason already known is only a debug line at every pass.
            if (reason != due.DeletionBlocked)
                log.LogWarning(e, "Scheduled deletion of {Username} could not start; it stays scheduled and is tried again", due.Username);
            else
                log.LogDebug("Scheduled deletion of {Username} still cannot start: {Reason}", due.Username, reason);
            await ReleaseAsync(due.Id, claim, BlockedSql, reason);
            // A new reason changes what the scheduled view and the grids say of the account ("waiting: ...").
            if (reason != due.DeletionBlocked) events.Publish(new(due.Id, due.OwnerId, AccountStatus.Suspended));
            if (reason != due.DeletionBlocked)
                await audit.WriteAsync(Scheduler, DeletionSchedule.Action, due.Id, due.Username, "blocked",
                    $"{Scheduled(due)} could not start and stays scheduled, tried again every {options.Value.SchedulerSeconds} s: {reason}", ct);
            return null;
        }
    }

    /// <summary>
    /// A schedule asked with <c>backup</c> starts the deletion with its final backup (DESIGN 3.10); the step fails the job
    /// before anything is removed when the backup cannot be written, so an account is never deleted without it.
    /// </summary>
    private Task<DeletionHandle> StartDeletionAsync(Actor actor, long accountId, bool backup, string claim, CancellationToken ct) =>
        deletions.StartAsync(actor, accountId, backup ? true : null, ct, claim);

    private const string BlockedSql = """
        UPDATE accounts SET deletion_claimed_by = NULL, deletion_claimed_until = NULL, deletion_blocked = @blocked
        WHERE id = @id AND deletion_claimed_by = @claim
        """;

    private const string ReleaseSql =
        "UPDATE accounts SET deletion_claimed_by = NULL, deletion_claimed_until = NULL WHERE id = @id AND deletion_claimed_by = @claim";

    private Task<int> ReleaseAsync(long id, string claim, string sql, string? blocked = null) =>
        DeletionJobStore.RetryOnDeadlockAsync(async () =>
        {
            await using var c = await db.OpenAsync(CancellationToken.None);
            return await c.ExecuteAsync(new CommandDefinition(sql, new { id, claim, blocked }));
        });
}

/// <summary>The schedule a scheduler claimed was cancelled (or the account unsuspended) before its job opened: nothing is deleted.</summary>
public sealed class ScheduleWithdrawnException(string username)
    : Exception($"the scheduled deletion of '{username}' was cancelled or the account unsuspended before it started: nothing was deleted");

/// <summary>Looks for due scheduled deletions at start-up (what fell due while the panel was down) and every <c>SchedulerSeconds</c>.</summary>
public sealed class ScheduledDeletionsRunner(ScheduledDeletions scheduled, IOptions<DeletionOptions> options, ILogger<ScheduledDeletionsRunner> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SchedulerSeconds));
        do
        {
            try
            {
                var started = await scheduled.RunDueAsync(stoppingToken);
                if (started.Count > 0) log.LogInformation("Started {Count} scheduled deletion(s)", started.Count);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "Could not look for due scheduled deletions; trying again in {Seconds} s", options.Value.SchedulerSeconds);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
