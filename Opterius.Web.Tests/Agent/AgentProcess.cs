using System.Diagnostics;
using System.Text;

namespace Opterius.Web.Tests.Agent;

/// <summary>
/// The agent as production runs it: <c>dotnet Opterius.Web.dll agent</c>, a child process of its own configured by
/// environment variables, ready once it says it listens (after its socket got its mode and group).
/// </summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private AgentProcess(Process process) => _process = process;

    /// <summary>Everything the agent wrote (its console log) so far.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    public bool HasExited => _process.HasExited;

    public static async Task<AgentProcess> StartAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Opterius.Web.dll"));
        psi.ArgumentList.Add("agent");
        foreach (var (key, value) in settings) psi.Environment[key.Replace(":", "__")] = value;
        var agent = new AgentProcess(Process.Start(psi)!);
        agent._process.OutputDataReceived += (_, e) => agent.Append(e.Data);
        agent._process.ErrorDataReceived += (_, e) => agent.Append(e.Data);
        agent._process.BeginOutputReadLine();
        agent._process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!agent.Log.Contains("Agent listening on"))
        {
            if (agent.HasExited) throw new InvalidOperationException($"the agent exited with {agent._process.ExitCode}:\n{agent.Log}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the agent did not listen within 60 s:\n{agent.Log}");
            await Task.Delay(50);
        }
        return agent;
    }

    /// <summary>Waits until the agent has logged <paramref name="text"/> (its console log is written asynchronously).</summary>
    public async Task<bool> LoggedAsync(string text)
    {
        for (var i = 0; i < 100 && !Log.Contains(text); i++) await Task.Delay(50);
        return Log.Contains(text);
    }

    /// <summary>Whether the agent exits within <paramref name="seconds"/> (its death is seen a moment after its socket closes).</summary>
    public async Task<bool> ExitsWithinAsync(int seconds)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        try { await _process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { }
        return _process.HasExited;
    }

    /// <summary>Stops this agent (it was started by this test run: killed by its own pid).</summary>
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
