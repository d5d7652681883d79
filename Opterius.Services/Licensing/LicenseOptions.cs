using System.ComponentModel.DataAnnotations;

namespace Opterius.Services.Licensing;

/// <summary>The <c>Opterius:License</c> configuration section: where the license is and which key vouches for it.</summary>
public sealed class LicenseOptions
{
    public const string Section = "Opterius:License";

    /// <summary>The license file, as written by <c>license issue --out</c>.</summary>
    [Required]
    public string Path { get; set; } = "/etc/opterius/license.json";

    /// <summary>
    /// The public key (PEM) that verifies the license: a file path (e.g. the <c>.pub</c> beside the signing key
    /// made by <c>license issue</c>), or the PEM text itself.
    /// </summary>
    [Required]
    public string PublicKey { get; set; } = "/etc/opterius/license-signing.pem.pub";
}
