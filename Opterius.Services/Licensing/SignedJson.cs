using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Opterius.Services.Licensing;

/// <summary>
/// A signed JSON document: <c>{"NAME": {...}, "signature": "base64"}</c>, where the ECDSA / SHA-256 signature covers the
/// exact UTF-8 bytes of the NAME object as they stand in the file, and readers take the values from those same verified
/// bytes: no re-serialization could differ between signer and verifier. The object is written on a line of its own
/// (line 2), so anyone can cut the signed bytes out with <c>sed -n 2p | tr -d '\n'</c> and verify them with openssl; the
/// signature is line 3, <c>,"signature":"…"}</c>.
/// The license and the erasure record are both such documents.
/// </summary>
public static class SignedJson
{
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    /// <summary>The document's bytes: <paramref name="payload"/> (compact JSON, no raw line breaks) signed with <paramref name="key"/>.</summary>
    public static byte[] Write(string name, byte[] payload, ECDsa key, DSASignatureFormat format)
    {
        var signature = key.SignData(payload, HashAlgorithmName.SHA256, format);
        using var buffer = new MemoryStream();
        buffer.Write(Encoding.UTF8.GetBytes($"{{{JsonSerializer.Serialize(name)}:\n"));
        buffer.Write(payload);
        buffer.Write(Encoding.UTF8.GetBytes($"\n,\"signature\":\"{Convert.ToBase64String(signature)}\"}}\n"));
        return buffer.ToArray();
    }

    /// <summary>The signed bytes of the <paramref name="name"/> object in <paramref name="file"/>, if its signature verifies with <paramref name="key"/>.</summary>
    /// <exception cref="LicenseFormatException">not such a document</exception>
    /// <exception cref="LicenseSignatureException">edited after signing, or signed by another key</exception>
    public static byte[] Verify(ReadOnlyMemory<byte> file, string name, ECDsa key, DSASignatureFormat format)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(file, Strict); }
        catch (JsonException e) { throw new LicenseFormatException($"it is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty(name, out var body) || body.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("signature", out var sig) || sig.ValueKind != JsonValueKind.String)
                throw new LicenseFormatException($"it needs a \"{name}\" object and a \"signature\" string");
            if (!sig.TryGetBytesFromBase64(out var signature))
                throw new LicenseFormatException("its signature is not base64");

            var payload = JsonMarshal.GetRawUtf8Value(body).ToArray();
            if (!key.VerifyData(payload, signature, HashAlgorithmName.SHA256, format))
                throw new LicenseSignatureException();
            return payload;
        }
    }
}

/// <summary>The P-256 key pairs the panel signs with (licenses, erasure records): PEM files, the private one mode 600.</summary>
public static class SigningKeys
{
    /// <summary>
    /// The private key at <paramref name="path"/>, made when there is none (<paramref name="created"/>). Two processes
    /// making it at once end with one key: it is written to a temporary file and moved into place only if none is there.
    /// </summary>
    public static ECDsa LoadOrCreate(string path, out bool created)
    {
        var key = ECDsa.Create();
        try
        {
            created = !File.Exists(path) && TryCreate(path, key);
            if (!created) Load(path, key);
            return key;
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>The public key of <paramref name="key"/> as PEM text (SubjectPublicKeyInfo, what openssl reads).</summary>
    public static string PublicPem(ECDsa key) => key.ExportSubjectPublicKeyInfoPem() + "\n";

    private static void Load(string path, ECDsa key)
    {
        // Refused rather than used: a key others could read can sign for them, one another user owns may be theirs.
        if (Files.Libc.StatFollowing(path, out var st) != 0)
            throw new UnsafeSigningKeyException($"cannot read the signing key {path} (errno {Files.Libc.Errno})");
        var mode = st.Mode & 0xFFF;
        if (mode != 0x180) // 0600
            throw new UnsafeSigningKeyException($"the signing key {path} has mode {Convert.ToString(mode, 8).PadLeft(4, '0')}: "
                + $"it must be 0600 (chmod 600 {path})");
        var uid = Files.Libc.GetEuid();
        if (st.Uid != uid)
            throw new UnsafeSigningKeyException($"the signing key {path} is owned by uid {st.Uid}, not by this panel's uid {uid}: "
                + $"chown it to the panel's user");
        key.ImportFromPem(File.ReadAllText(path));
        if (key.KeySize != 256) throw new ArgumentException($"{path} is not a P-256 key.", nameof(path));
    }

    private static bool TryCreate(string path, ECDsa key)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        key.GenerateKey(ECCurve.NamedCurves.nistP256);
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            // Created with mode 600 from the start: there is no moment when the key is readable by others.
            using (var f = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                f.Write(Encoding.ASCII.GetBytes(key.ExportPkcs8PrivateKeyPem() + "\n"));
                f.Flush(flushToDisk: true);
            }
            try { File.Move(temp, path, overwrite: false); }
            catch (IOException) when (File.Exists(path)) { return false; } // another process made it first: use that one
            return true;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}

/// <summary>A signing key file others could read or another user owns: refused, never used, saying how to repair it.</summary>
public sealed class UnsafeSigningKeyException(string message) : Exception(message);
