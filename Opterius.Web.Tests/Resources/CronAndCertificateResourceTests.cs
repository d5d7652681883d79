using System.Security.Cryptography.X509Certificates;
using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

public sealed class CronAndCertificateResourceTests : IDisposable
{
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    [Fact]
    public async Task ACrontabIsTheUsersModeSixHundredAndGoesWithoutTouchingALookAlikeUsers()
    {
        await _box.Cron.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default);
        await _box.Cron.ProvisionAsync(NewAccount("bobby", "example.com.au", uid: 200002), default);
        var bob = Identity("bob", "example.com");
        var bobbys = _box.Layout.Crontab(Identity("bobby", "example.com.au"));
        var bobby = File.ReadAllBytes(bobbys);

        Assert.Equal("600 200001:200001", Stat(_box.Layout.Crontab(bob)));
        var plan = await _box.Cron.InspectAsync(bob, default);
        Assert.Equal(1, plan.Count);
        Assert.Equal(StepStatus.Done, (await _box.Cron.RemoveAsync(bob, default)).Status);

        Assert.False(File.Exists(_box.Layout.Crontab(bob)));
        Assert.Equal(bobby, File.ReadAllBytes(bobbys));
        Assert.Equal("600 200002:200002", Stat(bobbys));
        Assert.False((await _box.Cron.InspectAsync(bob, default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await _box.Cron.RemoveAsync(bob, default)).Status);
    }

    [Fact]
    public async Task ACrontabThatIsALinkIsRemovedAsALink()
    {
        var target = Path.Combine(_box.Outside, "important");
        File.WriteAllText(target, "keep me");
        var bob = Identity("bob", "example.com");
        File.CreateSymbolicLink(_box.Layout.Crontab(bob), target);

        Assert.Equal(StepStatus.Done, (await _box.Cron.RemoveAsync(bob, default)).Status);

        Assert.Equal("keep me", File.ReadAllText(target));
        Assert.Null(new FileInfo(_box.Layout.Crontab(bob)).LinkTarget);
    }

    [Fact]
    public async Task ACertificateIsLaidOutLikeCertbotAndRemovedWhileLookAlikeDomainsKeepTheirs()
    {
        string[] neighbours = ["example.com.au", "sub.example.com", "xexample.com"];
        foreach (var d in neighbours) await _box.Certificate.ProvisionAsync(NewAccount("bobby", d), default);
        await _box.Certificate.ProvisionAsync(NewAccount("bob", "example.com"), default);
        var letsencrypt = Path.Combine(_box.Root, "etc", "letsencrypt");
        var bob = Identity("bob", "example.com");
        var live = _box.Layout.CertLive(bob);

        Assert.Equal("../../archive/example.com/fullchain1.pem", new FileInfo(Path.Combine(live, "fullchain.pem")).LinkTarget);
        using (var cert = X509Certificate2.CreateFromPemFile(Path.Combine(live, "fullchain.pem"), Path.Combine(live, "privkey.pem")))
        {
            Assert.True(cert.HasPrivateKey);
            Assert.True(cert.MatchesHostname("www.example.com"));
        }
        Assert.Equal("600 0:0", Stat(Path.Combine(_box.Layout.CertArchive(bob), "privkey1.pem")));
        var plan = await _box.Certificate.InspectAsync(bob, default);
        Assert.Equal(9, plan.Count); // four links, four PEM files, the renewal file
        static bool IsBobs(string path) => path.Contains("/example.com/") || path.EndsWith("/example.com") || path.EndsWith("/example.com.conf");
        var others = Snapshot(letsencrypt).Where(e => !IsBobs(e.Key)).ToList();
        Assert.Equal(9 + 2, Snapshot(letsencrypt).Count(e => IsBobs(e.Key))); // and its live and archive folders

        Assert.Equal(StepStatus.Done, (await _box.Certificate.RemoveAsync(bob, default)).Status);

        Assert.False(Path.Exists(live));
        Assert.False(Path.Exists(_box.Layout.CertArchive(bob)));
        Assert.False(Path.Exists(_box.Layout.CertRenewal(bob)));
        Assert.Equal(others, Snapshot(letsencrypt).ToList());
        Assert.Equal(StepStatus.Skipped, (await _box.Certificate.RemoveAsync(bob, default)).Status);
    }

    [Fact]
    public async Task CertbotLineagesOfTheDomainGoWithItAndLookAlikeLineagesAndTheirVhostsStay()
    {
        await _box.Certificate.ProvisionAsync(NewAccount("bob", "example.com"), default);
        foreach (var d in new[] { "example.com.au", "sub.example.com", "example.comx" }) await _box.Certificate.ProvisionAsync(NewAccount("bobby", d), default);
        string[] bobs = ["example.com-0001", "example.com-0002"];
        string[] lookAlikes = ["example.com-01", "example.com-00011", "example.comx-0001", "example.com.au-0001", "sub.example.com-0001"];
        foreach (var name in bobs.Concat(lookAlikes)) MakeLineage(name);
        // Another site using a look-alike's certificate: it does not hold bob's back.
        File.WriteAllText(Path.Combine(_box.Root, "etc/nginx/sites-enabled/shop.conf"),
            $"server {{ ssl_certificate {_box.Root}/etc/letsencrypt/live/example.com.au-0001/fullchain.pem; }}\n");
        var letsencrypt = Path.Combine(_box.Root, "etc", "letsencrypt");
        static bool IsBobs(string path) => new[] { "example.com", "example.com-0001", "example.com-0002" }
            .Any(n => path.Contains($"/{n}/") || path.EndsWith($"/{n}") || path.EndsWith($"/{n}.conf"));
        var others = Snapshot(letsencrypt).Where(e => !IsBobs(e.Key)).ToList();
        var bob = Identity("bob", "example.com");

        var plan = await _box.Certificate.InspectAsync(bob, default);
        var outcome = await _box.Certificate.RemoveAsync(bob, default);

        Assert.Equal(27, plan.Count); // three lineages of four links, four PEM files and a renewal file
        Assert.Contains(Path.Combine(letsencrypt, "archive", "example.com-0002"), plan.Items);
        Assert.Contains(Path.Combine(letsencrypt, "renewal", "example.com-0001.conf"), plan.Items);
        Assert.DoesNotContain("still used", plan.Summary);
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.DoesNotContain(Snapshot(letsencrypt), e => IsBobs(e.Key));
        Assert.Equal(others, Snapshot(letsencrypt).ToList());
        Assert.False((await _box.Certificate.InspectAsync(bob, default)).Exists);
    }

    [Fact]
    public async Task ACertificateGoesWhileAnotherSitesEnabledLinkPointsAtNothing()
    {
        // What the undo of a create that failed at the vhost meets: sites-available unusable, every enabled link dangling.
        await _box.Certificate.ProvisionAsync(NewAccount("bob", "example.com"), default);
        File.CreateSymbolicLink(Path.Combine(_box.Root, "etc/nginx/sites-enabled/gone.conf"), "../sites-available/gone.conf");
        var bob = Identity("bob", "example.com");

        var outcome = await _box.Certificate.RemoveAsync(bob, default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.False((await _box.Certificate.InspectAsync(bob, default)).Exists);
        Assert.False(Path.Exists(Path.Combine(_box.Root, "etc/letsencrypt/archive/example.com")));
    }

    /// <summary>A lineage as certbot leaves it: archive/NAME/*1.pem, live/NAME/*.pem links to them, renewal/NAME.conf.</summary>
    private void MakeLineage(string name)
    {
        var letsencrypt = Path.Combine(_box.Root, "etc", "letsencrypt");
        var (live, archive) = (Path.Combine(letsencrypt, "live", name), Path.Combine(letsencrypt, "archive", name));
        Directory.CreateDirectory(live);
        Directory.CreateDirectory(archive);
        foreach (var part in new[] { "cert", "chain", "fullchain", "privkey" })
        {
            File.WriteAllText(Path.Combine(archive, $"{part}1.pem"), $"{part} of {name}\n");
            File.CreateSymbolicLink(Path.Combine(live, $"{part}.pem"), $"../../archive/{name}/{part}1.pem");
        }
        File.WriteAllText(Path.Combine(letsencrypt, "renewal", $"{name}.conf"), $"archive_dir = {archive}\n");
    }

    [Fact]
    public async Task ADanglingVhostLinkInSitesEnabledNamesNoCertificateAndTheRemovalGoesOn()
    {
        // An operator's leftover link to a vhost file that is gone: no configuration, so no certificate it uses.
        await _box.Certificate.ProvisionAsync(NewAccount("bob", "example.com"), default);
        var dangling = Path.Combine(_box.Root, "etc/nginx/sites-enabled/legacy.conf");
        File.CreateSymbolicLink(dangling, "/etc/nginx/sites-available/legacy-that-is-gone.conf");
        var bob = Identity("bob", "example.com");

        var outcome = await _box.Certificate.RemoveAsync(bob, default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.False((await _box.Certificate.InspectAsync(bob, default)).Exists);
        Assert.Equal("/etc/nginx/sites-available/legacy-that-is-gone.conf", new FileInfo(dangling).LinkTarget);
    }
}
