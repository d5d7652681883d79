namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>What an operator calls each resource key of a deletion, in the dialog's plan and progress lists.</summary>
public static class ResourceNames
{
    public static string Label(string key) => key switch
    {
        "final_backup" => "Final backup (nothing is removed if it fails)",
        "logins" => "Logins (locked first)",
        "nginx_vhost" => "Web server vhost (nginx)",
        "php_fpm_pool" => "PHP-FPM pool",
        "processes" => "Running processes",
        "cron" => "Cron jobs",
        "mail_users" => "Mail logins (Dovecot)",
        "mail_routes" => "Mail routes (Postfix)",
        "dns_zone" => "DNS zone",
        "mailboxes" => "Mailboxes",
        "databases" => "Databases",
        "database_users" => "Database users",
        "ssl_certificate" => "SSL certificate",
        "home_directory" => "Home directory",
        "user_files" => "Mail spool and temp files",
        "system_user" => "Linux user and group",
        _ => key,
    };

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / 1024.0 / 1024:0.#} MiB",
        _ => $"{bytes / 1024.0 / 1024 / 1024:0.##} GiB",
    };
}
