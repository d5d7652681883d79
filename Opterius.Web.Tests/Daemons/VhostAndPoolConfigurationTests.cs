using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Commands;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Daemons;

/// <summary>nginx_vhost and php_fpm_pool when the reload commands are missing or nginx refuses the result, on sandbox roots of their own.</summary>
public sealed class VhostAndPoolConfigurationTests
{
    [Fact]
    public async Task WithoutReloadCommandsTheStepsFailNamingTheMissingKeysAndLeaveWhatAResumeNeeds()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = root }, privateDaemons: false);
        var (vhost, pool, layout) = (services.GetRequiredService<NginxVhostResource>(), services.GetRequiredService<PhpFpmPoolResource>(),
            services.GetRequiredService<ServerLayout>());
        var user = DaemonKit.Username("cfg");
        var a = DaemonKit.Account(user, $"{user}.test");
        await vhost.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        await pool.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        Assert.True(File.Exists(layout.NginxAvailable(a)));

        var vhostFailure = await Assert.ThrowsAsync<ResourceException>(() => vhost.RemoveAsync(a, default));
        var poolFailure = await Assert.ThrowsAsync<ResourceException>(() => pool.RemoveAsync(a, default));

        Assert.StartsWith("not configured: set Opterius:Commands:NginxTest, Opterius:Commands:NginxReload;", vhostFailure.Message);
        Assert.StartsWith("not configured: set Opterius:Commands:PhpFpmTest, Opterius:Commands:PhpFpmReload;", poolFailure.Message);
        // Out of what the daemons include, but kept until they have reloaded: a resumed step must reload.
        Assert.False(ServiceConfigFiles.IsPresent(layout.NginxEnabled(a)));
        Assert.True(File.Exists(layout.NginxAvailable(a)));
        Assert.False(File.Exists(layout.FpmPool(a)));
        Assert.True(File.Exists(layout.FpmPool(a) + PhpFpmPoolResource.RemovingSuffix));
        Assert.True((await vhost.InspectAsync(a, default)).Exists);
        Assert.Contains("not reloaded", (await pool.InspectAsync(a, default)).Summary);
    }

    [Fact]
    public async Task WithoutReloadCommandsAnAccountWithNoVhostOrPoolIsSkipped()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = root }, privateDaemons: false);
        var user = DaemonKit.Username("none");
        var a = DaemonKit.Account(user, $"{user}.test");

        Assert.Equal(StepStatus.Skipped, (await services.GetRequiredService<NginxVhostResource>().RemoveAsync(a, default)).Status);
        Assert.Equal(StepStatus.Skipped, (await services.GetRequiredService<PhpFpmPoolResource>().RemoveAsync(a, default)).Status);
    }

    [Fact]
    public async Task WhenNginxRejectsTheConfigurationAfterARemovalTheStepFailsWithNginxsOwnMessage()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(NginxTestOnly(root), privateDaemons: false);
        var (vhost, layout) = (services.GetRequiredService<NginxVhostResource>(), services.GetRequiredService<ServerLayout>());
        var user = DaemonKit.Username("bad");
        var a = DaemonKit.Account(user, $"{user}.test");
        await vhost.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        // Someone else's broken site, enabled after ours.
        await File.WriteAllTextAsync(Path.Combine(root, "etc/nginx/sites-enabled/zz-broken.conf"), "server { not_a_directive on; }\n");

        var failure = await Assert.ThrowsAsync<ResourceException>(() => vhost.RemoveAsync(a, default));

        Assert.Contains("not_a_directive", failure.Message);
        Assert.Contains("nginx", failure.Message);
        Assert.False(ServiceConfigFiles.IsPresent(layout.NginxEnabled(a)));
        Assert.True(File.Exists(layout.NginxAvailable(a)));

        // Once the broken site is fixed, the resumed step finds the vhost nginx has not taken in, reloads and is done.
        File.Delete(Path.Combine(root, "etc/nginx/sites-enabled/zz-broken.conf"));
        Assert.Equal(StepStatus.Done, (await vhost.RemoveAsync(a, default)).Status);
        Assert.False(File.Exists(layout.NginxAvailable(a)));
    }

    [Fact]
    public async Task AVhostThatNginxRefusesOnProvisionIsNotLeftEnabled()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(NginxTestOnly(root), privateDaemons: false);
        var (vhost, layout) = (services.GetRequiredService<NginxVhostResource>(), services.GetRequiredService<ServerLayout>());
        await File.WriteAllTextAsync(Path.Combine(root, "etc/nginx/sites-enabled/zz-broken.conf"), "server { not_a_directive on; }\n");
        var user = DaemonKit.Username("ref");
        var a = DaemonKit.Account(user, $"{user}.test");

        await Assert.ThrowsAsync<ResourceException>(() => vhost.ProvisionAsync(new(a, "o@example.com", "unused"), default));

        Assert.False(ServiceConfigFiles.IsPresent(layout.NginxEnabled(a)));
        Assert.False(File.Exists(layout.NginxAvailable(a)));
    }

    [Fact]
    public async Task ACertificateAnotherVhostStillUsesIsLeftInPlaceAndTheStepFailsNamingThatVhost()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(NginxTestOnly(root), privateDaemons: false);
        var (certificate, runner) = (services.GetRequiredService<SslCertificateResource>(), services.GetRequiredService<CommandRunner>());
        var user = DaemonKit.Username("crt");
        var a = DaemonKit.Account(user, $"{user}.test");
        await certificate.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        var live = services.GetRequiredService<ServerLayout>().CertLive(a);
        // An operator's site serving TLS with this account's certificate; a comment naming it does not count.
        var other = Path.Combine(root, "etc/nginx/sites-available/other.test.conf");
        await File.WriteAllTextAsync(other, $$"""
            server {
                listen 127.0.0.1:1 ssl;
                server_name other.test;
                ssl_certificate {{live}}/fullchain.pem;
                ssl_certificate_key {{live}}/privkey.pem;
            }

            """);
        File.CreateSymbolicLink(Path.Combine(root, "etc/nginx/sites-enabled/other.test.conf"), other);
        await File.WriteAllTextAsync(Path.Combine(root, "etc/nginx/sites-available/notes.conf"), $"# was: ssl_certificate {live}/fullchain.pem;\n");
        await runner.RunAsync("NginxTest", null, default);
        var before = Snapshot(Path.Combine(root, "etc/letsencrypt"));

        var plan = await certificate.InspectAsync(a, default);
        var failure = await Assert.ThrowsAsync<ResourceException>(() => certificate.RemoveAsync(a, default));

        Assert.Contains("still used by sites-available/other.test.conf, sites-enabled/other.test.conf", plan.Summary);
        Assert.Contains("still used by sites-available/other.test.conf, sites-enabled/other.test.conf:", failure.Message);
        Assert.DoesNotContain("notes.conf", failure.Message);
        Assert.Equal(before, Snapshot(Path.Combine(root, "etc/letsencrypt")));
        await runner.RunAsync("NginxTest", null, default); // every site still passes nginx -t

        File.Delete(Path.Combine(root, "etc/nginx/sites-enabled/other.test.conf"));
        File.Delete(other);
        Assert.Equal(StepStatus.Done, (await certificate.RemoveAsync(a, default)).Status);
        Assert.False(Path.Exists(live));
    }

    [Fact]
    public async Task ACertificateNamedOnlyInASnippetAnotherVhostIncludesIsLeftInPlaceAndTheStepFailsNamingTheSnippet()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(NginxTestOnly(root), privateDaemons: false);
        var (certificate, runner) = (services.GetRequiredService<SslCertificateResource>(), services.GetRequiredService<CommandRunner>());
        var user = DaemonKit.Username("snp");
        var a = DaemonKit.Account(user, $"{user}.test");
        await certificate.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        var live = services.GetRequiredService<ServerLayout>().CertLive(a);
        // The operator's TLS settings in a snippet two folders down, included by a site that names no certificate itself.
        var snippet = Path.Combine(root, "etc/nginx/snippets/tls/other.conf");
        Directory.CreateDirectory(Path.GetDirectoryName(snippet)!);
        await File.WriteAllTextAsync(snippet, $"ssl_certificate {live}/fullchain.pem;\nssl_certificate_key {live}/privkey.pem;\n");
        var other = Path.Combine(root, "etc/nginx/sites-available/other.test.conf");
        await File.WriteAllTextAsync(other, $"server {{ listen 127.0.0.1:1 ssl; server_name other.test; include {snippet}; }}\n");
        File.CreateSymbolicLink(Path.Combine(root, "etc/nginx/sites-enabled/other.test.conf"), other);
        await runner.RunAsync("NginxTest", null, default);
        var before = Snapshot(Path.Combine(root, "etc/letsencrypt"));

        var plan = await certificate.InspectAsync(a, default);
        var failure = await Assert.ThrowsAsync<ResourceException>(() => certificate.RemoveAsync(a, default));

        Assert.Contains("still used by snippets/tls/other.conf", plan.Summary);
        Assert.Contains("still used by snippets/tls/other.conf:", failure.Message);
        Assert.Equal(before, Snapshot(Path.Combine(root, "etc/letsencrypt")));
        await runner.RunAsync("NginxTest", null, default); // every site still passes nginx -t

        File.Delete(snippet);
        File.Delete(Path.Combine(root, "etc/nginx/sites-enabled/other.test.conf"));
        Assert.Equal(StepStatus.Done, (await certificate.RemoveAsync(a, default)).Status);
        Assert.False(Path.Exists(live));
    }

    [Fact]
    public async Task AFifoUnderEtcNginxDoesNotBlockTheCertificatesRemoval()
    {
        var root = DaemonKit.NewSandboxRoot();
        using var services = DaemonKit.Services(NginxTestOnly(root), privateDaemons: false);
        var certificate = services.GetRequiredService<SslCertificateResource>();
        var user = DaemonKit.Username("ffo");
        var a = DaemonKit.Account(user, $"{user}.test");
        await certificate.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        var live = services.GetRequiredService<ServerLayout>().CertLive(a);
        // Something's control pipe in /etc/nginx, and a link to it: reading either waits for a writer that never comes.
        var fifo = Path.Combine(root, "etc/nginx/control.fifo");
        DaemonKit.Run("mkfifo", fifo);
        File.CreateSymbolicLink(Path.Combine(root, "etc/nginx/control.link"), fifo);

        var removal = certificate.RemoveAsync(a, default);
        var finished = await Task.WhenAny(removal, Task.Delay(TimeSpan.FromSeconds(30)));

        Assert.True(finished == removal, "the certificate's removal was still reading the FIFO after 30 s");
        Assert.Equal(StepStatus.Done, (await removal).Status);
        Assert.False(Path.Exists(live));
    }

    /// <summary>
    /// Settings whose NginxTest is the real <c>nginx -t</c> of a configuration including the sandbox's enabled
    /// sites (no server runs it, so the reload is <c>true</c>).
    /// </summary>
    private static Dictionary<string, string?> NginxTestOnly(string root)
    {
        var prefix = NginxConfigurationFor(root);
        string[] test = ["nginx", "-p", prefix, "-c", "nginx.conf", "-e", Path.Combine(prefix, "error.log"), "-t"];
        var settings = new Dictionary<string, string?> { ["Opterius:Root"] = root, ["Opterius:Commands:NginxReload:0"] = "true" };
        for (var i = 0; i < test.Length; i++) settings[$"Opterius:Commands:NginxTest:{i}"] = test[i];
        return settings;
    }

    private static string NginxConfigurationFor(string root)
    {
        var prefix = Path.Combine(PrivateServices.Folder, $"nginx-t-{Path.GetFileName(root)}");
        Directory.CreateDirectory(prefix);
        File.Copy("/etc/nginx/fastcgi_params", Path.Combine(prefix, "fastcgi_params"), overwrite: true);
        File.WriteAllText(Path.Combine(prefix, "nginx.conf"), $$"""
            pid {{prefix}}/nginx.pid;
            events { }
            http {
                access_log off;
                client_body_temp_path {{prefix}}/body;
                proxy_temp_path {{prefix}}/proxy;
                fastcgi_temp_path {{prefix}}/fastcgi;
                uwsgi_temp_path {{prefix}}/uwsgi;
                scgi_temp_path {{prefix}}/scgi;
                include {{root}}/etc/nginx/sites-enabled/*.conf;
            }
            """);
        return prefix;
    }
}
