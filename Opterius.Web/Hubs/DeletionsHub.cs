using Opterius.Services.Data;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Web.Auth;

namespace Opterius.Web.Hubs;

/// <summary>One step transition of a deletion, as hub clients receive it (snake_case on the wire).</summary>
public sealed record DeletionEventDto(long AccountId, long JobId, string Resource, string Status, string? Detail, DateTimeOffset At)
{
    public static DeletionEventDto From(DeletionEvent e) => new(e.AccountId, e.JobId, e.Resource, e.Status, e.Detail, e.At);
}

/// <summary>
/// <c>/hubs/deletions</c>: streams an account's deletion to API clients (bearer token with accounts:read),
/// admins for any account, resellers for their own only. Resource <c>job</c> carries the job's own status
/// (<c>none</c>: no deletion yet). A live job's <c>succeeded</c> or <c>failed</c> event ends the stream; a finished
/// job replayed from the journal ends it only when the account is gone, else the stream waits for the next job.
/// </summary>
[Authorize(Policy = ApiAuth.Read)]
public sealed class DeletionsHub(AccountStore accounts, DeletionJobStore jobs, DeletionEvents events, RestoreJobStore restoreJobs, RestoreEvents restores) : Hub
{
    public const string Path = "/hubs/deletions";

    /// <summary>The status of the <c>job</c> event sent first for an account that has never had a deletion.</summary>
    public const string NoJob = "none";

    /// <summary>
    /// The current state of the account's deletion first (live, else the latest journalled job), then every
    /// transition until the job ends. For an account that still exists and has no deletion running, the stream
    /// waits for the next one (so a client can subscribe before it sends DELETE and miss nothing).
    /// </summary>
    public async IAsyncEnumerable<DeletionEventDto> Watch(long accountId, [EnumeratorCancellation] CancellationToken ct)
    {
        var viewer = Context.User!.Viewer();
        var account = accountId > 0 ? await accounts.FindAsync(viewer, accountId, ct) : null;
        var latest = accountId > 0 ? await jobs.LatestForAccountAsync(accountId, ct) : null;
        if (latest is not null && !viewer.IsAdmin && latest.OwnerId != viewer.UserId) latest = null;
        if (account is null && latest is null) throw new HubException("not_found");

        // Handlers run under the publisher's lock: only hand the event to the channel.
        var channel = Channel.CreateUnbounded<DeletionEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = events.Subscribe(accountId, e => channel.Writer.TryWrite(e), out var current);

        if (current.Count > 0)
        {
            foreach (var e in current) yield return DeletionEventDto.From(e);
        }
        else
        {
            // Nothing running when we subscribed: a job that starts now sends its full state through the channel,
            // so the journal is only the current state when the channel is still empty.
            if (!channel.Reader.TryPeek(out _))
            {
                latest = latest is null ? null : await jobs.FindAsync(latest.Id, ct) ?? latest;
                // "Never deleted" is a state too: it tells the client the stream is live before it sends DELETE.
                var state = latest is null
                    ? [new DeletionEventDto(accountId, 0, DeletionEvent.JobResource, NoJob, null, DateTimeOffset.UtcNow)]
                    : Journal(latest);
                foreach (var e in state) yield return e;
            }
            if (account is null) yield break; // deleted: its last job is all there will ever be
        }

        await foreach (var e in channel.Reader.ReadAllAsync(ct))
        {
            yield return DeletionEventDto.From(e);
            if (e.IsJobEnd) yield break;
        }
    }

    /// <summary>
    /// A restore job (POST /backups/{id}/restore answers its id): its current state first (live, else its journal), then every
    /// transition and progress report until it ends, in the deletions' event shape (<c>job_id</c> is the restore job's).
    /// </summary>
    public async IAsyncEnumerable<DeletionEventDto> WatchRestore(long jobId, [EnumeratorCancellation] CancellationToken ct)
    {
        var viewer = Context.User!.Viewer();
        var job = jobId > 0 ? await restoreJobs.FindAsync(jobId, ct) : null;
        if (job is null || (!viewer.IsAdmin && job.OwnerId != viewer.UserId)) throw new HubException("not_found");

        var channel = Channel.CreateUnbounded<DeletionEvent>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = restores.Stream.Subscribe(job.AccountId, e => { if (e.JobId == jobId) channel.Writer.TryWrite(e); }, out var live);
        var current = live.Where(e => e.JobId == jobId).ToList();
        if (current.Count > 0)
            foreach (var e in current) yield return DeletionEventDto.From(e);
        else if (!channel.Reader.TryPeek(out _))
        {
            job = await restoreJobs.FindAsync(jobId, ct) ?? job;
            foreach (var e in Journal(job.AccountId, job.Id, job.Status, job.Detail, job.Finished, job.FinishedAt ?? job.CreatedAt, job.Steps)) yield return e;
            if (job.Finished) yield break;
        }

        await foreach (var e in channel.Reader.ReadAllAsync(ct))
        {
            yield return DeletionEventDto.From(e);
            if (e.IsJobEnd) yield break;
        }
    }

    private static IEnumerable<DeletionEventDto> Journal(DeletionJob job) =>
        Journal(job.AccountId, job.Id, job.Status, null, job.Finished, job.FinishedAt ?? job.CreatedAt, job.Steps);

    /// <summary>A job's journal (a deletion's or a restore's) as the events a live subscriber would have seen.</summary>
    private static IEnumerable<DeletionEventDto> Journal(long accountId, long jobId, string status, string? detail, bool finished, DateTime at,
        IEnumerable<DeletionStep> steps)
    {
        var head = new DeletionEventDto(accountId, jobId, DeletionEvent.JobResource, status, detail, new DateTimeOffset(UtcTimes.Utc(at)));
        var events = steps.Select(s => new DeletionEventDto(accountId, jobId, s.Resource, s.Status, s.Detail, new DateTimeOffset(UtcTimes.Utc(s.UpdatedAt))));
        // The job's end event closes a finished job, as it does live; a running one opens with its own status.
        return finished ? events.Append(head) : events.Prepend(head);
    }
}
