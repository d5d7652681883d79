using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>The manifest of what a deletion will remove: one inspection per resource, in deletion order.</summary>
public sealed record DeletionPlan(long AccountId, string Username, string Domain, IReadOnlyList<ResourceInspection> Resources)
{
    public long TotalBytes => Resources.Sum(r => r.Bytes);
}
