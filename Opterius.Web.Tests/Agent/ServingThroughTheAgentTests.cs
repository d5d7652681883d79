using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Opterius.Services.Accounts;
using Opterius.Services.Server;
using Opterius.Web.Agent;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// Every serving scenario again with the panel on the agent (a real child process as root), then what only the split
/// has: the API's whole lifecycle through the agent, and a deletion whose agent died half-way.
/// The panel runs in the test process here; <see cref="UnprivilegedPanelTests"/> runs it as an unprivileged user.
/// </summary>
[Collection(nameof(ServingTests))]
public sealed class ServingThroughTheAgentTests(AgentServingApp app) : ServingScenarios(app), IClassFixture<AgentServingApp>
{
    [Fact]
    public async Task AnAccountIsCreatedSuspendedUnsuspendedAndDeletedThroughTheApiWithEveryResourceOnTheAgent() =>
        await ApiLifecycle.RunAsync(app.Databases.Panel, await app.ClientAsync());

    [Fact]
    public async Task TheAgentKilledMidDeletionFailsThatStepAsNotReachableAndTheNextDeleteAfterItIsBackFinishes()
    {
        var p = TestAccounts.NewPrefix(7);
        var account = await app.CreateAsync(p, $"{p}.test");
        var client = await app.ClientAsync();
        // Postmap runs in the mail_routes step, half-way through: this one kills the agent that runs it.
        var killer = Path.Combine(Path.GetDirectoryName(app.Socket)!, "kill-agent.sh");
        File.WriteAllText(killer, "#!/bin/sh\nkill -KILL $PPID\nsleep 2\n");
        File.SetUnixFileMode(killer, (UnixFileMode)0b111_101_101);
        await app.RestartAgentAsync(new Dictionary<string, string?> { ["Opterius:Commands:Postmap:0"] = killer });

        HttpResponseMessage failed;
        bool died;
        try { failed = await client.DeleteAsync($"/api/v1/accounts/{account.Id}"); }
        finally
        {
            died = await app.Agent.ExitsWithinAsync(10);
            await app.RestartAgentAsync(); // the next tests of this class need it whatever happened here
        }

        await ApiLifecycle.AssertAgentDiedInMailRoutesAsync(died, failed, app.Socket);
        Assert.Equal(AccountStatus.DeletionFailed,
            await app.Databases.PanelScalarAsync<string>("SELECT status FROM accounts WHERE id = @id", new { id = account.Id }));
        var steps = await app.Databases.PanelScalarAsync<string>(
            "SELECT GROUP_CONCAT(CONCAT(s.resource, '=', s.status) ORDER BY s.position) FROM deletion_steps s JOIN deletion_jobs j ON j.id = s.job_id WHERE j.account_id = @id",
            new { id = account.Id });
        Assert.Contains("nginx_vhost=done,php_fpm_pool=done,", steps);
        // Its stage (mail_users, dns_zone beside it) finished or failed with it; the next stage never started.
        Assert.Contains(",mail_routes=failed,", steps);
        Assert.Contains(",mailboxes=pending,", steps);

        var resumed = await client.DeleteAsync($"/api/v1/accounts/{account.Id}");

        Assert.Equal(HttpStatusCode.NoContent, resumed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.NotFound)).Status);
        Assert.Null(ApiLifecycle.PasswdUid(p));
    }

    [Fact]
    public async Task TheOverviewsServicesAreTheAgentsAndANginxWhoseConfigFailsShowsDownWithItsReason()
    {
        var services = app.Get<IServerServices>();
        Assert.IsType<AgentServerServices>(services);

        var up = await services.CheckAsync(default);

        Assert.Equal(["MariaDB", "PowerDNS database", "nginx", "PHP-FPM"], up.Select(s => s.Name));
        Assert.All(up, s => Assert.True(s.Up, $"{s.Name}: {s.Detail}"));
        Assert.StartsWith("version 10.", up[0].Detail);

        var broken = Path.Combine(Path.GetDirectoryName(app.Socket)!, "nginx-t-fails.sh");
        File.WriteAllText(broken, "#!/bin/sh\necho 'nginx: [emerg] unexpected end of file in /etc/nginx/sites-enabled/x.conf' >&2\nexit 1\n");
        File.SetUnixFileMode(broken, (UnixFileMode)0b111_101_101);
        await app.RestartAgentAsync(new Dictionary<string, string?> { ["Opterius:Commands:NginxTest:0"] = broken });
        try
        {
            var nginx = (await services.CheckAsync(default)).Single(s => s.Name == "nginx");
            Assert.False(nginx.Up);
            Assert.Contains("unexpected end of file", nginx.Detail);
        }
        finally { await app.RestartAgentAsync(); }
    }
}
