namespace Opterius.Services.Commands;

/// <summary>
/// Tells whoever reloads the shared services that a deletion is running, so the reloads of deletions running together
/// coalesce and a lone one's run at once: this process's <see cref="ServiceReloader"/> when the resources run here, the
/// agent's when they run there (the agent client opens a call for the job's lifetime).
/// </summary>
public interface IDeletionsInFlight
{
    /// <summary>
    /// Says a deletion runs in this flow until disposed, on its way to the reloads of <paramref name="services"/> (those of
    /// the steps it has still to run, <see cref="ServiceReloader.ServiceOfStep"/>): every removal made in this flow is one
    /// of its, and its reloads count as its arrival at them.
    /// </summary>
    IDisposable DeletionInFlight(IEnumerable<string> services);
}
