using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Daemons;

/// <summary>
/// nginx_vhost and php_fpm_pool against the run's real private nginx and php-fpm: what a visitor of each
/// site sees while accounts are provisioned, suspended, unsuspended and removed.
/// </summary>
public sealed class VhostAndPoolTests : IDisposable
{
    private readonly ServiceProvider _services = DaemonKit.Services();
    private NginxVhostResource Vhost => _services.GetRequiredService<NginxVhostResource>();
    private PhpFpmPoolResource Pool => _services.GetRequiredService<PhpFpmPoolResource>();
    private ServerLayout Layout => _services.GetRequiredService<ServerLayout>();
    private static string Root => PrivateServices.SandboxRoot;

    public void Dispose() => _services.Dispose();

    private async Task<(AccountIdentity A, AccountIdentity B)> TwoServedAccountsAsync()
    {
        var userA = DaemonKit.Username("web");
        var a = DaemonKit.Account(userA, $"{userA}.test");
        // Looks like a's: a username a's is a prefix of, a domain a's is a suffix of.
        var b = DaemonKit.Account(userA + "b", $"x{userA}.test");
        foreach (var account in new[] { a, b })
        {
            DaemonKit.WritePhpPage(Root, account);
            await Pool.ProvisionAsync(new NewAccount(account, "owner@example.com", "unused"), default);
            await Vhost.ProvisionAsync(new NewAccount(account, "owner@example.com", "unused"), default);
        }
        foreach (var account in new[] { a, b })
        {
            var (status, body) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.OK);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal($"site {account.Domain} by PHP 8.2", body);
        }
        return (a, b);
    }

    [Fact]
    public async Task EachProvisionedAccountServesItsOwnPhpPageThroughItsOwnPool()
    {
        var (a, b) = await TwoServedAccountsAsync();

        Assert.Equal($"site {a.Domain} by PHP 8.2", (await DaemonKit.GetUntilAsync("www." + a.Domain, HttpStatusCode.OK)).Body);
        Assert.Contains($"[{b.Domain}]", await File.ReadAllTextAsync(Layout.FpmPool(b)));
        Assert.Equal(Layout.NginxAvailable(a), new FileInfo(Layout.NginxEnabled(a)).LinkTarget);
        Assert.True((await Vhost.InspectAsync(a, default)).Exists);
        Assert.True((await Pool.InspectAsync(a, default)).Exists);
    }

    [Fact]
    public async Task ASuspendedSiteAnswers503WithTheSuspensionPageWhileItsNeighbourStaysUpAndUnsuspendRestoresItExactly()
    {
        var (a, b) = await TwoServedAccountsAsync();
        var vhostBefore = await File.ReadAllBytesAsync(Layout.NginxAvailable(a));
        var poolBefore = await File.ReadAllBytesAsync(Layout.FpmPool(a));

        await Pool.SuspendAsync(a, default);
        await Vhost.SuspendAsync(a, default);
        await Vhost.SuspendAsync(a, default); // twice is the same as once

        var suspended = await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.ServiceUnavailable);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, suspended.Status);
        Assert.Contains("This account is suspended", suspended.Body);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await DaemonKit.GetAsync(a.Domain, "/anything/else.php")).Status);
        Assert.False(File.Exists(Layout.FpmPool(a)));
        Assert.Equal((HttpStatusCode.OK, $"site {b.Domain} by PHP 8.2"), await DaemonKit.GetAsync(b.Domain));

        await Vhost.UnsuspendAsync(a, default);
        await Pool.UnsuspendAsync(a, default);

        Assert.Equal((HttpStatusCode.OK, $"site {a.Domain} by PHP 8.2"), await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.OK));
        Assert.Equal(vhostBefore, await File.ReadAllBytesAsync(Layout.NginxAvailable(a)));
        Assert.Equal(poolBefore, await File.ReadAllBytesAsync(Layout.FpmPool(a)));
        Assert.False(File.Exists(Layout.NginxAvailable(a) + NginxVhostResource.OriginalSuffix));
    }

    [Fact]
    public async Task RemovingOneAccountsVhostAndPoolStopsServingItAndLeavesTheOtherServedAndByteForByteIntact()
    {
        var (a, b) = await TwoServedAccountsAsync();
        var neighbourVhost = await File.ReadAllBytesAsync(Layout.NginxAvailable(b));
        var neighbourPool = await File.ReadAllBytesAsync(Layout.FpmPool(b));

        Assert.Equal(StepStatus.Done, (await Vhost.RemoveAsync(a, default)).Status);
        Assert.Equal(StepStatus.Done, (await Pool.RemoveAsync(a, default)).Status);

        var gone = await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.NotFound, gone.Status);
        Assert.DoesNotContain(a.Domain, gone.Body);
        Assert.False(File.Exists(Layout.NginxAvailable(a)));
        Assert.False(DanglingLinks().Any(), "a sites-enabled link points nowhere");
        Assert.False(File.Exists(Layout.FpmPool(a)));
        Assert.False((await Vhost.InspectAsync(a, default)).Exists);
        Assert.False((await Pool.InspectAsync(a, default)).Exists);

        var runner = _services.GetRequiredService<CommandRunner>();
        await runner.RunAsync("NginxTest", null, default);
        await runner.RunAsync("PhpFpmTest", null, default);
        Assert.Equal((HttpStatusCode.OK, $"site {b.Domain} by PHP 8.2"), await DaemonKit.GetAsync(b.Domain));
        Assert.Equal(neighbourVhost, await File.ReadAllBytesAsync(Layout.NginxAvailable(b)));
        Assert.Equal(neighbourPool, await File.ReadAllBytesAsync(Layout.FpmPool(b)));

        // Idempotent: a second run finds nothing and still says so.
        Assert.Equal(StepStatus.Skipped, (await Vhost.RemoveAsync(a, default)).Status);
        Assert.Equal(StepStatus.Skipped, (await Pool.RemoveAsync(a, default)).Status);
    }

    [Fact]
    public async Task RemovingASuspendedAccountLeavesNeitherItsSuspensionVhostNorItsOriginalNorItsParkedPool()
    {
        var (a, b) = await TwoServedAccountsAsync();
        await Vhost.SuspendAsync(a, default);
        await Pool.SuspendAsync(a, default);

        await Vhost.RemoveAsync(a, default);
        await Pool.RemoveAsync(a, default);

        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.NotFound)).Status);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(Layout.NginxAvailable(a))!, a.Domain + ".conf*"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(Layout.FpmPool(a))!, a.Domain + ".conf*"));
        Assert.Equal(HttpStatusCode.OK, (await DaemonKit.GetAsync(b.Domain)).Status);
    }

    [Fact]
    public async Task WithoutReloadCommandsTheStepsFailAndTheResumedStepsReloadAndAreDone()
    {
        var (a, b) = await TwoServedAccountsAsync();
        var neighbourVhost = await File.ReadAllBytesAsync(Layout.NginxAvailable(b));
        using var unconfigured = DaemonKit.Services(new Dictionary<string, string?>
        {
            ["Opterius:Commands:NginxReload:0"] = "", ["Opterius:Commands:PhpFpmReload:0"] = "",
        });

        var vhostFailure = await Assert.ThrowsAsync<ResourceException>(() => unconfigured.GetRequiredService<NginxVhostResource>().RemoveAsync(a, default));
        var poolFailure = await Assert.ThrowsAsync<ResourceException>(() => unconfigured.GetRequiredService<PhpFpmPoolResource>().RemoveAsync(a, default));
        Assert.StartsWith("not configured: set Opterius:Commands:NginxReload;", vhostFailure.Message);
        Assert.StartsWith("not configured: set Opterius:Commands:PhpFpmReload;", poolFailure.Message);
        Assert.True((await Vhost.InspectAsync(a, default)).Exists);
        Assert.True((await Pool.InspectAsync(a, default)).Exists);

        var vhostResumed = await Vhost.RemoveAsync(a, default);
        var poolResumed = await Pool.RemoveAsync(a, default);

        Assert.Equal(StepStatus.Done, vhostResumed.Status);
        Assert.Equal(StepStatus.Done, poolResumed.Status);
        Assert.Contains("reloaded", vhostResumed.Detail);
        Assert.Equal(HttpStatusCode.NotFound, (await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.NotFound)).Status);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(Layout.NginxAvailable(a))!, a.Domain + ".conf*"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(Layout.FpmPool(a))!, a.Domain + ".conf*"));
        Assert.False((await Vhost.InspectAsync(a, default)).Exists);
        Assert.False((await Pool.InspectAsync(a, default)).Exists);
        Assert.Equal((HttpStatusCode.OK, $"site {b.Domain} by PHP 8.2"), await DaemonKit.GetAsync(b.Domain));
        Assert.Equal(neighbourVhost, await File.ReadAllBytesAsync(Layout.NginxAvailable(b)));
    }

    private static IEnumerable<string> DanglingLinks() =>
        new DirectoryInfo(Path.Combine(Root, "etc/nginx/sites-enabled")).EnumerateFileSystemInfos()
            .Where(f => f.LinkTarget is not null && !File.Exists(f.FullName))
            .Select(f => f.FullName);
}
