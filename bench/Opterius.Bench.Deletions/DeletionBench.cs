using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Users;

namespace Opterius.Bench.Deletions;

/// <summary>One deletion's (or one batch's) wall time and how often each shared service was reloaded during it.</summary>
internal sealed record Sample(int Accounts, double Seconds, IReadOnlyDictionary<string, int> Reloads);

/// <summary>
/// Small accounts made by the real create path, then deleted by the real deletion service: one on its own, and a
/// batch all started at once (as the API or the UI would for a bulk delete), alternating which goes first.
/// </summary>
internal sealed class DeletionBench(IServiceProvider services, PanelUser admin)
{
    private static readonly Random Random = new();
    private readonly Actor _actor = new(admin.Username, "cli", null, admin.Id, true);
    private readonly ServiceReloader _reloader = services.GetRequiredService<ServiceReloader>();
    private readonly AccountDeletionService _deletion = services.GetRequiredService<AccountDeletionService>();

    public async Task<Sample> RunAsync(int count)
    {
        var accounts = await CreateAsync(count);
        var before = Reloads();
        var clock = Stopwatch.StartNew();
        var handles = await Task.WhenAll(accounts.Select(a => _deletion.StartAsync(_actor, a.Id, default)));
        var jobs = await Task.WhenAll(handles.Select(h => h.Completion));
        clock.Stop();
        var after = Reloads();

        var failed = jobs.Where(j => j.Status != JobStatus.Succeeded).ToList();
        if (failed.Count > 0)
            throw new InvalidOperationException($"{failed.Count} of {count} deletions did not succeed: " +
                string.Join("; ", failed.SelectMany(j => j.FailedSteps).Select(s => $"{s.Resource}: {s.Detail}").Distinct()));
        return new(count, clock.Elapsed.TotalSeconds, after.ToDictionary(kv => kv.Key, kv => kv.Value - before[kv.Key]));
    }

    private Dictionary<string, int> Reloads() => ServiceReloader.Services.Keys.ToDictionary(s => s, _reloader.RunCount);

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
