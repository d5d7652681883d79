using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Opterius.Web.Hosting;

/// <summary>
/// Serves HTTPS on <c>Opterius:Https:Port</c> (8443). A configured certificate (PEM pair) wins; otherwise a
/// self-signed one is made on first start and reused after, so clients that pinned it keep working.
/// </summary>
public static class PanelHttps
{
    public static WebApplicationBuilder AddPanelHttps(this WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection("Opterius:Https");
        var port = section.GetValue("Port", 8443);
        if (port <= 0) return builder; // a test host or a reverse proxy serves instead
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var certificate = LoadOrCreate(section, builder.Environment.ContentRootPath);
            var address = section.GetValue("ListenAddress", "127.0.0.1")!;
            kestrel.Listen(System.Net.IPAddress.Parse(address), port, listen => listen.UseHttps(certificate));
        });
        return builder;
    }

    internal static X509Certificate2 LoadOrCreate(IConfigurationSection section, string contentRoot)
    {
        var certPath = section["CertificatePath"];
        if (!string.IsNullOrEmpty(certPath))
            return X509Certificate2.CreateFromPemFile(certPath, section["KeyPath"]);

        var selfSigned = Path.GetFullPath(section["SelfSignedPath"] ?? Path.Combine(contentRoot, ".run", "selfsigned.pfx"));
        if (File.Exists(selfSigned)) return X509CertificateLoader.LoadPkcs12FromFile(selfSigned, null);

        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=Opterius Panel", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        names.AddDnsName(Environment.MachineName);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
        Directory.CreateDirectory(Path.GetDirectoryName(selfSigned)!);
        File.WriteAllBytes(selfSigned, created.Export(X509ContentType.Pfx));
        File.SetUnixFileMode(selfSigned, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return X509CertificateLoader.LoadPkcs12FromFile(selfSigned, null);
    }
}
