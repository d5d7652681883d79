using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Agent;
using Opterius.Web.Agent.Protocol;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The agent trusts nothing it is sent: another uid is refused at the socket, and a hostile identity, an unknown
/// resource or an unknown operation gets a precise gRPC status with nothing changed on the server.
/// </summary>
[Collection(nameof(ServingTests))]
public sealed class AgentRefusalTests(AgentServingApp app) : IClassFixture<AgentServingApp>
{
    private static readonly TimeSpan NeverEnds = TimeSpan.FromSeconds(60);

    public static TheoryData<string, string, string, string, string, int?, StatusCode, string> Hostile => new()
    {
        // operation, key, username, domain, php version, uid (2: b's), status, what the detail says ({a}, {b}: the
        // accounts' usernames, {ad}: a's domain)
        { "remove", "home_directory", "../etc", "{ad}", "8.2", null, StatusCode.InvalidArgument, "requested username '../etc' is not a valid account name" },
        { "remove", "mailboxes", "{a}", "{ad};rm -rf x", "8.2", null, StatusCode.InvalidArgument, "is not a valid domain" },
        { "inspect", "php_fpm_pool", "{a}", "{ad}", "8.2/../../../etc", null, StatusCode.InvalidArgument, "PHP version" },
        { "remove", "processes", "{a}", "{ad}", "8.2", 2, StatusCode.FailedPrecondition, "belongs to '{b}', not to '{a}'" },
        { "remove", "system_user", "nosuch{a}", "{ad}", "8.2", 2, StatusCode.FailedPrecondition, "belongs to '{b}', not to 'nosuch{a}'" },
        { "remove", "../../etc/passwd", "{a}", "{ad}", "8.2", null, StatusCode.NotFound, "no resource '../../etc/passwd'" },
        { "suspend", "cron", "{a}", "{ad}", "8.2", null, StatusCode.NotFound, "resource 'cron' has nothing to suspend" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task AHostileRequestGetsAPreciseStatusAndChangesNothing(
        string operation, string key, string username, string domain, string php, int? uid, StatusCode expected, string detail)
    {
        var (a, b) = await TwoAccountsAsync();
        string Fill(string s) => s.Replace("{ad}", a.Domain).Replace("{a}", a.Username).Replace("{b}", b.Username);
        var identity = new Identity { Id = a.Id, Username = Fill(username), Domain = Fill(domain), PhpVersion = php };
        if (uid is not null) identity.Uid = b.Uid!.Value;
        var before = await SnapshotAsync(a, b);

        var status = await StatusOfAsync(operation, new ResourceRequest { Key = key, Identity = identity });

        Assert.Equal(expected, status.StatusCode);
        Assert.Contains(Fill(detail), status.Detail);
        Assert.Equal(before, await SnapshotAsync(a, b));
    }

    [Theory]
    [InlineData("remove", "not-an-id;rm -rf /", "in_flight is not a deletion in flight this agent hands out")]
    [InlineData("remove", "0123456789ABCDEF0123456789ABCDEF", "in_flight is not a deletion in flight this agent hands out")]
    [InlineData("remove", "0123456789abcdef0123456789abcdef0", "in_flight is not a deletion in flight this agent hands out")]
    [InlineData("inspect", "0123456789abcdef0123456789abcdef", "in_flight is for Remove only")]
    [InlineData("suspend", "0123456789abcdef0123456789abcdef", "in_flight is for Remove only")]
    public async Task AnInFlightThatIsNotAnIdTheAgentHandsOutOrOnAnotherCallThanRemoveIsInvalidAndChangesNothing(
        string operation, string inFlight, string detail)
    {
        var (a, b) = await TwoAccountsAsync();
        var before = await SnapshotAsync(a, b);

        var status = await StatusOfAsync(operation, new ResourceRequest { Key = "nginx_vhost", Identity = Sent(a), InFlight = inFlight });

        Assert.Equal(StatusCode.InvalidArgument, status.StatusCode);
        Assert.Contains(detail, status.Detail);
        Assert.DoesNotContain(inFlight, status.Detail); // what the panel sent is neither echoed nor logged
        Assert.DoesNotContain(inFlight, app.Agent.Log);
        Assert.Equal(before, await SnapshotAsync(a, b));
    }

    [Fact]
    public async Task ADeletionInFlightNamingAServiceTheAgentDoesNotReloadIsInvalid()
    {
        using var agent = Channel();

        using var call = agent.Client.DeletionInFlight(new DeletionFlightRequest { Services = { "nginx", "sshd;reboot" } });
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("services names a service this agent does not reload: send only nginx, php-fpm, postmap, pdns", e.Status.Detail);
    }

    [Fact]
    public async Task APanelHoldingTheMostDeletionsInFlightIsRefusedAnotherUntilOneEnds()
    {
        using var agent = Channel();
        // Announcing no service: the flights hold no reload of the agent's while they are open.
        var open = Enumerable.Range(0, DeletionFlights.MaxOpen).Select(_ => agent.Client.DeletionInFlight(new DeletionFlightRequest())).ToList();
        try
        {
            Assert.All(await Task.WhenAll(open.Select(c => c.ResponseStream.MoveNext(CancellationToken.None))).WaitAsync(NeverEnds), Assert.True);

            using var over = agent.Client.DeletionInFlight(new DeletionFlightRequest());
            var e = await Assert.ThrowsAsync<RpcException>(() => over.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.StartsWith($"{DeletionFlights.MaxOpen} deletions are in flight on this agent already: end the calls of finished jobs", e.Status.Detail);

            open[0].Dispose();
            Assert.NotNull(await OpensOnceFreedAsync(agent).WaitAsync(NeverEnds));
        }
        finally { foreach (var c in open) c.Dispose(); }
    }

    // The agent frees a flight when it sees its call end, a moment after the panel ended it.
    private static async Task<string> OpensOnceFreedAsync(AgentChannel agent)
    {
        while (true)
        {
            using var call = agent.Client.DeletionInFlight(new DeletionFlightRequest());
            try { if (await call.ResponseStream.MoveNext(CancellationToken.None)) return call.ResponseStream.Current.Id; }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted) { }
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task AnOperationTheContractDoesNotHaveIsUnimplementedAndChangesNothing()
    {
        var (a, b) = await TwoAccountsAsync();
        var before = await SnapshotAsync(a, b);
        var method = new Method<ResourceRequest, Changed>(MethodType.Unary, "opterius.agent.v1.Agent", "RunCommand",
            Marshallers.Create(r => Google.Protobuf.MessageExtensions.ToByteArray(r), ResourceRequest.Parser.ParseFrom),
            Marshallers.Create(r => Google.Protobuf.MessageExtensions.ToByteArray(r), Changed.Parser.ParseFrom));
        using var agent = Channel();

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            agent.Invoker.AsyncUnaryCall(method, null, new CallOptions(), new ResourceRequest { Key = "home_directory" }).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        Assert.Equal(before, await SnapshotAsync(a, b));
    }

    [Fact]
    public async Task APeerOfAnotherUidIsRefusedBeforeAByteIsReadAndTheRefusalIsLogged()
    {
        var panel = AgentServingApp.PanelUser;
        var gid = int.Parse(DaemonKit.Run("id", "-g", panel).Trim());
        var uid = int.Parse(DaemonKit.Run("id", "-u", panel).Trim());
        Assert.Equal((UnixFileMode)0b110_110_000, File.GetUnixFileMode(app.Socket));
        Assert.Equal(gid.ToString(), DaemonKit.Run("stat", "-c", "%g", app.Socket).Trim());

        // Both clients are in the socket's group, so the file's mode lets both connect: the agent's peer check decides.
        var stranger = Curl(65534, gid);
        var panelUser = Curl(uid, gid);

        Assert.NotEqual(0, stranger.ExitCode);
        Assert.Equal("000", stranger.Out);
        Assert.True(await app.Agent.LoggedAsync($"Refused a connection to {app.Socket} from uid 65534"), app.Agent.Log);
        Assert.Equal(0, panelUser.ExitCode);
        Assert.Equal("200", panelUser.Out); // served: a gRPC answer (its status is in the trailers)
    }

    [Theory]
    [InlineData("system_user")]
    [InlineData("home_directory")]
    [InlineData("processes")]
    public async Task RemovingAUserThePanelDidNotMakeIsRefusedAndTheUserSurvivesByteForByte(string key)
    {
        var root = PrivateServices.SandboxRoot;
        var name = $"op{TestAccounts.NewPrefix(6)}";
        // The operator's own login: made by plain useradd, so no uid ledger file names it, with a uid in the panel's range.
        DaemonKit.Run("useradd", "-R", root, "-m", "-s", "/bin/bash", name);
        try
        {
            var uid = int.Parse(File.ReadLines(Path.Combine(root, "etc/passwd")).Single(l => l.StartsWith(name + ":")).Split(':')[2]);
            Assert.True(uid >= 200000, $"useradd gave {name} uid {uid}, below the run's MinUid 200000");
            await File.WriteAllTextAsync(Path.Combine(root, $"home/{name}/thesis.txt"), "years of work\n");
            var before = OperatorSnapshot(name);

            var withUid = await StatusOfAsync("remove", new ResourceRequest { Key = key, Identity = new Identity { Id = 1, Username = name, Domain = "op.test", PhpVersion = "8.2", Uid = uid } });
            var withoutUid = await StatusOfAsync("remove", new ResourceRequest { Key = key, Identity = new Identity { Id = 1, Username = name, Domain = "op.test", PhpVersion = "8.2" } });

            Assert.Equal(StatusCode.FailedPrecondition, withUid.StatusCode);
            Assert.Equal($"uid {uid} was not handed out by the panel to '{name}' of op.test: refusing", withUid.Detail);
            Assert.Equal(StatusCode.FailedPrecondition, withoutUid.StatusCode);
            Assert.Equal($"uid {uid} was not handed out by the panel to '{name}' of op.test: refusing", withoutUid.Detail);
            Assert.Equal(before, OperatorSnapshot(name));
        }
        finally { DaemonKit.Run("userdel", "-R", root, "-r", name); }
    }

    [Fact]
    public async Task SuspendingAUserThePanelDidNotMakeIsRefusedAndItsShellStays()
    {
        var root = PrivateServices.SandboxRoot;
        var name = $"op{TestAccounts.NewPrefix(6)}";
        DaemonKit.Run("useradd", "-R", root, "-m", "-s", "/bin/bash", name);
        try
        {
            var before = OperatorSnapshot(name);

            var status = await StatusOfAsync("suspend", new ResourceRequest { Key = "system_user", Identity = new Identity { Id = 1, Username = name, Domain = "op.test", PhpVersion = "8.2" } });

            Assert.Equal(StatusCode.FailedPrecondition, status.StatusCode);
            Assert.EndsWith($"was not handed out by the panel to '{name}' of op.test: refusing", status.Detail);
            Assert.Equal(before, OperatorSnapshot(name));
        }
        finally { DaemonKit.Run("userdel", "-R", root, "-r", name); }
    }

    [Fact]
    public async Task AUserThePanelMadeIsStillRemovedThroughTheAgent()
    {
        var (a, _) = await TwoAccountsAsync();
        var identity = AccountIdentity.From(a);
        using var agent = Channel();

        var home = await new AgentResource("home_directory", agent).RemoveAsync(identity, default);
        var user = await new AgentResource("system_user", agent).RemoveAsync(identity, default);

        Assert.Equal(StepStatus.Done, home.Status);
        Assert.Equal(StepStatus.Done, user.Status);
        Assert.False(Directory.Exists(Path.Combine(PrivateServices.SandboxRoot, $"home/{a.Username}")));
        Assert.DoesNotContain(File.ReadLines(Path.Combine(PrivateServices.SandboxRoot, "etc/passwd")), l => l.StartsWith(a.Username + ":"));
    }

    [Fact]
    public async Task AnAccountsUsernameAndUidWithAnotherAccountsDomainChangeNothingOfThatDomain()
    {
        var (a, b) = await TwoAccountsAsync();
        var vhost = Path.Combine(PrivateServices.SandboxRoot, $"etc/nginx/sites-available/{b.Domain}.conf");
        var before = await SnapshotAsync(a, b);
        var bytes = await File.ReadAllBytesAsync(vhost);

        // A's own name and uid, B's domain: the ledger binds A's uid to A's domain only.
        var borrowed = await StatusOfAsync("remove", new ResourceRequest
            { Key = "nginx_vhost", Identity = new Identity { Id = a.Id, Username = a.Username, Domain = b.Domain, PhpVersion = "8.2", Uid = a.Uid!.Value } });
        // A name with no user and no uid at all cannot reach a domain either.
        var nameOnly = await StatusOfAsync("remove", new ResourceRequest
            { Key = "mailboxes", Identity = new Identity { Id = 1, Username = "nosuchtenant", Domain = b.Domain, PhpVersion = "8.2" } });

        Assert.Equal(StatusCode.FailedPrecondition, borrowed.StatusCode);
        Assert.Contains($"not handed out by the panel to '{a.Username}' of {b.Domain}", borrowed.Detail);
        Assert.Equal(StatusCode.FailedPrecondition, nameOnly.StatusCode);
        Assert.Contains("has no uid the panel handed out", nameOnly.Detail);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(vhost));
        Assert.Equal(before, await SnapshotAsync(a, b));
    }

    [Fact]
    public async Task AUidIsNeverReservedForAnotherAccountsDomainSoItsPartsCannotBeReachedUnderAFreshName()
    {
        var (a, b) = await TwoAccountsAsync();
        var ledger = Path.Combine(PrivateServices.SandboxRoot, "var/lib/opterius/uids");
        var reservedBefore = Directory.GetFiles(ledger).Order().ToList();
        var before = await SnapshotAsync(a, b);
        using var agent = Channel();

        // A fresh name with B's domain: the agent's own check finds B's zone, vhost and mail, and hands out nothing.
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await agent.Client.ReserveUidAsync(
            new Identity { Id = 1, Username = $"z{a.Username}", Domain = b.Domain, PhpVersion = "8.2" }));

        Assert.Equal(StatusCode.AlreadyExists, refused.StatusCode);
        Assert.Contains($"vhost {b.Domain}", refused.Status.Detail);
        Assert.Equal(reservedBefore, Directory.GetFiles(ledger).Order().ToList());
        Assert.Equal(before, await SnapshotAsync(a, b));
        // The positive control: free names get a uid.
        var free = TestAccounts.NewPrefix(6);
        Assert.True((await agent.Client.ReserveUidAsync(new Identity { Id = 1, Username = free, Domain = $"{free}.test", PhpVersion = "8.2" })).Uid >= 200000);
    }

    [Fact]
    public async Task AProvisionOverAPartAlreadyThereIsAConflictForThePanelAndTheFileStaysByteForByte()
    {
        var (a, _) = await TwoAccountsAsync();
        var vhost = Path.Combine(PrivateServices.SandboxRoot, $"etc/nginx/sites-available/{a.Domain}.conf");
        var before = await File.ReadAllBytesAsync(vhost);
        using var agent = Channel();

        // What the create path turns into 409 conflict in process must reach it as the same exception through the agent.
        var refused = await Assert.ThrowsAsync<AlreadyThereException>(() => new AgentResource("nginx_vhost", agent)
            .ProvisionAsync(new Opterius.Services.Resources.NewAccount(AccountIdentity.From(a), "owner@example.com", "s3cret-pass"), default));

        Assert.Contains("already exists", refused.Message);
        Assert.Equal(before, await File.ReadAllBytesAsync(vhost));
    }

    [Fact]
    public async Task TwoRemovalsOfTheSameHomeAtOnceRunOneAfterTheOtherAndTheSecondFindsNothing()
    {
        var (a, _) = await TwoAccountsAsync();
        var identity = AccountIdentity.From(a);
        var home = Path.Combine(PrivateServices.SandboxRoot, $"home/{a.Username}");
        // Enough files that the first removal is still running when the second arrives.
        for (var d = 0; d < 100; d++)
        {
            var folder = Directory.CreateDirectory(Path.Combine(home, "many", $"d{d}")).FullName;
            for (var f = 0; f < 200; f++) File.WriteAllText(Path.Combine(folder, $"f{f}"), "x");
        }
        DaemonKit.Run("chown", "-R", $"{a.Uid}:{a.Uid}", home);
        using var first = Channel();
        using var second = Channel();

        var outcomes = await Task.WhenAll(
            new AgentResource("home_directory", first).RemoveAsync(identity, default),
            new AgentResource("home_directory", second).RemoveAsync(identity, default));

        var statuses = outcomes.Select(o => o.Status).Order(StringComparer.Ordinal).ToList();
        Assert.Equal([StepStatus.Done, StepStatus.Skipped], statuses);
        var done = outcomes.Single(o => o.Status == StepStatus.Done);
        Assert.StartsWith($"removed {home}: ", done.Detail);
        Assert.Equal($"nothing there: {home} does not exist", outcomes.Single(o => o.Status == StepStatus.Skipped).Detail);
        Assert.False(Path.Exists(home));
    }

    /// <summary>The user's passwd, shadow and group lines and every file of its home with its bytes.</summary>
    private static string OperatorSnapshot(string name)
    {
        var root = PrivateServices.SandboxRoot;
        var lines = new List<string>();
        foreach (var file in new[] { "etc/passwd", "etc/shadow", "etc/group" })
            lines.AddRange(File.ReadLines(Path.Combine(root, file)).Where(l => l.StartsWith(name + ":")));
        var home = Path.Combine(root, $"home/{name}");
        Assert.True(Directory.Exists(home), $"{home} is missing");
        lines.AddRange(Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories).Order()
            .Select(f => $"{f} {(File.Exists(f) ? Convert.ToHexString(File.ReadAllBytes(f)) : "dir")} {new FileInfo(f).LastWriteTimeUtc.Ticks}"));
        return string.Join('\n', lines);
    }

    private (int ExitCode, string Out) Curl(int uid, int gid)
    {
        var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { $"--reuid={uid}", $"--regid={gid}", "--clear-groups", "curl", "-s", "--max-time", "10", "--http2-prior-knowledge",
                     "--unix-socket", app.Socket, "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "content-type: application/grpc",
                     "--data-binary", "", "http://agent/opterius.agent.v1.Agent/ReserveUid" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output.Trim());
    }

    private async Task<(Account A, Account B)> TwoAccountsAsync()
    {
        var p = TestAccounts.NewPrefix(6);
        return (await app.CreateAsync(p, $"{p}.test"), await app.CreateAsync($"{p}b", $"x{p}.test"));
    }

    private static Identity Sent(Account a) => new() { Id = a.Id, Username = a.Username, Domain = a.Domain, PhpVersion = a.PhpVersion, Uid = a.Uid!.Value };

    private AgentChannel Channel() => new(Options.Create(new AgentOptions { Socket = app.Socket }));

    /// <summary>The status the agent answers <paramref name="request"/> with (OK when it ran).</summary>
    private async Task<Status> StatusOfAsync(string operation, ResourceRequest request)
    {
        using var agent = Channel();
        try
        {
            switch (operation)
            {
                case "inspect": await agent.Client.InspectAsync(request); break;
                case "suspend": await agent.Client.SuspendAsync(request); break;
                default:
                    using (var call = agent.Client.Remove(request))
                        while (await call.ResponseStream.MoveNext(CancellationToken.None)) { }
                    break;
            }
            return Status.DefaultSuccess;
        }
        catch (RpcException e) { return e.Status; }
    }

    /// <summary>Both accounts as the agent inspects every resource, and their lines and files in the sandbox root.</summary>
    private async Task<string> SnapshotAsync(params Account[] accounts)
    {
        using var agent = Channel();
        var root = PrivateServices.SandboxRoot;
        var lines = new List<string>();
        foreach (var account in accounts)
        {
            var a = AccountIdentity.From(account);
            foreach (var key in DeletionOrder.Keys)
            {
                // A record prints a list as its type name: the items are joined so they are compared too.
                var i = await new AgentResource(key, agent).InspectAsync(a, default);
                lines.Add($"{i.Resource} exists={i.Exists} [{string.Join(", ", i.Items)}] {i.Bytes} bytes {i.Count} items: {i.Summary}");
            }
            foreach (var file in new[] { "etc/passwd", "etc/group", "etc/dovecot/users", "etc/postfix/vmailbox" })
                lines.AddRange(File.ReadLines(Path.Combine(root, file)).Where(l => l.Contains(a.Username) || l.Contains(a.Domain)));
            foreach (var tree in new[] { $"home/{a.Username}", $"var/mail/vdomains/{a.Domain}" })
                if (Directory.Exists(Path.Combine(root, tree)))
                    lines.AddRange(Directory.EnumerateFileSystemEntries(Path.Combine(root, tree), "*", SearchOption.AllDirectories)
                        .Order().Select(f => $"{f} {new FileInfo(f).LastWriteTimeUtc.Ticks}"));
        }
        return string.Join('\n', lines);
    }
}
