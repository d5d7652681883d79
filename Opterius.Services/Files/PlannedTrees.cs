using System.Collections.Concurrent;
using Opterius.Services.Resources;

namespace Opterius.Services.Files;

/// <summary>
/// The last measure of each tree a resource inspected, so its removal can say "of how many": the deletion plan
/// inspects in the process that removes (the agent, or the panel when resources run in it), just before the steps.
/// A stale or missing measure only costs the totals of a progress report, never what is removed.
/// </summary>
public static class PlannedTrees
{
    // Inspections of accounts never deleted stay here; past this many the oldest knowledge is dropped at once.
    private const int Capacity = 4096;

    private static readonly ConcurrentDictionary<string, TreeMeasure> Measured = new(StringComparer.Ordinal);

    /// <summary>Keeps <paramref name="measure"/> as the plan of the tree at <paramref name="path"/>.</summary>
    public static TreeMeasure Remember(string path, TreeMeasure measure)
    {
        if (Measured.Count >= Capacity) Measured.Clear();
        Measured[path] = measure;
        return measure;
    }

    /// <summary>
    /// The report callback for removing the tree at <paramref name="path"/>, with the planned totals added when known
    /// (the plan is forgotten: a later removal measures again).
    /// </summary>
    public static Action<RemovalProgress> Reporting(string path, Action<RemovalProgress> progress)
    {
        if (!Measured.TryRemove(path, out var plan)) return progress;
        return p => progress(p with { PlannedFiles = plan.Files, PlannedBytes = plan.Bytes });
    }
}
