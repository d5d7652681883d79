using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Opterius.Services;
using Opterius.Services.Commands;

namespace Opterius.Web.Tests.Commands;

/// <summary>
/// When a reload waits and for whom, on a clock that stands still unless a test moves it: a run that needs the window to
/// pass never happens on its own, so each test shows what the reloader waits for, not how fast the machine is. The
/// commands are real (<c>true</c>); the guard on each await only turns a wait that never ends into a failure.
/// </summary>
public sealed class ServiceReloaderTests
{
    private const int Window = 60_000;
    private static readonly TimeSpan NeverEnds = TimeSpan.FromSeconds(30);

    private static ServiceReloader Reloader(TimeProvider clock)
    {
        var options = Options.Create(new OpteriusOptions
        {
            Root = Path.GetTempPath(),
            ReloadCoalesceMilliseconds = Window,
            Commands = new Dictionary<string, string[]> { ["PdnsPurge"] = ["true"] },
        });
        return new ServiceReloader(new CommandRunner(options), options, clock);
    }

    [Fact]
    public async Task ALoneReloadRunsAtOnceWithoutWaitingForTheWindow()
    {
        var reloader = Reloader(new FakeTimeProvider());

        var plain = await reloader.ReloadAsync("pdns", default).WaitAsync(NeverEnds);
        using (var approach = reloader.Expect("pdns"))
            Assert.True((await reloader.ReloadAsync("pdns", default, approach).WaitAsync(NeverEnds)).Ran);
        await Task.Run(async () =>
        {
            using var deletion = reloader.DeletionInFlight(ServiceReloader.Services.Keys);
            await reloader.ReloadAsync("pdns", default).WaitAsync(NeverEnds);
        });

        Assert.True(plain.Ran);
        Assert.Equal(3, reloader.RunCount("pdns"));
    }

    [Fact]
    public async Task AReloadWaitsForACallerOnItsWayAndBothShareOneRun()
    {
        var reloader = Reloader(new FakeTimeProvider());
        using var first = reloader.Expect("pdns");
        using var second = reloader.Expect("pdns");

        var early = reloader.ReloadAsync("pdns", default, first);
        Assert.False(early.IsCompleted);
        Assert.Equal(0, reloader.RunCount("pdns"));
        var late = reloader.ReloadAsync("pdns", default, second);
        await Task.WhenAll(early, late).WaitAsync(NeverEnds);

        Assert.Equal(1, reloader.RunCount("pdns"));
    }

    [Fact]
    public async Task ACallerThatNeverComesIsWaitedForOnlyUntilTheWindowEnds()
    {
        var clock = new FakeTimeProvider();
        var reloader = Reloader(clock);
        using var lost = reloader.Expect("pdns");
        using var first = reloader.Expect("pdns");

        var early = reloader.ReloadAsync("pdns", default, first);
        clock.Advance(TimeSpan.FromMilliseconds(Window - 1));
        Assert.False(early.IsCompleted);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await early.WaitAsync(NeverEnds);
        Assert.Equal(1, reloader.RunCount("pdns"));

        // The straggler, once it comes, is alone: its own run, at once.
        await reloader.ReloadAsync("pdns", default, lost).WaitAsync(NeverEnds);
        Assert.Equal(2, reloader.RunCount("pdns"));
    }

    [Fact]
    public async Task CallersArrivingWhileTheServiceIsBusyAllShareTheNextRun()
    {
        var reloader = Reloader(new FakeTimeProvider());
        var edit = await reloader.EditAsync("pdns", default); // as a running test and reload would: the gate is taken

        var calls = Enumerable.Range(0, 3).Select(_ => reloader.ReloadAsync("pdns", default)).ToList();
        Assert.All(calls, c => Assert.False(c.IsCompleted));
        edit.Dispose();
        await Task.WhenAll(calls).WaitAsync(NeverEnds);

        Assert.Equal(1, reloader.RunCount("pdns"));
    }

    [Fact]
    public async Task AfterARunSharedByABurstTheNextReloadWaitsTheWindowForMoreAndALoneOneLaterDoesNot()
    {
        var clock = new FakeTimeProvider();
        var reloader = Reloader(clock);
        var edit = await reloader.EditAsync("pdns", default);
        var burst = new[] { reloader.ReloadAsync("pdns", default), reloader.ReloadAsync("pdns", default) };
        edit.Dispose();
        await Task.WhenAll(burst).WaitAsync(NeverEnds);
        Assert.Equal(1, reloader.RunCount("pdns"));

        var next = reloader.ReloadAsync("pdns", default);
        Assert.Equal(1, reloader.RunCount("pdns"));
        clock.Advance(TimeSpan.FromMilliseconds(Window));
        await next.WaitAsync(NeverEnds);
        Assert.Equal(2, reloader.RunCount("pdns"));

        // That run served one caller: the burst is over, the next caller is alone again.
        await reloader.ReloadAsync("pdns", default).WaitAsync(NeverEnds);
        Assert.Equal(3, reloader.RunCount("pdns"));
    }

    [Fact]
    public async Task AReloadWaitsForADeletionInFlightUntilItsFlowReachesThatReloadAndBothShareOneRun()
    {
        var reloader = Reloader(new FakeTimeProvider());
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reach = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = Task.Run(async () =>
        {
            using var deletion = reloader.DeletionInFlight(ServiceReloader.Services.Keys);
            started.SetResult();
            await reach.Task; // its earlier steps
            await reloader.ReloadAsync("pdns", default); // as any resource of its flow would
        });
        await started.Task;

        var fast = Task.Run(async () =>
        {
            using var deletion = reloader.DeletionInFlight(ServiceReloader.Services.Keys);
            await reloader.ReloadAsync("pdns", default);
        });
        await Task.WhenAny(fast, Task.Delay(200)); // not a timing: the clock stands still, nothing can end the wait but the other
        Assert.False(fast.IsCompleted);
        Assert.Equal(0, reloader.RunCount("pdns"));
        reach.SetResult();
        await Task.WhenAll(fast, slow).WaitAsync(NeverEnds);

        Assert.Equal(1, reloader.RunCount("pdns"));
    }

    [Fact]
    public async Task AReloadDoesNotWaitForADeletionInFlightWhoseStepsLeftReloadOtherServices()
    {
        var reloader = Reloader(new FakeTimeProvider());
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var announced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A job resumed past its DNS step: only its mail routes (postmap) are still ahead of it.
        var resumed = Task.Run(async () =>
        {
            using var deletion = reloader.DeletionInFlight(["postmap"]);
            announced.SetResult();
            await held.Task;
        });
        await announced.Task;

        // The clock stands still: had it waited for the resumed job, this could never end.
        var outcome = await reloader.ReloadAsync("pdns", default).WaitAsync(NeverEnds);
        held.SetResult();
        await resumed;

        Assert.True(outcome.Ran);
        Assert.Equal(1, reloader.RunCount("pdns"));
    }
}
