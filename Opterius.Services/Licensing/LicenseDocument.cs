using System.Runtime.InteropServices;
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
/// The license file: <c>{"license": {...}, "signature": "base64"}</c>. The ECDSA P-256 / SHA-256 signature
/// covers the exact UTF-8 bytes of the <c>license</c> object as they stand in the file (the issuer writes its
/// compact serialization there verbatim), and the values are read from those same verified bytes, so there
/// is no re-serialization that could differ between signer and verifier. Any edit inside the object,
/// even whitespace, breaks the signature.
/// </summary>
public static class LicenseFile
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
    };

    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    /// <summary>The file's bytes for a license signed with <paramref name="signingKey"/>.</summary>
    public static byte[] Write(LicenseDocument license, ECDsa signingKey)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(license, Json);
        var signature = signingKey.SignData(payload, HashAlgorithmName.SHA256);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WritePropertyName("license");
            w.WriteRawValue(payload, skipInputValidation: true);
            w.WriteString("signature", Convert.ToBase64String(signature));
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>The license in <paramref name="file"/> if its signature verifies with <paramref name="publicKey"/>.</summary>
    /// <exception cref="LicenseFormatException">not a license file</exception>
    /// <exception cref="LicenseSignatureException">edited after signing, or signed by another key</exception>
    public static LicenseDocument Read(ReadOnlyMemory<byte> file, ECDsa publicKey)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(file, Strict); }
        catch (JsonException e) { throw new LicenseFormatException($"it is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("license", out var body) || body.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("signature", out var sig) || sig.ValueKind != JsonValueKind.String)
                throw new LicenseFormatException("it needs a \"license\" object and a \"signature\" string");
            if (!sig.TryGetBytesFromBase64(out var signature))
                throw new LicenseFormatException("its signature is not base64");

            var payload = JsonMarshal.GetRawUtf8Value(body);
            if (!publicKey.VerifyData(payload, signature, HashAlgorithmName.SHA256))
                throw new LicenseSignatureException();

            LicenseDocument? license;
            try { license = JsonSerializer.Deserialize<LicenseDocument>(payload, Json); }
            catch (JsonException e) { throw new LicenseFormatException($"its license object is malformed ({e.Message})"); }
            if (license is null || string.IsNullOrWhiteSpace(license.Plan) || license.IssuedAt == default)
                throw new LicenseFormatException("its license object lacks a plan or an issue date");
            return license;
        }
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
