using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's running processes: every live process whose real uid is the account's, read from
/// <c>/proc/*/status</c> (the real machine's, even in a sandbox root: processes are not files). Removal
/// runs <c>KillProcesses</c> with <c>{uid}</c> again and again until none is left (a process may fork while
/// it is being killed). The uid is checked against the account's name first (<see cref="UserDatabase.CheckedUid"/>),
/// and a uid below <see cref="OpteriusOptions.MinUid"/> is refused outright, so no misconfiguration can kill
/// another tenant's or the system's processes. <c>system_user</c> kills again right before <c>userdel</c>.
/// </summary>
public sealed class ProcessesResource(ServerLayout layout, CommandRunner commands, IOptions<OpteriusOptions> options)
    : IAccountResource
{
    public string Key => "processes";

    private static readonly TimeSpan GoneWithin = TimeSpan.FromSeconds(10);

    /// <summary>A live process: its pid and command name.</summary>
    public sealed record ProcessInfo(int Pid, string Name);

    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => Task.CompletedTask;

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        if (uid is null) return ResourceInspection.Nothing(Key, $"no uid for {account.Username}");
        if (uid < options.Value.MinUid)
            return ResourceInspection.Nothing(Key, $"uid {uid} is below Opterius:MinUid {options.Value.MinUid}; its processes are never touched");
        var found = Running(uid.Value);
        if (found.Count == 0) return ResourceInspection.Nothing(Key, $"no processes of uid {uid}");
        return new ResourceInspection(Key, true, found.Select(p => $"{p.Pid} {p.Name}").ToList(), 0, found.Count, $"{Count(found.Count)} of uid {uid}");
    }, ct);

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        if (uid is null) return RemoveOutcome.Skipped($"no uid for {account.Username}");
        var killed = await KillAllAsync(uid.Value, ct);
        return killed == 0
            ? RemoveOutcome.Skipped($"no processes of uid {uid}")
            : RemoveOutcome.Done($"stopped {Count(killed)} of uid {uid}");
    }

    /// <summary>
    /// Kills every process of <paramref name="uid"/> until none is left; returns how many were seen (0: none ran).
    /// The caller has checked that the uid is the account's. Throws when some outlive the deadline.
    /// </summary>
    public async Task<int> KillAllAsync(int uid, CancellationToken ct)
    {
        if (uid < options.Value.MinUid)
            throw new ResourceException($"refusing to kill the processes of uid {uid}: below Opterius:MinUid {options.Value.MinUid}");
        var seen = new HashSet<int>();
        var deadline = DateTime.UtcNow + GoneWithin;
        CommandFailedException? failure = null;
        while (Running(uid) is { Count: > 0 } left)
        {
            if (!commands.IsConfigured("KillProcesses"))
                throw new ResourceException($"not configured: set Opterius:Commands:KillProcesses; {Count(left.Count)} of uid {uid} left running");
            if (DateTime.UtcNow > deadline)
                throw new ResourceException($"{Count(left.Count)} of uid {uid} still running after {GoneWithin.TotalSeconds:0} s ({string.Join(", ", left.Select(p => $"{p.Pid} {p.Name}"))})"
                    + (failure is null ? "" : $": {failure.Message}"));
            seen.UnionWith(left.Select(p => p.Pid));
            // pkill exits 1 when the processes ended on their own in the meantime: only what is left counts.
            try { await commands.RunAsync("KillProcesses", new Dictionary<string, string> { ["uid"] = uid.ToString() }, ct); }
            catch (CommandFailedException e) { failure = e; }
            await Task.Delay(20, ct);
        }
        return seen.Count;
    }

    /// <summary>"1 process", "3 processes".</summary>
    public static string Count(int n) => n == 1 ? "1 process" : $"{n} processes";

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
}
