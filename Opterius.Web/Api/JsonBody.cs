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
        if (await ReadBytesAsync(http, ct) is not { } bytes) return Fail(413, "payload_too_large", TooLargeMessage);
        if (bytes.Length == 0) return Fail(400, "invalid_json", "The request body is empty: send a JSON object.");
        try
        {
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
            return new(doc.RootElement.Clone(), null);
        }
        catch (JsonException e)
        {
            return Fail(400, "invalid_json", $"The request body is not valid JSON: {e.Message}");
        }
    }

    public static readonly string TooLargeMessage = $"The request body is larger than {MaxBytes / 1024} kB.";

    /// <summary>The body's bytes, at most <see cref="MaxBytes"/>; null when it is larger.</summary>
    public static async Task<byte[]?> ReadBytesAsync(HttpContext http, CancellationToken ct)
    {
        if (http.Request.ContentLength > MaxBytes) return null;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxBytes;

        var buffer = new MemoryStream();
        try
        {
            var chunk = new byte[8192];
            int read;
            while ((read = await http.Request.Body.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > MaxBytes) return null;
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge) { return null; }
        return buffer.ToArray();
    }

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var type)
        && (type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || type.MediaType.Value?.EndsWith("+json", StringComparison.OrdinalIgnoreCase) == true)
        && (type.Charset.Value is null || type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));

    private static BodyRead Fail(int status, string code, string message) => new(default, ApiErrors.Json(status, code, message));
}
