using Microsoft.AspNetCore.Http.HttpResults;

namespace Opterius.Web.Api;

/// <summary>The error body every API failure carries: <c>{"error": code, "message": text}</c>.</summary>
public sealed record ApiError(string Error, string Message, object? Details = null);

public static class ApiErrors
{
    public static JsonHttpResult<ApiError> NotFound(string message) => Json(404, "not_found", message);
    public static JsonHttpResult<ApiError> Validation(string message, object? fields = null) => Json(422, "validation_failed", message, fields);
    public static JsonHttpResult<ApiError> Conflict(string message) => Json(409, "conflict", message);
    public static JsonHttpResult<ApiError> Forbidden(string code, string message) => Json(403, code, message);

    public static JsonHttpResult<ApiError> Json(int status, string code, string message, object? details = null) =>
        TypedResults.Json(new ApiError(code, message, details), statusCode: status);

    /// <summary>Writes the error body outside an endpoint (auth challenges, rate limits, crashes).</summary>
    public static Task WriteAsync(HttpContext http, int status, string code, string message)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(new ApiError(code, message));
    }

    /// <summary>Parses an id from the route; anything but a positive 64-bit number is "no such account".</summary>
    public static bool TryParseId(string raw, out long id) =>
        long.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out id) && id > 0;
}
