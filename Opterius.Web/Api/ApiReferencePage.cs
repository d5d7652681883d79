using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Opterius.Web.Api;

/// <summary>
/// The readable API reference at <c>/docs/api</c>: the panel's own OpenAPI document rendered as plain HTML on
/// the server (no script, no CDN), for signed-in panel users. Machine clients read <c>/api/openapi.json</c> with a token.
/// </summary>
public static class ApiReferencePage
{
    public const string Path = "/docs/api";

    public static IEndpointRouteBuilder MapApiReference(this IEndpointRouteBuilder app)
    {
        app.MapGet(Path, async (HttpContext http, CancellationToken ct) =>
            TypedResults.Content(Render(await DocumentJsonAsync(http, ct)), "text/html; charset=utf-8"))
            .RequireAuthorization().ExcludeFromDescription();
        app.MapGet(Path + "/openapi.json", async (HttpContext http, CancellationToken ct) =>
            TypedResults.Content(await DocumentJsonAsync(http, ct), "application/json; charset=utf-8"))
            .RequireAuthorization().ExcludeFromDescription();
        return app;
    }

    private static async Task<string> DocumentJsonAsync(HttpContext http, CancellationToken ct)
    {
        var provider = http.RequestServices.GetRequiredKeyedService<IOpenApiDocumentProvider>("v1");
        var document = await provider.GetOpenApiDocumentAsync(ct);
        using var text = new StringWriter();
        document.SerializeAsV31(new OpenApiJsonWriter(text));
        return text.ToString();
    }

    private static readonly string[] Methods = ["get", "post", "put", "patch", "delete"];

    private static string Render(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var h = new StringBuilder();
        h.Append("""
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Opterius Panel API reference</title>
            <style>
            body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330;line-height:1.45}
            code,pre{font-family:ui-monospace,monospace;background:#f2f4f8;border-radius:4px}code{padding:0 .25rem}pre{padding:.6rem;overflow:auto}
            section{border:1px solid #d8dce5;border-radius:6px;padding:.4rem 1rem;margin:1rem 0}
            .m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}.get{color:#1565c0}.post{color:#2e7d32}.delete{color:#c62828}
            table{border-collapse:collapse}td,th{text-align:left;padding:.15rem .8rem .15rem 0;vertical-align:top}
            </style></head><body>
            <h1>Opterius Panel API reference</h1>
            <p>Base URL <code>https://SERVER:8443/api/v1/</code>. Every request sends <code>Authorization: Bearer &lt;token&gt;</code>
            (Settings → API → New Token, or <code>tokens create</code>). Success bodies are <code>{"data": …}</code>; errors are
            <code>{"error": "code", "message": "text"}</code>. Live step events of a deletion stream from the SignalR hub
            <code>/hubs/deletions</code> (method <code>Watch(account_id)</code>). Machine-readable: <a href="/docs/api/openapi.json">OpenAPI document</a>
            (also <code>/api/openapi.json</code> with a token).</p>
            """);
        foreach (var path in doc.RootElement.GetProperty("paths").EnumerateObject())
        {
            foreach (var method in Methods)
            {
                if (!path.Value.TryGetProperty(method, out var op)) continue;
                h.Append("<section><h3><span class=\"m ").Append(method).Append("\">").Append(method).Append("</span> <code>")
                    .Append(E(path.Name)).Append("</code> ").Append(E(Str(op, "summary"))).Append("</h3>");
                if (Str(op, "description") is { Length: > 0 } d) h.Append("<p>").Append(E(d)).Append("</p>");
                if (op.TryGetProperty("parameters", out var ps) && ps.GetArrayLength() > 0)
                {
                    h.Append("<table><tr><th>parameter</th><th>in</th><th>type</th></tr>");
                    foreach (var p in ps.EnumerateArray())
                        h.Append("<tr><td><code>").Append(E(Str(p, "name"))).Append("</code></td><td>").Append(E(Str(p, "in")))
                            .Append("</td><td>").Append(E(p.TryGetProperty("schema", out var s) ? TypeOf(doc.RootElement, s) : "")).Append("</td></tr>");
                    h.Append("</table>");
                }
                if (op.TryGetProperty("requestBody", out var body) && FirstSchema(body) is { } bs)
                    h.Append("<p>Body (JSON): <code>").Append(E(TypeOf(doc.RootElement, bs, expand: true))).Append("</code></p>");
                if (op.TryGetProperty("responses", out var rs))
                {
                    h.Append("<p>Responses: ");
                    h.AppendJoin(", ", rs.EnumerateObject().Select(r => "<code>" + E(r.Name) + "</code>" +
                        (FirstSchema(r.Value) is { } schema ? " " + E(TypeOf(doc.RootElement, schema)) : "")));
                    h.Append("</p>");
                }
                h.Append("</section>");
            }
        }
        return h.Append("</body></html>").ToString();
    }

    private static JsonElement? FirstSchema(JsonElement holder) =>
        holder.TryGetProperty("content", out var content) && content.EnumerateObject().FirstOrDefault() is { Value.ValueKind: JsonValueKind.Object } first
        && first.Value.TryGetProperty("schema", out var schema) ? schema : null;

    /// <summary>A one-line type: a schema name, or for a body its fields.</summary>
    private static string TypeOf(JsonElement root, JsonElement schema, bool expand = false)
    {
        if (schema.TryGetProperty("$ref", out var r))
        {
            var name = r.GetString()!.Split('/')[^1];
            if (!expand || !root.GetProperty("components").GetProperty("schemas").TryGetProperty(name, out var target)) return name;
            schema = target;
        }
        if (schema.TryGetProperty("properties", out var props))
            return "{ " + string.Join(", ", props.EnumerateObject().Select(p => $"{p.Name}: {TypeOf(root, p.Value)}")) + " }";
        if (schema.TryGetProperty("type", out var t))
            return t.ValueKind == JsonValueKind.Array ? string.Join("|", t.EnumerateArray().Select(x => x.GetString())) : t.GetString() ?? "";
        return "";
    }

    private static string Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
