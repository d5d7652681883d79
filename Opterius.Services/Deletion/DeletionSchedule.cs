using Dapper;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Data;
using Opterius.Services.Licensing;

namespace Opterius.Services.Deletion;

/// <summary>When a scheduled deletion is due: <see cref="AfterDays"/> from now or at <see cref="At"/>, exactly one of them.</summary>
public sealed record ScheduleRequest(int? AfterDays, DateTimeOffset? At, bool Backup);

/// <summary>
/// Scheduled termination (DESIGN 3.11): the account is suspended at once, through the one suspension, and deleted when
/// its <c>deletion_due_at</c> comes (<see cref="ScheduledDeletions"/> runs it); cancel or unsuspend before then keeps it.
/// </summary>
public sealed class DeletionSchedule(AccountStore accounts, AccountSuspension suspension, LicenseService license, AuditLog audit, PanelDb db, IFinalBackups backups,
    AccountEvents events, TimeProvider time)
{
    public const int MaxDays = 365;

    /// <summary>How far in the past an <c>at</c> may be: the caller's "now" reaches the panel a moment later.</summary>
    public static readonly TimeSpan Skew = TimeSpan.FromMinutes(1);

    public const string Action = "schedule_deletion";

    /// <summary>SET items that drop any scheduler's claim on the account's schedule.</summary>
    internal const string ClaimCleared = "deletion_claimed_by = NULL, deletion_claimed_until = NULL";

    /// <summary>
    /// SET items that end a schedule, in every statement that does (cancel, unsuspend, a job's open): all its columns and
    /// its claim, so a claim left by a stalled scheduler never matches a schedule made later.
    /// </summary>
    internal const string Cleared = $"""
        deletion_due_at = NULL, deletion_backup = 0, deletion_blocked = NULL, deletion_scheduled_by = NULL,
        deletion_scheduled_by_kind = NULL, deletion_scheduled_by_ip = NULL, deletion_scheduled_at = NULL, {ClaimCleared}
        """;
    public const string CancelAction = "cancel_deletion";

    /// <summary>Suspends the account (when active) and schedules its deletion; the account as it is now.</summary>
    public async Task<Account> ScheduleAsync(Actor actor, long id, ScheduleRequest request, CancellationToken ct)
    {
        try { license.EnsureValid(); }
        catch (LicenseRequiredException e)
        {
            await audit.WriteAsync(actor, Action, id, null, "license_required", e.Message, CancellationToken.None);
            throw;
        }
        var viewer = new Viewer(actor.UserId, actor.IsAdmin);
        var account = await accounts.FindAsync(viewer, id, ct);
        if (account is null)
        {
            await audit.WriteAsync(actor, Action, id, null, "not_found", null, CancellationToken.None);
            throw new AccountNotFoundException(id);
        }
        try
        {
            var due = DueAt(request);
            // Refused now, not found out when it is due: the account would stay suspended and never deleted.
            if (request.Backup && !backups.Available)
                throw new AccountValidationException(new Dictionary<string, string>
                {
                    ["backup"] = "final backups are not available on this server: schedule without backup, or once the server makes final backups",
                });
            Refuse(account);
            if (account.Status == AccountStatus.Active)
                await suspension.SuspendAsync(actor, id, ct); // audited as a suspend of its own
            // Not saved when someone else scheduled it or unsuspended it in between. Either way the account is as they left
            // it (suspended for their schedule, or serving), so this request's suspension is not undone.
            if (!await SaveAsync(id, due, request.Backup, actor))
                throw new AccountConflictException($"Account '{account.Username}' was scheduled or unsuspended by someone else meanwhile; "
                    + $"this request scheduled nothing (GET /api/v1/accounts/{id} shows where it stands).");
            events.Publish(new(id, account.OwnerId, AccountStatus.Suspended));
            await audit.WriteAsync(actor, Action, id, account.Username, "scheduled",
                $"deletion due at {Format(due)} (final backup: {(request.Backup ? "yes" : "no")})", CancellationToken.None);
            return (await accounts.FindAsync(viewer, id, CancellationToken.None))!;
        }
        catch (Exception e) when (e is AccountValidationException or AccountConflictException)
        {
            await audit.WriteAsync(actor, Action, id, account.Username, e is AccountValidationException ? "validation_failed" : "refused", e.Message, CancellationToken.None);
            throw;
        }
    }

    /// <summary>Cancels the account's scheduled deletion; it stays suspended (unsuspend serves it again).</summary>
    public async Task<Account> CancelAsync(Actor actor, long id, CancellationToken ct)
    {
        var viewer = new Viewer(actor.UserId, actor.IsAdmin);
        var account = await accounts.FindAsync(viewer, id, ct);
        if (account is null)
        {
            await audit.WriteAsync(actor, CancelAction, id, null, "not_found", null, CancellationToken.None);
            throw new AccountNotFoundException(id);
        }
        if (!await ClearAsync(id))
        {
            if (await IsBeingStartedAsync(id))
            {
                // Claimed, not yet deleting: in a moment the job is open (then it cannot be cancelled) or the claim is
                // released (then this cancel goes through), so the caller is told to ask again, not that it is too late.
                var starting = $"The scheduled deletion of '{account.Username}' is being started, retry in a few seconds: "
                    + "then it is either cancelled or already running (its deletion job shows how far it is).";
                await audit.WriteAsync(actor, CancelAction, id, account.Username, "refused", starting, CancellationToken.None);
                throw new DeletionBeingStartedException(starting);
            }
            var now = await accounts.FindAsync(viewer, id, CancellationToken.None);
            var started = account.DeletionDueAt is not null
                && (now is null || now.DeletionDueAt is not null || now.Status is AccountStatus.Deleting or AccountStatus.DeletionFailed);
            var message = started
                ? $"The scheduled deletion of '{account.Username}' has already started: it can no longer be cancelled (its deletion job shows how far it is)."
                : $"Account '{account.Username}' has no scheduled deletion to cancel.";
            await audit.WriteAsync(actor, CancelAction, id, account.Username, "refused", message, CancellationToken.None);
            throw new AccountConflictException(message);
        }
        events.Publish(new(id, account.OwnerId, AccountStatus.Suspended));
        await audit.WriteAsync(actor, CancelAction, id, account.Username, "cancelled",
            $"the deletion due at {Format(account.DeletionDueAt!.Value)} will not run; the account stays suspended (unsuspend to serve it)", CancellationToken.None);
        return (await accounts.FindAsync(viewer, id, CancellationToken.None))!;
    }

    private DateTime DueAt(ScheduleRequest request)
    {
        var now = time.GetUtcNow();
        string? problem = (request.AfterDays, request.At) switch
        {
            (null, null) => $"give after_days (0 to {MaxDays}) or at ({AtExample})",
            (not null, not null) => "give after_days or at, not both",
            ( < 0 or > MaxDays, _) => $"after_days must be a whole number from 0 to {MaxDays}",
            (_, { } at) when at < now - Skew => $"at ({Format(at.UtcDateTime)}) is in the past: give a time from now on, or after_days 0 to delete at the scheduler's next run",
            (_, { } at) when at > now.AddDays(MaxDays) => $"at must be within {MaxDays} days from now",
            _ => null,
        };
        if (problem is not null)
            throw new AccountValidationException(new Dictionary<string, string> { [request.At is null ? "after_days" : "at"] = problem });
        return (request.At ?? now.AddDays(request.AfterDays!.Value)).UtcDateTime;
    }

    private static void Refuse(Account account)
    {
        if (account.DeletionDueAt is { } due)
            throw new AccountConflictException($"Account '{account.Username}' is already scheduled for deletion at {Format(due)}: to change it, "
                + $"POST /api/v1/accounts/{account.Id}/cancel-deletion, then schedule it again.");
        if (account.Status is not (AccountStatus.Active or AccountStatus.Suspended))
            throw new AccountConflictException(account.Status switch
            {
                AccountStatus.Creating => $"Account '{account.Username}' is still being created: schedule its deletion once it is active.",
                AccountStatus.Deleting => $"Account '{account.Username}' is being deleted already.",
                _ => $"Account '{account.Username}' is {account.Status}: its deletion already locked its logins and removed parts of it; "
                     + $"DELETE /api/v1/accounts/{account.Id} resumes the deletion.",
            });
    }

    // Who scheduled it and when (UTC) go with the schedule, and from it into the job (the erasure record's scheduled_by).
    private const string SaveSql = $"""
        UPDATE accounts SET deletion_due_at = @due, deletion_backup = @backup, deletion_blocked = NULL, deletion_scheduled_by = @Name,
            deletion_scheduled_by_kind = @Kind, deletion_scheduled_by_ip = @SourceIp, deletion_scheduled_at = UTC_TIMESTAMP(6), {ClaimCleared}
        WHERE id = @id AND status = 'suspended' AND deletion_due_at IS NULL
        """;

    private async Task<bool> SaveAsync(long id, DateTime due, bool backup, Actor by)
    {
        await using var c = await db.OpenAsync(CancellationToken.None);
        return await c.ExecuteAsync(new CommandDefinition(SaveSql, new { id, due, backup, by.Name, by.Kind, by.SourceIp })) == 1;
    }

    // Not while the scheduler holds its claim: it is starting the deletion at this moment.
    private const string ClearSql = $"""
        UPDATE accounts SET {Cleared}
        WHERE id = @id AND status = 'suspended' AND deletion_due_at IS NOT NULL
          AND (deletion_claimed_until IS NULL OR deletion_claimed_until <= UTC_TIMESTAMP(6))
        """;

    private async Task<bool> ClearAsync(long id)
    {
        await using var c = await db.OpenAsync(CancellationToken.None);
        return await c.ExecuteAsync(new CommandDefinition(ClearSql, new { id })) == 1;
    }

    private const string BeingStartedSql = """
        SELECT COUNT(*) FROM accounts WHERE id = @id AND status = 'suspended' AND deletion_due_at IS NOT NULL
          AND deletion_claimed_until > UTC_TIMESTAMP(6)
        """;

    private async Task<bool> IsBeingStartedAsync(long id)
    {
        await using var c = await db.OpenAsync(CancellationToken.None);
        return await c.ExecuteScalarAsync<long>(new CommandDefinition(BeingStartedSql, new { id })) == 1;
    }

    /// <summary>
    /// Reads an ISO 8601 time that carries its zone (<c>2030-01-31T12:00:00Z</c>, <c>…+02:00</c>): a time without one
    /// would mean a different moment on every server.
    /// </summary>
    public static bool TryParseAt(string text, out DateTimeOffset at)
    {
        at = default;
        var zoned = text.Length > 16 && text.Contains('T') && (text[^1] is 'Z' or 'z' || text[^6] is '+' or '-');
        return zoned && DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out at);
    }

    public const string AtExample = "an ISO 8601 time with its zone, e.g. 2030-01-31T12:00:00Z or 2030-01-31T14:00:00+02:00";

    public static string Format(DateTime utc) => utc.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>The scheduler has claimed the deletion and is opening its job: a cancel asked now is answered "retry in a few seconds".</summary>
public sealed class DeletionBeingStartedException(string message) : Exception(message)
{
    /// <summary>Well past a job's opening, well within the claim's four leases.</summary>
    public const int RetryAfterSeconds = 5;
}
