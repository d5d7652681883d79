using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Daemons;

/// <summary>
/// system_user with the real useradd, usermod, userdel and groupdel -R on a sandbox root of its own. Each test's
/// root hands out uids from a range of its own (login.defs), far from other tests' and other runs', so killing
/// "every process of the uid" can only ever meet this test's own processes.
/// </summary>
public sealed class SystemUserTests : IDisposable
{
    private const int UidsPerTest = 10;
    private static int _tests;
    private readonly int _uidMin = 400000 + Environment.ProcessId % 1000 * 200 + Interlocked.Increment(ref _tests) % 20 * UidsPerTest;
    private readonly string _root = DaemonKit.NewSandboxRoot();
    private readonly List<Process> _started = [];
    private readonly ServiceProvider _services;
    private SystemUserResource Users => _services.GetRequiredService<SystemUserResource>();

    public SystemUserTests()
    {
        SetLoginDefs(("UID_MIN", $"{_uidMin}"), ("UID_MAX", $"{_uidMin + UidsPerTest - 1}"),
            ("GID_MIN", $"{_uidMin}"), ("GID_MAX", $"{_uidMin + UidsPerTest - 1}"));
        _services = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = _root });
    }

    public void Dispose()
    {
        foreach (var p in _started)
        {
            if (!p.HasExited) p.Kill();
            p.Dispose();
        }
        _services.Dispose();
    }

    private void SetLoginDefs(params (string Key, string Value)[] settings)
    {
        var path = Path.Combine(_root, "etc", "login.defs");
        var lines = File.ReadAllLines(path).Where(l => !settings.Any(s => l.StartsWith(s.Key + " "))).ToList();
        lines.AddRange(settings.Select(s => $"{s.Key} {s.Value}"));
        File.WriteAllLines(path, lines);
    }

    private string[] Lines(string file, string name) =>
        File.ReadAllLines(Path.Combine(_root, "etc", file)).Where(l => l.StartsWith(name + ":")).ToArray();

    private string Shell(string name) => Lines("passwd", name).Single().Split(':')[6];

    /// <summary>What the create path does: reserve the uid (the account stores it), then make the user with it.</summary>
    private async Task<int> ProvisionAsync(string user)
    {
        var uid = await Users.ReserveUidAsync(DaemonKit.Account(user, $"{user}.test"), default);
        await Users.ProvisionAsync(new(DaemonKit.Account(user, $"{user}.test", uid), "o@example.com", "unused"), default);
        Assert.Equal(uid, await Users.FindUidAsync(user));
        return uid;
    }

    [Fact]
    public async Task ProvisionAddsTheUserAndItsGroupToTheSandboxWithAUidOfTheRootsRange()
    {
        var user = DaemonKit.Username("usr");
        var a = DaemonKit.Account(user, $"{user}.test", await Users.ReserveUidAsync(DaemonKit.Account(user, $"{user}.test"), default));

        await Users.ProvisionAsync(new(a, "o@example.com", "unused"), default);

        var uid = await Users.FindUidAsync(user);
        Assert.NotNull(uid);
        Assert.InRange(uid.Value, _uidMin, _uidMin + UidsPerTest - 1);
        Assert.Equal($"{user}:x:{uid}:", Assert.Single(Lines("group", user)));
        Assert.Single(Lines("shadow", user));
        Assert.False(Directory.Exists(Path.Combine(_root, "home", user)), "home_directory makes the home, not system_user");
        Assert.Equal(a.Uid, uid);
        var inspection = await Users.InspectAsync(a, default);
        Assert.True(inspection.Exists);
        Assert.Contains($"uid {uid}", inspection.Summary);
        await Assert.ThrowsAsync<AlreadyThereException>(() => Users.ProvisionAsync(new(a, "o@example.com", "unused"), default));
    }

    [Fact]
    public async Task ARecreatedAccountOfTheSameNameGetsANewUidAboveTheRetiredOneFromTheLedger()
    {
        var user = DaemonKit.Username("again");
        var first = await ProvisionAsync(user);
        Assert.Equal(StepStatus.Done, (await Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", first), default)).Status);

        var second = await ProvisionAsync(user);

        Assert.NotEqual(first, second);
        Assert.True(second > first, $"uid {second} was handed out again below the retired {first}");
        Assert.Equal($"{user}:x:{second}:", Assert.Single(Lines("group", user)));
    }

    [Fact]
    public async Task TheNewUidIsAboveEveryUidAndGidAlreadyInTheRoot()
    {
        File.AppendAllText(Path.Combine(_root, "etc", "group"), $"ops:x:{_uidMin + 4}:\n");
        File.AppendAllText(Path.Combine(_root, "etc", "passwd"), $"svc:x:{_uidMin + 2}:{_uidMin + 4}::/nonexistent:/usr/sbin/nologin\n");

        var uid = await ProvisionAsync(DaemonKit.Username("above"));

        Assert.Equal(_uidMin + 5, uid);
    }

    [Fact]
    public async Task RemovalKillsTheUidsProcessesRightBeforeUserDel()
    {
        var user = DaemonKit.Username("live");
        var uid = await ProvisionAsync(user);
        var process = await DaemonKit.SleepAsAsync(uid, uid, _started);

        var outcome = await Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.True(process.WaitForExit(10_000), "the process of the removed user is still running");
        Assert.Empty(ProcessesResource.Running(uid));
        Assert.Empty(Lines("passwd", user));
        Assert.Contains("1 process", outcome.Detail);
    }

    [Fact]
    public async Task UserDelIsNeverRunWhileAProcessOfTheUidLives()
    {
        var user = DaemonKit.Username("busy");
        var uid = await ProvisionAsync(user);
        var process = await DaemonKit.SleepAsAsync(uid, uid, _started);
        // A kill that kills nothing: the process outlives every attempt.
        using var services = DaemonKit.Services(new Dictionary<string, string?>
        {
            ["Opterius:Root"] = _root,
            ["Opterius:Commands:KillProcesses:0"] = "true",
        });
        var before = new[] { "passwd", "group", "shadow", "gshadow" }.ToDictionary(f => f, f => Lines(f, user));

        var e = await Assert.ThrowsAsync<ResourceException>(() =>
            services.GetRequiredService<SystemUserResource>().RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default));

        Assert.Contains($"{process.Id}", e.Message);
        Assert.False(process.HasExited);
        Assert.Equal(before, new[] { "passwd", "group", "shadow", "gshadow" }.ToDictionary(f => f, f => Lines(f, user)));
    }

    [Fact]
    public async Task AUidThatNowBelongsToAnotherNameIsRefusedAndNothingIsKilledOrRemoved()
    {
        var user = DaemonKit.Username("gone");
        var uid = await ProvisionAsync(user);
        var other = DaemonKit.Username("heir");
        var otherUid = await ProvisionAsync(other);
        var process = await DaemonKit.SleepAsAsync(otherUid, otherUid, _started);

        // The account's stored uid is now someone else's: its name still exists with another uid.
        var e = await Assert.ThrowsAsync<ResourceException>(() => Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", otherUid), default));

        Assert.Contains(other, e.Message);
        Assert.False(process.HasExited);
        Assert.Single(Lines("passwd", user));
        Assert.Single(Lines("passwd", other));
        Assert.Equal(uid, await Users.FindUidAsync(user));
    }

    [Fact]
    public async Task ThePrivateGroupGoesWithTheUserWhenLoginDefsKeepsIt()
    {
        SetLoginDefs(("USERGROUPS_ENAB", "no"));
        var user = DaemonKit.Username("grp");
        var uid = await ProvisionAsync(user);
        Assert.Single(Lines("group", user));

        var outcome = await Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Empty(Lines("passwd", user));
        Assert.Empty(Lines("group", user));
        Assert.Empty(Lines("gshadow", user));
        Assert.False((await Users.InspectAsync(DaemonKit.Account(user, $"{user}.test", uid), default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default)).Status);
    }

    [Fact]
    public async Task ThePrivateGroupGoesWithTheUserEvenWithOtherMembersAndTheMembersStay()
    {
        var user = DaemonKit.Username("mem");
        var member = DaemonKit.Username("friend");
        var uid = await ProvisionAsync(user);
        await ProvisionAsync(member);
        DaemonKit.Run("usermod", "-R", _root, "-a", "-G", user, member);
        Assert.EndsWith($":{member}", Lines("group", user).Single());
        var memberLines = new[] { "passwd", "group", "shadow" }.ToDictionary(f => f, f => Lines(f, member));

        var outcome = await Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Empty(Lines("group", user));
        Assert.Empty(Lines("gshadow", user));
        Assert.Contains(member, outcome.Detail);
        Assert.Equal(memberLines, new[] { "passwd", "group", "shadow" }.ToDictionary(f => f, f => Lines(f, member)));
    }

    [Fact]
    public async Task SuspendDisablesTheLoginShellAndUnsuspendGivesItBack()
    {
        var user = DaemonKit.Username("sus");
        var a = DaemonKit.Account(user, $"{user}.test", await ProvisionAsync(user));

        await Users.SuspendAsync(a, default);
        await Users.SuspendAsync(a, default);
        Assert.Equal(SystemUserResource.SuspendedShell, Shell(user));

        await Users.UnsuspendAsync(a, default);
        Assert.Equal(SystemUserResource.DefaultShell, Shell(user));
    }

    [Fact]
    public async Task RemovalDeletesOnlyThatUserAndGroupAndLeavesALookAlikeNeighbourByteForByte()
    {
        var user = DaemonKit.Username("rem");
        var a = DaemonKit.Account(user, $"{user}.test", await ProvisionAsync(user));
        await ProvisionAsync(user + "x");
        var b = DaemonKit.Account(user + "x", $"x{user}.test");
        var neighbour = new[] { "passwd", "group", "shadow", "gshadow" }.ToDictionary(f => f, f => Lines(f, b.Username));

        var outcome = await Users.RemoveAsync(a, default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Null(await Users.FindUidAsync(user));
        foreach (var (file, lines) in neighbour)
        {
            Assert.Empty(Lines(file, user));
            Assert.Equal(lines, Lines(file, b.Username));
        }
        Assert.Equal(StepStatus.Skipped, (await Users.RemoveAsync(a, default)).Status);
        Assert.False((await Users.InspectAsync(a, default)).Exists);
    }

    [Fact]
    public async Task WithoutAUserDelCommandRemovalFailsNamingTheKeyAndTheUserStays()
    {
        var user = DaemonKit.Username("keep");
        var a = DaemonKit.Account(user, $"{user}.test", await ProvisionAsync(user));
        using var withoutCommands = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = _root }, privateDaemons: false);

        var e = await Assert.ThrowsAsync<ResourceException>(() => withoutCommands.GetRequiredService<SystemUserResource>().RemoveAsync(a, default));

        Assert.Contains("not configured: set Opterius:Commands:", e.Message);
        Assert.NotNull(await Users.FindUidAsync(user));
    }

    [Fact]
    public async Task LoginsAreLockedWithShellPasswordAndExpiryAndLockingTwiceIsSkipped()
    {
        var user = DaemonKit.Username("lock");
        var uid = await ProvisionAsync(user);
        var a = DaemonKit.Account(user, $"{user}.test", uid);
        var logins = _services.GetRequiredService<LoginsResource>();

        var open = await logins.InspectAsync(a, default);
        var outcome = await logins.RemoveAsync(a, default);

        Assert.Equal("logins", Opterius.Services.Deletion.DeletionOrder.Keys[0]);
        Assert.True(open.Exists, open.Summary);
        Assert.Contains("shell /bin/bash", open.Summary);
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Equal(SystemUserResource.SuspendedShell, Shell(user));
        var shadow = Lines("shadow", user).Single().Split(':');
        Assert.StartsWith("!", shadow[1]);
        Assert.Equal("1", shadow[7]);
        Assert.False((await logins.InspectAsync(a, default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await logins.RemoveAsync(a, default)).Status);
        Assert.Equal(StepStatus.Skipped, (await logins.RemoveAsync(DaemonKit.Account("nosuch" + user, "nosuch.test"), default)).Status);
    }

    [Fact]
    public async Task ASuspendedAccountsLoginsAreStillOpenUntilTheAccountIsExpiredToo()
    {
        var user = DaemonKit.Username("half");
        var uid = await ProvisionAsync(user);
        var a = DaemonKit.Account(user, $"{user}.test", uid);
        await Users.SuspendAsync(a, default); // nologin, and useradd left the password locked: SSH keys still get in
        var logins = _services.GetRequiredService<LoginsResource>();

        var open = await logins.InspectAsync(a, default);
        var outcome = await logins.RemoveAsync(a, default);

        Assert.True(open.Exists, open.Summary);
        Assert.Equal("logins of " + user + " open: account not expired", open.Summary);
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Equal("1", Lines("shadow", user).Single().Split(':')[7]);
    }

    [Fact]
    public async Task WithoutAUserLockCommandLockingFailsNamingTheKeyAndTheShellStays()
    {
        var user = DaemonKit.Username("nolock");
        var uid = await ProvisionAsync(user);
        using var withoutCommands = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = _root }, privateDaemons: false);

        var e = await Assert.ThrowsAsync<ResourceException>(() =>
            withoutCommands.GetRequiredService<LoginsResource>().RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default));

        Assert.Contains("not configured: set Opterius:Commands:UserLock", e.Message);
        Assert.Equal(SystemUserResource.DefaultShell, Shell(user));
    }

    [Fact]
    public async Task AnExistingUserOfAnAccountThatStoredNoUidIsNeverRemovedNorItsProcessesKilled()
    {
        var user = DaemonKit.Username("foreign");
        var uid = await ProvisionAsync(user);
        var process = await DaemonKit.SleepAsAsync(uid, uid, _started);
        var before = new[] { "passwd", "group", "shadow", "gshadow" }.ToDictionary(f => f, f => Lines(f, user));

        // What the undo of a create refused for an existing name would ask: no uid was ever stored for it.
        var e = await Assert.ThrowsAsync<ResourceException>(() => Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test"), default));

        Assert.Contains("not provably its own", e.Message);
        Assert.False(process.HasExited);
        Assert.Equal(before, new[] { "passwd", "group", "shadow", "gshadow" }.ToDictionary(f => f, f => Lines(f, user)));
    }

    [Fact]
    public async Task AUidWithALiveProcessIsNeverHandedOutEvenWhenThePasswdDoesNotKnowIt()
    {
        // The host's processes are not in the sandbox's passwd (nor, in production, are every NSS user's).
        var process = await DaemonKit.SleepAsAsync(_uidMin, _uidMin, _started);

        var uid = await ProvisionAsync(DaemonKit.Username("busyuid"));

        Assert.Equal(_uidMin + 1, uid);
        Assert.False(process.HasExited);
    }

    [Fact]
    public async Task ConcurrentReservationsOnOneRootGetDistinctUidsWithOneLedgerFileEach()
    {
        var names = Enumerable.Range(0, 8).Select(i => DaemonKit.Username($"con{i}")).ToList();

        var uids = await Task.WhenAll(names.Select(n => Task.Run(() => Users.ReserveUidAsync(DaemonKit.Account(n, $"{n}.test"), default))));

        Assert.Equal(names.Count, uids.Distinct().Count());
        Assert.All(uids, u => Assert.InRange(u, _uidMin, _uidMin + UidsPerTest - 1));
        var ledger = Path.Combine(_root, "var", "lib", "opterius", "uids");
        Assert.Equal(uids.Order().Select(u => u.ToString()), Directory.GetFiles(ledger).Select(Path.GetFileName).Order());
        for (var i = 0; i < names.Count; i++) Assert.Equal($"{names[i]} {names[i]}.test\n", File.ReadAllText(Path.Combine(ledger, uids[i].ToString())));
    }

    [Fact]
    public async Task ProvisionRefusesAUidThatWasNotReservedForTheNameAndMakesNoUser()
    {
        var user = DaemonKit.Username("unres");
        var other = DaemonKit.Username("resvd");
        var reserved = await Users.ReserveUidAsync(DaemonKit.Account(other, $"{other}.test"), default);

        var e = await Assert.ThrowsAsync<ResourceException>(() =>
            Users.ProvisionAsync(new(DaemonKit.Account(user, $"{user}.test", reserved), "o@example.com", "unused"), default));

        Assert.Contains("not reserved", e.Message);
        Assert.Empty(Lines("passwd", user));
    }

    [Fact]
    public async Task WithoutAUserAddCommandProvisionFailsNamingTheKeyAndNoUserIsMade()
    {
        var user = DaemonKit.Username("noadd");
        using var withoutCommands = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = _root }, privateDaemons: false);
        var users = withoutCommands.GetRequiredService<SystemUserResource>();

        var reserve = await Assert.ThrowsAsync<ResourceException>(() => users.ReserveUidAsync(DaemonKit.Account(user, $"{user}.test"), default));
        var provision = await Assert.ThrowsAsync<ResourceException>(() =>
            users.ProvisionAsync(new(DaemonKit.Account(user, $"{user}.test", _uidMin), "o@example.com", "unused"), default));

        Assert.Contains("not configured: set Opterius:Commands:UserAdd", reserve.Message);
        Assert.Contains("not configured: set Opterius:Commands:UserAdd", provision.Message);
        Assert.Empty(Lines("passwd", user));
        Assert.False(Directory.Exists(Path.Combine(_root, "var", "lib", "opterius", "uids")) && Directory.EnumerateFiles(Path.Combine(_root, "var", "lib", "opterius", "uids")).Any());
    }

    [Fact]
    public async Task AGroupThatIsAnotherUsersPrimaryGroupIsKeptAndTheDetailSaysSo()
    {
        var user = DaemonKit.Username("prim");
        var other = DaemonKit.Username("dave");
        var uid = await ProvisionAsync(user);
        await ProvisionAsync(other);
        DaemonKit.Run("usermod", "-R", _root, "-g", user, other);
        var group = Lines("group", user).Single();

        var outcome = await Users.RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Empty(Lines("passwd", user));
        Assert.Equal(group, Lines("group", user).Single());
        Assert.Contains($"group {user} kept: primary group of {other}", outcome.Detail);
        Assert.DoesNotContain("removed by userdel", outcome.Detail);
    }

    [Fact]
    public void TheMachinesUserDatabaseIsAskedThroughNssForUidsAndGidsOnTheRealRoot()
    {
        // What ReserveUid skips on the real root ("/"): only read here, nothing of the host's is changed.
        var unused = Enumerable.Range(_uidMin, UidsPerTest).First(u => !File.ReadLines("/etc/passwd").Any(l => l.Split(':')[2] == u.ToString()));

        Assert.True(Opterius.Services.Files.Libc.KnowsUid(0), "NSS does not know uid 0 (root)");
        Assert.True(Opterius.Services.Files.Libc.KnowsGid(0), "NSS does not know gid 0 (root)");
        Assert.True(Opterius.Services.Files.Libc.KnowsUid(65534), "NSS does not know uid 65534 (nobody)");
        Assert.False(Opterius.Services.Files.Libc.KnowsUid(unused));
        Assert.False(Opterius.Services.Files.Libc.KnowsGid(unused));
    }
}
