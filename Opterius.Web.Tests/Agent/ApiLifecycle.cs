using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using MySqlConnector;
using Opterius.Services.Deletion;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>An account's whole life through the API, as WHMCS drives it, asserted on what the real daemons serve and the panel database (<c>panelDatabase</c>, a connection string) records.</summary>
public static class ApiLifecycle
{
    public static async Task RunAsync(string panelDatabase, HttpClient client)
    {
        var p = TestAccounts.NewPrefix(7);
        var domain = $"{p}.test";

        var created = await client.PostAsJsonAsync("/api/v1/accounts",
            new { username = p, domain, email = $"owner@{domain}", password = "account-password-1", package_id = 1 });

        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data").GetProperty("id").GetInt64();
        var served = await DaemonKit.GetUntilAsync(domain, HttpStatusCode.OK);
        Assert.Contains($"<h1>{domain}</h1>", served.Body);
        // The uid the agent's useradd gave the user is recorded, as in process.
        int? uid;
        await using (var db = new MySqlConnection(panelDatabase))
            uid = await db.ExecuteScalarAsync<int?>("SELECT uid FROM accounts WHERE id = @id", new { id });
        Assert.NotNull(uid);
        Assert.Equal(PasswdUid(p), uid);

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/accounts/{id}/suspend", null)).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await DaemonKit.GetUntilAsync(domain, HttpStatusCode.ServiceUnavailable)).Status);

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/accounts/{id}/unsuspend", null)).StatusCode);
        Assert.Contains($"<h1>{domain}</h1>", (await DaemonKit.GetUntilAsync(domain, HttpStatusCode.OK)).Body);

        var deleted = await client.DeleteAsync($"/api/v1/accounts/{id}");

        Assert.True(deleted.StatusCode == HttpStatusCode.NoContent, await deleted.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync(domain, HttpStatusCode.NotFound)).Status);
        Assert.Null(PasswdUid(p));
        Assert.False(Directory.Exists(Path.Combine(PrivateServices.SandboxRoot, "home", p)));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/v1/accounts/{id}")).StatusCode);
    }

    /// <summary>
    /// What a DELETE answers when the agent died during the mail_routes step: that step failed, saying the agent is not
    /// reachable; so did any step of its stage that was still running then (mail_users, dns_zone run beside it).
    /// </summary>
    public static async Task AssertAgentDiedInMailRoutesAsync(bool died, HttpResponseMessage failed, string socket)
    {
        Assert.True(died, "the agent was meant to die during the mail_routes step");
        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        var error = await failed.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("deletion_failed", error.GetProperty("error").GetString());
        var steps = error.GetProperty("details").GetProperty("failed_steps").EnumerateArray().ToList();
        Assert.Contains(steps, s => s.GetProperty("resource").GetString() == "mail_routes");
        Assert.All(steps, s =>
        {
            Assert.Equal(DeletionOrder.StageOf("mail_routes"), DeletionOrder.StageOf(s.GetProperty("resource").GetString()!));
            Assert.StartsWith($"agent not reachable at {socket}: ", s.GetProperty("detail").GetString());
        });
    }

    /// <summary>The uid the sandbox root's passwd gives <paramref name="username"/>, or null.</summary>
    public static int? PasswdUid(string username) =>
        File.ReadLines(Path.Combine(PrivateServices.SandboxRoot, "etc", "passwd")).Select(l => l.Split(':'))
            .Where(f => f[0] == username).Select(f => (int?)int.Parse(f[2])).FirstOrDefault();
}
