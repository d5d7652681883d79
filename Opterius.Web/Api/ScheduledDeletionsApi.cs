using Opterius.Services.Data;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>The body of <c>POST /api/v1/accounts/{id}/schedule-deletion</c> (documented shape; the handler reads it by hand).</summary>
public sealed record ScheduleDeletionBody(int? AfterDays, DateTimeOffset? At, bool Backup);

/// <summary>What schedule-deletion and cancel-deletion answer; <see cref="DeletionDueAt"/> is left out once cancelled.</summary>
public sealed record ScheduledDeletionDto(long Id, string Username, string Status, DateTime? DeletionDueAt)
{
    public static ScheduledDeletionDto From(Account a) => new(a.Id, a.Username, a.Status, UtcTimes.Utc(a.DeletionDueAt));
}

/// <summary>Scheduled termination: suspend now, delete when due; cancel keeps the account (suspended).</summary>
public static class ScheduledDeletionsApi
{
    public static RouteGroupBuilder MapScheduledDeletionsApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/accounts").WithTags("Accounts").RequireRateLimiting(ApiLimits.Writes);
        group.MapPost("/{id}/schedule-deletion", Schedule).RequireAuthorization(ApiAuth.Delete)
            .WithMetadata(new AuditedWrite(DeletionSchedule.Action))
            .Accepts<ScheduleDeletionBody>("application/json").Produces<Envelope<ScheduledDeletionDto>>(202).Fails(404, 409, 422, 403, 415, 413)
            .WithName("scheduleAccountDeletion").WithSummary("Schedule an account's deletion (grace period)")
            .WithDescription($"Suspends the account now and deletes it when due: {{\"after_days\": 0-{DeletionSchedule.MaxDays}}} or {{\"at\": \"2030-01-31T12:00:00Z\"}} "
                + "(exactly one), \"backup\": true for a final backup first. 202 with deletion_due_at; 409 when deleting, deletion_failed or already scheduled "
                + "(cancel-deletion, then schedule again); 403 license_required. Unsuspend or cancel-deletion before then keeps the account.");
        group.MapPost("/{id}/cancel-deletion", Cancel).RequireAuthorization(ApiAuth.Write)
            .WithMetadata(new AuditedWrite(DeletionSchedule.CancelAction)).Produces<Envelope<ScheduledDeletionDto>>(200).Fails(404, 409)
            .WithName("cancelAccountDeletion").WithSummary("Cancel a scheduled deletion")
            .WithDescription("The account stays suspended (unsuspend serves it again). 409 when nothing is scheduled or its deletion already started; 409 with Retry-After while the scheduler is starting it (retry in a few seconds).");
        return group;
    }

    private static async Task<Results<Accepted<Envelope<ScheduledDeletionDto>>, JsonHttpResult<ApiError>>> Schedule(
        HttpContext http, DeletionSchedule schedule, string id, CancellationToken ct)
    {
        if (!ApiErrors.TryParseId(id, out var accountId))
        {
            var message = $"No account with id '{AccountsApi.Shorten(id)}' exists.";
            await http.AuditRefusalAsync(DeletionSchedule.Action, null, null, "not_found", message);
            return ApiErrors.NotFound(message);
        }
        var body = await JsonBody.ReadAsync(http, ct);
        if (body.Error is { } bad)
        {
            await http.AuditRefusalAsync(DeletionSchedule.Action, accountId, null, bad.Value!.Error, bad.Value.Message);
            return bad;
        }
        var errors = new Dictionary<string, string>();
        var request = body.Root.ValueKind == JsonValueKind.Object ? Read(body.Root, errors) : null;
        if (request is null) errors["body"] = "The body must be a JSON object: {\"after_days\": N} or {\"at\": \"ISO 8601 time\"}, and optionally \"backup\": true.";
        if (errors.Count > 0)
        {
            var text = string.Join("; ", errors.Values);
            await http.AuditRefusalAsync(DeletionSchedule.Action, accountId, null, "validation_failed", text);
            return ApiErrors.Validation(text, errors);
        }
        try
        {
            // Refusals past this point are audited by the schedule itself.
            var account = await schedule.ScheduleAsync(http.Actor(), accountId, request!, ct);
            return TypedResults.Accepted($"/api/v1/accounts/{account.Id}", new Envelope<ScheduledDeletionDto>(ScheduledDeletionDto.From(account)));
        }
        catch (AccountValidationException e) { return ApiErrors.Validation(e.Message, e.Fields); }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal) { return refusal; }
    }

    private static async Task<Results<Ok<Envelope<ScheduledDeletionDto>>, JsonHttpResult<ApiError>>> Cancel(
        HttpContext http, DeletionSchedule schedule, string id, CancellationToken ct)
    {
        if (!ApiErrors.TryParseId(id, out var accountId))
        {
            var message = $"No account with id '{AccountsApi.Shorten(id)}' exists.";
            await http.AuditRefusalAsync(DeletionSchedule.CancelAction, null, null, "not_found", message);
            return ApiErrors.NotFound(message);
        }
        try
        {
            var account = await schedule.CancelAsync(http.Actor(), accountId, ct);
            return TypedResults.Ok(new Envelope<ScheduledDeletionDto>(ScheduledDeletionDto.From(account)));
        }
        catch (DeletionBeingStartedException e)
        {
            http.Response.Headers.RetryAfter = DeletionBeingStartedException.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return ApiErrors.Conflict(e.Message);
        }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal) { return refusal; }
    }

    /// <summary>The request, with each field of the wrong JSON type named in <paramref name="errors"/>.</summary>
    private static ScheduleRequest Read(JsonElement root, Dictionary<string, string> errors)
    {
        int? afterDays = null;
        DateTimeOffset? at = null;
        var backup = false;
        if (root.TryGetProperty("after_days", out var d) && d.ValueKind != JsonValueKind.Null)
        {
            if (d.ValueKind == JsonValueKind.Number && d.TryGetInt32(out var days)) afterDays = days;
            else errors["after_days"] = $"after_days must be a whole number of days from 0 to {DeletionSchedule.MaxDays}";
        }
        if (root.TryGetProperty("at", out var a) && a.ValueKind != JsonValueKind.Null)
        {
            if (a.ValueKind == JsonValueKind.String && DeletionSchedule.TryParseAt(a.GetString()!, out var when)) at = when;
            else errors["at"] = $"at must be {DeletionSchedule.AtExample}";
        }
        if (root.TryGetProperty("backup", out var b) && b.ValueKind != JsonValueKind.Null)
        {
            if (b.ValueKind is JsonValueKind.True or JsonValueKind.False) backup = b.GetBoolean();
            else errors["backup"] = "backup must be true or false";
        }
        return new ScheduleRequest(afterDays, at, backup);
    }
}
