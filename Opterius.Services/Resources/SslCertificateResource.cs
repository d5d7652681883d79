using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The domain's certificate laid out as certbot does: PEM files in <c>archive/{domain}/</c> (<c>cert1.pem</c>,
/// <c>chain1.pem</c>, <c>fullchain1.pem</c>, <c>privkey1.pem</c>), relative links to them in <c>live/{domain}/</c>
/// and <c>renewal/{domain}.conf</c>. The create path writes a self-signed certificate until a real one is issued.
/// </summary>
public sealed class SslCertificateResource(ServerLayout layout) : IAccountResource
{
    public string Key => "ssl_certificate";

    private static readonly string[] Parts = ["cert", "chain", "fullchain", "privkey"];

    private const UnixFileMode Private = (UnixFileMode)0b111_000_000;   // 0700
    private const UnixFileMode Public = (UnixFileMode)0b111_101_101;    // 0755
    private const UnixFileMode Readable = (UnixFileMode)0b110_100_100;  // 0644
    private const UnixFileMode Secret = (UnixFileMode)0b110_000_000;    // 0600

    /// <summary>
    /// Lays out a self-signed certificate, refusing when any of live, archive or renewal exists already (a real
    /// certificate is never replaced). A failure half-way removes what this wrote.
    /// </summary>
    public async Task ProvisionAsync(NewAccount account, CancellationToken ct)
    {
        var a = account.Identity;
        if ((await InspectAsync(a, ct)).Exists)
            throw new AlreadyThereException($"a certificate of {a.Domain} already exists under {Path.GetDirectoryName(layout.CertLive(a))}; it is left as it is");
        try { Write(a); }
        catch
        {
            await RemoveAsync(a, CancellationToken.None);
            throw;
        }
    }

    private void Write(AccountIdentity a)
    {
        var (live, archive, renewal) = (layout.CertLive(a), layout.CertArchive(a), layout.CertRenewal(a));
        foreach (var top in new[] { Path.GetDirectoryName(live)!, Path.GetDirectoryName(archive)! })
            if (!Directory.Exists(top)) FileWriter.MakeDirectory(top, Private);
        Directory.CreateDirectory(Path.GetDirectoryName(renewal)!);
        FileWriter.MakeDirectory(archive, Public);
        FileWriter.MakeDirectory(live, Public);

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={a.Domain}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(a.Domain);
        names.AddDnsName($"www.{a.Domain}");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(90));
        var certPem = cert.ExportCertificatePem() + "\n";
        var files = new Dictionary<string, (string Pem, UnixFileMode Mode)>
        {
            ["cert"] = (certPem, Readable),
            ["chain"] = (certPem, Readable), // self-signed: it is its own issuer
            ["fullchain"] = (certPem, Readable),
            ["privkey"] = (key.ExportPkcs8PrivateKeyPem() + "\n", Secret),
        };
        foreach (var part in Parts)
        {
            FileWriter.Write(Path.Join(archive, $"{part}1.pem"), files[part].Pem, files[part].Mode);
            var link = Path.Join(live, $"{part}.pem");
            if (ServiceConfigFiles.IsPresent(link)) File.Delete(link);
            File.CreateSymbolicLink(link, $"../../archive/{a.Domain}/{part}1.pem");
        }
        FileWriter.Write(renewal, RenewalConf(a, live, archive), Readable);
    }

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var (live, archive, renewal) = (layout.CertLive(account), layout.CertArchive(account), layout.CertRenewal(account));
        var items = new List<string>();
        long bytes = 0, files = 0;
        foreach (var dir in new[] { live, archive })
            if (SafeTree.Measure(dir) is { } m) { items.Add(dir); bytes += m.Bytes; files += m.Files; }
        var conf = new FileInfo(renewal);
        if (conf.Exists || conf.LinkTarget is not null) { items.Add(renewal); bytes += conf.Exists ? conf.Length : 0; files++; }
        return items.Count == 0
            ? ResourceInspection.Nothing(Key, $"nothing there: no certificate for {account.Domain}")
            : new ResourceInspection(Key, true, items, bytes, files, $"certificate of {account.Domain}: {files} files");
    }, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var (live, archive, renewal) = (layout.CertLive(account), layout.CertArchive(account), layout.CertRenewal(account));
        var removed = new List<string>();
        // live holds links into archive: removed as links, then their targets with archive.
        foreach (var dir in new[] { live, archive })
            if (SafeTree.Remove(dir) is not null) removed.Add(dir);
        var conf = new FileInfo(renewal);
        if (Directory.Exists(renewal) && conf.LinkTarget is null) throw new ResourceException($"{renewal} is a folder, not a renewal file");
        if (conf.Exists || conf.LinkTarget is not null) { File.Delete(renewal); removed.Add(renewal); }
        return removed.Count == 0
            ? RemoveOutcome.Skipped($"nothing there: no certificate for {account.Domain}")
            : RemoveOutcome.Done($"removed {string.Join(", ", removed)}");
    }, ct);

    private string RenewalConf(AccountIdentity a, string live, string archive) => $"""
        # renew_before_expiry = 30 days
        # Opterius Panel: self-signed until a certificate is issued for {a.Domain}
        version = 2.1.0
        archive_dir = {archive}
        cert = {live}/cert.pem
        privkey = {live}/privkey.pem
        chain = {live}/chain.pem
        fullchain = {live}/fullchain.pem

        [renewalparams]
        authenticator = webroot
        webroot_path = {Path.Join(layout.Home(a), "public_html")},
        server = https://acme-v02.api.letsencrypt.org/directory
        key_type = ecdsa

        """;
}
