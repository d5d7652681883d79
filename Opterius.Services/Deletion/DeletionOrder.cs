namespace Opterius.Services.Deletion;

/// <summary>
/// The fixed order of a deletion: lock the account's logins first (no tenant gets a new process in while the
/// rest goes), stop serving (vhost, pool, cron, then processes: a cron job cannot start one after the kill), then mail and DNS, then data and the files the uid
/// left outside its home, then the Linux user (its processes killed again right before userdel). Other
/// accounts keep being served throughout. Creation runs it backwards. A job that keeps a final backup has one more
/// step before all of them, <see cref="FinalBackup"/>: it removes nothing, so it is no resource (neither created nor
/// verified), and a job without it never gains it.
/// </summary>
public static class DeletionOrder
{
    public static readonly IReadOnlyList<string> Keys =
    [
        "logins",
        "nginx_vhost", "php_fpm_pool", "cron", "processes",
        "mail_users", "mail_routes", "dns_zone",
        "mailboxes", "databases", "database_users", "ssl_certificate", "home_directory", "user_files",
        "system_user",
    ];

    /// <summary>The first step of a job that keeps a final backup: if it fails, nothing has been removed.</summary>
    public const string FinalBackup = "final_backup";

    /// <summary>A job's steps: the final backup when it keeps one, then every resource.</summary>
    public static IReadOnlyList<string> Steps(bool finalBackup) => finalBackup ? [FinalBackup, .. Keys] : Keys;

    /// <summary>Where an event sorts in a step list: the job itself first, then the steps in order.</summary>
    public static int Position(DeletionEvent e) => e.Resource switch
    {
        DeletionEvent.JobResource => 0,
        FinalBackup => 1,
        var key => 2 + Keys.ToList().IndexOf(key),
    };
}
