using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Dapper;
using MySqlConnector;
using Opterius.Services.Tokens;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Cli;

/// <summary>The CLI as an operator runs it: the panel binary with a verb, configured by environment variables.</summary>
public sealed class CliTests(PanelApp app) : IClassFixture<PanelApp>
{
    private sealed record Run(int ExitCode, string Out, string Error)
    {
        public string LastLine => Out.TrimEnd().Split('\n')[^1];
    }

    private readonly string _signingKey = app.Services.GetService(typeof(Microsoft.Extensions.Options.IOptions<JwtOptions>)) is Microsoft.Extensions.Options.IOptions<JwtOptions> o
        ? o.Value.SigningKey : throw new InvalidOperationException();

    private async Task<Run> PanelAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Opterius.Web.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["ConnectionStrings__Panel"] = app.Databases.Panel;
        psi.Environment["ConnectionStrings__PowerDns"] = app.Databases.PowerDns;
        psi.Environment["ConnectionStrings__MariaDbAdmin"] = app.Databases.Admin;
        psi.Environment["Opterius__Jwt__SigningKey"] = _signingKey;
        psi.Environment["Opterius__Root"] = PrivateServices.SandboxRoot;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return new(p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task MigrateIsIdempotent()
    {
        var run = await PanelAsync("migrate");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("schema is up to date", run.Out);
    }

    [Fact]
    public async Task ATokenCreatedOnTheCommandLineWorksUntilItIsRevoked()
    {
        var name = $"cli-{Guid.NewGuid():N}"[..20];
        var created = await PanelAsync("tokens", "create", "--name", name, "--role", "admin", "--owner", app.Admin.Username, "--scopes", "accounts:read");
        Assert.Equal(0, created.ExitCode);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.LastLine);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/accounts")).StatusCode);

        var revoked = await PanelAsync("tokens", "revoke", "--name", name);

        Assert.Equal(0, revoked.ExitCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/accounts")).StatusCode);
    }

    [Fact]
    public async Task ATokenThatExpiredIsRefused()
    {
        var name = $"exp-{Guid.NewGuid():N}"[..20];
        var created = await PanelAsync("tokens", "create", "--name", name, "--role", "admin", "--owner", app.Admin.Username, "--expires-days", "1");
        Assert.Equal(0, created.ExitCode);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.LastLine);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/accounts")).StatusCode);

        // The JWT's own exp is still a day away: the stored expiry is what ends it.
        await using (var c = new MySqlConnection(app.Databases.Panel))
            await c.ExecuteAsync("UPDATE api_tokens SET expires_at = NOW() - INTERVAL 1 DAY WHERE name = @name", new { name });

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/accounts")).StatusCode);
    }

    [Theory]
    [InlineData("tokens", "create", "--name", "x")]                                  // no role
    [InlineData("tokens", "create", "--name", "x", "--role", "superuser")]           // bad role
    [InlineData("tokens", "create", "--name", "x", "--role", "reseller")]            // reseller without owner
    [InlineData("tokens", "create", "--name", "x", "--role", "admin", "--expires-days", "-4")]
    [InlineData("tokens", "revoke", "--name", "no-such-token")]
    [InlineData("users", "create", "--username", "u", "--password", "short", "--role", "admin")]
    [InlineData("users", "create", "--username")]
    [InlineData("tokens", "explode")]
    public async Task BadInputExitsWithTwoSaysWhyAndChangesNothing(params string[] args)
    {
        var before = await CountAsync();
        var run = await PanelAsync(args);
        Assert.Equal(2, run.ExitCode);
        Assert.StartsWith("error: ", run.Error);
        Assert.Equal(before, await CountAsync());
    }

    private async Task<(long, long)> CountAsync()
    {
        await using var c = new MySqlConnection(app.Databases.Panel);
        return await c.QuerySingleAsync<(long, long)>("SELECT (SELECT COUNT(*) FROM api_tokens), (SELECT COUNT(*) FROM panel_users)");
    }
}
