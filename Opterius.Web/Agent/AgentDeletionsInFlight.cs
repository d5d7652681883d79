using Grpc.Core;
using Opterius.Services.Commands;
using Opterius.Web.Agent.Protocol;

namespace Opterius.Web.Agent;

/// <summary>
/// The panel's deletions in flight told to the agent, whose reloader coalesces the reloads: a <c>DeletionInFlight</c> call
/// open for the job's lifetime, and its id on the job's removals (<see cref="IdOfThisFlowAsync"/>). An agent that cannot
/// be reached, or restarts mid-job, only does not know the deletion: its removals run and reload as they would alone.
/// </summary>
public sealed class AgentDeletionsInFlight(AgentChannel agent, ILogger<AgentDeletionsInFlight> log) : IDeletionsInFlight
{
    // The id is only a hint: a removal waits for it this long at most, so an agent that took the call and hangs holds none.
    private static readonly TimeSpan IdWait = TimeSpan.FromSeconds(5);
    private static readonly AsyncLocal<Flight?> Current = new();
    private int _warned;

    public IDisposable DeletionInFlight(IEnumerable<string> services)
    {
        var flight = new Flight(agent, services, log, CannotCall);
        Current.Value = flight;
        return flight;
    }

    // A channel that cannot even start a call (disposed at shutdown) fails no job for a hint; said once, not per job.
    private void CannotCall(Exception e)
    {
        if (Interlocked.Exchange(ref _warned, 1) == 0)
            log.LogWarning("The agent at {Socket} cannot be told of deletions in flight: {Reason}", agent.Socket, e.Message);
    }

    /// <summary>
    /// The id the agent gave the deletion this flow runs on <paramref name="channel"/>; null outside one, when the agent gave
    /// none, or when it has not answered within a few seconds. Throws when <paramref name="ct"/> is cancelled.
    /// </summary>
    public static async Task<string?> IdOfThisFlowAsync(AgentChannel channel, CancellationToken ct)
    {
        if (Current.Value is not { } flight || flight.Channel != channel) return null;
        try { return await flight.Id.WaitAsync(IdWait, ct); }
        catch (TimeoutException) { return null; }
    }

    /// <summary>One deletion's open call: the agent holds the deletion until it is disposed (the call ends).</summary>
    public sealed class Flight : IDisposable
    {
        private readonly AsyncServerStreamingCall<DeletionFlight>? _call;

        internal Flight(AgentChannel channel, IEnumerable<string> services, ILogger log, Action<Exception> cannotCall)
        {
            Channel = channel;
            try { _call = channel.Client.DeletionInFlight(new DeletionFlightRequest { Services = { services } }); }
            catch (Exception e)
            {
                cannotCall(e);
                Id = Task.FromResult<string?>(null);
                return;
            }
            Id = FirstAsync(_call, log);
        }

        internal AgentChannel Channel { get; }

        /// <summary>The agent's id for it once the agent knows it (its removals wait for this); null when the call failed.</summary>
        public Task<string?> Id { get; }

        private async Task<string?> FirstAsync(AsyncServerStreamingCall<DeletionFlight> call, ILogger log)
        {
            try { return await call.ResponseStream.MoveNext(CancellationToken.None) ? call.ResponseStream.Current.Id : null; }
            // Ended before the agent answered (disposed): nothing of it is left to tell.
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { return null; }
            catch (Exception e)
            {
                // Not the deletion's failure: its reloads run as they would alone, and its steps say whether the agent answers.
                log.LogWarning("The agent at {Socket} was not told of a deletion in flight: {Reason}", Channel.Socket, e.Message);
                return null;
            }
        }

        // Disposing the call cancels it: the agent's handler ends, and its reloads stop waiting for this deletion. This
        // flow's later removals name no flight: the agent no longer knows this one.
        public void Dispose()
        {
            if (Current.Value == this) Current.Value = null;
            _call?.Dispose();
        }
    }
}
