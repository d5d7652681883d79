using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Opterius.Services.Licensing;

/// <summary>The outcome of <see cref="LicenseIssuer.Issue"/>: where things were written and whether a new key pair was made.</summary>
public sealed record IssuedLicense(string LicenseFile, string PublicKeyFile, bool KeyPairCreated, LicenseDocument License);

/// <summary>
/// Signs licenses (<c>license issue</c>): for the demo, the tests and self-hosters who hold their own key.
/// The first run makes the P-256 key pair: the private key PEM (mode 600) at the signing key path and the
/// public key beside it as <c>&lt;signing key&gt;.pub</c>, which is what <c>Opterius:License:PublicKey</c> names.
/// </summary>
public sealed partial class LicenseIssuer(TimeProvider time)
{
    public const int MaxExpiryDays = 36500;

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
    private static partial Regex PlanPattern();

    public static string PublicKeyFileFor(string signingKeyFile) => signingKeyFile + ".pub";

    /// <summary>
    /// Writes a license signed with the key at <paramref name="signingKeyFile"/> (made when missing) to
    /// <paramref name="outFile"/>, replacing any license there atomically. <paramref name="maxAccounts"/> null =
    /// unlimited, <paramref name="expiresDays"/> null = never. Throws <see cref="ArgumentException"/> on bad values.
    /// </summary>
    public IssuedLicense Issue(string signingKeyFile, string outFile, string plan, int? maxAccounts, int? expiresDays, string? licensee = null)
    {
        if (!PlanPattern().IsMatch(plan))
            throw new ArgumentException("A plan is 1-32 characters: letters, digits, '.', '_' or '-'.", nameof(plan));
        if (maxAccounts is < 0)
            throw new ArgumentException("Max accounts is 0 or more (leave it out for unlimited).", nameof(maxAccounts));
        if (expiresDays is < 1 or > MaxExpiryDays)
            throw new ArgumentException($"A license expires after 1 to {MaxExpiryDays} days (leave it out for never).", nameof(expiresDays));
        if (licensee is not null && (licensee.Length > 200 || licensee.Any(char.IsControl)))
            throw new ArgumentException("A licensee is at most 200 printable characters.", nameof(licensee));

        signingKeyFile = Path.GetFullPath(signingKeyFile);
        outFile = Path.GetFullPath(outFile);
        using var key = SigningKeys.LoadOrCreate(signingKeyFile, out var created);

        // The public key is derived from the private one: (re)written whenever it is missing or does not match.
        var publicKeyFile = PublicKeyFileFor(signingKeyFile);
        var publicPem = SigningKeys.PublicPem(key);
        if (!File.Exists(publicKeyFile) || File.ReadAllText(publicKeyFile) != publicPem)
            AtomicFile.Write(publicKeyFile, System.Text.Encoding.ASCII.GetBytes(publicPem), PublicMode);

        var now = time.GetUtcNow();
        var issuedAt = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var license = new LicenseDocument(plan, maxAccounts, issuedAt, expiresDays is { } d ? issuedAt.AddDays(d) : null, licensee);
        AtomicFile.Write(outFile, LicenseFile.Write(license, key), PublicMode);
        return new IssuedLicense(outFile, publicKeyFile, created, license);
    }

    private const UnixFileMode PublicMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
}

/// <summary>Replace-by-rename: a reader sees the old file or the new one, never a half-written one.</summary>
internal static class AtomicFile
{
    public static void Write(string path, byte[] content, UnixFileMode mode)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var f = new FileStream(temp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode }))
            {
                f.Write(content);
                f.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(temp, mode); // the umask may have narrowed the create mode
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
