using System.Diagnostics;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;

namespace Opterius.Bench.Deletions;

/// <summary>
/// Where one account's deletion spends its time (<c>--trace</c>): when each step started and ended (its journal events),
/// the CPU this process, its commands and the agent used meanwhile (<c>/proc/PID/stat</c>: utime + stime, and cutime +
/// cstime for the children it has reaped; 10 ms ticks), and every external command (<see cref="CommandRunner.Activities"/>),
/// SQL command (MySqlConnector's activities) and gRPC call (HttpClient's) made while it ran, with its duration. CPU is
/// what the other load on the machine barely moves; wall times on a busy machine are mostly waits for a core.
/// </summary>
internal sealed class Trace : IDisposable
{
    /// <summary>What was made: a source ("command", "sql", "grpc"), a name, when it started from the trace's start, how long it took.</summary>
    public sealed record Call(string Source, string Name, double Start, double Seconds);

    /// <summary>A step's transition, with the cumulative CPU seconds at that moment (own, own children, agent with its children, MariaDB).</summary>
    public sealed record Mark(string Resource, string Status, double At, double Cpu, double ChildrenCpu, double AgentCpu, double MariaDbCpu);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly DateTime _started = DateTime.UtcNow;
    private readonly int? _agentPid;
    private readonly int? _mariaDbPid;
    private readonly ActivityListener _listener;
    private readonly IDisposable _events;
    private readonly List<Call> _calls = [];
    private readonly List<Mark> _marks = [];
    private readonly Mark _first;
    private Mark? _last;

    /// <param name="accountId">The account whose steps are marked; null for a batch (its calls and CPU only).</param>
    public Trace(DeletionEvents events, long? accountId, int? agentPid, int? mariaDbPid)
    {
        (_agentPid, _mariaDbPid) = (agentPid, mariaDbPid);
        _first = Now(DeletionEvent.JobResource, "start");
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "Opterius.Commands" or "MySqlConnector" or "System.Net.Http",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = Stopped,
        };
        ActivitySource.AddActivityListener(_listener);
        _events = events.Subscribe(accountId, e =>
        {
            if (accountId is not null && !e.IsProgress && e.Status != StepStatus.Pending) { var m = Now(e.Resource, e.Status); lock (_marks) _marks.Add(m); }
        }, out _);
    }

    public IReadOnlyList<Call> Calls { get { lock (_calls) return [.. _calls]; } }
    public IReadOnlyList<Mark> Marks { get { lock (_marks) return [_first, .. _marks]; } }

    /// <summary>From the start to <see cref="Dispose"/>: the whole run's wall time and CPU.</summary>
    public (Mark From, Mark To) Whole => (_first, _last ?? throw new InvalidOperationException("the trace is still running"));

    private void Stopped(Activity a)
    {
        var (source, name) = a.Source.Name switch
        {
            "Opterius.Commands" => ("command", a.OperationName),
            "MySqlConnector" => ("sql", Statement(a.GetTagItem("db.query.text") ?? a.GetTagItem("db.statement")) ?? a.DisplayName),
            _ => ("grpc", a.GetTagItem("url.full") is string url ? new Uri(url).AbsolutePath.Split('/')[^1] : a.DisplayName),
        };
        var call = new Call(source, name, (a.StartTimeUtc - _started).TotalSeconds, a.Duration.TotalSeconds);
        lock (_calls) _calls.Add(call);
    }

    // The statement's first words (verb and table) and nothing of its values: equal statements group together.
    private static string? Statement(object? text) => text is string s
        ? string.Join(' ', s.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Take(4)) : null;

    private Mark Now(string resource, string status)
    {
        var (cpu, children) = Cpu(Environment.ProcessId);
        var agent = _agentPid is { } pid ? Cpu(pid) : (0, 0);
        var mariaDb = _mariaDbPid is { } db ? Cpu(db).Cpu : 0;
        return new(resource, status, _clock.Elapsed.TotalSeconds, cpu, children, agent.Cpu + agent.Children, mariaDb);
    }

    /// <summary>CPU seconds a process used, and those of its children it waited for (10 ms ticks).</summary>
    public static (double Cpu, double Children) Cpu(int pid)
    {
        // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        double Ticks(int field) => long.Parse(f[field - 3]) / 100.0;
        return (Ticks(14) + Ticks(15), Ticks(16) + Ticks(17));
    }

    public void Dispose()
    {
        _last ??= Now(DeletionEvent.JobResource, "end");
        _events.Dispose();
        _listener.Dispose();
    }
}
