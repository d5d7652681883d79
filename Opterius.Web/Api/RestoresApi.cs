using Microsoft.AspNetCore.Http.HttpResults;
using Opterius.Services.Backups;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>A restore job with every step (<c>system_user</c>, <c>archive</c>, then the archive's parts by resource key).</summary>
public sealed record RestoreJobDto(long Id, long BackupId, long AccountId, string Username, string Domain, long OwnerId, string Status,
    string RequestedBy, string? Detail, DateTime CreatedAt, DateTime? FinishedAt, IReadOnlyList<DeletionStepDto> Steps)
{
    public static RestoreJobDto From(RestoreJob j) => new(j.Id, j.BackupId, j.AccountId, j.Username, j.Domain, j.OwnerId, j.Status,
        j.RequestedBy, j.Detail, j.CreatedAt, j.FinishedAt, j.Steps.Select(s => new DeletionStepDto(s.Position, s.Resource, s.Status, s.Detail, s.UpdatedAt)).ToList());
}

/// <summary>Restoring a final backup (202 and a job to poll) and reading a restore job. Owner-scoped like the backups.</summary>
public static class RestoresApi
{
    public static RouteGroupBuilder MapRestoresApi(this RouteGroupBuilder api)
    {
        api.MapPost("/backups/{id}/restore", Restore).WithTags("Backups")
            .RequireAuthorization(ApiAuth.Write).RequireRateLimiting(ApiLimits.Writes).WithMetadata(new AuditedWrite("restore"))
            .Produces<Envelope<RestoreJobDto>>(202).Fails(404, 409, 403, 422, 500)
            .WithName("restoreBackup").WithSummary("Restore a final backup")
            .WithDescription("Makes the account again through the create path (its checks first: 409 conflict when the username or the domain "
                + "was taken since, naming who holds it; 403 license_required or account_limit_reached), then restores the archive's parts. "
                + "202 with Location: /api/v1/restores/{job}; the job's steps say how far it is. A failed restore removes what it made.");
        api.MapGet("/restores/{job}", GetJob).WithTags("Backups").RequireAuthorization(ApiAuth.Read)
            .Fails(404).WithName("getRestore").WithSummary("A restore job and its steps");
        return api;
    }

    private static async Task<IResult> Restore(HttpContext http, BackupRestoration restores, string id, CancellationToken ct)
    {
        if (!ApiErrors.TryParseId(id, out var backupId))
        {
            var message = $"No backup with id '{AccountsApi.Shorten(id)}' exists.";
            await http.AuditRefusalAsync("restore", null, null, "not_found", message);
            return ApiErrors.NotFound(message);
        }
        RestoreHandle handle;
        // Refusals are audited by the restore service itself.
        try { handle = await restores.StartAsync(http.Actor(), backupId, ct); }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal) { return refusal; }
        return TypedResults.Accepted($"/api/v1/restores/{handle.Job.Id}", new Envelope<RestoreJobDto>(RestoreJobDto.From(handle.Job)));
    }

    private static async Task<Results<Ok<Envelope<RestoreJobDto>>, JsonHttpResult<ApiError>>> GetJob(
        HttpContext http, RestoreJobStore jobs, string job, CancellationToken ct)
    {
        var found = ApiErrors.TryParseId(job, out var jobId) ? await jobs.FindAsync(jobId, ct) : null;
        var viewer = http.User.Viewer();
        return found is null || (!viewer.IsAdmin && found.OwnerId != viewer.UserId)
            ? ApiErrors.NotFound($"No restore job with id '{AccountsApi.Shorten(job)}' exists.")
            : TypedResults.Ok(new Envelope<RestoreJobDto>(RestoreJobDto.From(found)));
    }
}
