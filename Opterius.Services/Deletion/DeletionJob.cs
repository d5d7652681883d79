namespace Opterius.Services.Deletion;

public static class JobStatus
{
    public const string Running = "running";
    public const string Failed = "failed";
    public const string Succeeded = "succeeded";
}

public sealed record DeletionStep(int Position, string Resource, string Status, string? Detail, DateTime UpdatedAt);

/// <summary>
/// A deletion and the journal of its steps; kept after the account is gone. <see cref="LeaseHolder"/> is the
/// panel process running it (until <see cref="LeaseExpiresAt"/>, renewed while it runs); <see cref="Verification"/>
/// is what inspecting every resource again after the last step found (null until that ran). Times are UTC.
/// </summary>
public sealed record DeletionJob(long Id, long AccountId, string Username, string Domain, long OwnerId, string Status,
    string RequestedBy, DateTime CreatedAt, DateTime? FinishedAt, IReadOnlyList<DeletionStep> Steps,
    string? LeaseHolder = null, DateTime? LeaseExpiresAt = null, DeletionVerification? Verification = null)
{
    public bool Finished => Status != JobStatus.Running;
    public IEnumerable<DeletionStep> FailedSteps => Steps.Where(s => s.Status == Resources.StepStatus.Failed);
}

/// <summary>
/// One transition streamed to subscribers, or a running step's progress (<see cref="IsProgress"/>). <see cref="Resource"/>
/// is a resource key, or <c>job</c> for the job itself (status running, succeeded or failed: the last event of a deletion).
/// <see cref="Progress"/> is a progress event's counts (its detail in numbers, for the UI's bar and time remaining).
/// </summary>
public sealed record DeletionEvent(long AccountId, long JobId, string Resource, string Status, string? Detail, DateTimeOffset At,
    IStepProgress? Progress = null)
{
    public const string JobResource = "job";
    public bool IsJobEnd => Resource == JobResource && Status != JobStatus.Running;

    /// <summary>A long step saying how far it is (running again, with its progress as the detail), not a transition.</summary>
    public bool IsProgress => Resource != JobResource && Status == Resources.StepStatus.Running && Detail is not null;
}
