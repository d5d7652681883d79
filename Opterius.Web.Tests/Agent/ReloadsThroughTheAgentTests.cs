using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Agent;
using Opterius.Web.Tests.EndToEnd;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The agent's reloads coalesce as the panel's own do: it knows the panel's deletions in flight, so a burst of them shares
/// a few reloads and a lone one reloads at once. Counted by the agent itself (its <c>Services</c> reply). Where a test needs
/// to show what a reload waits for, the agent runs with the longest window it takes (10 s): a deletion's removal that
/// waited a window for anyone cannot end within one, and a wait checked well inside it can be ended only by an arrival.
/// </summary>
[Collection(nameof(ServingTests))]
public sealed class ReloadsThroughTheAgentTests(AgentServingApp app) : IClassFixture<AgentServingApp>
{
    private static readonly TimeSpan NeverEnds = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(10);
    private static readonly Dictionary<string, string?> LongWindow = new() { ["Opterius:ReloadCoalesceMilliseconds"] = $"{Window.TotalMilliseconds}" };

    [Fact]
    public async Task TwentyAccountsDeletedConcurrentlyThroughTheAgentReloadEachServiceAtMostFiveTimes()
    {
        var p = TestAccounts.NewPrefix(5);
        var accounts = new List<Account>();
        foreach (var chunk in Enumerable.Range(0, 20).Chunk(5))
            accounts.AddRange(await Task.WhenAll(chunk.Select(i => app.CreateAsync($"{p}n{i}"))));
        var before = await ReloadsAsync();

        var handles = await Task.WhenAll(accounts.Select(a => app.Get<AccountDeletionService>().StartAsync(app.AdminActor(), a.Id, default)));
        var jobs = await Task.WhenAll(handles.Select(h => h.Completion));

        Assert.All(jobs, j => Assert.True(j.Status == JobStatus.Succeeded, string.Join("; ", j.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}"))));
        var after = await ReloadsAsync();
        Assert.All(ServiceReloader.Services.Keys, s => Assert.True(after[s] - before[s] is >= 1 and <= 5, $"{s}: {after[s] - before[s]} reloads"));
    }

    [Fact]
    public async Task ALoneDeletionThroughTheAgentReloadsEachServiceOnceWithoutWaitingForTheWindow()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        await app.RestartAgentAsync(LongWindow);
        try
        {
            // Its own reloads are its arrival: nothing is left to wait for.
            await DeletesWithinOneWindowReloadingEachServiceOnceAsync(account);
        }
        finally { await app.RestartAgentAsync(); }
    }

    [Fact]
    public async Task AnAgentReloadWaitsForAPanelDeletionInFlightUntilItsRemovalReachesThatServiceAndBothShareOneRun()
    {
        var p = TestAccounts.NewPrefix(5);
        var slowAccount = await app.CreateAsync($"{p}s");
        var fastAccount = await app.CreateAsync($"{p}f");
        await app.RestartAgentAsync(LongWindow);
        try
        {
            var flights = app.Get<IDeletionsInFlight>();
            var nginx = app.Services.GetServices<IAccountResource>().Single(r => r.Key == "nginx_vhost");
            var before = await ReloadsAsync();
            var known = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var reach = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var slow = Task.Run(async () =>
            {
                using var flight = flights.DeletionInFlight(ServiceReloader.Services.Keys);
                Assert.NotNull(await Assert.IsType<AgentDeletionsInFlight.Flight>(flight).Id); // the agent knows it
                known.SetResult();
                await reach.Task; // its earlier steps
                return await nginx.RemoveAsync(AccountIdentity.From(slowAccount), default);
            });
            await known.Task.WaitAsync(NeverEnds);

            var fast = Task.Run(async () =>
            {
                using var flight = flights.DeletionInFlight(ServiceReloader.Services.Keys);
                return await nginx.RemoveAsync(AccountIdentity.From(fastAccount), default);
            });
            await Task.WhenAny(fast, Task.Delay(Window / 4)); // not a timing: within the window, only the other's arrival ends the wait
            Assert.False(fast.IsCompleted, fast.IsFaulted ? fast.Exception!.GetBaseException().Message : "the removal reloaded without waiting");
            Assert.Equal(before["nginx"], (await ReloadsAsync())["nginx"]);
            reach.SetResult();
            var outcomes = await Task.WhenAll(fast, slow).WaitAsync(NeverEnds);

            Assert.All(outcomes, o => Assert.Equal(StepStatus.Done, o.Status));
            Assert.Equal(before["nginx"] + 1, (await ReloadsAsync())["nginx"]);
        }
        finally { await app.RestartAgentAsync(); }
    }

    [Fact]
    public async Task ARemovalNamingADeletionInFlightTheRestartedAgentDoesNotKnowRunsAndReloadsAtOnce()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var flights = app.Get<IDeletionsInFlight>();
        var nginx = app.Services.GetServices<IAccountResource>().Single(r => r.Key == "nginx_vhost");

        try
        {
            var outcome = await Task.Run(async () =>
            {
                using var flight = flights.DeletionInFlight(ServiceReloader.Services.Keys);
                Assert.NotNull(await Assert.IsType<AgentDeletionsInFlight.Flight>(flight).Id);
                // The agent restarts mid-job: the id this flow sends is one the new agent never gave.
                await app.RestartAgentAsync(LongWindow);
                var before = await ReloadsAsync();
                var removed = await nginx.RemoveAsync(AccountIdentity.From(account), default).WaitAsync(Window);
                Assert.Equal(before["nginx"] + 1, (await ReloadsAsync())["nginx"]);
                return removed;
            });

            Assert.Equal(StepStatus.Done, outcome.Status);
        }
        finally { await app.RestartAgentAsync(); }
    }

    [Fact]
    public async Task AFlightThePanelEndedIsDroppedByTheAgentSoALoneDeletionAfterItReloadsEachServiceOnceWithinAWindow()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        await app.RestartAgentAsync(LongWindow);
        try
        {
            await Task.Run(async () =>
            {
                using var ended = app.Get<IDeletionsInFlight>().DeletionInFlight(ServiceReloader.Services.Keys);
                Assert.NotNull(await Assert.IsType<AgentDeletionsInFlight.Flight>(ended).Id); // the agent knew it
            });

            // Had the agent kept the ended flight, every reload would wait for it a window and more.
            await DeletesWithinOneWindowReloadingEachServiceOnceAsync(account);
        }
        finally { await app.RestartAgentAsync(); }
    }

    [Fact]
    public async Task AnAgentReloadDoesNotWaitForAPanelDeletionInFlightWhoseStepsLeftReloadOtherServices()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        await app.RestartAgentAsync(LongWindow);
        try
        {
            var nginx = app.Services.GetServices<IAccountResource>().Single(r => r.Key == "nginx_vhost");
            var before = await ReloadsAsync();
            var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var known = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // A job resumed at its home directory: none of the shared services' steps is left to it.
            var resumed = Task.Run(async () =>
            {
                using var flight = app.Get<IDeletionsInFlight>().DeletionInFlight([]);
                Assert.NotNull(await Assert.IsType<AgentDeletionsInFlight.Flight>(flight).Id); // the agent knows it
                known.SetResult();
                await held.Task;
            });
            await known.Task.WaitAsync(NeverEnds);

            // Had the reload waited for the resumed job, it could not end within the window.
            var removed = await Task.Run(async () =>
            {
                using var flight = app.Get<IDeletionsInFlight>().DeletionInFlight(["nginx"]);
                return await nginx.RemoveAsync(AccountIdentity.From(account), default);
            }).WaitAsync(Window);
            held.SetResult();
            await resumed;

            Assert.Equal(StepStatus.Done, removed.Status);
            Assert.Equal(before["nginx"] + 1, (await ReloadsAsync())["nginx"]);
        }
        finally { await app.RestartAgentAsync(); }
    }

    [Fact]
    public async Task ARemovalAfterItsFlightEndedNamesNoFlight()
    {
        var agent = app.Get<AgentChannel>();
        var id = await Task.Run(async () =>
        {
            var flight = app.Get<IDeletionsInFlight>().DeletionInFlight(ServiceReloader.Services.Keys);
            Assert.NotNull(await Assert.IsType<AgentDeletionsInFlight.Flight>(flight).Id);
            flight.Dispose();
            return await AgentDeletionsInFlight.IdOfThisFlowAsync(agent, default);
        });

        Assert.Null(id);
    }

    [Fact]
    public async Task ARemovalOfAFlightOnAnAgentThatAcceptedButNeverAnswersStopsWhenItsCallerGoes()
    {
        var folder = Directory.CreateTempSubdirectory("opterius-hung-").FullName;
        try
        {
            // The kernel accepts the connection (backlog), and nobody ever reads it: an agent hung after its listen.
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(folder, "agent.sock")));
            listener.Listen(16);
            using var hung = new AgentChannel(Options.Create(new AgentOptions { Socket = Path.Combine(folder, "agent.sock") }));
            var flights = new AgentDeletionsInFlight(hung, NullLogger<AgentDeletionsInFlight>.Instance);
            using var leaseLost = new CancellationTokenSource(TimeSpan.FromSeconds(1));

            var removal = Task.Run(async () =>
            {
                using var flight = flights.DeletionInFlight(ServiceReloader.Services.Keys);
                return await new AgentResource("nginx_vhost", hung).RemoveAsync(AccountIdentity.Create(1, "hungagent", "hung.test", "8.2", null, "test"), leaseLost.Token);
            });

            // Well inside the bound on the wait for the flight's id (5 s): only the caller's going can end it this soon.
            Assert.Same(removal, await Task.WhenAny(removal, Task.Delay(TimeSpan.FromSeconds(4))));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => removal);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public async Task ADeletionInFlightOnAChannelThatCannotCallTellsNothingAndDoesNotFailTheJob()
    {
        var closed = new AgentChannel(Options.Create(new AgentOptions { Socket = app.Socket }));
        closed.Dispose();

        var id = await Task.Run(async () =>
        {
            using var flight = new AgentDeletionsInFlight(closed, NullLogger<AgentDeletionsInFlight>.Instance).DeletionInFlight(ServiceReloader.Services.Keys);
            return await Assert.IsType<AgentDeletionsInFlight.Flight>(flight).Id;
        });

        Assert.Null(id);
    }

    /// <summary>The account's deletion ends within one window (had any reload waited one, it could not), reloading each service once.</summary>
    private async Task DeletesWithinOneWindowReloadingEachServiceOnceAsync(Account account)
    {
        var before = await ReloadsAsync();
        var job = await (await app.Get<AccountDeletionService>().StartAsync(app.AdminActor(), account.Id, default)).Completion.WaitAsync(Window);

        Assert.True(job.Status == JobStatus.Succeeded, string.Join("; ", job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}")));
        var after = await ReloadsAsync();
        Assert.Equal(ServiceReloader.Services.Keys.Select(s => (s, 1L)), ServiceReloader.Services.Keys.Select(s => (s, after[s] - before[s])));
    }

    private Task<Dictionary<string, long>> ReloadsAsync() => new AgentServerServices(app.Get<AgentChannel>()).ReloadsAsync(default);
}
