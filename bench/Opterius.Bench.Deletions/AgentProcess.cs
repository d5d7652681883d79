using System.Diagnostics;

namespace Opterius.Bench.Deletions;

/// <summary>
/// The root agent as production runs it: <c>dotnet Opterius.Web.dll agent</c> (the copy beside the benchmark's
/// binaries), a child process configured by environment variables, its console log in a file of the run's folder,
/// stopped by its pid on dispose.
/// </summary>
internal sealed class AgentProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;

    private AgentProcess(Process process, StreamWriter log) => (_process, _log) = (process, log);

    public static async Task<AgentProcess> StartAsync(IReadOnlyDictionary<string, string?> settings, string logPath)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Opterius.Web.dll"));
        psi.ArgumentList.Add("agent");
        foreach (var (key, value) in settings) psi.Environment[key.Replace(":", "__")] = value;
        var log = new StreamWriter(logPath) { AutoFlush = true };
        var agent = new AgentProcess(Process.Start(psi)!, log);
        var ready = new TaskCompletionSource();
        void Line(string? line)
        {
            if (line is null) return;
            lock (log) log.WriteLine(line);
            if (line.Contains("Agent listening on")) ready.TrySetResult();
        }
        agent._process.OutputDataReceived += (_, e) => Line(e.Data);
        agent._process.ErrorDataReceived += (_, e) => Line(e.Data);
        agent._process.BeginOutputReadLine();
        agent._process.BeginErrorReadLine();
        var exited = agent._process.WaitForExitAsync();
        if (await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60))) != ready.Task)
        {
            agent.Dispose();
            throw new InvalidOperationException($"the agent did not say it listens within 60 s; see {logPath}");
        }
        return agent;
    }

    public int Pid => _process.Id;

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return; // from both the finally and ProcessExit
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
        lock (_log) _log.Dispose();
    }
}
