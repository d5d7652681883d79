using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Daemons;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Deletion;

/// <summary>
/// A tenant who gets a process in while the account is being deleted (a login racing the lock, a cron job
/// that fired) must not outlive the account: the real deletion service, the real useradd/userdel -R, and a
/// real process started as the account's uid between two steps.
/// </summary>
public sealed class ProcessesDuringDeletionTests(PanelApp app) : IClassFixture<PanelApp>, IDisposable
{
    private readonly List<Process> _started = [];

    public void Dispose()
    {
        foreach (var p in _started)
        {
            if (!p.HasExited) p.Kill();
            p.Dispose();
        }
    }

    private static string[] PasswdEntry(string username) => Entry("passwd", username);

    private static string[] Entry(string file, string username) =>
        File.ReadAllLines(Path.Combine(PrivateServices.SandboxRoot, "etc", file)).Select(l => l.Split(':')).Single(f => f[0] == username);

    /// <summary>The real resource, but first a process of the account's uid appears, as a tenant's would.</summary>
    private sealed class TenantStartsAProcess(IAccountResource inner, Func<AccountIdentity, Task> start) : IAccountResource
    {
        public string Key => inner.Key;
        public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);
        public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);

        public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
        {
            await start(account);
            return await inner.RemoveAsync(account, ct);
        }
    }

    [Fact]
    public async Task AProcessStartedAsTheAccountDuringTheDeletionIsGoneAtTheEndAndLoginsWereLockedBeforeIt()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        Assert.NotNull(account.Uid);
        var entry = PasswdEntry(account.Username);
        Process? late = null;
        string? shellWhenItStarted = null;
        string[]? shadowWhenItStarted = null;
        var service = new AccountDeletionService(app.Get<AccountStore>(), app.Get<DeletionJobStore>(), app.Get<DeletionEvents>(),
            app.Services.GetServices<IAccountResource>().Select(r => r.Key != "home_directory" ? r : new TenantStartsAProcess(r, async a =>
            {
                shellWhenItStarted = PasswdEntry(a.Username)[6];
                shadowWhenItStarted = Entry("shadow", a.Username);
                late = await DaemonKit.SleepAsAsync(a.Uid!.Value, int.Parse(entry[3]), _started);
            })).ToList(),
            app.Get<LicenseService>(), app.Get<AuditLog>(), NullLogger<AccountDeletionService>.Instance);

        var job = await (await service.StartAsync(app.AdminActor(), account.Id, default)).Completion;

        Assert.True(job.Status == JobStatus.Succeeded, string.Join("; ", job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}")));
        Assert.Equal("logins", job.Steps[0].Resource);
        Assert.Equal(StepStatus.Done, job.Steps[0].Status);
        Assert.Equal("/usr/sbin/nologin", shellWhenItStarted);
        Assert.NotNull(shadowWhenItStarted);
        Assert.StartsWith("!", shadowWhenItStarted[1]); // password locked
        Assert.Equal("1", shadowWhenItStarted[7]);      // account expired on day 1: PAM refuses SSH keys too
        Assert.NotNull(late);
        Assert.True(late.WaitForExit(10_000), "the tenant's process outlived the account");
        Assert.Empty(ProcessesResource.Running(account.Uid.Value));
        var systemUser = job.Steps.Single(s => s.Resource == "system_user");
        Assert.Equal(StepStatus.Done, systemUser.Status);
        Assert.Contains("1 process", systemUser.Detail);
    }
}
