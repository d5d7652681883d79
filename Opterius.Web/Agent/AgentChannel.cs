using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using Opterius.Services.Resources;

namespace Opterius.Web.Agent;

/// <summary>
/// The panel's one gRPC channel to the agent, over its Unix socket. Every failure becomes a
/// <see cref="ResourceException"/> whose message is the step's detail: the resource's own text when the agent ran
/// it, "agent not reachable at PATH: ..." when the agent is down or went away mid-call (the step fails, nothing
/// crashes, and the next attempt reconnects).
/// </summary>
public sealed class AgentChannel : IDisposable
{
    private readonly GrpcChannel _channel;

    public AgentChannel(IOptions<AgentOptions> options)
    {
        Socket = options.Value.Socket;
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            // A batch of terminations is many concurrent calls: past one connection's stream limit, open another.
            EnableMultipleHttp2Connections = true,
            ConnectCallback = async (_, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // The host name is never resolved: every connection goes to the socket.
        _channel = GrpcChannel.ForAddress("http://agent", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        Client = new Protocol.Agent.AgentClient(_channel);
    }

    public string Socket { get; }

    public Protocol.Agent.AgentClient Client { get; }

    /// <summary>The channel's raw invoker (for a call the contract does not name).</summary>
    public CallInvoker Invoker => _channel.CreateCallInvoker();

    public async Task<T> CallAsync<T>(Func<Protocol.Agent.AgentClient, Task<T>> call)
    {
        try { return await call(Client); }
        catch (RpcException e) { throw Translate(e); }
    }

    private ResourceException Translate(RpcException e)
    {
        // A status the agent sent has no local exception; a broken or refused connection does.
        if (e.StatusCode == StatusCode.Unavailable || e.Status.DebugException is not null)
            return new($"agent not reachable at {Socket}: {e.Status.DebugException?.GetBaseException().Message ?? e.Status.Detail}", e);
        return e.StatusCode switch
        {
            StatusCode.Aborted => new ResourceException(e.Status.Detail, e),
            StatusCode.AlreadyExists => new AlreadyThereException(e.Status.Detail),
            _ => new ResourceException($"the agent refused: {e.Status.Detail} ({e.StatusCode})", e),
        };
    }

    public void Dispose() => _channel.Dispose();
}
