using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Opterius.Services.Deletion;

/// <summary>
/// This process's lease on one job while it runs it: a heartbeat renews it, and <see cref="Lost"/> is cancelled as
/// soon as this process can no longer be sure nobody else may take the job over: the database said the lease is
/// another's, or half a lease went by since the last renewal that arrived (the database unreachable from here, a long
/// pause). Another process takes a job over only half a lease after it expired (<see cref="DeletionJobStore"/>), so a
/// holder that is running at all notices and stops a full lease before anyone else can start the same step.
/// </summary>
internal sealed class DeletionLease : IAsyncDisposable
{
    private readonly DeletionJobStore _jobs;
    private readonly long _jobId;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _lost = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _heartbeat;
    private long _renewedAt;

    /// <param name="acquiredAt">When the request that leased the job was sent (<see cref="Stopwatch.GetTimestamp"/>): the
    /// lease it got runs from no earlier than then.</param>
    public DeletionLease(DeletionJobStore jobs, long jobId, long acquiredAt, ILogger log)
    {
        (_jobs, _jobId, _log) = (jobs, jobId, log);
        Renewed(acquiredAt);
        _heartbeat = HeartbeatAsync();
    }

    /// <summary>Cancelled once the lease may no longer be this process's: the running step stops where it can.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>
    /// True while the last renewal that arrived was sent less than half a lease ago. Checked before each step: a timer
    /// can fire late after a pause, the clock cannot.
    /// </summary>
    public bool IsFresh => !_lost.IsCancellationRequested && Stopwatch.GetElapsedTime(Volatile.Read(ref _renewedAt)) < _jobs.FreshFor;

    private void Renewed(long sentAt)
    {
        Volatile.Write(ref _renewedAt, sentAt);
        var left = _jobs.FreshFor - Stopwatch.GetElapsedTime(sentAt);
        if (left <= TimeSpan.Zero) _lost.Cancel();
        else _lost.CancelAfter(left); // moves the deadline on: each renewal that arrives buys half a lease from when it was sent
    }

    /// <summary>Renews the lease until stopped or lost; never throws (a missed renewal is retried at the next beat).</summary>
    private async Task HeartbeatAsync()
    {
        using var timer = new PeriodicTimer(_jobs.HeartbeatInterval);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, _lost.Token);
        try
        {
            while (await timer.WaitForNextTickAsync(either.Token))
            {
                var sentAt = Stopwatch.GetTimestamp();
                try
                {
                    if (await _jobs.RenewLeaseAsync(_jobId, either.Token))
                    {
                        Renewed(sentAt);
                        continue;
                    }
                    _log.LogWarning("Deletion job {Job}: the lease is no longer this process's", _jobId);
                    await _lost.CancelAsync();
                    return;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _log.LogWarning(e, "Deletion job {Job}: could not renew the lease; trying again", _jobId);
                }
            }
        }
        catch (OperationCanceledException) { }
        if (_lost.IsCancellationRequested && !_stop.IsCancellationRequested)
            _log.LogError("Deletion job {Job}: the lease could not be renewed for half its length; this process stops the job's work", _jobId);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _heartbeat;
        _stop.Dispose();
        _lost.Dispose();
    }
}
