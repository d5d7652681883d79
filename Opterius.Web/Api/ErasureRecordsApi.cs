using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>
/// Erasure records: the signed record of a finished deletion and the public key that verifies it, for API tokens, and the
/// same record for the signed-in UI (cookie) as a download.
/// </summary>
public static class ErasureRecordsApi
{
    public const string UiPath = "/ui/deletions/{job}/record";

    public static string UiPathOf(long jobId) => $"/ui/deletions/{jobId}/record";

    public static RouteGroupBuilder MapErasureRecordsApi(this RouteGroupBuilder api)
    {
        api.MapGet("/deletions/{job}/record", Record).WithTags("Deletions").RequireAuthorization(ApiAuth.Read)
            .Produces(200, contentType: "application/json").Fails(404, 409)
            .WithName("getErasureRecord").WithSummary("The signed erasure record of a finished deletion")
            .WithDescription("{\"record\": {...}, \"signature\": \"base64\"}: the signature (ECDSA P-256, SHA-256, DER) covers the exact bytes of the record object, "
                + "which stand alone on the document's second line; verify with the key of GET /api/v1/deletions/record-key. 409 while the job runs or when it failed.");
        api.MapGet("/deletions/record-key", (ErasureRecords records) => TypedResults.Text(records.PublicKeyPem, "application/x-pem-file"))
            .WithTags("Deletions").RequireAuthorization(ApiAuth.Read)
            .Produces(200, contentType: "application/x-pem-file")
            .WithName("getErasureRecordKey").WithSummary("The public key (PEM) that verifies erasure records");
        return api;
    }

    /// <summary>The UI's download: a signed-in panel user's cookie, with the same owner scoping.</summary>
    public static IEndpointRouteBuilder MapErasureRecordDownload(this IEndpointRouteBuilder app)
    {
        app.MapGet(UiPath, Record).RequireAuthorization().ExcludeFromDescription();
        return app;
    }

    private static async Task<IResult> Record(HttpContext http, ErasureRecords records, string job, CancellationToken ct)
    {
        var notFound = ApiErrors.NotFound($"No deletion job with id '{AccountsApi.Shorten(job)}' exists.");
        if (!ApiErrors.TryParseId(job, out var jobId)) return notFound;
        byte[]? document;
        try { document = await records.IssueAsync(http.User.Viewer(), jobId, ct); }
        catch (AccountConflictException e) { return ApiErrors.Conflict(e.Message); }
        // A reseller asking for another owner's job learns nothing, not even that it exists.
        return document is null ? notFound : TypedResults.File(document, "application/json", $"erasure-record-job-{jobId}.json");
    }
}
