using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Opterius.Web.Api;

/// <summary>
/// The interactive API reference at <c>/docs/api</c> for signed-in panel users: Scalar's viewer over the panel's own
/// OpenAPI document, its script served by the panel from the package (no CDN, no web fonts, no telemetry, no proxy),
/// and "try it" sending the bearer token the user pastes. Machine clients read <c>/api/openapi.json</c> with a token.
/// </summary>
public static class ApiReferencePage
{
    public const string Path = "/docs/api";
    public const string DocumentPath = Path + "/openapi.json";

    /// <summary>The scheme the viewer offers when the document names none: the token pasted in "try it" goes here.</summary>
    public const string BearerScheme = "bearer";

    public static IEndpointRouteBuilder MapApiReference(this IEndpointRouteBuilder app)
    {
        app.MapGet(DocumentPath, async (HttpContext http, CancellationToken ct) =>
            {
                // Read behind a sign-in: no shared cache nor the browser's keeps it for the next user of the machine.
                http.Response.Headers.CacheControl = "no-store";
                return TypedResults.Content(await ViewerDocumentAsync(http, ct), "application/json; charset=utf-8");
            })
            .RequireAuthorization().ExcludeFromDescription();
        app.MapScalarApiReference(Path, o => o
                .WithTitle("Opterius Panel API reference")
                .WithOpenApiRoutePattern(DocumentPath)
                .DisableDefaultFonts()
                .DisableTelemetry()
                .AddPreferredSecuritySchemes(BearerScheme))
            .RequireAuthorization();
        return app;
    }

    /// <summary>
    /// The OpenAPI document as the API serves it, with the relative server <c>/</c> first, which the viewer resolves against
    /// the page's own origin, so that "try it" sends to this panel (the document's own server is the host name and port
    /// 8443, which a panel behind another name or port, or a test's listener, does not answer) and nothing in the request
    /// (a forged Host header) decides where a pasted token goes, plus, only when it declares no security scheme, an
    /// HTTP bearer scheme required by every operation, so that the viewer has a place for the token. The API's document
    /// itself is not changed.
    /// </summary>
    private static async Task<string> ViewerDocumentAsync(HttpContext http, CancellationToken ct)
    {
        var provider = http.RequestServices.GetRequiredKeyedService<IOpenApiDocumentProvider>("v1");
        var document = await provider.GetOpenApiDocumentAsync(ct);
        using var text = new StringWriter();
        document.SerializeAsV31(new OpenApiJsonWriter(text));
        var json = JsonNode.Parse(text.ToString())!.AsObject();
        var servers = new JsonArray(new JsonObject { ["url"] = "/", ["description"] = "This panel, as you opened it" });
        foreach (var server in json["servers"] as JsonArray ?? []) servers.Add(server?.DeepClone());
        json["servers"] = servers;
        var components = json["components"] as JsonObject ?? (JsonObject)(json["components"] = new JsonObject());
        if (components["securitySchemes"] is JsonObject { Count: > 0 }) return json.ToJsonString();
        components["securitySchemes"] = new JsonObject
        {
            [BearerScheme] = new JsonObject
            {
                ["type"] = "http", ["scheme"] = "bearer", ["bearerFormat"] = "JWT",
                ["description"] = "An API token: Settings → API tokens in the panel, or `tokens create`.",
            },
        };
        json["security"] ??= new JsonArray(new JsonObject { [BearerScheme] = new JsonArray() });
        return json.ToJsonString();
    }
}
