using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

/// <summary>
/// The OpenAPI document the panel serves is one a reseller's dashboard can generate a client from: Redocly's own
/// linter (<c>@redocly/cli</c>, installed project-locally by scripts/install.sh) with its recommended rules finds no
/// error and no warning in it.
/// </summary>
public sealed class OpenApiLintTests(ApiApp app) : IClassFixture<ApiApp>
{
    /// <summary>Where scripts/install.sh puts the pinned CLI.</summary>
    public static string Redocly => Path.Combine(PrivateServices.RepoRoot, ".tools", "redocly", "node_modules", ".bin", "redocly");

    /// <summary>Why scripts/install.sh could not install it (too old a Node.js, npm's own error), when it could not.</summary>
    private static string InstallError => Path.Combine(PrivateServices.RepoRoot, ".tools", "redocly", "install-error");

    [Fact]
    public async Task TheServedOpenApiDocumentHasNoErrorAndNoWarningUnderRedoclysRecommendedRules()
    {
        Assert.False(File.Exists(InstallError), $"scripts/install.sh could not install the Redocly CLI: {(File.Exists(InstallError) ? File.ReadAllText(InstallError).Trim() : "")}");
        Assert.True(File.Exists(Redocly), $"the Redocly CLI is missing at {Redocly}: run scripts/install.sh (it installs @redocly/cli with npm)");
        var response = await (await app.ClientAsync(scopes: ["accounts:read"])).GetAsync("/api/openapi.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = Path.Combine(Directory.CreateTempSubdirectory("opterius-openapi-").FullName, "openapi.json");
        await File.WriteAllTextAsync(document, await response.Content.ReadAsStringAsync());

        var (exit, output) = await LintAsync(document);

        // The JSON report counts every problem by severity; the readable list is in the message when there are any.
        var totals = JsonDocument.Parse(output[output.IndexOf('{')..]).RootElement.GetProperty("totals");
        var (errors, warnings) = (totals.GetProperty("errors").GetInt32(), totals.GetProperty("warnings").GetInt32());
        Assert.True(exit == 0 && errors == 0 && warnings == 0,
            $"redocly lint: exit {exit}, {errors} errors, {warnings} warnings:\n{(await LintAsync(document, "stylish")).Output}");
    }

    [Fact]
    public async Task TheFourRetriableWritesDocumentTheIdempotencyKeyHeaderAndItsErrorAnswers()
    {
        var doc = await (await (await app.ClientAsync(scopes: ["accounts:read"])).GetAsync("/api/openapi.json")).JsonOf();
        var writes = new[] { ("/api/v1/accounts", "post"), ("/api/v1/accounts/{id}/suspend", "post"), ("/api/v1/accounts/{id}/unsuspend", "post"), ("/api/v1/accounts/{id}", "delete") };
        foreach (var (path, method) in writes)
        {
            var operation = doc.GetProperty("paths").GetProperty(path).GetProperty(method);
            var header = operation.GetProperty("parameters").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "Idempotency-Key");
            Assert.Equal("header", header.GetProperty("in").GetString());
            Assert.Equal(255, header.GetProperty("schema").GetProperty("maxLength").GetInt32());
            // 413: the middleware reads the body to fingerprint it, also on the writes that take none (suspend, DELETE).
            foreach (var status in (string[])["400", "401", "403", "409", "413", "422", "429", "500"])
                Assert.True(operation.GetProperty("responses").TryGetProperty(status, out var r)
                    && r.GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString() == "#/components/schemas/ApiError",
                    $"{method} {path} does not document {status} with the error schema");
        }
    }

    private static async Task<(int Exit, string Output)> LintAsync(string document, string format = "json")
    {
        var start = new ProcessStartInfo(Redocly) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["lint", "--extends=recommended", $"--format={format}", "--max-problems=500", document]) start.ArgumentList.Add(a);
        // Offline and quiet: no telemetry, no update check.
        start.Environment["REDOCLY_TELEMETRY"] = "off";
        start.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        start.Environment["CI"] = "true";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, format == "json" ? await stdout : await stdout + await stderr);
    }
}
