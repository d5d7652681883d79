using System.Text;
using System.Text.RegularExpressions;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// What the vhost and pool resources share: whole-file atomic writes of the small configuration files the
/// panel owns, paths made safe to print into nginx and php-fpm configuration, and reloads turned into
/// step outcomes.
/// </summary>
internal static partial class ServiceConfigFiles
{
    // A path printed into a daemon's configuration must not be able to end the directive it sits in.
    [GeneratedRegex("^[A-Za-z0-9/._+-]+$")]
    private static partial Regex SafePath();

    public static string ConfigPath(string path) =>
        SafePath().IsMatch(path) ? path : throw new ResourceException($"'{path}' cannot be written into a service configuration");

    /// <summary>The pool's socket: one per domain in <see cref="OpteriusOptions.FpmSocketDir"/>, under the root.</summary>
    public static string FpmSocket(ServerLayout layout, OpteriusOptions options, AccountIdentity a) =>
        ConfigPath(layout.Under($"{options.FpmSocketDir.TrimEnd('/')}/{a.Domain}.sock"));

    /// <summary>True for a file or a link, dangling or not.</summary>
    public static bool IsPresent(string path) => File.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>True for anything at the path: a file, a folder or a link, dangling or not.</summary>
    public static bool IsAnythingAt(string path) => Path.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>Temp file in the same folder, fsync, mode 0644, rename: readers see the old file or the new one.</summary>
    public static Task WriteAtomicAsync(string path, string content, CancellationToken ct) =>
        WriteAtomicAsync(path, Encoding.UTF8.GetBytes(content), ct);

    public static async Task WriteAtomicAsync(string path, byte[] content, CancellationToken ct)
    {
        var folder = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(folder);
        // Dot-prefixed and not ending in .conf: no include glob of nginx or php-fpm ever picks it up.
        var temp = Path.Join(folder, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, new FileStreamOptions
                         { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = (UnixFileMode)0b110_100_100 }))
            {
                await stream.WriteAsync(content, ct);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Points <paramref name="link"/> at <paramref name="target"/>, replacing whatever was there in one rename.</summary>
    public static void Link(string link, string target)
    {
        if (new FileInfo(link).LinkTarget == target) return;
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        var temp = Path.Join(Path.GetDirectoryName(link)!, $".{Path.GetFileName(link)}.{Guid.NewGuid():N}.tmp");
        File.CreateSymbolicLink(temp, target);
        try { File.Move(temp, link, overwrite: true); }
        finally { if (IsPresent(temp)) File.Delete(temp); }
    }

    /// <summary>
    /// Tests and reloads a service (coalesced). Returns null when it ran, the "not configured: set ..." text when its
    /// commands are not configured; a configuration the service rejects becomes a <see cref="ResourceException"/>.
    /// </summary>
    public static async Task<string?> ReloadAsync(ServiceReloader reloader, string service, string after, CancellationToken ct,
        ServiceReloader.Approach? approach = null) =>
        (await ResourceException.WhenCommandFails(() => reloader.ReloadAsync(service, ct, approach), $"{service} rejected the configuration after {after}")).NotConfigured;

    /// <summary>
    /// The reload that finishes a removal. With nothing removed it still runs when configured (harmless, and it
    /// takes in a change an interrupted run left). With something removed, commands that are not configured fail
    /// the step: the service still runs with the account's configuration until it is reloaded.
    /// </summary>
    public static async Task ReloadAfterRemovalAsync(ServiceReloader reloader, string service, string what, bool removedSomething, CancellationToken ct,
        ServiceReloader.Approach? approach = null)
    {
        if (await ReloadAsync(reloader, service, $"removing {what}", ct, approach) is { } notConfigured && removedSomething)
            throw new ResourceException($"{notConfigured}; {service} keeps {what} until it is reloaded");
    }

    public static long SizeOf(string path) => File.Exists(path) && new FileInfo(path).LinkTarget is null ? new FileInfo(path).Length : 0;
}
