using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Opterius.Services.Accounts;

namespace Opterius.Web.Api;

/// <summary>
/// The OpenAPI document at <c>/api/openapi.json</c>, shaped so a reseller's dashboard can generate a client from it
/// (and Redocly's recommended rules find nothing: Opterius.Web.Tests/Api/OpenApiLintTests). What every operation
/// shares is added here once: the bearer scheme, the 401/403/500 (and 429 for rate-limited writes) error answers.
/// Each endpoint still names itself: <c>.WithName("camelCaseId")</c> (the operationId, unique), <c>.WithSummary(...)</c>,
/// and <c>.Fails(...)</c> for its own error statuses.
/// </summary>
public static class ApiDocument
{
    public const string BearerScheme = "bearer";

    /// <summary>The tags endpoints use (<c>WithTags</c>), each with what a reader of the reference sees under it.</summary>
    private static readonly Dictionary<string, string> Tags = new()
    {
        ["Accounts"] = "Hosting accounts: list, read, create, suspend, unsuspend and delete.",
        ["Deletions"] = "Deletion jobs: every step of a deletion and the verification after the last one.",
        ["Backups"] = "Final backups taken before a deletion: list, read, restore and purge.",
        ["Packages"] = "The hosting packages an account can be created with.",
        ["Server"] = "The connection test and the calling token.",
    };

    /// <summary>What each shared error status means, for the responses this transformer adds or that only say the reason phrase.</summary>
    private static readonly Dictionary<string, string> ErrorMeanings = new()
    {
        ["400"] = "invalid_json (the body is not JSON) or idempotency_key_invalid (the Idempotency-Key header is malformed).",
        ["401"] = "unauthenticated: the token is missing, malformed, expired, wrongly signed or revoked.",
        ["403"] = "insufficient_scope (the token lacks the scope); for writes also license_required or account_limit_reached.",
        ["404"] = "not_found: no such account or job, or not the caller's; bad ids too.",
        ["409"] = "conflict (the message says what holds the name, or the account's state), or idempotency_in_progress "
            + "(the first request with this Idempotency-Key is still running: send it again).",
        ["413"] = "payload_too_large: the body is over 64 kB.",
        ["415"] = "unsupported_media_type: send application/json.",
        ["422"] = "validation_failed (details name each field) or idempotency_key_reused (the key was used for another request).",
        ["429"] = "rate_limited: too many writes with this token; Retry-After says when to try again.",
        ["500"] = "internal_error, or the operation's own failure (provisioning_failed, deletion_failed): see the description.",
    };

    public static IServiceCollection AddPanelOpenApi(this IServiceCollection services) => services.AddOpenApi(o =>
    {
        o.AddDocumentTransformer((document, context, _) =>
        {
            var host = context.ApplicationServices.GetRequiredService<IOptions<ProvisioningOptions>>().Value.EffectiveHostname();
            document.Info = new OpenApiInfo
            {
                Title = "Opterius Panel API",
                Version = "1",
                Description = "The REST API of an Opterius Panel server: `Authorization: Bearer <token>` (Settings → API tokens, or "
                    + "`tokens create`). Success bodies are `{\"data\": …}`; every error is `{\"error\": code, \"message\": text}`.",
                // The repository carries no license file: a custom SPDX reference until one is chosen.
                License = new OpenApiLicense { Name = "Proprietary", Identifier = "LicenseRef-Proprietary" },
            };
            // No trailing slash: the paths begin with /api.
            document.Servers =
            [
                new OpenApiServer
                {
                    Url = "https://{host}:{port}",
                    Description = "This panel",
                    Variables = new Dictionary<string, OpenApiServerVariable>
                    {
                        ["host"] = new() { Default = host, Description = "The panel's host name" },
                        ["port"] = new() { Default = "8443", Description = "The panel's HTTPS port" },
                    },
                },
            ];
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                BearerFormat = "JWT",
                Description = "An API token minted by the panel; its role, owner and scopes decide what it may do.",
            };
            foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
                if (tag.Name is { } name && Tags.TryGetValue(name, out var text)) tag.Description = text;
            return Task.CompletedTask;
        });
        o.AddOperationTransformer((operation, context, _) =>
        {
            var metadata = context.Description.ActionDescriptor.EndpointMetadata;
            if (!metadata.OfType<IAuthorizeData>().Any()) return Task.CompletedTask;
            operation.Security ??= [];
            operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, context.Document)] = [] });
            operation.Responses ??= [];
            var shared = new List<string> { "401", "403", "500" };
            if (metadata.OfType<EnableRateLimitingAttribute>().Any()) shared.Add("429");
            foreach (var status in shared.Where(s => !operation.Responses.ContainsKey(s)))
                operation.Responses[status] = new OpenApiResponse
                {
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = new OpenApiSchemaReference(nameof(ApiError), context.Document) },
                    },
                };
            foreach (var (status, response) in operation.Responses)
                if (response is OpenApiResponse r && ErrorMeanings.TryGetValue(status, out var meaning)
                    && (string.IsNullOrEmpty(r.Description) || r.Description == ReasonPhrase(status)))
                    r.Description = meaning;
            return Task.CompletedTask;
        });
    });

    private static string ReasonPhrase(string status) =>
        int.TryParse(status, out var code) ? Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(code) : "";
}
