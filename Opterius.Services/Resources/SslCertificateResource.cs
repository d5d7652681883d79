using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Opterius.Services.Accounts;
using Opterius.Services.Files;

namespace Opterius.Services.Resources;

/// <summary>
/// The domain's certificate laid out as certbot does: PEM files in <c>archive/{domain}/</c> (<c>cert1.pem</c>,
/// <c>chain1.pem</c>, <c>fullchain1.pem</c>, <c>privkey1.pem</c>), relative links to them in <c>live/{domain}/</c>
/// and <c>renewal/{domain}.conf</c>; certbot's later lineages <c>{domain}-0001</c>... are the domain's too. The create
/// path writes a self-signed certificate until a real one is issued.
/// </summary>
public sealed partial class SslCertificateResource(ServerLayout layout) : IAccountResource
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
        var items = new List<string>();
        long bytes = 0, files = 0;
        foreach (var lineage in Lineages(account))
        {
            foreach (var dir in new[] { lineage.Live, lineage.Archive })
                if (SafeTree.Measure(dir) is { } m) { items.Add(dir); bytes += m.Bytes; files += m.Files; }
            var conf = new FileInfo(lineage.Renewal);
            if (ServiceConfigFiles.IsPresent(lineage.Renewal)) { items.Add(lineage.Renewal); bytes += conf.Exists ? conf.Length : 0; files++; }
        }
        if (items.Count == 0) return ResourceInspection.Nothing(Key, $"nothing there: no certificate for {account.Domain}");
        var users = VhostsUsing(account);
        var summary = $"certificate of {account.Domain}: {files} files" + (users.Count == 0 ? "" :
            $"; still used by {string.Join(", ", users)}: its removal will fail until no other vhost references it");
        return new ResourceInspection(Key, true, items, bytes, files, summary);
    }, ct);

    /// <summary>
    /// Every lineage of the domain goes: live and archive folders (links, then the files they point at) and the
    /// renewal file. A certificate another vhost still names is left in place and the step fails: without it the
    /// next <c>nginx -t</c> fails, and with it every site's reload.
    /// </summary>
    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => Task.Run(() =>
    {
        var lineages = Lineages(account);
        if (lineages.Count > 0 && VhostsUsing(account) is { Count: > 0 } users)
            throw new ResourceException($"the certificate of {account.Domain} is still used by {string.Join(", ", users)}: " +
                "removing it would make nginx -t fail for every site, so it is left in place; change those vhosts, then resume");
        var removed = new List<string>();
        foreach (var lineage in lineages)
        {
            foreach (var dir in new[] { lineage.Live, lineage.Archive })
                if (SafeTree.Remove(dir) is not null) removed.Add(dir);
            if (Directory.Exists(lineage.Renewal) && new FileInfo(lineage.Renewal).LinkTarget is null)
                throw new ResourceException($"{lineage.Renewal} is a folder, not a renewal file");
            if (ServiceConfigFiles.IsPresent(lineage.Renewal)) { File.Delete(lineage.Renewal); removed.Add(lineage.Renewal); }
        }
        return removed.Count == 0
            ? RemoveOutcome.Skipped($"nothing there: no certificate for {account.Domain}")
            : RemoveOutcome.Done($"removed {string.Join(", ", removed)}");
    }, ct);

    internal sealed record Lineage(string Live, string Archive, string Renewal);

    /// <summary>
    /// The domain's certbot lineages: <c>{domain}</c> and the <c>{domain}-NNNN</c> (four digits) certbot makes beside
    /// an existing one, found in live/, archive/ or renewal/. <c>{domain}x</c>, <c>sub.{domain}</c> and
    /// <c>{domain}.au</c> are other domains' names.
    /// </summary>
    internal IReadOnlyList<Lineage> Lineages(AccountIdentity a)
    {
        var (live, archive, renewal) = (Path.GetDirectoryName(layout.CertLive(a))!, Path.GetDirectoryName(layout.CertArchive(a))!,
            Path.GetDirectoryName(layout.CertRenewal(a))!);
        var names = new SortedSet<string>(StringComparer.Ordinal) { a.Domain };
        foreach (var (dir, suffix) in new[] { (live, ""), (archive, ""), (renewal, ".conf") })
            if (Directory.Exists(dir))
                foreach (var entry in Directory.EnumerateFileSystemEntries(dir))
                {
                    var name = Path.GetFileName(entry);
                    if (name.EndsWith(suffix, StringComparison.Ordinal) && IsLineageName(a.Domain, name[..^suffix.Length])) names.Add(name[..^suffix.Length]);
                }
        static bool Exists(string path) => ServiceConfigFiles.IsPresent(path) || Directory.Exists(path);
        return names.Select(n => new Lineage(Path.Join(live, n), Path.Join(archive, n), Path.Join(renewal, $"{n}.conf")))
            .Where(l => Exists(l.Live) || Exists(l.Archive) || Exists(l.Renewal))
            .ToList();
    }

    private static bool IsLineageName(string domain, string name) =>
        name == domain || (name.Length == domain.Length + 5 && name.StartsWith(domain + "-", StringComparison.Ordinal)
                           && name[(domain.Length + 1)..].All(char.IsAsciiDigit));

    // A path in a vhost naming a certificate folder: /etc/letsencrypt/live/NAME or archive/NAME (under any root).
    [GeneratedRegex(@"/etc/letsencrypt/(?:live|archive)/(?<name>[^/\s;'""{}]+)")]
    private static partial Regex CertificatePath();

    /// <summary>
    /// The files of /etc/nginx (under the root, every folder down) other than the account's own vhost, its link and its
    /// suspended original, whose configuration names one of the domain's lineages; full-line comments do not count.
    /// nginx may include any of them (a snippet, a conf.d file). A link is read only as the file it leads to inside
    /// /etc/nginx (an enabled site); a link to a folder, out of /etc/nginx, or to nothing is not followed. Names
    /// starting with a dot (temporary files of atomic writes) are what no include pattern matches, and are passed over.
    /// </summary>
    private IReadOnlyList<string> VhostsUsing(AccountIdentity a)
    {
        var nginx = Path.GetFullPath(layout.Under("/etc/nginx"));
        var own = new HashSet<string>(StringComparer.Ordinal)
            { layout.NginxAvailable(a), layout.NginxEnabled(a), layout.NginxAvailable(a) + NginxVhostResource.OriginalSuffix };
        own = own.Select(Path.GetFullPath).ToHashSet(StringComparer.Ordinal);
        bool IsInside(string path) => path.StartsWith(nginx + "/", StringComparison.Ordinal);
        var users = new List<string>();
        var folders = new Stack<string>();
        if (Directory.Exists(nginx)) folders.Push(nginx);
        while (folders.TryPop(out var folder))
            foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos())
            {
                if (entry.Name.StartsWith('.') || own.Contains(entry.FullName)) continue;
                if (entry is DirectoryInfo && entry.LinkTarget is null) { folders.Push(entry.FullName); continue; }
                var read = entry.LinkTarget is null ? entry.FullName : LinkedFileInside(entry);
                if (read is null || own.Contains(read) || !IsRegularFile(read)) continue;
                var names = File.ReadLines(read).Where(l => !l.TrimStart().StartsWith('#'))
                    .SelectMany(l => CertificatePath().Matches(l)).Select(m => m.Groups["name"].Value);
                if (names.Any(n => IsLineageName(a.Domain, n))) users.Add(Path.GetRelativePath(nginx, entry.FullName));
            }
        return users.Order(StringComparer.Ordinal).ToList();

        // A FIFO or socket would block the step forever and a device would never end: nginx reads regular files, so
        // anything else cannot be one that uses the certificate. Lines are streamed, so a large file costs no memory.
        static bool IsRegularFile(string path) => Libc.StatFollowing(path, out var st) == 0 && st.Type == Libc.S_IFREG;

        string? LinkedFileInside(FileSystemInfo link)
        {
            try { return link.ResolveLinkTarget(returnFinalTarget: true) is FileInfo { Exists: true } file && IsInside(file.FullName) ? file.FullName : null; }
            catch (IOException) { return null; } // a loop of links: nginx cannot read it either
        }
    }

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
