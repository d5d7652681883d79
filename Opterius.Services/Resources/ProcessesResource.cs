using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's running processes: every live process whose real uid is the account's, read from
/// <c>/proc/*/status</c> (the real machine's, even in a sandbox root: processes are not files). Removal
/// runs <c>KillProcesses</c> with <c>{uid}</c> and waits until none is left. A uid below
/// <see cref="OpteriusOptions.MinUid"/> is refused outright, so no misconfiguration can kill system processes.
/// </summary>
public sealed class ProcessesResource(CommandRunner commands, SystemUserResource users, IOptions<OpteriusOptions> options)
    : IAccountResource
{
    public string Key => "processes";

    private static readonly TimeSpan GoneWithin = TimeSpan.FromSeconds(10);

    /// <summary>A live process: its pid and command name.</summary>
    public sealed record ProcessInfo(int Pid, string Name);

    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => Task.CompletedTask;

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var uid = await UidAsync(account, ct);
        if (uid is null) return ResourceInspection.Nothing(Key, $"no uid for {account.Username}");
        if (uid < options.Value.MinUid)
            return ResourceInspection.Nothing(Key, $"uid {uid} is below Opterius:MinUid {options.Value.MinUid}; its processes are never touched");
        var found = Running(uid.Value);
        if (found.Count == 0) return ResourceInspection.Nothing(Key, $"no processes of uid {uid}");
        return new(Key, true, found.Select(p => $"{p.Pid} {p.Name}").ToList(), 0, found.Count, $"{found.Count} processes of uid {uid}");
    }

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var uid = await UidAsync(account, ct);
        if (uid is null) return RemoveOutcome.Skipped($"no uid for {account.Username}");
        if (uid < options.Value.MinUid)
            throw new ResourceException($"refusing to kill the processes of uid {uid}: below Opterius:MinUid {options.Value.MinUid}");
        var found = Running(uid.Value);
        if (found.Count == 0) return RemoveOutcome.Skipped($"no processes of uid {uid}");
        if (!commands.IsConfigured("KillProcesses"))
            return RemoveOutcome.Skipped($"Opterius:Commands:KillProcesses not set; {found.Count} processes of uid {uid} left running");

        var values = new Dictionary<string, string> { ["uid"] = uid.Value.ToString(), ["username"] = account.Username };
        CommandFailedException? failure = null;
        // pkill exits 1 when the processes ended on their own in the meantime: only what is left counts.
        try { await commands.RunAsync("KillProcesses", values, ct); }
        catch (CommandFailedException e) { failure = e; }

        var deadline = DateTime.UtcNow + GoneWithin;
        while (Running(uid.Value) is { Count: > 0 } left)
        {
            if (DateTime.UtcNow > deadline)
                throw new ResourceException($"{left.Count} processes of uid {uid} still running ({string.Join(", ", left.Select(p => p.Pid))})"
                    + (failure is null ? "" : $": {failure.Message}"));
            await Task.Delay(50, ct);
        }
        return RemoveOutcome.Done($"stopped {found.Count} processes of uid {uid}");
    }

    /// <summary>Live processes whose real uid is <paramref name="uid"/>; zombies are already dead and do not count.</summary>
    public static IReadOnlyList<ProcessInfo> Running(int uid)
    {
        var found = new List<ProcessInfo>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string[] lines;
            // A process may end between the listing and the read.
            try { lines = File.ReadAllLines(Path.Join(dir, "status")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            string? name = null, state = null, uids = null;
            foreach (var line in lines)
            {
                if (line.StartsWith("Name:")) name = line[5..].Trim();
                else if (line.StartsWith("State:")) state = line[6..].Trim();
                else if (line.StartsWith("Uid:")) { uids = line[4..].Trim(); break; }
            }
            var realUid = uids?.Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (realUid == uid.ToString() && state is not null && !state.StartsWith('Z') && !state.StartsWith('X'))
                found.Add(new(pid, name ?? "?"));
        }
        return found;
    }

    private async Task<int?> UidAsync(AccountIdentity account, CancellationToken ct) =>
        account.Uid ?? await users.FindUidAsync(account.Username, ct);
}
