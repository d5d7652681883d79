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

    /// <summary>
    /// Whether a deletion first writes a final backup: <c>never</c> (asking for one is refused), <c>on_request</c> (when the
    /// request asks: <c>?backup=true</c>, the dialog's box, <c>--backup</c>) or <c>always</c>.
    /// </summary>
    [RegularExpression("^(never|on_request|always)$", ErrorMessage = "Opterius:Deletion:FinalBackup must be never, on_request or always")]
    public string FinalBackup { get; set; } = FinalBackupPolicy.OnRequest;

    /// <summary>How many days a final backup is kept before the retention task purges it.</summary>
    [Range(1, 3650)]
    public int FinalBackupDays { get; set; } = 30;

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
