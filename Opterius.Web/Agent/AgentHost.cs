using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Files;
using Opterius.Web.Cli;
using Opterius.Web.Hosting;

namespace Opterius.Web.Agent;

/// <summary>
/// The <c>agent</c> role of the binary (root): every resource, served over gRPC on a Unix socket to root and the
/// panel user only. It holds the MariaDB admin and PowerDNS credentials and the command set; the panel holds none.
/// </summary>
public static class AgentHost
{
    public static async Task<int> RunAsync(string[] args)
    {
        await using var app = Build(PanelHost.CreateBuilder(args));
        await StartAsync(app);
        await app.WaitForShutdownAsync();
        return 0;
    }

    /// <summary>The agent's host on its socket; <see cref="CliException"/> when its configuration cannot work.</summary>
    private static WebApplication Build(WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(AgentOptions.Section).Get<AgentOptions>() ?? new();
        if (options.Socket.Length == 0)
            throw new CliException($"{AgentOptions.Section}:Socket is not set: the agent needs the path of its Unix socket");
        var panel = options.PanelUser.Length == 0 ? null
            : UnixUsers.Find(options.PanelUser) ?? throw new CliException($"{AgentOptions.Section}:PanelUser '{options.PanelUser}' is not a user on this host");
        ClearStaleSocket(options.Socket);

        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(options.Socket, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            var log = k.ApplicationServices.GetRequiredService<ILogger<AgentService>>();
            listen.Use(next => connection => ServePeerAsync(next, connection, options, panel, log));
        }));
        builder.Services.AddSingleton(Options.Create(options));
        if (panel is not null) builder.Services.AddSingleton(panel);
        builder.Services.AddOpteriusResources();
        builder.Services.AddSingleton<ResourceLocks>();
        builder.Services.AddSingleton<DeletionFlights>();
        builder.Services.AddGrpc();

        var app = builder.Build();
        app.MapGrpcService<AgentService>();
        return app;
    }

    /// <summary>Starts listening, then gives the socket its mode (0660) and the panel user's group.</summary>
    private static async Task StartAsync(WebApplication app)
    {
        await app.StartAsync();
        var options = app.Services.GetRequiredService<IOptions<AgentOptions>>().Value;
        // Kestrel made the socket with the process umask. Whatever the mode, the peer check refuses other uids; the
        // mode and group keep them from even connecting.
        File.SetUnixFileMode(options.Socket, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (app.Services.GetService<UnixUsers.UnixUser>() is { } panel) UnixUsers.SetGroup(options.Socket, panel.Gid);
        app.Logger.LogInformation("Agent listening on {Socket} for root and {PanelUser}", options.Socket, options.PanelUser is { Length: > 0 } u ? u : "no other user");
    }

    // Checked on accept, before Kestrel reads the first byte: returning without calling next closes the connection.
    private static async Task ServePeerAsync(ConnectionDelegate next, ConnectionContext connection, AgentOptions options,
        UnixUsers.UnixUser? panel, ILogger log)
    {
        var peer = UnixUsers.Peer(connection.Features.Get<IConnectionSocketFeature>()?.Socket);
        if (peer is { Uid: var uid } && (uid == 0 || uid == panel?.Uid))
        {
            await next(connection);
            return;
        }
        log.LogWarning("Refused a connection to {Socket} from uid {Uid} (pid {Pid}): the agent serves only root and {PanelUser}",
            options.Socket, peer?.Uid.ToString() ?? "unknown", peer?.Pid.ToString() ?? "unknown", panel?.Name ?? "no other user");
    }

    // A socket left by an agent that did not stop cleanly would make the bind fail, so it goes; anything else at
    // the path (a file, a link, a folder: a wrong setting) is refused, never removed.
    private static unsafe void ClearStaleSocket(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        fixed (byte* name = Libc.Z(path))
        {
            if (Libc.StatAt(Libc.AT_FDCWD, name, out var st) != 0)
            {
                if (Libc.Errno == Libc.ENOENT) return;
                throw new CliException($"cannot inspect {path}: errno {Libc.Errno}");
            }
            if (st.Type != SocketType)
                throw new CliException($"{path} exists and is not a socket: refusing to replace it with the agent's socket");
            if (Libc.UnlinkAt(Libc.AT_FDCWD, name, 0) != 0) throw new CliException($"cannot remove the stale socket {path}: errno {Libc.Errno}");
        }
    }

    private const uint SocketType = 0xC000; // S_IFSOCK
}
