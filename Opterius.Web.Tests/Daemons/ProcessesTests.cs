using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Daemons;

/// <summary>
/// processes against real processes this test starts under sandbox uids (setpriv), beside a neighbour of
/// another uid that must survive. Every process started here is killed by its pid when the test ends.
/// </summary>
public sealed class ProcessesTests : IDisposable
{
    // Twenty uids per test process, apart from other test runs' and far above the uids useradd hands
    // sandbox users (from 200000 up), whose deletion tests kill by uid.
    private static int _nextUid = 300000 + Environment.ProcessId % 4000 * 20;
    private readonly List<Process> _started = [];
    private readonly ServiceProvider _services = DaemonKit.Services();
    private ProcessesResource Processes => _services.GetRequiredService<ProcessesResource>();

    public void Dispose()
    {
        foreach (var p in _started)
        {
            if (!p.HasExited) p.Kill();
            p.Dispose();
        }
        _services.Dispose();
    }

    private static int NewUid() => Interlocked.Add(ref _nextUid, 1);

    /// <summary>A sleeping process whose real and effective uid is <paramref name="uid"/>, once setpriv has switched to it.</summary>
    private Task<Process> SleepAsAsync(int uid) => SleepAsAsync($"--reuid={uid}", $"--regid={uid}");

    /// <summary>A sleeping process with the ids setpriv gives it, once it runs sleep (its Uid line no longer root's).</summary>
    private async Task<Process> SleepAsAsync(params string[] ids)
    {
        var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true };
        foreach (var arg in ids.Concat(["--clear-groups", "sleep", "600"])) psi.ArgumentList.Add(arg);
        var p = Process.Start(psi)!;
        _started.Add(p);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!IsSleeping(p.Id))
        {
            Assert.True(DateTime.UtcNow < deadline, $"setpriv {string.Join(' ', ids)} never ran sleep");
            await Task.Delay(20);
        }
        return p;
    }

    private static bool IsSleeping(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/comm").Trim() == "sleep"; }
        catch (IOException) { return false; }
    }

    [Fact]
    public async Task RemovalKillsEveryProcessOfTheAccountsUidAndNoneOfItsNeighbours()
    {
        var (uid, neighbourUid) = (NewUid(), NewUid());
        var user = DaemonKit.Username("proc");
        var a = DaemonKit.Account(user, $"{user}.test", uid);
        var victims = new[] { await SleepAsAsync(uid), await SleepAsAsync(uid) };
        var neighbour = await SleepAsAsync(neighbourUid);

        var plan = await Processes.InspectAsync(a, default);
        var outcome = await Processes.RemoveAsync(a, default);

        Assert.Equal(2, plan.Count);
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.All(victims, v => Assert.True(v.WaitForExit(10_000)));
        Assert.Empty(ProcessesResource.Running(uid));
        Assert.False(neighbour.HasExited);
        Assert.Contains(ProcessesResource.Running(neighbourUid), r => r.Pid == neighbour.Id);
        Assert.Equal(StepStatus.Skipped, (await Processes.RemoveAsync(a, default)).Status);
    }

    [Fact]
    public async Task AUidBelowMinUidIsRefusedAndItsProcessesAreLeftAlone()
    {
        const int lowUid = 1999;
        var user = DaemonKit.Username("low");
        var a = DaemonKit.Account(user, $"{user}.test", lowUid);
        var process = await SleepAsAsync(lowUid);

        var plan = await Processes.InspectAsync(a, default);
        var e = await Assert.ThrowsAsync<ResourceException>(() => Processes.RemoveAsync(a, default));

        Assert.False(process.HasExited);
        // The plan says what the removal will do: refuse, with the process still there.
        Assert.True(plan.Exists, plan.Summary);
        Assert.Contains("refus", plan.Summary);
        Assert.Contains("below Opterius:MinUid", e.Message);
    }

    [Fact]
    public async Task AnAccountWithNoUidOrNoProcessesIsSkipped()
    {
        var user = DaemonKit.Username("none");

        var noUid = await Processes.RemoveAsync(DaemonKit.Account(user, $"{user}.test"), default);
        var noProcesses = await Processes.RemoveAsync(DaemonKit.Account(user, $"{user}.test", NewUid()), default);

        Assert.Equal(StepStatus.Skipped, noUid.Status);
        Assert.Equal(StepStatus.Skipped, noProcesses.Status);
    }

    [Fact]
    public async Task WithoutAKillProcessesCommandRemovalFailsNamingTheKeyAndNothingIsKilled()
    {
        var uid = NewUid();
        var user = DaemonKit.Username("nokill");
        var process = await SleepAsAsync(uid);
        using var withoutCommands = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:MinUid"] = "200000" }, privateDaemons: false);

        var e = await Assert.ThrowsAsync<ResourceException>(() =>
            withoutCommands.GetRequiredService<ProcessesResource>().RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default));

        Assert.Contains("not configured: set Opterius:Commands:KillProcesses", e.Message);
        Assert.False(process.HasExited);
    }

    [Fact]
    public async Task AUidThatNowBelongsToAnotherNameIsRefusedAndNothingIsKilled()
    {
        var uid = NewUid();
        var user = DaemonKit.Username("old");
        var root = DaemonKit.NewSandboxRoot();
        File.AppendAllText(Path.Combine(root, "etc", "passwd"), $"newowner:x:{uid}:{uid}::/home/newowner:/bin/bash\n");
        using var services = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = root });
        var process = await SleepAsAsync(uid);

        var e = await Assert.ThrowsAsync<ResourceException>(() =>
            services.GetRequiredService<ProcessesResource>().RemoveAsync(DaemonKit.Account(user, $"{user}.test", uid), default));

        Assert.Contains("newowner", e.Message);
        Assert.False(process.HasExited);
        Assert.Contains(ProcessesResource.Running(uid), r => r.Pid == process.Id);
    }

    [Fact]
    public async Task AProcessWithTheAccountsEffectiveUidButAnotherRealUidIsFoundAndKilled()
    {
        // A binary setuid to the tenant, run by another user: the real uid is the other's, the effective (and saved) the tenant's.
        var (uid, otherUid) = (NewUid(), NewUid());
        var user = DaemonKit.Username("suid");
        var a = DaemonKit.Account(user, $"{user}.test", uid);
        var setuid = await SleepAsAsync($"--ruid={otherUid}", $"--euid={uid}", $"--regid={otherUid}");
        var other = await SleepAsAsync(otherUid);
        Assert.Contains($"Uid:\t{otherUid}\t{uid}\t{uid}\t{uid}", File.ReadAllText($"/proc/{setuid.Id}/status"));

        var plan = await Processes.InspectAsync(a, default);
        var outcome = await Processes.RemoveAsync(a, default);

        Assert.Equal([setuid.Id], plan.Items.Select(i => int.Parse(i.Split(' ')[0])));
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.True(setuid.WaitForExit(10_000), "the process running with the account's effective uid survived");
        Assert.False(other.HasExited);
        Assert.Empty(ProcessesResource.Running(uid));
    }

    [Fact]
    public async Task AProcessWhoseFirstThreadExitedWhileAnotherRunsIsFoundAndKilled()
    {
        // pthread_exit in the first thread: /proc/PID/status says zombie for the whole process while its other thread runs.
        var uid = NewUid();
        var user = DaemonKit.Username("zlead");
        var a = DaemonKit.Account(user, $"{user}.test", uid);
        var script = Path.Combine(Path.GetTempPath(), $"opterius-leader-exits-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, "import ctypes, threading, time\nthreading.Thread(target=lambda: time.sleep(600)).start()\nctypes.CDLL(None).pthread_exit(None)\n");
        File.SetUnixFileMode(script, (UnixFileMode)0b110_100_100);
        try
        {
            var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true };
            foreach (var arg in new[] { $"--reuid={uid}", $"--regid={uid}", "--clear-groups", "/usr/bin/python3", script }) psi.ArgumentList.Add(arg);
            var process = Process.Start(psi)!;
            _started.Add(process);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!LeaderExitedWithAThreadLeft(process.Id))
            {
                Assert.True(DateTime.UtcNow < deadline, "/usr/bin/python3 never left a thread running after its first thread exited");
                await Task.Delay(20);
            }

            var plan = await Processes.InspectAsync(a, default);
            var outcome = await Processes.RemoveAsync(a, default);

            Assert.Equal([process.Id], plan.Items.Select(i => int.Parse(i.Split(' ')[0])));
            Assert.Equal(StepStatus.Done, outcome.Status);
            Assert.True(process.WaitForExit(10_000), "the process whose first thread exited survived the removal");
            Assert.Empty(ProcessesResource.Running(uid));
        }
        finally { File.Delete(script); }
    }

    private static bool LeaderExitedWithAThreadLeft(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ") && Directory.GetDirectories($"/proc/{pid}/task").Length == 2;
        }
        catch (IOException) { return false; }
    }
}
