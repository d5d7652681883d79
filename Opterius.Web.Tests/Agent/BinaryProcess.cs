using System.Diagnostics;
using System.Text;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The binary as production runs it, a child process of its own configured by environment variables: the agent
/// (<c>dotnet Opterius.Web.dll agent</c>, ready once it says it listens, after its socket got its mode and group)
/// or the panel under another uid (<c>setpriv ... dotnet Opterius.Web.dll</c>, ready once Kestrel listens).
/// </summary>
public sealed class BinaryProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private BinaryProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    /// <summary>Everything the process wrote (its console log) so far.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Runs the binary with <paramref name="args"/> to its end: its exit code and what it wrote to stderr. One still
    /// running after 30 s (an agent that started when it should have refused) is killed and fails the test.
    /// </summary>
    public static async Task<(int ExitCode, string Error)> RunToEndAsync(string[] args, IReadOnlyDictionary<string, string?> settings)
    {
        using var p = Process.Start(StartInfo([], args, settings))!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            p.Kill();
            await p.WaitForExitAsync();
            throw new TimeoutException($"{string.Join(' ', args)} was still running after 30 s:\n{await stdout}{await stderr}");
        }
        await stdout;
        return (p.ExitCode, await stderr);
    }

    public static Task<BinaryProcess> StartAgentAsync(IReadOnlyDictionary<string, string?> settings) =>
        StartAsync([], ["agent"], settings, "Agent listening on");

    /// <summary>The binary with <paramref name="args"/>, run through <paramref name="prefix"/> (e.g. setpriv) when given.</summary>
    public static Task<BinaryProcess> StartAsync(string[] prefix, string[] args, IReadOnlyDictionary<string, string?> settings, string ready) =>
        LaunchAsync(StartInfo(prefix, args, settings), string.Join(' ', args), ready);

    /// <summary>
    /// <paramref name="argv"/> in <paramref name="directory"/> with exactly <paramref name="environment"/> and nothing
    /// of the test process's own (as systemd starts a unit's ExecStart).
    /// </summary>
    public static Task<BinaryProcess> StartCleanAsync(IReadOnlyList<string> argv, string directory, IReadOnlyDictionary<string, string> environment, string ready)
    {
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        foreach (var a in argv.Skip(1)) psi.ArgumentList.Add(a);
        psi.Environment.Clear();
        foreach (var (key, value) in environment) psi.Environment[key] = value;
        return LaunchAsync(psi, string.Join(' ', argv), ready);
    }

    private static async Task<BinaryProcess> LaunchAsync(ProcessStartInfo psi, string what, string ready)
    {
        var child = new BinaryProcess(Process.Start(psi)!);
        child._process.OutputDataReceived += (_, e) => child.Append(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!child.Log.Contains(ready))
        {
            if (child.HasExited) throw new InvalidOperationException($"{what} exited with {child._process.ExitCode}:\n{child.Log}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what} did not say '{ready}' within 60 s:\n{child.Log}");
            await Task.Delay(50);
        }
        return child;
    }

    private static ProcessStartInfo StartInfo(string[] prefix, string[] args, IReadOnlyDictionary<string, string?> settings)
    {
        var psi = new ProcessStartInfo(prefix.Length > 0 ? prefix[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in prefix.Skip(1).Concat(prefix.Length > 0 ? ["dotnet"] : [])) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Opterius.Web.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (key, value) in settings) psi.Environment[key.Replace(":", "__")] = value;
        return psi;
    }

    /// <summary>Waits until the process has logged <paramref name="text"/> (console logs are written asynchronously).</summary>
    public async Task<bool> LoggedAsync(string text)
    {
        for (var i = 0; i < 100 && !Log.Contains(text); i++) await Task.Delay(50);
        return Log.Contains(text);
    }

    /// <summary>Whether the process exits within <paramref name="seconds"/> (a death is seen a moment after its sockets close).</summary>
    public async Task<bool> ExitsWithinAsync(int seconds)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        try { await _process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { }
        return _process.HasExited;
    }

    /// <summary>Stops the process (this test run started it: killed by its own pid).</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }
}
