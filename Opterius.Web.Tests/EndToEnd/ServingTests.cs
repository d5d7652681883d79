using Microsoft.Extensions.DependencyInjection;
using System.Net;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.EndToEnd;

/// <summary>
/// What a visitor, a resolver and the mail server see, against the run's real private nginx, php-fpm,
/// PowerDNS and Postfix map, while accounts made by the real create path are suspended, unsuspended and
/// deleted (cleanly, or after a real command failed half-way and the deletion was resumed).
/// </summary>
[Collection(nameof(ServingTests))]
public sealed class ServingTests(ServingApp app) : ServingScenarios(app), IClassFixture<ServingApp>;

/// <summary>The serving scenarios, for the panel with its resources in process and for the panel on the agent.</summary>
public abstract class ServingScenarios(ServingApp app)
{
    private static readonly Viewer Admin = new(0, true);

    private ServerLayout Layout => app.Get<ServerLayout>();

    /// <summary>Two accounts whose names look alike (b's domain ends with a's), both served before anything happens.</summary>
    private async Task<(Account A, Account B)> TwoServedAccountsAsync()
    {
        var p = TestAccounts.NewPrefix(6);
        var a = await app.CreateAsync(p, $"{p}.test");
        var b = await app.CreateAsync($"{p}b", $"x{p}.test");
        await AssertServedAsync(a);
        await AssertServedAsync(b);
        return (a, b);
    }

    [Fact]
    public async Task EachNewAccountServesItsOwnPhpPageAnswersItsZoneAndRoutesItsMailboxes()
    {
        var (a, b) = await TwoServedAccountsAsync();

        // The www name is the same site; the neighbour's page is not this one's.
        var www = await DaemonKit.GetUntilAsync($"www.{a.Domain}", HttpStatusCode.OK);
        Assert.Contains($"<h1>{a.Domain}</h1>", www.Body);
        Assert.DoesNotContain(b.Domain, www.Body);
        Assert.Equal("127.0.0.1", Dig($"www.{b.Domain}"));
        Assert.Equal($"{b.Domain}/info/", PostmapQuery($"info@{b.Domain}"));
    }

    [Fact]
    public async Task ASuspendedSiteAnswers503WhileItsNeighbourAnswers200AndUnsuspendRestoresSiteMailAndShellExactly()
    {
        var (a, b) = await TwoServedAccountsAsync();
        var before = Snapshot(a);
        var suspension = app.Get<AccountSuspension>();

        await suspension.SuspendAsync(app.AdminActor(), a.Id, default);

        var suspended = await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.ServiceUnavailable);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, suspended.Status);
        Assert.Contains("This account is suspended", suspended.Body);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await DaemonKit.GetAsync(a.Domain, "/index.php")).Status);
        await AssertServedAsync(b);
        var during = Snapshot(a);
        Assert.All(during.MailUsers.Split('\n'), l => Assert.StartsWith(MailUsersResource.SuspendedPrefix, l));
        Assert.EndsWith(":" + SystemUserResource.SuspendedShell, during.Passwd);
        Assert.Equal(AccountStatus.Suspended, (await FindAsync(a)).Status);

        await suspension.UnsuspendAsync(app.AdminActor(), a.Id, default);

        await AssertServedAsync(a);
        await AssertServedAsync(b);
        var after = Snapshot(a);
        Assert.Equal(before.MailUsers, after.MailUsers);
        Assert.Equal(before.MailRoutes, after.MailRoutes);
        Assert.Equal(before.Passwd, after.Passwd);
        Assert.EndsWith(":" + SystemUserResource.DefaultShell, after.Passwd);
        Assert.Equal(before.Vhost, after.Vhost);
        Assert.Equal(before.Pool, after.Pool);
    }

    [Fact]
    public async Task ADeletedAccountIsNoLongerServedResolvedOrRoutedAndItsNeighbourAnswersEverythingAsBefore()
    {
        var (a, b) = await TwoServedAccountsAsync();
        var neighbour = Snapshot(b);

        var job = await DeleteAsync(a);

        Assert.True(job.Status == JobStatus.Succeeded, Failures(job));
        await AssertGoneAsync(a);
        await AssertServedAsync(b);
        Assert.Equal(neighbour, Snapshot(b));
    }

    [Fact]
    public async Task WhileADeletedSitesFilesAreRemovedItIsNoLongerServedResolvedOrRoutedAndItsNeighbourStillIs()
    {
        var (a, b) = await TwoServedAccountsAsync();
        var neighbour = Snapshot(b);
        var home = new GatedResource(app.Services.GetServices<IAccountResource>().Single(r => r.Key == "home_directory"));
        var service = DeletionTesting.ServiceOf(app.Services, r => r.Key == "home_directory" ? home : r);

        var handle = await service.StartAsync(app.AdminActor(), a.Id, default);
        await home.Entered.Task;
        // The data stage runs (the home is held there, still on disk): the site, its zone and its mail are already gone.
        var (status, body) = await DaemonKit.GetUntilAsync(a.Domain, HttpStatusCode.NotFound);
        Assert.True(status == HttpStatusCode.NotFound, $"{a.Domain} still answered {(int)status} while its files were being removed: {body}");
        Assert.Equal("", Dig(a.Domain));
        Assert.Null(PostmapQuery($"admin@{a.Domain}"));
        Assert.True(Directory.Exists(Layout.Home(AccountIdentity.From(a))), "the home is removed only after serving stopped");
        await AssertServedAsync(b);
        home.Gate.SetResult();
        var job = await handle.Completion;

        Assert.True(job.Status == JobStatus.Succeeded, Failures(job));
        await AssertGoneAsync(a);
        await AssertServedAsync(b);
        Assert.Equal(neighbour, Snapshot(b));
    }

    [Fact]
    public async Task ALargeHomeIsRemovedWithRunningProgressOfThePlannedTotalWhoseCountsOnlyGrowAndEndAtWhatWasRemoved()
    {
        var p = TestAccounts.NewPrefix(6);
        var a = await app.CreateAsync(p, $"{p}.test");
        // Five thousand small files: the walk reports every 1024 entries, so there is more than its final report.
        var home = Layout.Home(AccountIdentity.From(a));
        for (var d = 0; d < 5; d++)
        {
            var folder = Path.Join(home, "public_html", $"d{d}");
            Directory.CreateDirectory(folder);
            for (var f = 0; f < 1000; f++) File.WriteAllText(Path.Join(folder, $"f{f}.txt"), "x");
        }
        var seen = new List<DeletionEvent>();
        using var subscription = app.Get<DeletionEvents>().Subscribe(a.Id, e => { lock (seen) seen.Add(e); }, out _);

        var job = await DeleteAsync(a);

        Assert.True(job.Status == JobStatus.Succeeded, Failures(job));
        List<DeletionEvent> steps;
        lock (seen) steps = seen.Where(e => e.Resource == "home_directory").ToList();
        var done = steps.FindIndex(e => e.Status == StepStatus.Done);
        Assert.True(done > 0, "no done event of home_directory: " + string.Join(" | ", steps.Select(e => $"{e.Status} {e.Detail}")));
        var reports = steps.Take(done).Where(e => e.IsProgress).Select(e => e.Detail!).ToList();
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.Matches(@"^removed [\d,]+ of [\d,]+ files \(.+ of .+\)$", r));
        var counts = reports.Select(r => Number(r, @"^removed ([\d,]+) ")).ToList();
        Assert.Equal(counts.Order(), counts);
        var removed = Number(steps[done].Detail!, @": (\d+) files, ");
        Assert.True(removed >= 5000, steps[done].Detail);
        Assert.Equal(removed, counts[^1]);
        Assert.Equal(removed, Number(reports[^1], @" of ([\d,]+) files"));
        Assert.DoesNotContain(steps.Skip(done + 1), e => e.Status == StepStatus.Running);
        // The mail store is a tree too: its only report (a few files) comes before its done, naming what was removed.
        List<DeletionEvent> mail;
        lock (seen) mail = seen.Where(e => e.Resource == "mailboxes" && e.Status is StepStatus.Running or StepStatus.Done).ToList();
        Assert.Equal([StepStatus.Running, StepStatus.Running, StepStatus.Done], mail.Select(e => e.Status));
        Assert.Null(mail[0].Detail);
        Assert.Equal(Number(mail[2].Detail!, @": (\d+) files, "), Number(mail[1].Detail!, @"^removed ([\d,]+) of "));
    }

    private static long Number(string text, string pattern)
    {
        var match = System.Text.RegularExpressions.Regex.Match(text, pattern);
        Assert.True(match.Success, $"'{text}' does not match {pattern}");
        return long.Parse(match.Groups[1].Value.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Theory]
    [InlineData("NginxReload", "nginx_vhost")]
    [InlineData("PhpFpmReload", "php_fpm_pool")]
    [InlineData("Postmap", "mail_routes")]
    [InlineData("PdnsPurge", "dns_zone")]
    [InlineData("UserDel", "system_user")]
    public async Task ADeletionStoppedByAFailingCommandAndResumedEndsExactlyLikeACleanOne(string command, string step)
    {
        var (a, b) = await TwoServedAccountsAsync();
        var neighbour = Snapshot(b);
        app.FailNext(command);

        var failed = await DeleteAsync(a);

        Assert.False(app.IsArmed(command), $"{command} never ran during the deletion");
        Assert.Equal(JobStatus.Failed, failed.Status);
        var failure = Assert.Single(failed.FailedSteps);
        Assert.Equal(step, failure.Resource);
        Assert.Contains("made to fail by the test", failure.Detail);
        Assert.Equal(AccountStatus.DeletionFailed, (await FindAsync(a)).Status);
        await AssertServedAsync(b); // a deletion stuck half-way never takes a neighbour down

        var resumed = await DeleteAsync(a);

        Assert.Equal(failed.Id, resumed.Id);
        Assert.True(resumed.Status == JobStatus.Succeeded, Failures(resumed));
        Assert.Null(await app.Get<AccountStore>().FindAsync(Admin, a.Id, default));
        await AssertGoneAsync(a);
        await AssertServedAsync(b);
        Assert.Equal(neighbour, Snapshot(b));
    }

    private async Task AssertServedAsync(Account account)
    {
        var (status, body) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.OK);
        Assert.True(status == HttpStatusCode.OK, $"{account.Domain} answered {(int)status}: {body}");
        // Its own placeholder page, run by PHP (the source would show "<?"), not a neighbour's.
        Assert.Contains($"<h1>{account.Domain}</h1>", body);
        Assert.Contains("runs PHP 8.2.", body);
        Assert.DoesNotContain("<?", body);
        Assert.Equal("127.0.0.1", Dig(account.Domain));
        Assert.Equal($"{account.Domain}/admin/", PostmapQuery($"admin@{account.Domain}"));
    }

    private async Task AssertGoneAsync(Account account)
    {
        var identity = AccountIdentity.From(account);
        var (status, body) = await DaemonKit.GetUntilAsync(account.Domain, HttpStatusCode.NotFound);
        Assert.True(status == HttpStatusCode.NotFound, $"{account.Domain} still answered {(int)status}: {body}");
        Assert.DoesNotContain(account.Domain, body); // nginx's default server, not a leftover vhost
        Assert.Equal("", Dig(account.Domain));
        Assert.Equal("", Dig($"www.{account.Domain}"));
        Assert.Null(PostmapQuery($"admin@{account.Domain}"));
        Assert.Null(PostmapQuery($"info@{account.Domain}"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(Layout.FpmPool(identity))!, account.Domain + ".conf*"));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(Layout.NginxAvailable(identity))!, account.Domain + ".conf*"));
        Assert.False(File.Exists(Layout.NginxEnabled(identity)) || new FileInfo(Layout.NginxEnabled(identity)).LinkTarget is not null);
        // Both daemons accept the configuration that is left, so the next reload of anyone's site works.
        var runner = app.Get<CommandRunner>();
        await runner.RunAsync("NginxTest", null, default);
        await runner.RunAsync("PhpFpmTest", null, default);
    }

    /// <summary>Everything of one account the daemons read, as bytes or exact lines.</summary>
    private sealed record Served(string Vhost, string Pool, string MailRoutes, string MailUsers, string Passwd);

    private Served Snapshot(Account account)
    {
        var a = AccountIdentity.From(account);
        string Lines(string file, Func<string, bool> match) => string.Join('\n', File.ReadAllLines(file).Where(match));
        string Read(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
        return new Served(
            Read(Layout.NginxAvailable(a)),
            Read(Layout.FpmPool(a)),
            Lines(Layout.PostfixVmailbox, l => l.Split(' ', '\t')[0].EndsWith("@" + a.Domain, StringComparison.Ordinal)),
            Lines(Layout.DovecotUsers, l => l.Split(':')[0].EndsWith("@" + a.Domain, StringComparison.Ordinal)),
            Lines(Layout.Passwd, l => l.StartsWith(a.Username + ":", StringComparison.Ordinal)));
    }

    private async Task<DeletionJob> DeleteAsync(Account account) =>
        await (await app.Get<AccountDeletionService>().StartAsync(app.AdminActor(), account.Id, default)).Completion;

    private async Task<Account> FindAsync(Account account) =>
        await app.Get<AccountStore>().FindAsync(Admin, account.Id, default) ?? throw new InvalidOperationException($"{account.Username} is gone");

    private static string Failures(DeletionJob job) => string.Join("; ", job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}"));

    private static string Dig(string name) =>
        DaemonKit.Run("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", PrivateServices.Get("PDNS_PORT")!, name, "A").Trim();

    /// <summary>What <c>postmap -q</c> answers for <paramref name="key"/> in the run's vmailbox map, or null when it finds nothing.</summary>
    private static string? PostmapQuery(string key)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("postmap") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "-q", key, $"hash:{PrivateServices.SandboxRoot}/etc/postfix/vmailbox" }) psi.ArgumentList.Add(arg);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        // postmap -q: 0 found, 1 not found, anything else is a broken map.
        return p.ExitCode switch
        {
            0 => output,
            1 => null,
            var code => throw new InvalidOperationException($"postmap -q {key} exited with {code}: {err.Result}"),
        };
    }
}

/// <summary>
/// Run alone, after the parallel classes: the run's nginx and php-fpm are shared, and another class's pool or
/// vhost removed while one of them re-reads its configuration makes that reload fail (php-fpm then exits), which
/// would make "stopped serving" unprovable here.
/// </summary>
[CollectionDefinition(nameof(ServingTests), DisableParallelization = true)]
public sealed class ServingCollection;
