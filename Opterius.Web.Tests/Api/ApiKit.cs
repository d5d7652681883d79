using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

/// <summary>What the API tests share: JSON bodies, accounts made over POST, and where their files live in the sandbox.</summary>
public static class ApiKit
{
    public sealed record Made(long Id, string Username, string Domain);

    public static async Task<JsonElement> JsonOf(this HttpResponseMessage r) =>
        (await r.Content.ReadAsStringAsync()) is { Length: > 0 } text ? JsonDocument.Parse(text).RootElement.Clone() : default;

    public static string Error(this JsonElement body) => body.GetProperty("error").GetString()!;

    public static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    public static object NewAccountBody(string username, long packageId = 1) => new
    {
        username,
        domain = $"{username}.test",
        email = $"owner@{username}.test",
        password = "account-password-1",
        package_id = packageId,
    };

    /// <summary>A fresh username of letters only, unique in this run.</summary>
    public static string NewUsername() => "u" + TestAccounts.NewPrefix(9);

    /// <summary>Creates a real account through POST /api/v1/accounts (every resource provisioned in the sandbox).</summary>
    public static async Task<Made> CreateOverApiAsync(this HttpClient client, string? username = null)
    {
        username ??= NewUsername();
        var response = await client.PostAsJsonAsync("/api/v1/accounts", NewAccountBody(username));
        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create failed: {(int)response.StatusCode} {body}");
        return new(body.GetProperty("data").GetProperty("id").GetInt64(), username, $"{username}.test");
    }

    public static string HomeOf(string username) => Path.Combine(PrivateServices.SandboxRoot, "home", username);

    public static string VhostOf(string domain) => Path.Combine(PrivateServices.SandboxRoot, "etc", "nginx", "sites-available", domain + ".conf");

    public static Task<string?> StatusOf(this PanelApp app, long id) =>
        app.Databases.PanelScalarAsync<string?>("SELECT status FROM accounts WHERE id = @id", new { id });

    public static Task<long> AuditCount(this PanelApp app, string action, string outcome) =>
        app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM audit_log WHERE action = @action AND outcome = @outcome", new { action, outcome });
}

/// <summary>
/// The panel as the API tests use it: like <see cref="PanelApp"/>, plus a client address on every in-process
/// request (the test server leaves it empty), so audit rows can show the source IP a real connection has.
/// </summary>
public class ApiApp : PanelApp
{
    public const string ClientIp = "203.0.113.7";

    protected override void ConfigureWebHost(Microsoft.AspNetCore.Hosting.IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureServices(s => s.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter, ClientAddress>());
    }

    private sealed class ClientAddress : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((http, go) =>
            {
                http.Connection.RemoteIpAddress ??= System.Net.IPAddress.Parse(ClientIp);
                return go(http);
            });
            next(app);
        };
    }
}
