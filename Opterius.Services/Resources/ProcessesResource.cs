using System.Text;
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

    public async Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        if (uid is null) return ResourceInspection.Nothing(Key, $"no uid for {account.Username}");
        // The plan says what the removal will do: refuse such a uid, whatever runs with it.
        if (uid < options.Value.MinUid)
            return new ResourceInspection(Key, true, [$"uid {uid}"], 0, (await RunningAsync(uid.Value, 0, ct)).Count,
                $"uid {uid} is below Opterius:MinUid {options.Value.MinUid}: the removal refuses to touch its processes");
        var found = await RunningAsync(uid.Value, options.Value.MinUid, ct);
        if (found.Count == 0) return ResourceInspection.Nothing(Key, $"no processes of uid {uid}");
        return new ResourceInspection(Key, true, found.Select(Describe).ToList(), 0, found.Count, $"{Count(found.Count)} of uid {uid}");
    }

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
        while (await RunningAsync(uid, minUid, ct) is { Count: > 0 } left)
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
    /// The process table is read after the call, in one read shared with every caller that asked meanwhile.
    /// </summary>
    public static async Task<IReadOnlyList<ProcessInfo>> RunningAsync(int uid, int minUid, CancellationToken ct) =>
        (await Table.GetAsync(ct)).Where(p => RunsAs(p, uid, minUid)).ToList();

    /// <summary><see cref="RunningAsync"/> for a caller that cannot wait asynchronously (its own read).</summary>
    public static IReadOnlyList<ProcessInfo> Running(int uid, int minUid = 0) => Scan().Where(p => RunsAs(p, uid, minUid)).ToList();

    private static readonly FreshRead<IReadOnlyList<ProcessInfo>> Table = new(Scan);

    /// <summary>Every live process on the machine.</summary>
    private static IReadOnlyList<ProcessInfo> Scan()
    {
        var found = new List<ProcessInfo>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out var pid) && Read(pid) is { } process)
                found.Add(process);
        return found;
    }

    private static bool RunsAs(ProcessInfo process, int uid, int minUid) =>
        process.Uids[0] == uid || (process.Uids.Contains(uid) && process.Uids.All(u => u >= minUid));

    /// <summary>
    /// A live process from its status file; null when it ended (or is a zombie) or has no uids line. A process whose
    /// first thread exited (<c>pthread_exit</c>) shows as a zombie while its other threads run on: it is alive, and
    /// <c>kill {pid}</c> kills them all. Its uids are the first thread's (threads of an unprivileged process share them).
    /// </summary>
    private static ProcessInfo? Read(int pid)
    {
        if (Status($"/proc/{pid}/status") is not { } leader) return null;
        var live = !leader.Dead || ThreadStatuses(pid).Any(t => Status(t) is { Dead: false });
        return live ? new ProcessInfo(pid, leader.Name, leader.Uids) : null;
    }

    private static IEnumerable<string> ThreadStatuses(int pid)
    {
        string[] tasks;
        try { tasks = Directory.GetDirectories($"/proc/{pid}/task"); }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
        return tasks.Select(t => Path.Join(t, "status"));
    }

    private sealed record TaskStatus(string Name, bool Dead, IReadOnlyList<int> Uids);

    /// <summary>Name, State and Uid of a process's or thread's status file; null when it is gone or has no whole uids line.</summary>
    private static TaskStatus? Status(string path)
    {
        // They are the first lines of the file: one read of its start, no line strings; the whole file only if that was not enough.
        Span<byte> buffer = stackalloc byte[4096];
        try
        {
            int length;
            using (var file = File.OpenHandle(path)) length = RandomAccess.Read(file, buffer, 0);
            return Parse(buffer[..length]) ?? (length == buffer.Length ? Parse(File.ReadAllBytes(path)) : null);
        }
        // A process may end between the listing and the read.
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private static TaskStatus? Parse(ReadOnlySpan<byte> text)
    {
        string? name = null;
        var state = (byte)0;
        // Only whole lines: a line cut by the end of the read could hold a shortened uid.
        for (var end = text.IndexOf((byte)'\n'); end >= 0; text = text[(end + 1)..], end = text.IndexOf((byte)'\n'))
        {
            var line = text[..end];
            if (line.StartsWith("Name:"u8)) name = Encoding.UTF8.GetString(line[5..].Trim((byte)'\t'));
            else if (line.StartsWith("State:"u8) && line[6..].Trim((byte)'\t') is [var s, ..]) state = s;
            else if (line.StartsWith("Uid:"u8))
            {
                // Real, effective, saved set and file-system uid.
                var uids = new List<int>(4);
                var fields = line[4..];
                foreach (var field in fields.Split((byte)'\t'))
                    if (!fields[field].IsEmpty) uids.Add(int.TryParse(fields[field], out var n) ? n : -1);
                if (uids.Count != 4 || uids.Contains(-1) || state == 0) return null;
                return new TaskStatus(name ?? "?", state is (byte)'Z' or (byte)'X', uids);
            }
        }
        return null;
    }

    private static string Describe(ProcessInfo p) => $"{p.Pid} {p.Name}";
}
