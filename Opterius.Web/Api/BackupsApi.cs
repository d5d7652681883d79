using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>A final backup as the API shows it; <c>status</c> is <c>writing</c>, <c>available</c> or <c>purged</c>.</summary>
public sealed record BackupDto(long Id, long AccountId, string Username, string Domain, long OwnerId, long? JobId, string Status,
    string FileName, long? Bytes, string? Sha256, JsonElement? Manifest, DateTime CreatedAt, DateTime? CompletedAt, DateTime ExpiresAt,
    DateTime? PurgedAt, string? PurgedBy, string? PurgeReason)
{
    public static BackupDto From(FinalBackup b) => new(b.Id, b.AccountId, b.Username, b.Domain, b.OwnerId, b.JobId,
        b.PurgedAt is not null ? "purged" : b.Complete ? "available" : "writing", b.FileName, b.Bytes, b.Sha256,
        b.Manifest is null ? null : JsonDocument.Parse(b.Manifest).RootElement.Clone(), b.CreatedAt, b.CompletedAt, b.ExpiresAt,
        b.PurgedAt, b.PurgedBy, b.PurgeReason);
}

/// <summary>Final backups: list, read, purge now. Owner-scoped: a reseller sees only its own accounts' backups (else 404).</summary>
public static class BackupsApi
{
    public static RouteGroupBuilder MapBackupsApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/backups").WithTags("Backups");
        group.MapGet("/", List).RequireAuthorization(ApiAuth.Read).Fails(422)
            .WithName("listBackups").WithSummary("Final backups, newest first (?page=&per_page=&account_id=); purged ones say when and by whom");
        group.MapGet("/{id}", Get).RequireAuthorization(ApiAuth.Read).Fails(404)
            .WithName("getBackup").WithSummary("One final backup with its manifest");
        group.MapDelete("/{id}", Purge).RequireAuthorization(ApiAuth.Delete).RequireRateLimiting(ApiLimits.Writes)
            .WithMetadata(new AuditedWrite("backup_purge")).Produces(204).Fails(404, 409)
            .WithName("purgeBackup").WithSummary("Purge a final backup now (GDPR): the archive is removed, the row keeps when and by whom");
        return group;
    }

    private static async Task<Results<Ok<ListEnvelope<BackupDto>>, JsonHttpResult<ApiError>>> List(
        HttpContext http, BackupStore store, string? page, string? per_page, string? account_id, CancellationToken ct)
    {
        var errors = new Dictionary<string, string>();
        var p = Whole(page, 1, "page", 1_000_000, errors);
        var pp = Whole(per_page, 25, "per_page", 100, errors);
        long? accountId = null;
        if (account_id is not null)
        {
            if (ApiErrors.TryParseId(account_id, out var a)) accountId = a;
            else errors["account_id"] = "account_id must be an account's id";
        }
        if (errors.Count > 0) return ApiErrors.Validation(string.Join("; ", errors.Values), errors);
        var (items, total) = await store.ListAsync(http.User.Viewer(), p, pp, accountId, ct);
        return TypedResults.Ok(new ListEnvelope<BackupDto>(items.Select(BackupDto.From).ToList(), new PageMeta(p, pp, total)));
    }

    private static async Task<Results<Ok<Envelope<BackupDto>>, JsonHttpResult<ApiError>>> Get(
        HttpContext http, BackupStore store, string id, CancellationToken ct)
    {
        var backup = ApiErrors.TryParseId(id, out var backupId) ? await store.FindAsync(http.User.Viewer(), backupId, ct) : null;
        return backup is null
            ? ApiErrors.NotFound($"No backup with id '{AccountsApi.Shorten(id)}' exists.")
            : TypedResults.Ok(new Envelope<BackupDto>(BackupDto.From(backup)));
    }

    private static async Task<Results<NoContent, JsonHttpResult<ApiError>>> Purge(HttpContext http, FinalBackups backups, string id, CancellationToken ct)
    {
        if (!ApiErrors.TryParseId(id, out var backupId))
        {
            var message = $"No backup with id '{AccountsApi.Shorten(id)}' exists.";
            await http.AuditRefusalAsync("backup_purge", null, null, "not_found", message);
            return ApiErrors.NotFound(message);
        }
        try
        {
            await backups.PurgeAsync(http.Actor(), backupId, ct);
            return TypedResults.NoContent();
        }
        catch (BackupNotFoundException e) { return ApiErrors.NotFound(e.Message); }
        catch (AccountConflictException e) { return ApiErrors.Conflict(e.Message); }
    }

    private static int Whole(string? raw, int fallback, string name, int max, Dictionary<string, string> errors)
    {
        if (raw is null) return fallback;
        if (int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 1 && v <= max) return v;
        errors[name] = $"{name} must be a whole number from 1 to {max}";
        return fallback;
    }
}
