using System.Globalization;
using Microsoft.Extensions.Options;

namespace Opterius.Services.Licensing;

/// <summary>The license as it stands now. When not <see cref="Valid"/>, <see cref="Message"/> tells the operator what to do.</summary>
public sealed record LicenseStatus(bool Valid, string Plan, int? MaxAccounts, DateTimeOffset? ExpiresAt, string Message);

/// <summary>A write was refused because the license is not valid (HTTP <c>403 license_required</c>).</summary>
public sealed class LicenseRequiredException(string message) : Exception(message);

/// <summary>
/// Verifies the license at <see cref="LicenseOptions.Path"/> with the key at <see cref="LicenseOptions.PublicKey"/>.
/// Writes (create, suspend, unsuspend, delete) call <see cref="EnsureValid"/> before changing anything; reads never ask.
/// The files are re-read only when their modification time or size changes (one stat each per call), so a license
/// replaced at runtime counts from the next call; expiry is checked against the clock on every call.
/// </summary>
public sealed class LicenseService(IOptions<LicenseOptions> options, TimeProvider time)
{
    /// <summary>How far a license's issue date may be ahead of this server's clock before it is refused.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private readonly string _path = Path.GetFullPath(options.Value.Path);
    private readonly bool _inlineKey = options.Value.PublicKey.TrimStart().StartsWith("-----BEGIN", StringComparison.Ordinal);
    private string KeyPath => field ??= Path.GetFullPath(options.Value.PublicKey);

    private volatile Snapshot? _snapshot;

    public LicenseStatus Current
    {
        get
        {
            var stamp = new Stamp(FileStamp.Of(_path), _inlineKey ? default : FileStamp.Of(KeyPath));
            var snapshot = _snapshot;
            if (snapshot is null || snapshot.Stamp != stamp) _snapshot = snapshot = Load(stamp);
            return snapshot.License is { } license ? Judge(license) : new LicenseStatus(false, "", null, null, snapshot.Problem!);
        }
    }

    /// <summary>Throws <see cref="LicenseRequiredException"/> (with the operator's instructions) unless the license is valid.</summary>
    public LicenseStatus EnsureValid()
    {
        var status = Current;
        return status.Valid ? status : throw new LicenseRequiredException(status.Message);
    }

    private string Remedy => $"run `license issue --signing-key <key file> --out {_path}` or install a new license at {_path}";

    private LicenseStatus Judge(LicenseDocument l)
    {
        var now = time.GetUtcNow();
        if (l.ExpiresAt is { } expires && expires <= now)
            return new(false, l.Plan, l.MaxAccounts, l.ExpiresAt, $"License expired on {Format(expires)}: {Remedy}.");
        if (l.IssuedAt > now + ClockSkew)
            return new(false, l.Plan, l.MaxAccounts, l.ExpiresAt,
                $"License is issued on {Format(l.IssuedAt)}, in the future: check this server's clock, or {Remedy}.");
        var accounts = l.MaxAccounts is { } max ? $"up to {max} accounts" : "unlimited accounts";
        var until = l.ExpiresAt is { } e ? $"expires on {Format(e)}" : "never expires";
        var to = l.Licensee is null ? "" : $" to {l.Licensee}";
        return new(true, l.Plan, l.MaxAccounts, l.ExpiresAt, $"Licensed{to}: plan {l.Plan}, {accounts}, {until}.");
    }

    private Snapshot Load(Stamp stamp)
    {
        Snapshot Problem(string message) => new(stamp, null, message);

        byte[] file;
        try { file = File.ReadAllBytes(_path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Problem($"No license is installed at {_path}: {Remedy}.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Problem($"The license at {_path} cannot be read ({Reason(e)}): fix its permissions, or {Remedy}.");
        }
        string pem;
        try { pem = _inlineKey ? options.Value.PublicKey : File.ReadAllText(KeyPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Problem($"The license public key {KeyPath} cannot be read ({Reason(e)}): set Opterius:License:PublicKey to the .pub file that `license issue` writes beside its signing key.");
        }
        try
        {
            using var key = LicenseFile.PublicKeyFromPem(pem);
            return new(stamp, LicenseFile.Read(file, key), null);
        }
        catch (LicenseSignatureException)
        {
            var which = _inlineKey ? "the configured public key" : $"the public key {KeyPath}";
            return Problem($"The license at {_path} does not verify with {which}: it was edited after signing, or signed by another key. To fix it, {Remedy}, signed with the matching key.");
        }
        catch (LicenseFormatException e)
        {
            return Problem($"The license at {_path} cannot be used because {e.Message}: {Remedy}.");
        }
    }

    private static string Reason(Exception e) => e is UnauthorizedAccessException ? "permission denied" : e.Message;

    private static string Format(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);

    private readonly record struct FileStamp(long WriteTicks, long Length)
    {
        public static FileStamp Of(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? new(info.LastWriteTimeUtc.Ticks, info.Length) : new(0, -1);
        }
    }

    private readonly record struct Stamp(FileStamp License, FileStamp Key);

    // A verified license, or the operator-facing reason there is none.
    private sealed record Snapshot(Stamp Stamp, LicenseDocument? License, string? Problem);
}
