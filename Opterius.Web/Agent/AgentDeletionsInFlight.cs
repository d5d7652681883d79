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
    private static readonly AsyncLocal<Flight?> Current = new();

    public IDisposable DeletionInFlight()
    {
        var flight = new Flight(agent, log);
        Current.Value = flight;
        return flight;
    }

    /// <summary>The id the agent gave the deletion this flow runs on <paramref name="channel"/>; null outside one, or when the agent gave none.</summary>
    public static Task<string?> IdOfThisFlowAsync(AgentChannel channel) =>
        Current.Value is { } flight && flight.Channel == channel ? flight.Id : Task.FromResult<string?>(null);

    /// <summary>One deletion's open call: the agent holds the deletion until it is disposed (the call ends).</summary>
    public sealed class Flight : IDisposable
    {
        private readonly AsyncServerStreamingCall<DeletionFlight> _call;

        internal Flight(AgentChannel channel, ILogger log)
        {
            Channel = channel;
            _call = channel.Client.DeletionInFlight(new DeletionFlightRequest());
            Id = FirstAsync(log);
        }

        internal AgentChannel Channel { get; }

        /// <summary>The agent's id for it once the agent knows it (its removals wait for this); null when the call failed.</summary>
        public Task<string?> Id { get; }

        private async Task<string?> FirstAsync(ILogger log)
        {
            try { return await _call.ResponseStream.MoveNext(CancellationToken.None) ? _call.ResponseStream.Current.Id : null; }
            // Ended before the agent answered (disposed): nothing of it is left to tell.
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled) { return null; }
            catch (Exception e)
            {
                // Not the deletion's failure: its reloads run as they would alone, and its steps say whether the agent answers.
                log.LogWarning("The agent at {Socket} was not told of a deletion in flight: {Reason}", Channel.Socket, e.Message);
                return null;
            }
        }

        // Disposing the call cancels it: the agent's handler ends, and its reloads stop waiting for this deletion.
        public void Dispose() => _call.Dispose();
    }
}
