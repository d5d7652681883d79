using System.ComponentModel.DataAnnotations;

namespace Opterius.Services;

/// <summary>The <c>Opterius</c> configuration section: where the server's files live and how its commands run.</summary>
public sealed class OpteriusOptions
{
    public const string Section = "Opterius";

    /// <summary>Every resource path lives under this root: "/" in production, a sandbox folder in the demo and tests.</summary>
    [Required]
    public string Root { get; set; } = "/";

    /// <summary>External commands as argument lists; placeholders such as {root}, {username}, {uid} and {shell} are substituted per argument.</summary>
    public Dictionary<string, string[]> Commands { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Seconds an external command may run before it is killed and its step fails.</summary>
    [Range(1, 3600)]
    public int CommandTimeoutSeconds { get; set; } = 60;

    /// <summary>The lowest uid an account's Linux user may have; processes and files are only touched above it.</summary>
    [Range(1000, int.MaxValue)]
    public int MinUid { get; set; } = 1000;

    /// <summary>The user a PHP-FPM pool runs as; empty means the account's own user (production).</summary>
    public string PoolUser { get; set; } = "";

    /// <summary>The group a PHP-FPM pool runs as; empty means the account's own group (production).</summary>
    public string PoolGroup { get; set; } = "";

    /// <summary>Where php-fpm pools listen: one socket per domain in this folder (under Root).</summary>
    public string FpmSocketDir { get; set; } = "/run/php";

    /// <summary>The coalescing window: while other deletions are on their way to a reload, it waits for them this long after each arrival (at most <see cref="Commands.ServiceReloader.MaxWindows"/> windows); alone, it does not wait.</summary>
    [Range(0, 10000)]
    public int ReloadCoalesceMilliseconds { get; set; } = 250;
}
