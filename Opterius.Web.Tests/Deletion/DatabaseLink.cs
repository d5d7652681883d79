using System.Net.Sockets;

namespace Opterius.Web.Tests.Deletion;

/// <summary>
/// A relay between one panel process and the real MariaDB socket. <see cref="Cut"/> drops every connection through it
/// and refuses new ones, so the database becomes unreachable from that process only (a network split, a firewall,
/// a frozen link), while every other process still reaches it.
/// </summary>
public sealed class DatabaseLink : IAsyncDisposable
{
    private readonly string _target;
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly List<Socket> _open = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private volatile bool _cut;

    public DatabaseLink(string target)
    {
        _target = target;
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"opterius-link-{Guid.NewGuid():N}.sock");
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(64);
        _accepting = AcceptAsync();
    }

    /// <summary>The socket a connection string names instead of the database's.</summary>
    public string Path { get; }

    public void Cut()
    {
        _cut = true;
        lock (_open)
        {
            foreach (var s in _open) s.Dispose();
            _open.Clear();
        }
    }

    public void Restore() => _cut = false;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception) { return; }
            if (_cut) { client.Dispose(); continue; }
            var server = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try { await server.ConnectAsync(new UnixDomainSocketEndPoint(_target)); }
            catch (SocketException) { client.Dispose(); server.Dispose(); continue; }
            lock (_open) _open.AddRange([client, server]);
            _ = PumpAsync(client, server);
            _ = PumpAsync(server, client);
        }
    }

    private static async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16384];
        try
        {
            int n;
            while ((n = await from.ReceiveAsync(buffer)) > 0) await to.SendAsync(buffer.AsMemory(0, n));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        Cut();
        File.Delete(Path);
    }
}
