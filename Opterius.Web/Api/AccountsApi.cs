using Opterius.Services.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Opterius.Services.Accounts;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>The account as the API shows it (snake_case on the wire).</summary>
/// <remarks><see cref="DeletionDueAt"/> (UTC, with its Z) is there while a deletion is scheduled, <see cref="DeletionBlocked"/>
/// while a due one could not start (why).</remarks>
public sealed record AccountDto(long Id, string Username, string Domain, string Email, string Status, long PackageId,
    long OwnerId, string PhpVersion, DateTime CreatedAt, DateTime? SuspendedAt, DateTime? DeletionDueAt, string? DeletionBlocked)
{
    public static AccountDto From(Account a) =>
        new(a.Id, a.Username, a.Domain, a.Email, a.Status, a.PackageId, a.OwnerId, a.PhpVersion, a.CreatedAt, a.SuspendedAt, UtcTimes.Utc(a.DeletionDueAt),
            a.DeletionBlocked);
}

public sealed record PageMeta(int Page, int PerPage, long Total);
public sealed record Envelope<T>(T Data);
public sealed record ListEnvelope<T>(IReadOnlyList<T> Data, PageMeta Meta);

/// <summary>Reading accounts: the list and one account.</summary>
public static class AccountsApi
{
    public static RouteGroupBuilder MapAccountsApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/accounts").WithTags("Accounts");
        group.MapGet("/", List).RequireAuthorization(ApiAuth.Read).Fails(422)
            .WithName("listAccounts").WithSummary("List accounts: a page, searchable and filterable by status");
        group.MapGet("/{id}", Get).RequireAuthorization(ApiAuth.Read).Fails(404)
            .WithName("getAccount").WithSummary("One account");
        return group;
    }

    private static async Task<Results<Ok<ListEnvelope<AccountDto>>, JsonHttpResult<ApiError>>> List(
        HttpContext http, AccountStore accounts, string? page, string? per_page, string? search, string? status,
        string? sort, string? order, CancellationToken ct)
    {
        var errors = new Dictionary<string, string>();
        var p = ParseInt(page, 1, "page", 1, 1_000_000, errors);
        var pp = ParseInt(per_page, 25, "per_page", 1, AccountQuery.MaxPerPage, errors);
        if (search is { Length: > AccountQuery.MaxSearchLength }) errors["search"] = $"search must be at most {AccountQuery.MaxSearchLength} characters";
        if (status is not null && !AccountStatus.All.Contains(status)) errors["status"] = $"status must be one of {string.Join(", ", AccountStatus.All)}";
        var sortColumn = sort ?? "username";
        if (!AccountQuery.SortColumns.Contains(sortColumn)) errors["sort"] = $"sort must be one of {string.Join(", ", AccountQuery.SortColumns)}";
        if (order is not null and not ("asc" or "desc")) errors["order"] = "order must be asc or desc";
        if (errors.Count > 0) return ApiErrors.Validation(string.Join("; ", errors.Values), errors);

        var result = await accounts.ListAsync(http.User.Viewer(), new AccountQuery(p, pp, search?.Trim(), status, sortColumn, order == "desc"), ct);
        return TypedResults.Ok(new ListEnvelope<AccountDto>(result.Items.Select(AccountDto.From).ToList(), new PageMeta(p, pp, result.Total)));
    }

    private static async Task<Results<Ok<Envelope<AccountDto>>, JsonHttpResult<ApiError>>> Get(
        HttpContext http, AccountStore accounts, string id, CancellationToken ct)
    {
        var account = ApiErrors.TryParseId(id, out var accountId) ? await accounts.FindAsync(http.User.Viewer(), accountId, ct) : null;
        return account is null
            ? ApiErrors.NotFound($"No account with id '{Shorten(id)}' exists.")
            : TypedResults.Ok(new Envelope<AccountDto>(AccountDto.From(account)));
    }

    /// <summary>A caller's text quoted in a message or a log line, cut at <paramref name="max"/> characters.</summary>
    internal static string Shorten(string text, int max = 40) => text.Length <= max ? text : text[..max] + "…";

    private static int ParseInt(string? raw, int fallback, string name, int min, int max, Dictionary<string, string> errors)
    {
        if (raw is null) return fallback;
        if (int.TryParse(raw, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= min && v <= max)
            return v;
        errors[name] = $"{name} must be a whole number from {min} to {max}";
        return fallback;
    }
}
