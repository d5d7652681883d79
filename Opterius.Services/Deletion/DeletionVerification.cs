namespace Opterius.Services.Deletion;

/// <summary>What one resource's inspection after the last step found.</summary>
public static class CheckStatus
{
    public const string Gone = "gone";
    public const string Left = "left";

    /// <summary>The inspection itself failed: nobody can say it is gone, so the job cannot succeed.</summary>
    public const string Unverified = "unverified";
}

public sealed record ResourceCheck(string Resource, string Status, string Summary);

/// <summary>Every resource inspected again after the last step; the job succeeds only when all are gone.</summary>
public sealed record DeletionVerification(DateTime CheckedAt, IReadOnlyList<ResourceCheck> Resources)
{
    public bool Passed => Resources.All(r => r.Status == CheckStatus.Gone);
    public IEnumerable<ResourceCheck> NotGone => Resources.Where(r => r.Status != CheckStatus.Gone);
}
