using System.Text.RegularExpressions;

namespace Opterius.Services.Accounts;

/// <summary>
/// The one place that decides what a username, domain or PHP version may look like. Every path, SQL
/// identifier and command argument is built only from names that passed these checks.
/// </summary>
public static partial class AccountNames
{
    // \z, not $: '$' also matches before a final newline, which would let "bob\n" into passwd and configuration files.
    [GeneratedRegex("^[a-z][a-z0-9]{2,31}\\z")]
    private static partial Regex UsernamePattern();

    // One label: letters, digits, inner hyphens; at most 63 characters.
    [GeneratedRegex("^(?!-)[a-z0-9-]{1,63}(?<!-)\\z")]
    private static partial Regex LabelPattern();

    [GeneratedRegex("^([a-z]{2,63}|xn--[a-z0-9-]{1,59})\\z")]
    private static partial Regex TopLevelPattern();

    [GeneratedRegex("^[0-9]\\.[0-9]\\z")]
    private static partial Regex PhpVersionPattern();

    // Names the Linux user database, MariaDB or mail already use for themselves (Debian's base users and
    // those of the packages a hosting server runs), and role names mail and web conventions reserve.
    private static readonly HashSet<string> Reserved =
    [
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
        "backup", "list", "irc", "gnats", "nobody", "nogroup", "systemd", "messagebus", "sshd", "mysql", "postfix",
        "dovecot", "dovenull", "nginx", "pdns", "admin", "opterius", "information", "performance", "test",
        "vmail", "www", "wwwdata", "postmaster", "hostmaster", "webmaster", "abuse", "security", "noreply",
        "ftp", "sftp", "ssh", "smtp", "imap", "pop", "pop3", "dns", "named", "bind", "apache", "httpd", "php",
        "phpmyadmin", "mariadb", "postgres", "redis", "memcache", "certbot", "letsencrypt", "clamav", "amavis",
        "spamd", "debian", "ubuntu", "halt", "shutdown", "operator", "staff", "users", "adm", "wheel", "sudo",
        "tty", "disk", "kmem", "dialout", "cdrom", "floppy", "audio", "video", "plugdev", "netdev", "shadow",
        "utmp", "crontab", "ntp", "chrony", "polkitd", "tss", "uuidd", "tcpdump", "localhost", "mailer",
    ];

    public static bool IsValidUsername(string? value) =>
        value is not null && UsernamePattern().IsMatch(value) && !Reserved.Contains(value);

    /// <summary>
    /// A public-looking FQDN, lower-case: at least two labels of letters, digits and inner hyphens, and a top-level
    /// label of letters only or an IDN <c>xn--</c> label, so names such as <c>php8.2-fpm</c> (whose pool socket would
    /// be Debian's own) or <c>10.0.0.1</c> are no domain.
    /// </summary>
    public static bool IsValidDomain(string? value)
    {
        if (value is null || value.Length is < 3 or > 253) return false;
        var labels = value.Split('.');
        return labels.Length >= 2
            && labels.All(l => LabelPattern().IsMatch(l))
            && TopLevelPattern().IsMatch(labels[^1]);
    }

    public static bool IsValidPhpVersion(string? value) => value is not null && PhpVersionPattern().IsMatch(value);
}

/// <summary>An account's names after re-validation: the only input resources build paths and identifiers from.</summary>
public sealed record AccountIdentity(long Id, string Username, string Domain, string PhpVersion, int? Uid)
{
    public static AccountIdentity From(Account account) =>
        Create(account.Id, account.Username, account.Domain, account.PhpVersion, account.Uid, "stored");

    /// <summary>Builds an identity only from names that pass the rules; <paramref name="source"/> says where they came from.</summary>
    public static AccountIdentity Create(long id, string username, string domain, string phpVersion, int? uid, string source)
    {
        if (!AccountNames.IsValidUsername(username))
            throw new InvalidAccountNameException($"{source} username '{username}' is not a valid account name");
        if (!AccountNames.IsValidDomain(domain))
            throw new InvalidAccountNameException($"{source} domain '{domain}' is not a valid domain");
        if (!AccountNames.IsValidPhpVersion(phpVersion))
            throw new InvalidAccountNameException($"{source} PHP version '{phpVersion}' is not valid");
        return new(id, username, domain, phpVersion, uid);
    }
}

public sealed class InvalidAccountNameException(string message) : Exception(message);
