using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Opterius.Web.Api;

/// <summary>A JSON request body, or the precise 4xx that says why it cannot be read.</summary>
public sealed record BodyRead(JsonElement Root, JsonHttpResult<ApiError>? Error);

/// <summary>
/// Reads API request bodies by hand so that every way a body can be wrong (type, size, syntax) gets its own
/// 4xx with the error body, and is audited like any other refused write, instead of a framework 400 or 500.
/// </summary>
public static class JsonBody
{
    public const int MaxBytes = 64 * 1024;

    public static async Task<BodyRead> ReadAsync(HttpContext http, CancellationToken ct)
    {
        if (!IsJson(http.Request.ContentType))
            return Fail(415, "unsupported_media_type", "Send the body as JSON with 'Content-Type: application/json'.");
        if (http.Request.ContentLength > MaxBytes) return TooLarge();
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxBytes;

        var buffer = new MemoryStream();
        try
        {
            var chunk = new byte[8192];
            int read;
            while ((read = await http.Request.Body.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > MaxBytes) return TooLarge();
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge) { return TooLarge(); }

        if (buffer.Length == 0) return Fail(400, "invalid_json", "The request body is empty: send a JSON object.");
        try
        {
            using var doc = JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
            return new(doc.RootElement.Clone(), null);
        }
        catch (JsonException e)
        {
            return Fail(400, "invalid_json", $"The request body is not valid JSON: {e.Message}");
        }
    }

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var type)
        && (type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || type.MediaType.Value?.EndsWith("+json", StringComparison.OrdinalIgnoreCase) == true)
        && (type.Charset.Value is null || type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    private static BodyRead TooLarge() => Fail(413, "payload_too_large", $"The request body is larger than {MaxBytes / 1024} kB.");

    private static BodyRead Fail(int status, string code, string message) => new(default, ApiErrors.Json(status, code, message));
}
