using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Deploy;

/// <summary>
/// The installed panel (a scratch root's /opt/opterius and panel.json) started the way opterius-panel.service
/// starts it, as far as a test can without systemd: its own mount namespace where / is read-only but its state
/// folder (ProtectSystem=strict, StateDirectory), a fresh /tmp (PrivateTmp), a /proc of its own processes
/// (ProtectProc=invisible), a uid that is not root, no
/// capability in any set and no_new_privs (CapabilityBoundingSet=, NoNewPrivileges=yes). The test run's folder
/// is seen at /mnt inside, because the fresh /tmp hides it.
/// </summary>
public sealed class SandboxedPanel : IAsyncDisposable
{
    public const int Uid = 65534; // nobody: a uid with no file of the scratch root

    private readonly Process _process;
    public int Port { get; }
    public int Pid => _process.Id;

    private SandboxedPanel(Process process, int port) => (_process, Port) = (process, port);

    public static async Task<SandboxedPanel> StartAsync(ScratchInstall install)
    {
        var state = Path.Combine(install.Folder, "state");
        Directory.CreateDirectory(state);
        var inside = (string path) => "/mnt" + path[PrivateServices.Folder.Length..];
        // panel.json belongs to the scratch root's opterius; this uid gets its own copy, paths seen from inside.
        File.WriteAllText(Path.Combine(state, "panel.json"), install.Read("/etc/opterius/panel.json").Replace(PrivateServices.Folder, "/mnt"));
        FileResourceSandbox.Run("chown", "-R", $"{Uid}:{Uid}", state);
        File.SetUnixFileMode(state, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var port = FreePort();
        var script = $"""
            set -e
            mount --bind '{PrivateServices.Folder}' /mnt
            mount -t tmpfs -o mode=1777 tmpfs /tmp
            mount -t proc -o hidepid=invisible proc /proc
            mount --bind '{inside(state)}' '{inside(state)}'
            mount -o remount,bind,ro /
            cd '{inside(install.Under("/opt/opterius"))}'
            export OPTERIUS_CONFIG='{inside(state)}/panel.json' HOME='{inside(state)}' ASPNETCORE_ENVIRONMENT=Production
            export Opterius__Https__Port={port} Opterius__Https__ListenAddress=127.0.0.1 Opterius__Https__SelfSignedPath='{inside(state)}/selfsigned.pfx'
            exec setpriv --reuid={Uid} --regid={Uid} --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all \
              dotnet '{inside(install.Under("/opt/opterius/Opterius.Web.dll"))}'
            """;
        var psi = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--mount", "--propagation", "private", "bash", "-c", script }) psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var panel = new SandboxedPanel(process, port);
        using var probe = panel.Client();
        for (var i = 0; i < 240 && !process.HasExited; i++)
        {
            try { await probe.GetAsync("/login"); return panel; }
            catch (HttpRequestException) { await Task.Delay(250); }
        }
        await panel.DisposeAsync();
        throw new InvalidOperationException($"the sandboxed panel did not answer on {port} (exited: {process.HasExited})");
    }

    /// <summary>A client of this panel with its own cookies; redirects are not followed, so a test sees them.</summary>
    public HttpClient Client() => new(new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator,
        CookieContainer = new CookieContainer(),
        AllowAutoRedirect = false,
    }) { BaseAddress = new Uri($"https://127.0.0.1:{Port}") };

    /// <summary>A line of /proc/PID/status of the panel (e.g. CapEff), after the exec chain: unshare, bash, setpriv, dotnet are one pid.</summary>
    public string Status(string key) =>
        File.ReadLines($"/proc/{Pid}/status").Single(l => l.StartsWith(key + ":"))[(key.Length + 1)..].Trim();

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
