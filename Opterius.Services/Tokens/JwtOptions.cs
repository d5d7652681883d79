using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;

namespace Opterius.Services.Tokens;

/// <summary>The <c>Opterius:Jwt</c> configuration section: how API tokens are signed and checked.</summary>
public sealed class JwtOptions : IValidatableObject
{
    public const string Section = "Opterius:Jwt";

    /// <summary>HMAC-SHA256 key, base64, at least 32 bytes once decoded. Make one with <see cref="NewSigningKey"/>.</summary>
    [Required]
    public string SigningKey { get; set; } = "";

    [Required]
    public string Issuer { get; set; } = "opterius-panel";

    [Required]
    public string Audience { get; set; } = "opterius-api";

    /// <summary>
    /// A token's last use is written at most once per this many seconds (per token, per process), so a
    /// busy API client does not turn every request into a database write. 0 writes on every request.
    /// </summary>
    [Range(0, 86400)]
    public int LastUsedWriteSeconds { get; set; } = 60;

    /// <summary>A fresh random key in the form <see cref="SigningKey"/> expects (for the demo and installers).</summary>
    public static string NewSigningKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>The decoded key; throws with the reason when it is not usable.</summary>
    public byte[] SigningKeyBytes()
    {
        var error = KeyError();
        if (error is not null) throw new InvalidOperationException(error);
        return Convert.FromBase64String(SigningKey);
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (KeyError() is { } error) yield return new ValidationResult(error, [nameof(SigningKey)]);
    }

    private string? KeyError()
    {
        if (string.IsNullOrWhiteSpace(SigningKey))
            return $"{Section}:SigningKey is not set: configure a base64 key of at least 32 random bytes (e.g. `openssl rand -base64 32`).";
        var buffer = new byte[SigningKey.Length];
        if (!Convert.TryFromBase64String(SigningKey, buffer, out var length))
            return $"{Section}:SigningKey is not valid base64.";
        return length < 32 ? $"{Section}:SigningKey decodes to {length} bytes; HS256 needs at least 32." : null;
    }
}
