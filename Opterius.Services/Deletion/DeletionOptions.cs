using System.ComponentModel.DataAnnotations;

namespace Opterius.Services.Deletion;

/// <summary>The <c>Opterius:Deletion</c> configuration section.</summary>
public sealed class DeletionOptions
{
    public const string Section = "Opterius:Deletion";

    /// <summary>
    /// How long a job's lease lasts without a heartbeat (renewed every sixth of it while the job runs). A holder that
    /// got no renewal through for half of it stops its step; another panel process takes a job over only after the
    /// lease and another half of it (one and a half leases of silence), so it bounds how long a crashed holder's job
    /// waits; it must be well above a database round trip under load.
    /// </summary>
    [Range(3, 3600)]
    public int LeaseSeconds { get; set; } = 15;
}
