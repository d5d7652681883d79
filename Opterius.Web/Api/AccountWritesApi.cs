using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Opterius.Services.Accounts;
using Opterius.Services.Resources;
using Opterius.Services.Licensing;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>The body of <c>POST /api/v1/accounts</c> (documented shape; the handler reads it by hand).</summary>
public sealed record CreateAccountBody(string Username, string Domain, string Email, string Password, long PackageId);

/// <summary>What suspend and unsuspend answer.</summary>
public sealed record AccountStateDto(long Id, string Username, string Status);

/// <summary>Account writes: create (WHMCS Create), suspend and unsuspend (WHMCS Suspend / Unsuspend).</summary>
public static class AccountWritesApi
{
    public static RouteGroupBuilder MapAccountWritesApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/accounts").WithTags("Accounts")
            .RequireAuthorization(ApiAuth.Write).RequireRateLimiting(ApiLimits.Writes);
        group.MapPost("/", Create).WithMetadata(new AuditedWrite("create"))
            .Accepts<CreateAccountBody>("application/json")
            .Fails(422, 409, 403, 415, 413)
            .WithSummary("Create an account")
            .WithDescription("Provisions every resource synchronously. 201 with the account; 422 validation_failed (details name each bad field: a reserved system username, a domain that is no public FQDN); 409 conflict (the username or domain is taken, the domain is under or above another owner's account domain or is the server's host name, or something already exists on the server for these names: it is named, never adopted or overwritten); 403 license_required or account_limit_reached.");
        group.MapPost("/{id}/suspend", (HttpContext http, AccountSuspension s, string id, CancellationToken ct) =>
                ChangeAsync(http, id, "suspend", (actor, accountId) => s.SuspendAsync(actor, accountId, ct)))
            .WithMetadata(new AuditedWrite("suspend")).Fails(404, 409, 403)
            .WithSummary("Suspend an account")
            .WithDescription("The site answers 503, the PHP-FPM pool stops, the shell is nologin, mail login is refused; files and databases are kept. 409 conflict when not active.");
        group.MapPost("/{id}/unsuspend", (HttpContext http, AccountSuspension s, string id, CancellationToken ct) =>
                ChangeAsync(http, id, "unsuspend", (actor, accountId) => s.UnsuspendAsync(actor, accountId, ct)))
            .WithMetadata(new AuditedWrite("unsuspend")).Fails(404, 409, 403)
            .WithSummary("Unsuspend an account")
            .WithDescription("Restores exactly what suspension changed. 409 conflict when not suspended.");
        return group;
    }

    private static async Task<Results<Created<Envelope<AccountDto>>, JsonHttpResult<ApiError>>> Create(
        HttpContext http, AccountCreation creation, CancellationToken ct)
    {
        var body = await JsonBody.ReadAsync(http, ct);
        if (body.Error is { } bad)
        {
            await http.AuditRefusalAsync("create", null, null, bad.Value!.Error, bad.Value.Message);
            return bad;
        }
        var typeErrors = new Dictionary<string, string>();
        var request = body.Root.ValueKind == JsonValueKind.Object
            ? new CreateAccountRequest(Text(body.Root, "username", typeErrors), Text(body.Root, "domain", typeErrors),
                Text(body.Root, "email", typeErrors), Text(body.Root, "password", typeErrors), Id(body.Root, "package_id", typeErrors))
            : null;
        if (request is null)
        {
            const string message = "The body must be a JSON object with username, domain, email, password and package_id.";
            await http.AuditRefusalAsync("create", null, null, "validation_failed", message);
            return ApiErrors.Validation(message, new Dictionary<string, string> { ["body"] = message });
        }

        try
        {
            // The owner is the caller: a reseller's token creates accounts that reseller owns.
            var account = await creation.CreateAsync(http.Actor(), http.User.UserIdOf(), request, ct);
            return TypedResults.Created($"/api/v1/accounts/{account.Id}", new Envelope<AccountDto>(AccountDto.From(account)));
        }
        catch (AccountValidationException e)
        {
            // A field of the wrong JSON type reads as missing to the service; say what was actually wrong with it.
            var fields = e.Fields.ToDictionary();
            foreach (var (field, message) in typeErrors) fields[field] = message;
            var text = string.Join("; ", fields.Values);
            await http.AuditRefusalAsync("create", null, request.Username, "validation_failed", text);
            return ApiErrors.Validation(text, fields);
        }
        catch (ProvisioningFailedException e)
        {
            // Audited by the create path, which also removed what it had made, or kept the account when it could not.
            if (e.KeptAccountId is { } kept)
                return ApiErrors.Json(500, "provisioning_failed", $"The account could not be created. {e.Message}", new { resource = e.Resource, account_id = kept });
            return ApiErrors.Json(500, "provisioning_failed", $"The account could not be created; nothing was kept. {e.Message}",
                new { resource = e.Resource });
        }
        catch (Exception e) when (Refusal(e) is { } refusal)
        {
            await http.AuditRefusalAsync("create", null, request.Username, refusal.Value!.Error, e.Message);
            return refusal;
        }
    }

    private static async Task<Results<Ok<Envelope<AccountStateDto>>, JsonHttpResult<ApiError>>> ChangeAsync(
        HttpContext http, string id, string action, Func<Services.Audit.Actor, long, Task<Account>> change)
    {
        if (!ApiErrors.TryParseId(id, out var accountId))
        {
            var message = $"No account with id '{AccountsApi.Shorten(id)}' exists.";
            await http.AuditRefusalAsync(action, null, null, "not_found", message);
            return ApiErrors.NotFound(message);
        }
        try
        {
            var account = await change(http.Actor(), accountId);
            return TypedResults.Ok(new Envelope<AccountStateDto>(new(account.Id, account.Username, account.Status)));
        }
        catch (Exception e) when (Refusal(e) is { } refusal)
        {
            await http.AuditRefusalAsync(action, accountId, null, refusal.Value!.Error, e.Message);
            return refusal;
        }
    }

    /// <summary>The domain's "nothing was changed" exceptions as API errors.</summary>
    internal static JsonHttpResult<ApiError>? Refusal(Exception e) => e switch
    {
        LicenseRequiredException => ApiErrors.Forbidden("license_required", $"Writes are blocked until a valid license is installed. {e.Message}"),
        AccountLimitReachedException => ApiErrors.Forbidden("account_limit_reached", e.Message),
        AccountNotFoundException => ApiErrors.NotFound(e.Message),
        AccountConflictException => ApiErrors.Conflict(e.Message),
        AccountValidationException v => ApiErrors.Validation(v.Message, v.Fields),
        Opterius.Services.Backups.BackupNotFoundException => ApiErrors.NotFound(e.Message),
        InvalidAccountNameException => ApiErrors.Json(500, "invalid_account_record",
            $"The stored account cannot be acted on safely: {e.Message}. Correct the record in the panel database."),
        ResourceException => ApiErrors.Json(500, "operation_failed", e.Message),
        _ => null,
    };

    private static string? Text(JsonElement root, string name, Dictionary<string, string> errors)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.String) return value.GetString();
        errors[name] = $"{name} must be a JSON string, not {value.ValueKind.ToString().ToLowerInvariant()}";
        return null;
    }

    // Billing systems often send ids as strings ("3"): both forms are accepted, anything else names the field.
    private static long? Id(JsonElement root, string name, Dictionary<string, string> errors)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n)) return n;
        if (value.ValueKind == JsonValueKind.String && ApiErrors.TryParseId(value.GetString() ?? "", out var s)) return s;
        errors[name] = $"{name} must be the id of an existing package (GET /api/v1/packages)";
        return null;
    }
}
