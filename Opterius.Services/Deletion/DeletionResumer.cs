using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Opterius.Services.Deletion;

/// <summary>At start-up, resumes the deletions a crash or restart interrupted.</summary>
public sealed class DeletionResumer(AccountDeletionService deletions, ILogger<DeletionResumer> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var resumed = await deletions.ResumeInterruptedAsync(stoppingToken);
            if (resumed > 0) log.LogInformation("Resumed {Count} interrupted deletion(s)", resumed);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "Could not resume interrupted deletions; they resume on the next DELETE of each account");
        }
    }
}
