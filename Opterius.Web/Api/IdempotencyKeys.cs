using System.Buffers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Opterius.Services.Idempotency;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

/// <summary>Marks a write that honours <c>Idempotency-Key</c> (<see cref="IdempotencyKeys"/>).</summary>
public sealed record IdempotentWrite;

/// <summary>
/// <c>Idempotency-Key</c> on the account writes, in one place for every endpoint that takes it: the same key with the
/// same request (method, path and query, body) from the same caller gets the first answer again for a day, stored in
/// the panel database; the same key with another request is <c>422 idempotency_key_reused</c>; a request whose key is
/// held by one still running waits for it, then gets its answer. Only successes (2xx) are kept: a refusal changed
/// nothing and a 5xx (deletion_failed, provisioning_failed) stopped part way, so a retry must run again and see the
/// server as it is now: after the license is fixed, or to resume the deletion where it stopped.
/// </summary>
public static class IdempotencyKeys
{
    public const string Header = "Idempotency-Key";

    /// <summary>Set on a replayed answer, so a client can tell it from a fresh one.</summary>
    public const string ReplayedHeader = "Idempotent-Replayed";

    public const int MaxLength = 255;
    public const string Pattern = "^[A-Za-z0-9._:~+/=-]{1,255}$";

    /// <summary>How long a request waits for the first one with its key; then <c>409 idempotency_in_progress</c>.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(30);

    /// <summary>The headers of the first answer that a replay repeats; the others (Date, ...) are the replay's own.</summary>
    private static readonly string[] KeptHeaders = ["Content-Type", "Location", "Preference-Applied"];

    private static readonly SearchValues<char> KeyCharacters =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:~+/=-");

    /// <summary>
    /// Makes the endpoint honour the header, and documents it: the header and its 400, 409, 413 and 422 answers (413: the
    /// body is read whole to fingerprint it, also on the writes that take none, suspend and DELETE).
    /// </summary>
    public static RouteHandlerBuilder WithIdempotencyKey(this RouteHandlerBuilder builder) =>
        builder.WithMetadata(new IdempotentWrite()).AddOpenApiOperationTransformer((operation, _, _) =>
        {
            operation.Parameters ??= [];
            operation.Parameters.Add(new OpenApiParameter
            {
                Name = Header,
                In = ParameterLocation.Header,
                Description = "Makes a retry safe: the same key with the same request gets the first answer (2xx) again for 24 hours, "
                    + $"with '{ReplayedHeader}: true'; the same key with another request is 422 idempotency_key_reused; a retry while the "
                    + "first request runs waits for it. Errors are not kept: a retry runs again. Keys are the caller's own (per panel user).",
                Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = MaxLength, Pattern = Pattern },
            });
            return Task.CompletedTask;
        }).Fails(400, 409, 413, 422);

    public static IApplicationBuilder UseIdempotencyKeys(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<IdempotentWrite>() is null || !http.Request.Headers.TryGetValue(Header, out var values))
        {
            await next(http);
            return;
        }
        var action = http.GetEndpoint()?.Metadata.GetMetadata<AuditedWrite>()?.Action ?? "write";
        if (Problem(values) is { } problem)
        {
            await RefuseAsync(http, action, 400, "idempotency_key_invalid", problem);
            return;
        }
        if (await JsonBody.ReadBytesAsync(http, http.RequestAborted) is not { } body)
        {
            await RefuseAsync(http, action, 413, "payload_too_large", JsonBody.TooLargeMessage);
            return;
        }
        http.Request.Body = new MemoryStream(body, writable: false);

        var store = http.RequestServices.GetRequiredService<IdempotencyStore>();
        var key = Unquoted(values[0]!);
        var target = http.Request.Path + http.Request.QueryString;
        var request = new IdempotentRequest(http.User.UserIdOf(), key, store.Fingerprint(http.Request.Method, target, body),
            AccountsApi.Shorten($"{http.Request.Method} {target}", 500));
        switch (await store.ClaimAsync(request, MaxWait, http.RequestAborted))
        {
            case KeyClaim.Claimed claim:
                await RunAsync(http, next, store, request, claim);
                return;
            case KeyClaim.Replay replay:
                await http.AuditRefusalAsync(action, ApiLimits.RouteId(http), null, "replayed",
                    $"{Header} {AccountsApi.Shorten(key)}: the first answer ({replay.Answer.Status}) again");
                await ReplayAsync(http, replay.Answer);
                return;
            case KeyClaim.Reused reused:
                var first = reused.FirstRequestLine == request.RequestLine ? $"{request.RequestLine} with another body" : reused.FirstRequestLine;
                await RefuseAsync(http, action, 422, "idempotency_key_reused",
                    $"The {Header} '{AccountsApi.Shorten(key)}' was already used for a different request ({first}) in the last "
                    + $"{IdempotencyStore.KeptFor.TotalHours:0} hours: send a new key with a new request.");
                return;
            default:
                http.Response.Headers.RetryAfter = "5";
                await RefuseAsync(http, action, 409, "idempotency_in_progress",
                    $"A request with the {Header} '{AccountsApi.Shorten(key)}' is still running after {MaxWait.TotalSeconds:0} s: "
                    + "send it again in a few seconds to get its answer.");
                return;
        }
    });

    /// <summary>
    /// Runs the request with its answer captured, keeps the answer when it is a success (else frees the key), and only
    /// then sends it: the answer is saved before the caller can see it, and a failure to save it (the database gone
    /// after the write was done) is logged and leaves the caller's answer whole; only a retry runs again.
    /// </summary>
    private static async Task RunAsync(HttpContext http, RequestDelegate next, IdempotencyStore store, IdempotentRequest request, KeyClaim.Claimed claim)
    {
        var original = http.Features.Get<IHttpResponseBodyFeature>()!;
        var buffer = new MemoryStream();
        // Without the original as its prior feature: nothing the endpoint does starts the real response (sends headers).
        var capture = new StreamResponseBodyFeature(buffer);
        http.Features.Set<IHttpResponseBodyFeature>(capture);
        // A keyed request runs to its end when its caller goes away (a billing module's timeout): the caller said it will
        // retry, and the retry is what the answer is kept for. A synchronous DELETE would otherwise stop waiting and keep nothing.
        var callerGone = http.RequestAborted;
        http.RequestAborted = CancellationToken.None;
        var log = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(IdempotencyKeys).FullName!);
        var kept = false;
        try
        {
            await using (store.Hold(request, claim))
            {
                await next(http);
                await capture.CompleteAsync();
            }
            if (http.Response.StatusCode is >= 200 and < 300)
            {
                var headers = KeptHeaders.Where(h => http.Response.Headers.ContainsKey(h)).ToDictionary(h => h, h => http.Response.Headers[h].ToString());
                try
                {
                    kept = await store.KeepAsync(request, claim, new KeptAnswer(http.Response.StatusCode, headers, buffer.ToArray()), CancellationToken.None);
                    if (!kept) log.LogWarning("{Header} {Key}: the lease was taken over before the answer was kept; the new holder's answer is the kept one", Header, AccountsApi.Shorten(request.Key));
                }
                catch (Exception e)
                {
                    log.LogError(e, "{Header} {Key}: the answer ({Status}) could not be kept; a retry runs the request again", Header, AccountsApi.Shorten(request.Key), http.Response.StatusCode);
                }
            }
        }
        finally
        {
            http.Features.Set(original);
            if (!kept)
            {
                try { await store.ReleaseAsync(request, claim, CancellationToken.None); }
                catch (Exception e) { log.LogError(e, "{Header} {Key}: the key could not be freed; it is free when its lease ends", Header, AccountsApi.Shorten(request.Key)); }
            }
        }
        if (callerGone.IsCancellationRequested) return;
        buffer.Position = 0;
        try { await buffer.CopyToAsync(http.Response.Body, callerGone); }
        catch (OperationCanceledException) when (callerGone.IsCancellationRequested) { }
    }

    private static async Task ReplayAsync(HttpContext http, KeptAnswer answer)
    {
        http.Response.StatusCode = answer.Status;
        foreach (var (name, value) in answer.Headers) http.Response.Headers[name] = value;
        http.Response.Headers[ReplayedHeader] = "true";
        if (answer.Body.Length > 0) await http.Response.Body.WriteAsync(answer.Body, http.RequestAborted);
    }

    private static async Task RefuseAsync(HttpContext http, string action, int status, string code, string message)
    {
        await http.AuditRefusalAsync(action, ApiLimits.RouteId(http), null, code, message);
        await ApiErrors.WriteAsync(http, status, code, message);
    }

    /// <summary>Why the header cannot be a key, or null. A structured-field string (<c>"abc"</c>, as the IETF draft sends it) is read without its quotes.</summary>
    private static string? Problem(Microsoft.Extensions.Primitives.StringValues values)
    {
        if (values.Count != 1) return $"Send one {Header} header, not {values.Count}.";
        var key = Unquoted(values[0] ?? "");
        var got = key.Length == 0 ? "it is empty"
            : key.Length > MaxLength ? $"it has {key.Length}"
            : key.AsSpan().IndexOfAnyExcept(KeyCharacters) is var at and >= 0 ? $"character {at + 1} is not one of them"
            : null;
        return got is null ? null
            : $"{Header} must be 1-{MaxLength} characters of letters, digits and - _ . : ~ + / = (a UUID is a good key): {got}.";
    }

    private static string Unquoted(string raw) => raw.Length >= 2 && raw[0] == '"' && raw[^1] == '"' ? raw[1..^1] : raw;
}
