using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Opterius.Web.Hosting;

namespace Opterius.Web.Tests.Hosting;

public sealed class PanelHttpsTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-https-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private IConfigurationSection Section(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.ToDictionary(kv => $"Opterius:Https:{kv.Key}", kv => kv.Value)).Build().GetSection("Opterius:Https");

    [Fact]
    public void ASelfSignedCertificateIsMadeOnFirstStartAndReusedAfter()
    {
        var path = Path.Combine(_folder, "selfsigned.pfx");
        var section = Section(new() { ["SelfSignedPath"] = path });

        using var first = PanelHttps.LoadOrCreate(section, _folder);
        using var second = PanelHttps.LoadOrCreate(section, _folder);

        Assert.Equal(first.Thumbprint, second.Thumbprint);
        Assert.True(first.HasPrivateKey);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Contains("127.0.0.1", first.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateIPAddresses().Select(a => a.ToString()));
    }

    [Fact]
    public void AConfiguredCertificateWinsOverTheSelfSignedOne()
    {
        using var key = RSA.Create(2048);
        using var made = new CertificateRequest("CN=panel.example", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        File.WriteAllText(Path.Combine(_folder, "cert.pem"), made.ExportCertificatePem());
        File.WriteAllText(Path.Combine(_folder, "key.pem"), key.ExportPkcs8PrivateKeyPem());
        var section = Section(new()
        {
            ["CertificatePath"] = Path.Combine(_folder, "cert.pem"),
            ["KeyPath"] = Path.Combine(_folder, "key.pem"),
            ["SelfSignedPath"] = Path.Combine(_folder, "selfsigned.pfx"),
        });

        using var used = PanelHttps.LoadOrCreate(section, _folder);

        Assert.Equal(made.Thumbprint, used.Thumbprint);
        Assert.False(File.Exists(Path.Combine(_folder, "selfsigned.pfx")));
    }
}
