using System.ComponentModel.DataAnnotations;

namespace Opterius.Services.Deletion;

/// <summary>The <c>Opterius:Deletion</c> configuration section.</summary>
public sealed class DeletionOptions
{
    public const string Section = "Opterius:Deletion";

    /// <summary>
    /// How long a job's lease lasts without a heartbeat (renewed every third of it while the job runs). Another
    /// panel process takes a job over only after this much silence from its holder, so it bounds how long a
    /// crashed holder's job waits; it must be well above a database round trip under load.
    /// </summary>
    [Range(3, 3600)]
    public int LeaseSeconds { get; set; } = 15;
}
