using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Opterius.Services.Backups;

/// <summary>
/// Purges final backups whose retention (<c>Opterius:Deletion:FinalBackupDays</c>) ended: once at start-up, then every
/// <see cref="Interval"/>. Each purge is audited as "retention" and keeps its row. Two panel processes may both run it:
/// a purge marks its row only while unpurged, so each archive is audited once.
/// </summary>
public sealed class BackupRetention(FinalBackups backups, ILogger<BackupRetention> log) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                var purged = await backups.PurgeExpiredAsync(stoppingToken);
                if (purged > 0) log.LogInformation("Retention purged {Count} final backup(s)", purged);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "The final backups' retention round failed; the next round tries again");
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
