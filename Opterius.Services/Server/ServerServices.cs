using Dapper;
using Opterius.Services.Commands;
using Opterius.Services.Data;

namespace Opterius.Services.Server;

/// <summary>One service the server's accounts depend on, as checked now.</summary>
public sealed record ServiceState(string Name, bool Up, string Detail);

/// <summary>What the overview shows of the server's services: the agent's word, or this process's when resources run in it.</summary>
public interface IServerServices
{
    Task<IReadOnlyList<ServiceState>> CheckAsync(CancellationToken ct);
}

/// <summary>
/// Checks, where the resources run, that each service they use answers: MariaDB (the admin connection), PowerDNS's
/// database, and nginx's and PHP-FPM's configuration tests (the same commands a removal runs before a reload). Read-only;
/// each check has its own deadline, so one service that hangs does not hide the others.
/// </summary>
public sealed class LocalServerServices(MariaDbAdmin admin, PowerDnsDb powerDns, CommandRunner commands) : IServerServices
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    public async Task<IReadOnlyList<ServiceState>> CheckAsync(CancellationToken ct) => await Task.WhenAll(
        CheckAsync("MariaDB", async t =>
        {
            await using var c = await admin.OpenAsync(t);
            return "version " + await c.ExecuteScalarAsync<string>(new CommandDefinition("SELECT VERSION()", cancellationToken: t));
        }, ct),
        CheckAsync("PowerDNS database", async t =>
        {
            await using var c = await powerDns.OpenAsync(t);
            var zones = await c.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM domains", cancellationToken: t));
            return $"{zones:N0} zones";
        }, ct),
        CheckAsync("nginx", t => ConfigTestAsync("NginxTest", t), ct),
        CheckAsync("PHP-FPM", t => ConfigTestAsync("PhpFpmTest", t), ct));

    private async Task<string> ConfigTestAsync(string command, CancellationToken ct) =>
        await commands.RunAsync(command, null, ct) is null
            ? throw new CommandFailedException($"not configured: set Opterius:Commands:{command}")
            : "configuration test passed";

    private static async Task<ServiceState> CheckAsync(string name, Func<CancellationToken, Task<string>> check, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(Deadline);
        try { return new(name, true, await check(deadline.Token)); }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // What failed is the answer: the overview shows it, nothing else depends on it.
            return new(name, false, deadline.IsCancellationRequested ? $"no answer within {Deadline.TotalSeconds:0} s" : e.Message);
        }
    }
}
