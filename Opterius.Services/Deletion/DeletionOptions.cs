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
    /// How many scheduled deletions this panel process runs at once. A pass starts only as many as are free; the rest stay
    /// due and start at a later pass, so a burst of a thousand due accounts never opens a thousand jobs together.
    /// </summary>
    [Range(1, 1000)]
    public int SchedulerMaxInFlight { get; set; } = 8;

    /// <summary>
    /// The private key (P-256 PEM) that signs erasure records; made, mode 600, the first time a record is issued.
    /// The default lies in the panel's own state folder, the one folder its unit may write.
    /// </summary>
    [Required]
    public string RecordSigningKey { get; set; } = "/var/lib/opterius/panel/record-signing.pem";

    /// <summary>
    /// Whether a deletion first writes a final backup: <c>never</c> (asking for one is refused), <c>on_request</c> (when the
    /// request asks: <c>?backup=true</c>, the dialog's box, <c>--backup</c>) or <c>always</c>.
    /// </summary>
    [RegularExpression("^(never|on_request|always)$", ErrorMessage = "Opterius:Deletion:FinalBackup must be never, on_request or always")]
    public string FinalBackup { get; set; } = FinalBackupPolicy.OnRequest;

    /// <summary>How many days a final backup is kept before the retention task purges it.</summary>
    [Range(1, 3650)]
    public int FinalBackupDays { get; set; } = 30;

    /// <summary>
    /// How long one database's dump (a final backup) or import (a restore) may run; Opterius:CommandTimeoutSeconds is
    /// for quick commands and would cut a big database short.
    /// </summary>
    [Range(60, 86400)]
    public int DumpTimeoutSeconds { get; set; } = 3600;

    /// <summary>Where the agent writes final backups (root-only, 0700; taken as is, not under Opterius:Root).</summary>
    [Required]
    public string BackupPath { get; set; } = "/var/backups/opterius/final/";
}

public static class FinalBackupPolicy
{
    public const string Never = "never";
    public const string OnRequest = "on_request";
    public const string Always = "always";
}
