using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Opterius.Services.Commands;

/// <summary>How a configured command ended.</summary>
public sealed record CommandResult(string Name, int ExitCode, string StandardOutput, string StandardError);

/// <summary>A command that failed, timed out or could not start; the message carries its stderr.</summary>
public sealed class CommandFailedException(string message) : Exception(message);

/// <summary>
/// Runs the external commands named in <c>Opterius:Commands</c>. Arguments are passed as a list (never
/// through a shell); each argument may hold placeholders such as <c>{root}</c> or <c>{username}</c>, filled
/// only with values the caller has validated. A command's environment is <c>PATH</c>, <c>LANG=C</c> and
/// <c>OPTERIUS_ROOT</c>, nothing of the panel's.
/// </summary>
public sealed class CommandRunner(IOptions<OpteriusOptions> options)
{
    /// <summary>One activity per command run, named after the command (how long each took; nothing when nobody listens).</summary>
    public static readonly ActivitySource Activities = new("Opterius.Commands");

    private readonly OpteriusOptions _options = options.Value;

    public bool IsConfigured(string name) =>
        _options.Commands.TryGetValue(name, out var argv) && argv is { Length: > 0 } && !string.IsNullOrWhiteSpace(argv[0]);

    /// <summary>Whether the configured command fills <paramref name="placeholder"/> (e.g. <c>{uid}</c>) in one of its arguments.</summary>
    public bool Uses(string name, string placeholder) =>
        IsConfigured(name) && _options.Commands[name].Any(a => a.Contains(placeholder, StringComparison.Ordinal));

    /// <summary>Runs the command; returns null when it is not configured. Throws <see cref="CommandFailedException"/> on failure.</summary>
    public Task<CommandResult?> RunAsync(string name, IReadOnlyDictionary<string, string>? values, CancellationToken ct) =>
        RunAsync(name, values, null, ct);

    /// <summary>
    /// As <see cref="RunAsync(string, IReadOnlyDictionary{string, string}?, CancellationToken)"/>, with <paramref name="input"/> as
    /// its standard input and <paramref name="deadline"/> in place of <c>Opterius:CommandTimeoutSeconds</c> (a database dump or
    /// import runs as long as the database is big).
    /// </summary>
    public async Task<CommandResult?> RunAsync(string name, IReadOnlyDictionary<string, string>? values, Stream? input, CancellationToken ct,
        TimeSpan? deadline = null)
    {
        var limit = deadline ?? TimeSpan.FromSeconds(_options.CommandTimeoutSeconds);
        if (!IsConfigured(name)) return null;
        using var activity = Activities.StartActivity(name);
        var argv = _options.Commands[name];
        var psi = new ProcessStartInfo(Fill(argv[0], values))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in argv.Skip(1)) psi.ArgumentList.Add(Fill(arg, values));
        // The panel's own environment holds its JWT key and connection strings: a command gets only what it needs.
        var path = Environment.GetEnvironmentVariable("PATH");
        psi.Environment.Clear();
        psi.Environment["PATH"] = string.IsNullOrEmpty(path) ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : path;
        psi.Environment["LANG"] = "C";
        psi.Environment["OPTERIUS_ROOT"] = Path.GetFullPath(_options.Root);

        using var process = new Process { StartInfo = psi };
        try { process.Start(); }
        catch (Exception e) { throw new CommandFailedException($"{name}: cannot start '{psi.FileName}': {e.Message}"); }
        // One deadline for the exit and the output: a child that leaves the pipes open must not hang the step.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(limit);
        string stdout, stderr;
        try
        {
            var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var errors = process.StandardError.ReadToEndAsync(timeout.Token);
            if (input is not null)
            {
                // A child that exits early (a bad dump) closes the pipe: its exit code and stderr say why, not the broken pipe.
                try { await input.CopyToAsync(process.StandardInput.BaseStream, timeout.Token); }
                catch (IOException) { }
            }
            try { process.StandardInput.Close(); }
            catch (IOException) { }
            await process.WaitForExitAsync(timeout.Token);
            (stdout, stderr) = (await output, await errors);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { } // it exited meanwhile
            ct.ThrowIfCancellationRequested();
            throw new CommandFailedException($"{name}: timed out after {limit.TotalSeconds:0} s");
        }
        var result = new CommandResult(name, process.ExitCode, stdout, stderr);
        if (result.ExitCode != 0)
        {
            var why = string.IsNullOrWhiteSpace(result.StandardError) ? result.StandardOutput : result.StandardError;
            throw new CommandFailedException($"{name} exited with {result.ExitCode}: {Trim(why)}");
        }
        return result;
    }

    private string Fill(string arg, IReadOnlyDictionary<string, string>? values)
    {
        arg = arg.Replace("{root}", Path.GetFullPath(_options.Root), StringComparison.Ordinal);
        if (values is null) return arg;
        foreach (var (key, value) in values) arg = arg.Replace("{" + key + "}", value, StringComparison.Ordinal);
        return arg;
    }

    private static string Trim(string text)
    {
        text = text.Trim();
        return text.Length <= 2000 ? text : text[..2000] + "…";
    }
}
