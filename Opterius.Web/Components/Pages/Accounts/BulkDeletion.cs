using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// One account of a bulk deletion as the dialog shows it: its plan, then its job's steps as they go. A live event is
/// newer than any journal read, so steps a live event set are never overwritten by the journal.
/// </summary>
public sealed class BulkDeletion(Account account)
{
    public Account Account { get; } = account;
    public DeletionPlan? Plan { get; set; }

    /// <summary>Why the account cannot be deleted from here (gone, refused), or why its deletion failed.</summary>
    public string? Error { get; set; }

    /// <summary><see cref="JobStatus"/> once started; null while only planned.</summary>
    public string? JobStatus { get; private set; }

    public bool Expanded { get; set; }

    private readonly Dictionary<string, (string Status, string? Detail)> _steps =
        DeletionOrder.Keys.ToDictionary(k => k, _ => (StepStatus.Pending, (string?)null));
    private readonly HashSet<string> _live = [];

    public int StepCount => _steps.Count;
    public int Finished => _steps.Values.Count(s => s.Status is StepStatus.Done or StepStatus.Skipped);

    /// <summary>The step running now (with its progress), or the one that failed.</summary>
    public (string Resource, string Status, string? Detail)? Current =>
        _steps.Where(s => s.Value.Status is StepStatus.Failed or StepStatus.Running).Select(s => (s.Key, s.Value.Status, s.Value.Detail))
            .Cast<(string, string, string?)?>().FirstOrDefault();

    public void Starting()
    {
        Error = null;
        if (!_live.Contains(DeletionEvent.JobResource)) JobStatus = Services.Deletion.JobStatus.Running;
    }

    public void Apply(DeletionEvent e)
    {
        _live.Add(e.Resource);
        if (e.Resource == DeletionEvent.JobResource)
        {
            JobStatus = e.Status;
            if (e.Status == Services.Deletion.JobStatus.Failed) Error = e.Detail ?? Error;
            else Error = null;
        }
        else _steps[e.Resource] = (e.Status, e.Detail);
    }

    public void Merge(DeletionJob job)
    {
        if (!_live.Contains(DeletionEvent.JobResource))
        {
            JobStatus = job.Status;
            if (job.Status == Services.Deletion.JobStatus.Failed)
                Error = job.FailedSteps.Select(s => $"{ResourceNames.Label(s.Resource)}: {s.Detail}").FirstOrDefault() ?? "the check after the last step found some of it left";
        }
        foreach (var step in job.Steps.Where(s => !_live.Contains(s.Resource) && _steps.ContainsKey(s.Resource)))
            _steps[step.Resource] = (step.Status, step.Detail);
    }

    public void Refused(string message)
    {
        JobStatus = Services.Deletion.JobStatus.Failed;
        Error = message;
    }

    public long Count(string resource) => Plan?.Resources.FirstOrDefault(r => r.Resource == resource)?.Count ?? 0;
}
