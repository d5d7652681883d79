using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Opterius.Services.Licensing;

/// <summary>What a license grants. <see cref="MaxAccounts"/> null = unlimited; <see cref="ExpiresAt"/> null = never.</summary>
public sealed record LicenseDocument(
    string Plan,
    int? MaxAccounts,
    DateTimeOffset IssuedAt,
    DateTimeOffset? ExpiresAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Licensee);

/// <summary>
/// The license file: <c>{"license": {...}, "signature": "base64"}</c>, a <see cref="SignedJson"/> document. The
/// ECDSA P-256 / SHA-256 signature (IEEE P1363 form) covers the exact UTF-8 bytes of the <c>license</c> object as
/// they stand in the file, and the values are read from those same verified bytes. Any edit inside the object,
/// even whitespace, breaks the signature.
/// </summary>
public static class LicenseFile
{
    private const string Name = "license";
    private const DSASignatureFormat Format = DSASignatureFormat.IeeeP1363FixedFieldConcatenation;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
    };

    /// <summary>The file's bytes for a license signed with <paramref name="signingKey"/>.</summary>
    public static byte[] Write(LicenseDocument license, ECDsa signingKey) =>
        SignedJson.Write(Name, JsonSerializer.SerializeToUtf8Bytes(license, Json), signingKey, Format);

    /// <summary>The license in <paramref name="file"/> if its signature verifies with <paramref name="publicKey"/>.</summary>
    /// <exception cref="LicenseFormatException">not a license file</exception>
    /// <exception cref="LicenseSignatureException">edited after signing, or signed by another key</exception>
    public static LicenseDocument Read(ReadOnlyMemory<byte> file, ECDsa publicKey)
    {
        var payload = SignedJson.Verify(file, Name, publicKey, Format);
        LicenseDocument? license;
        try { license = JsonSerializer.Deserialize<LicenseDocument>(payload, Json); }
        catch (JsonException e) { throw new LicenseFormatException($"its license object is malformed ({e.Message})"); }
        if (license is null || string.IsNullOrWhiteSpace(license.Plan) || license.IssuedAt == default)
            throw new LicenseFormatException("its license object lacks a plan or an issue date");
        return license;
    }

    /// <summary>Loads a P-256 public key from PEM text.</summary>
    public static ECDsa PublicKeyFromPem(string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256) throw new LicenseFormatException($"the public key is a {key.KeySize}-bit key, not P-256");
            return key;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new LicenseFormatException($"the public key is not a PEM EC public key ({e.Message})");
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }
}

public sealed class LicenseFormatException(string message) : Exception(message);

public sealed class LicenseSignatureException() : Exception("the signature does not match");
