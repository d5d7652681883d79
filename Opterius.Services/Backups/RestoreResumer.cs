using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Opterius.Services.Backups;

/// <summary>At start-up, finishes the restores a crash or restart interrupted (<see cref="BackupRestoration.FinishInterruptedAsync"/>).</summary>
public sealed class RestoreResumer(BackupRestoration restores, ILogger<RestoreResumer> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var finished = await restores.FinishInterruptedAsync(stoppingToken);
            if (finished > 0) log.LogWarning("Finished {Count} restore(s) a stop of the panel interrupted: each was undone and failed, to be run again", finished);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "Could not finish the restores a stop of the panel interrupted; the next start-up tries again");
        }
    }
}
