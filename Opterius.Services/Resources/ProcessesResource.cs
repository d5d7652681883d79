using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// The account's running processes: every live process that runs with the account's uid as its real, effective,
/// saved or file-system uid, read from <c>/proc/*/status</c> (the real machine's, even in a sandbox root:
/// processes are not files). A binary setuid to the tenant run by someone else has only the effective uid, and is
/// the tenant's as much as any. Removal runs <c>KillProcesses</c> with <c>{pid}</c> for each one, its uids read
/// again right before, and again and again until none is left (a process may fork while it is being killed). The
/// uid is checked against the account's name first (<see cref="UserDatabase.CheckedUid"/>), and a uid below
/// <see cref="OpteriusOptions.MinUid"/> is refused outright, so no misconfiguration can kill another tenant's or
/// the system's processes. <c>system_user</c> kills again right before <c>userdel</c>.
/// </summary>
public sealed class ProcessesResource(ServerLayout layout, CommandRunner commands, IOptions<OpteriusOptions> options)
    : IAccountResource
{
    public string Key => "processes";

    private static readonly TimeSpan GoneWithin = TimeSpan.FromSeconds(10);

    /// <summary>A live process: its pid, command name and real, effective, saved and file-system uids.</summary>
    public sealed record ProcessInfo(int Pid, string Name, IReadOnlyList<int> Uids);

    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => Task.CompletedTask;

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        if (uid is null) return ResourceInspection.Nothing(Key, $"no uid for {account.Username}");
        // The plan says what the removal will do: refuse such a uid, whatever runs with it.
        if (uid < options.Value.MinUid)
            return new ResourceInspection(Key, true, [$"uid {uid}"], 0, Running(uid.Value).Count,
                $"uid {uid} is below Opterius:MinUid {options.Value.MinUid}: the removal refuses to touch its processes");
        var found = Running(uid.Value, options.Value.MinUid);
        if (found.Count == 0) return ResourceInspection.Nothing(Key, $"no processes of uid {uid}");
        return new ResourceInspection(Key, true, found.Select(Describe).ToList(), 0, found.Count, $"{Count(found.Count)} of uid {uid}");
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
        var minUid = options.Value.MinUid;
        if (uid < minUid)
            throw new ResourceException($"refusing to kill the processes of uid {uid}: below Opterius:MinUid {minUid}");
        var seen = new HashSet<int>();
        var deadline = DateTime.UtcNow + GoneWithin;
        CommandFailedException? failure = null;
        while (Running(uid, minUid) is { Count: > 0 } left)
        {
            if (!commands.IsConfigured("KillProcesses"))
                throw new ResourceException($"not configured: set Opterius:Commands:KillProcesses; {Count(left.Count)} of uid {uid} left running");
            // A kill by uid (pkill --uid) sees only real uids: the panel finds the processes, the command kills each.
            if (!commands.Uses("KillProcesses", "{pid}"))
                throw new ResourceException($"Opterius:Commands:KillProcesses must kill one process ('kill', '-s', 'KILL', '{{pid}}'); {Count(left.Count)} of uid {uid} left running");
            if (DateTime.UtcNow > deadline)
                throw new ResourceException($"{Count(left.Count)} of uid {uid} still running after {GoneWithin.TotalSeconds:0} s ({string.Join(", ", left.Select(Describe))})"
                    + (failure is null ? "" : $": {failure.Message}"));
            foreach (var process in left)
            {
                seen.Add(process.Pid);
                // Read again right before the kill: a pid that ended meanwhile may be someone else's by now.
                if (Read(process.Pid) is not { } now || !RunsAs(now, uid, minUid)) continue;
                // kill exits 1 when the process ended on its own in the meantime: only what is left counts.
                try { await commands.RunAsync("KillProcesses", new Dictionary<string, string> { ["pid"] = process.Pid.ToString() }, ct); }
                catch (CommandFailedException e) { failure = e; }
            }
            await Task.Delay(20, ct);
        }
        return seen.Count;
    }

    /// <summary>"1 process", "3 processes".</summary>
    public static string Count(int n) => n == 1 ? "1 process" : $"{n} processes";

    /// <summary>
    /// Live processes that run with <paramref name="uid"/> as any of their uids; zombies are already dead and do not
    /// count. With <paramref name="minUid"/>, a process that also holds a uid below it counts only when its real uid
    /// is <paramref name="uid"/>: a host daemon acting as the tenant for a moment (cron reading a crontab) is the host's.
    /// </summary>
    public static IReadOnlyList<ProcessInfo> Running(int uid, int minUid = 0)
    {
        var found = new List<ProcessInfo>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out var pid) && Read(pid) is { } process && RunsAs(process, uid, minUid))
                found.Add(process);
        return found;
    }

    private static bool RunsAs(ProcessInfo process, int uid, int minUid) =>
        process.Uids[0] == uid || (process.Uids.Contains(uid) && process.Uids.All(u => u >= minUid));

    /// <summary>A live process from its status file; null when it ended (or is a zombie) or has no uids line.</summary>
    private static ProcessInfo? Read(int pid)
    {
        string[] lines;
        // A process may end between the listing and the read.
        try { lines = File.ReadAllLines($"/proc/{pid}/status"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        string? name = null, state = null;
        foreach (var line in lines)
        {
            if (line.StartsWith("Name:")) name = line[5..].Trim();
            else if (line.StartsWith("State:")) state = line[6..].Trim();
            else if (line.StartsWith("Uid:"))
            {
                // Real, effective, saved set and file-system uid.
                var uids = line[4..].Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries).Select(u => int.TryParse(u, out var n) ? n : -1).ToList();
                if (uids.Count != 4 || uids.Contains(-1) || state is null || state.StartsWith('Z') || state.StartsWith('X')) return null;
                return new ProcessInfo(pid, name ?? "?", uids);
            }
        }
        return null;
    }

    private static string Describe(ProcessInfo p) => $"{p.Pid} {p.Name}";
}
