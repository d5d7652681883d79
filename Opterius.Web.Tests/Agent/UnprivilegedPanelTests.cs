using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The split as production runs it (<see cref="InstalledSplit"/>): install.sh's panel.json and agent.json, the units'
/// command lines and environment, the panel under an unprivileged uid holding only its own database, the JWT key and
/// the license, every resource on the agent (root) and its least-privilege MariaDB user.
/// </summary>
[Collection(nameof(ServingTests))]
public sealed partial class UnprivilegedPanelTests(InstalledSplit split) : IClassFixture<InstalledSplit>
{
    private const string PanelUser = InstalledSplit.PanelUser;

    [Fact]
    public async Task ThePanelRunningAsAnUnprivilegedUserCreatesSuspendsUnsuspendsAndDeletesAnAccountThroughTheAgent() =>
        await ApiLifecycle.RunAsync(split.PanelDatabase, Client());

    [Fact]
    public async Task TheAgentKilledMidDeletionFailsThatStepAndTheNextDeleteThroughTheUnprivilegedPanelFinishes()
    {
        var client = Client();
        var p = TestAccounts.NewPrefix(7);
        var created = await client.PostAsJsonAsync("/api/v1/accounts",
            new { username = p, domain = $"{p}.test", email = $"owner@{p}.test", password = "account-password-1", package_id = 1 });
        Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data").GetProperty("id").GetInt64();
        // Postmap runs in the mail_routes step, half-way through: this one kills the agent that runs it.
        var killer = split.Under("/kill-agent.sh");
        File.WriteAllText(killer, "#!/bin/sh\nkill -KILL $PPID\nsleep 2\n");
        File.SetUnixFileMode(killer, (UnixFileMode)0b111_101_101);
        await split.RestartAgentAsync(agent => agent["Opterius"]!["Commands"]!["Postmap"] = new System.Text.Json.Nodes.JsonArray(killer));

        HttpResponseMessage failed;
        bool died;
        try { failed = await client.DeleteAsync($"/api/v1/accounts/{id}"); }
        finally
        {
            died = await split.Agent.ExitsWithinAsync(10);
            await split.RestartAgentAsync(); // the next tests of this class need it whatever happened here
        }

        await ApiLifecycle.AssertAgentDiedInMailRoutesAsync(died, failed, split.Socket);
        await using (var db = new MySqlConnection(split.PanelDatabase))
        {
            Assert.Equal(AccountStatus.DeletionFailed, await db.ExecuteScalarAsync<string>("SELECT status FROM accounts WHERE id = @id", new { id }));
            var steps = await db.ExecuteScalarAsync<string>(
                "SELECT GROUP_CONCAT(CONCAT(s.resource, '=', s.status) ORDER BY s.position) FROM deletion_steps s JOIN deletion_jobs j ON j.id = s.job_id WHERE j.account_id = @id",
                new { id });
            Assert.Contains("nginx_vhost=done,php_fpm_pool=done,", steps);
            // Its stage (mail_users, dns_zone beside it) finished or failed with it; the next stage never started.
            Assert.Contains(",mail_routes=failed,", steps);
            Assert.Contains(",mailboxes=pending,", steps);
        }

        var resumed = await client.DeleteAsync($"/api/v1/accounts/{id}");

        Assert.Equal(HttpStatusCode.NoContent, resumed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync($"{p}.test", HttpStatusCode.NotFound)).Status);
        Assert.Null(ApiLifecycle.PasswdUid(p));
    }

    [Fact]
    public void ProcShowsTheWebProcessAsThePanelUserAndTheAgentAsRootEachWithItsUnitsCommandLineAndEnvironment()
    {
        var panelUid = DaemonKit.Run("id", "-u", PanelUser).Trim();
        Assert.Equal([panelUid, panelUid, panelUid, panelUid], Status(split.Panel.Pid, "Uid"));
        Assert.Equal(["0", "0", "0", "0"], Status(split.Agent.Pid, "Uid"));
        Assert.Equal("0000000000000000", Status(split.Panel.Pid, "CapEff").Single());
        Assert.Equal("0000000000000000", Status(split.Panel.Pid, "CapBnd").Single());
        Assert.Equal("1", Status(split.Panel.Pid, "NoNewPrivs").Single());

        Assert.Equal(["/usr/bin/dotnet", split.Under("/opt/opterius/Opterius.Web.dll")], CommandLine(split.Panel.Pid));
        Assert.Equal(["/usr/bin/dotnet", split.Under("/opt/opterius/Opterius.Web.dll"), "agent"], CommandLine(split.Agent.Pid));
        Assert.Equal(split.UnitEnvironment("opterius-panel.service").OrderBy(e => e.Key), Environ(split.Panel.Pid).OrderBy(e => e.Key));
        Assert.Equal(split.UnitEnvironment("opterius-agent.service").OrderBy(e => e.Key), Environ(split.Agent.Pid).OrderBy(e => e.Key));
        Assert.Equal(split.Under("/etc/opterius/panel.json"), Environ(split.Panel.Pid)["OPTERIUS_CONFIG"]);
        Assert.Equal(split.Under("/etc/opterius/agent.json"), Environ(split.Agent.Pid)["OPTERIUS_CONFIG"]);
        // The files each read: 0600, the panel's its user's, the agent's root's.
        Assert.Equal($"600 {PanelUser}", DaemonKit.Run("stat", "-c", "%a %U", split.Under("/etc/opterius/panel.json")).Trim());
        Assert.Equal("600 root", DaemonKit.Run("stat", "-c", "%a %U", split.Under("/etc/opterius/agent.json")).Trim());
    }

    [Fact]
    public async Task FromInsideThePanelsCredentialsTheSandboxRootIsReadOnlyAndMariaDbsAdminIsRefused()
    {
        var socket = PrivateServices.MariaDbSocket;
        // MariaDB's root is OS root's (unix_socket): as root it answers, which makes the refusal below mean something.
        Assert.Equal("1", (await WithCredentialsOf(null, "mariadb", "--no-defaults", "-S", socket, "-uroot", "-N", "-e", "SELECT 1")).Output.Trim());

        var admin = await WithCredentialsOf(split.Panel.Pid, "mariadb", "--no-defaults", "-S", socket, "-uroot", "-e", "SELECT 1");
        Assert.NotEqual(0, admin.ExitCode);
        Assert.Contains("Access denied for user 'root'@'localhost'", admin.Output);
        foreach (var target in new[] { "etc/passwd", "etc/nginx/sites-available/probe.conf", "home/probe" })
        {
            var path = Path.Combine(PrivateServices.SandboxRoot, target);
            var write = await WithCredentialsOf(split.Panel.Pid, "sh", "-c", $"echo x >> '{path}'");
            Assert.NotEqual(0, write.ExitCode);
            Assert.Contains("Permission denied", write.Output);
        }
        Assert.False(File.Exists(Path.Combine(PrivateServices.SandboxRoot, "etc/nginx/sites-available/probe.conf")));
        Assert.False(File.Exists(Path.Combine(PrivateServices.SandboxRoot, "home/probe")));

        // Its own MariaDB user (panel.json's) reaches the panel database and nothing else.
        await using var panelDb = new MySqlConnection(PanelConnectionString());
        var visible = (await panelDb.QueryAsync<string>("SHOW DATABASES")).Where(d => d != "information_schema").ToList();
        Assert.Equal([split.Prefix + "opterius"], visible);
        var e = await Assert.ThrowsAsync<MySqlException>(() => panelDb.ExecuteAsync("CREATE DATABASE probe_opterius_panel"));
        Assert.Equal(MySqlErrorCode.DatabaseAccessDenied, e.ErrorCode);
    }

    private HttpClient Client()
    {
        var client = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
        {
            BaseAddress = new Uri($"https://127.0.0.1:{split.Port}"),
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", split.Token);
        return client;
    }

    private string PanelConnectionString() =>
        (string)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(split.Under("/etc/opterius/panel.json")))!["ConnectionStrings"]!["Panel"]!;

    /// <summary>
    /// Runs a command with exactly the credentials of process <paramref name="pid"/> (its real, effective and saved uid
    /// and gid, its supplementary groups, as /proc has them), or as root when null; its exit code and output.
    /// </summary>
    private static async Task<(int ExitCode, string Output)> WithCredentialsOf(int? pid, params string[] command)
    {
        string[] prefix = [];
        if (pid is { } p)
        {
            var (uids, gids, groups) = (Status(p, "Uid"), Status(p, "Gid"), Status(p, "Groups"));
            Assert.Single(uids.Distinct());
            Assert.Single(gids.Distinct());
            prefix = ["setpriv", $"--reuid={uids[0]}", $"--regid={gids[0]}", groups.Length == 0 ? "--clear-groups" : $"--groups={string.Join(',', groups)}", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all"];
        }
        string[] argv = [.. prefix, .. command];
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string[] Status(int pid, string key) =>
        File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith(key + ":"))[(key.Length + 1)..]
            .Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);

    private static string[] CommandLine(int pid) => File.ReadAllText($"/proc/{pid}/cmdline").TrimEnd('\0').Split('\0');

    private static Dictionary<string, string> Environ(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").TrimEnd('\0').Split('\0').ToDictionary(e => e[..e.IndexOf('=')], e => e[(e.IndexOf('=') + 1)..]);
}
