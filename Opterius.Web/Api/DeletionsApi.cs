using Microsoft.AspNetCore.Http.HttpResults;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

public sealed record DeletionStepDto(int Position, string Resource, string Status, string? Detail, DateTime UpdatedAt);

/// <summary>Every resource inspected again after the last step: <c>gone</c>, <c>left</c> or <c>unverified</c> (its inspection failed).</summary>
public sealed record DeletionVerificationDto(DateTime CheckedAt, bool Passed, IReadOnlyList<ResourceCheck> Resources)
{
    public static DeletionVerificationDto? From(DeletionVerification? v) => v is null ? null : new(v.CheckedAt, v.Passed, v.Resources);
}

public sealed record DeletionJobDto(long Id, long AccountId, string Username, string Domain, long OwnerId, string Status,
    string RequestedBy, DateTime CreatedAt, DateTime? FinishedAt, IReadOnlyList<DeletionStepDto> Steps, DeletionVerificationDto? Verification)
{
    public static DeletionJobDto From(DeletionJob j) => new(j.Id, j.AccountId, j.Username, j.Domain, j.OwnerId, j.Status,
        j.RequestedBy, j.CreatedAt, j.FinishedAt, j.Steps.Select(s => new DeletionStepDto(s.Position, s.Resource, s.Status, s.Detail, s.UpdatedAt)).ToList(),
        DeletionVerificationDto.From(j.Verification));
}

public sealed record FailedStepDto(string Resource, string? Detail);

/// <summary>Deleting an account (WHMCS Terminate) and reading a deletion job.</summary>
public static class DeletionsApi
{
    public static RouteGroupBuilder MapDeletionsApi(this RouteGroupBuilder api)
    {
        api.MapDelete("/accounts/{id}", Delete).WithTags("Accounts")
            .RequireAuthorization(ApiAuth.Delete).RequireRateLimiting(ApiLimits.Writes).WithMetadata(new AuditedWrite("delete"))
            .Produces(204).Produces<Envelope<DeletionPlan>>(200).Produces<Envelope<DeletionJobDto>>(202).Fails(404, 403, 422, 500)
            .WithSummary("Delete an account")
            .WithDescription("Removes every resource of the account, then inspects every resource again; 204 when that finds nothing left, "
                + "500 deletion_failed with the failed steps (a resource found still there is a failed step; calling again resumes). "
                + "?dry_run=true returns the plan and changes nothing. 'Prefer: respond-async' returns 202 with Location: /api/v1/deletions/{job}. "
                + "A second call while one runs joins it. ?backup=true first writes a final backup (the step final_backup; the plan shows it); "
                + "if it fails nothing is removed and the answer is 500 backup_failed. Refused with 422 when the policy is never.");
        api.MapGet("/deletions/{job}", GetJob).WithTags("Deletions").RequireAuthorization(ApiAuth.Read)
            .Fails(404).WithSummary("A deletion job, its steps and the verification after the last step");
        return api;
    }

    private static async Task<IResult> Delete(HttpContext http, AccountDeletionService deletions, string id, string? dry_run, string? backup, CancellationToken ct)
    {
        var dryRun = Flag(dry_run).Value == true;
        var (backupGiven, backupValue) = Flag(backup);
        if (!ApiErrors.TryParseId(id, out var accountId))
        {
            var message = $"No account with id '{AccountsApi.Shorten(id)}' exists.";
            await http.AuditRefusalAsync(dryRun ? "delete_plan" : "delete", null, null, "not_found", message);
            return ApiErrors.NotFound(message);
        }
        foreach (var (name, raw) in new[] { ("dry_run", dry_run), ("backup", backup) })
            if (Flag(raw) is (true, null))
            {
                var message = $"{name} must be true or false";
                await http.AuditRefusalAsync("delete", accountId, null, "validation_failed", message);
                return ApiErrors.Validation(message, new Dictionary<string, string> { [name] = message });
            }
        var wantsBackup = backupGiven ? backupValue : null;
        if (dryRun) return await PlanAsync(http, deletions, accountId, wantsBackup, ct);

        DeletionHandle handle;
        try { handle = await deletions.StartAsync(http.Actor(), accountId, wantsBackup, ct); }
        // Refusals are audited by the deletion service itself.
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal) { return refusal; }

        if (PrefersAsync(http))
        {
            http.Response.Headers["Preference-Applied"] = "respond-async";
            return TypedResults.Accepted($"/api/v1/deletions/{handle.Job.Id}", new Envelope<DeletionJobDto>(DeletionJobDto.From(handle.Job)));
        }

        DeletionJob job;
        // The deletion goes on if this caller disconnects; only the wait is abandoned.
        try { job = await handle.Completion.WaitAsync(ct); }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return ApiErrors.Json(500, "deletion_failed",
                $"The deletion (job {handle.Job.Id}) stopped: {e.GetBaseException().Message}. It resumes on the next DELETE or at the panel's next start.",
                new { job_id = handle.Job.Id, failed_steps = Array.Empty<FailedStepDto>() });
        }
        if (job.Status == JobStatus.Succeeded) return TypedResults.NoContent();
        var failed = job.FailedSteps.Select(s => new FailedStepDto(s.Resource, s.Detail)).ToList();
        if (failed is [{ Resource: DeletionOrder.FinalBackup } backupStep])
            return ApiErrors.Json(500, "backup_failed",
                $"The final backup could not be written, so nothing was removed and the account is as it was: {backupStep.Detail}. Fix the cause and call DELETE again to resume.",
                new { job_id = job.Id, failed_steps = failed });
        return ApiErrors.Json(500, "deletion_failed",
            $"The account was not fully deleted: {string.Join("; ", failed.Select(f => $"{f.Resource}: {f.Detail}"))}. Call DELETE again to resume from the failed step.",
            new { job_id = job.Id, failed_steps = failed, verification = DeletionVerificationDto.From(job.Verification) });
    }

    /// <summary>A true/false query flag: (false, null) when absent, (true, null) when it is neither.</summary>
    private static (bool Given, bool? Value) Flag(string? raw) => raw?.ToLowerInvariant() switch
    {
        null => (false, null),
        "false" or "0" => (true, false),
        "true" or "1" or "" => (true, true),
        _ => (true, null),
    };

    private static async Task<IResult> PlanAsync(HttpContext http, AccountDeletionService deletions, long accountId, bool? backup, CancellationToken ct)
    {
        try
        {
            var plan = await deletions.PlanAsync(http.User.Viewer(), accountId, backup, ct);
            await http.AuditRefusalAsync("delete_plan", accountId, plan.Username, "planned",
                string.Join("; ", plan.Resources.Where(r => r.Exists).Select(r => $"{r.Resource}: {r.Summary}")));
            return TypedResults.Ok(new Envelope<DeletionPlan>(plan));
        }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal)
        {
            await http.AuditRefusalAsync("delete_plan", accountId, null, refusal.Value!.Error, e.Message);
            return refusal;
        }
    }

    private static bool PrefersAsync(HttpContext http) =>
        http.Request.Headers["Prefer"].SelectMany(v => (v ?? "").Split(',')).Any(p => p.Trim().Split(';')[0].Trim().Equals("respond-async", StringComparison.OrdinalIgnoreCase));

    private static async Task<Results<Ok<Envelope<DeletionJobDto>>, JsonHttpResult<ApiError>>> GetJob(
        HttpContext http, DeletionJobStore jobs, string job, CancellationToken ct)
    {
        var found = ApiErrors.TryParseId(job, out var jobId) ? await jobs.FindAsync(jobId, ct) : null;
        var viewer = http.User.Viewer();
        // A reseller asking for another owner's job learns nothing, not even that it exists.
        return found is null || (!viewer.IsAdmin && found.OwnerId != viewer.UserId)
            ? ApiErrors.NotFound($"No deletion job with id '{AccountsApi.Shorten(job)}' exists.")
            : TypedResults.Ok(new Envelope<DeletionJobDto>(DeletionJobDto.From(found)));
    }
}
