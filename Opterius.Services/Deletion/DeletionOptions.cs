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

    /// <summary>How often the scheduler looks for scheduled deletions that are due (it also looks once at start-up).</summary>
    [Range(1, 86400)]
    public int SchedulerSeconds { get; set; } = 60;

    /// <summary>
    /// The private key (P-256 PEM) that signs erasure records; made, mode 600, the first time a record is issued.
    /// The default lies in the panel's own state folder, the one folder its unit may write.
    /// </summary>
    [Required]
    public string RecordSigningKey { get; set; } = "/var/lib/opterius/panel/record-signing.pem";
}
