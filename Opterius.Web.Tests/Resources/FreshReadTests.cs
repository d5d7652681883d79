using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Resources;

/// <summary>
/// The shared read of the process table: every caller gets a read that started after it asked (a process started
/// before the call is always seen), and callers that ask while one read runs share the next one.
/// </summary>
public sealed class FreshReadTests
{
    /// <summary>A read that numbers itself and waits, once started, until <see cref="Release"/>.</summary>
    private sealed class GatedRead
    {
        private readonly ManualResetEventSlim _open = new(false);
        private readonly SemaphoreSlim _started = new(0);
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);
        public bool FailFirst { get; init; }

        public int Read()
        {
            var n = Interlocked.Increment(ref _reads);
            _started.Release();
            Assert.True(_open.Wait(TimeSpan.FromSeconds(30)), "the test never released the read");
            if (FailFirst && n == 1) throw new IOException("the first read failed");
            return n;
        }

        public async Task StartedAsync() => Assert.True(await _started.WaitAsync(TimeSpan.FromSeconds(30)), "no read started");
        public void Release() => _open.Set();
    }

    [Fact]
    public async Task ACallerThatAsksWhileAReadRunsGetsTheNextReadNotTheRunningOne()
    {
        var gated = new GatedRead();
        var shared = new FreshRead<int>(gated.Read);

        var first = shared.GetAsync();
        await gated.StartedAsync();
        var second = shared.GetAsync();
        gated.Release();

        Assert.Equal(1, await first);
        Assert.Equal(2, await second);
        Assert.Equal(2, gated.Reads);
    }

    [Fact]
    public async Task EveryoneWhoAsksDuringOneReadSharesTheNextOne()
    {
        var gated = new GatedRead();
        var shared = new FreshRead<int>(gated.Read);

        var first = shared.GetAsync();
        await gated.StartedAsync();
        var meanwhile = Enumerable.Range(0, 20).Select(_ => shared.GetAsync()).ToList();
        gated.Release();

        Assert.Equal(1, await first);
        Assert.All(await Task.WhenAll(meanwhile), n => Assert.Equal(2, n));
        Assert.Equal(2, gated.Reads);
        // Nothing runs any more: the next caller starts a read of its own at once.
        Assert.Equal(3, await shared.GetAsync());
    }

    [Fact]
    public async Task AFailedReadFailsOnlyItsOwnCallersAndTheNextReadRuns()
    {
        var gated = new GatedRead { FailFirst = true };
        var shared = new FreshRead<int>(gated.Read);

        var first = shared.GetAsync();
        await gated.StartedAsync();
        var second = shared.GetAsync();
        gated.Release();

        Assert.Equal("the first read failed", (await Assert.ThrowsAsync<IOException>(() => first)).Message);
        Assert.Equal(2, await second);
    }

    [Fact]
    public async Task ACallerThatGivesUpLeavesTheReadToTheOthers()
    {
        var gated = new GatedRead();
        var shared = new FreshRead<int>(gated.Read);
        using var cancel = new CancellationTokenSource();

        var first = shared.GetAsync();
        await gated.StartedAsync();
        var leaving = shared.GetAsync(cancel.Token);
        var staying = shared.GetAsync();
        cancel.Cancel();
        gated.Release();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving);
        Assert.Equal(1, await first);
        Assert.Equal(2, await staying);
    }
}
