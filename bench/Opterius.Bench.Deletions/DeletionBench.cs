using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Agent;

namespace Opterius.Bench.Deletions;

/// <summary>
/// One deletion's (or one batch's) wall time with the resources in <paramref name="Mode"/>, how often each shared
/// service was reloaded during it (by this process, or by the agent as its <c>Services</c> reply counts), and the
/// deletions that did not succeed (with their distinct step failures) and the daemons that died meanwhile.
/// </summary>
internal sealed record Sample(string Mode, int Accounts, double Seconds, IReadOnlyDictionary<string, long> Reloads,
    int Failed, IReadOnlyList<string> Failures, IReadOnlyList<string> DeadDaemons, Trace? Trace = null)
{
    public bool Clean => Failed == 0 && DeadDaemons.Count == 0;
}

/// <summary>
/// Small accounts made by the real create path, then deleted by the real deletion service: one on its own, and a
/// batch all started at once (as the API or the UI would for a bulk delete). <paramref name="mode"/> names where the
/// container's resources run: "in process", or "agent" when they are agent clients.
/// </summary>
internal sealed class DeletionBench(string mode, IServiceProvider services, PanelUser admin, PrivateStack stack, int? agentPid = null)
{
    public const string InProcess = "in process";
    public const string Agent = "agent";

    public string Mode => mode;

    private static readonly Random Random = new();
    private readonly Actor _actor = new(admin.Username, "cli", null, admin.Id, true);
    private readonly ServiceReloader _reloader = services.GetRequiredService<ServiceReloader>();
    private readonly AccountDeletionService _deletion = services.GetRequiredService<AccountDeletionService>();

    public async Task<Sample> RunAsync(int count)
    {
        var accounts = await CreateAsync(count);
        var before = await ReloadsAsync();
        // One account alone: when each step started and ended, from the start (where its time goes).
        var clock = Stopwatch.StartNew();
        using var trace = new Trace(services.GetRequiredService<DeletionEvents>(), count == 1 ? accounts[0].Id : null, agentPid, stack.MariaDbPid);
        var handles = await Task.WhenAll(accounts.Select(a => _deletion.StartAsync(_actor, a.Id, default)));
        var jobs = await Task.WhenAll(handles.Select(h => h.Completion));
        clock.Stop();
        var after = await ReloadsAsync();
        trace.Dispose();
        if (count == 1)
        {
            Console.Error.WriteLine($"  {mode}, one account, each step from .. to (s): " + string.Join(", ", trace.Marks.Where(x => x.Resource != DeletionEvent.JobResource)
                .GroupBy(x => x.Resource).Select(g => $"{g.Key} {g.First().At:0.000}..{g.Last().At:0.000}")));
        }

        var failed = jobs.Where(j => j.Status != JobStatus.Succeeded).ToList();
        var sample = new Sample(mode, count, clock.Elapsed.TotalSeconds,
            after.ToDictionary(kv => kv.Key, kv => kv.Value - before[kv.Key]),
            failed.Count, failed.SelectMany(j => j.FailedSteps).Select(s => $"{s.Resource}: {Shorten(s.Detail)}").Distinct().ToList(),
            stack.Dead(), trace);
        if (!sample.Clean) await RecoverAsync(failed, sample.DeadDaemons);
        return sample;
    }

    /// <summary>
    /// What one resource call costs on its own: <paramref name="calls"/> inspections of the cron resource (a file
    /// lookup) for an account that does not exist, one after the other and then all at once; mean milliseconds a call.
    /// </summary>
    public async Task<(double Sequential, double Concurrent)> CallCostAsync(int calls)
    {
        var cron = services.GetServices<IAccountResource>().Single(r => r.Key == "cron");
        var nobody = AccountIdentity.Create(1, "benchnobody", "benchnobody.test", "8.2", null, "bench");
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < calls; i++) await cron.InspectAsync(nobody, default);
        var sequential = clock.Elapsed.TotalMilliseconds / calls;
        clock.Restart();
        await Task.WhenAll(Enumerable.Range(0, calls).Select(_ => cron.InspectAsync(nobody, default)));
        return (sequential, clock.Elapsed.TotalMilliseconds / calls);
    }

    /// <summary>
    /// What the user database alone costs <paramref name="count"/> accounts: each one's <c>UserLock</c> (usermod, which
    /// rewrites and fsyncs passwd and shadow) and <c>UserDel</c> (userdel: passwd, shadow, group and gshadow), the commands
    /// its deletion runs, with nothing else running: one after another, and all of them at once (every usermod, then
    /// every userdel), as a batch of deletions starts them. Each holds <c>/etc/.pwd.lock</c> while it writes, so the time
    /// all at once is what a batch of that many deletions cannot beat while every account is locked and removed by a
    /// command of its own (DESIGN section 2), and the commands' CPU (all at once) divided by the cores is another floor.
    /// Times in s; the accounts are deleted afterwards, untimed.
    /// </summary>
    public async Task<(double OneAfterAnother, double AllAtOnce, double AllAtOnceCpu)> UserDatabaseAloneAsync(int count)
    {
        var commands = services.GetRequiredService<CommandRunner>();
        async Task<(double Seconds, double Cpu)> TimeAsync(bool atOnce)
        {
            var accounts = await CreateAsync(count);
            var cpu = Trace.Cpu(Environment.ProcessId).Children;
            var clock = Stopwatch.StartNew();
            foreach (var command in new[] { "UserLock", "UserDel" })
            {
                async Task Run(Account a)
                {
                    if (await commands.RunAsync(command, new Dictionary<string, string> { ["username"] = a.Username }, default) is null)
                        throw new InvalidOperationException($"Opterius:Commands:{command} is not configured");
                }
                if (atOnce) await Task.WhenAll(accounts.Select(Run));
                else foreach (var a in accounts) await Run(a);
            }
            clock.Stop();
            cpu = Trace.Cpu(Environment.ProcessId).Children - cpu;
            var jobs = await Task.WhenAll((await Task.WhenAll(accounts.Select(a => _deletion.StartAsync(_actor, a.Id, default)))).Select(h => h.Completion));
            await RecoverAsync(jobs.Where(j => j.Status != JobStatus.Succeeded).ToList(), stack.Dead());
            return (clock.Elapsed.TotalSeconds, cpu);
        }
        var (after, atOnce) = (await TimeAsync(atOnce: false), await TimeAsync(atOnce: true));
        return (after.Seconds, atOnce.Seconds, atOnce.Cpu);
    }

    /// <summary>
    /// Restarts a daemon the batch killed and resumes the failed deletions (untimed), so the next round starts from
    /// the same clean server; a deletion that fails again stops the benchmark.
    /// </summary>
    private async Task RecoverAsync(IReadOnlyList<DeletionJob> failed, IReadOnlyList<string> dead)
    {
        if (dead.Count > 0) stack.Start();
        foreach (var job in failed)
        {
            var again = await (await _deletion.StartAsync(_actor, job.AccountId, default)).Completion;
            if (again.Status != JobStatus.Succeeded)
                throw new InvalidOperationException($"resuming the deletion of account {job.AccountId} failed again: " +
                    string.Join("; ", again.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}")));
        }
    }

    // The first line of a daemon's complaint, with the per-account names taken out so equal causes group together.
    private static string Shorten(string? detail) =>
        System.Text.RegularExpressions.Regex.Replace((detail ?? "").Split('\n')[0], @"[a-z]{6}n\d+(\.test)?", "<account>");

    // Through the agent, the reloads are the agent's: its own reloader counts them, read before and after (untimed).
    private Task<Dictionary<string, long>> ReloadsAsync() => mode == InProcess
        ? Task.FromResult(_reloader.RunCounts())
        : new AgentServerServices(services.GetRequiredService<AgentChannel>()).ReloadsAsync(default);

    private async Task<List<Account>> CreateAsync(int count)
    {
        // Five at a time, as the test suite does: creation is not what is measured, and useradd takes a lock on passwd.
        var prefix = NewPrefix();
        var creation = services.GetRequiredService<AccountCreation>();
        var made = new List<Account>();
        foreach (var chunk in Enumerable.Range(0, count).Chunk(5))
            made.AddRange(await Task.WhenAll(chunk.Select(i => creation.CreateAsync(_actor, admin.Id,
                new CreateAccountRequest($"{prefix}n{i}", $"{prefix}n{i}.test", $"owner@{prefix}n{i}.test", "account-password-1", 1), default))));
        return made;
    }

    private static string NewPrefix()
    {
        lock (Random) return new string(Enumerable.Range(0, 6).Select(_ => (char)('a' + Random.Next(26))).ToArray());
    }
}
