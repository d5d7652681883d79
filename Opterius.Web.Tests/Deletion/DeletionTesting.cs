using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Deletion;

/// <summary>What the deletion test classes share: services made of wrapped real resources, second panel processes, waits.</summary>
public static class DeletionTesting
{
    /// <summary>A deletion service made of one panel's services, every resource passed through <paramref name="wrap"/>.</summary>
    public static AccountDeletionService ServiceOf(IServiceProvider panel, Func<IAccountResource, IAccountResource> wrap) =>
        new(panel.GetRequiredService<AccountStore>(), panel.GetRequiredService<DeletionJobStore>(), panel.GetRequiredService<DeletionEvents>(),
            panel.GetServices<IAccountResource>().Select(wrap).ToList(),
            panel.GetRequiredService<LicenseService>(), panel.GetRequiredService<AuditLog>(), NullLogger<AccountDeletionService>.Instance);

    /// <summary>
    /// A second panel process over the same panel database and server: its own service provider, so its own
    /// connection pools, event stream, in-process registry of running deletions and lease holder. Its panel database
    /// can be reached through another address (<paramref name="panelConnection"/>, e.g. a link the test can cut).
    /// </summary>
    public static ServiceProvider SecondPanel(this PanelApp app, int? leaseSeconds = null, string? panelConnection = null)
    {
        var services = new ServiceCollection();
        var overrides = new Dictionary<string, string?>();
        if (leaseSeconds is { } seconds) overrides[$"{DeletionOptions.Section}:LeaseSeconds"] = seconds.ToString();
        if (panelConnection is not null) overrides["ConnectionStrings:Panel"] = panelConnection;
        var configuration = new ConfigurationBuilder().AddConfiguration(app.Services.GetRequiredService<IConfiguration>()).AddInMemoryCollection(overrides);
        services.AddSingleton<IConfiguration>(configuration.Build());
        services.AddLogging();
        services.AddOpteriusServices().AddOpteriusTokensAndLicensing();
        return services.BuildServiceProvider();
    }

    /// <summary>Hands a job's lease to another (made-up) holder, renewed now and lasting <paramref name="from"/>, in the database's clock.</summary>
    public static Task LeaseToAsync(this PanelApp app, long jobId, string holder, TimeSpan from) =>
        app.Databases.PanelScalarAsync<object?>("""
            UPDATE deletion_jobs SET lease_holder = @holder, lease_heartbeat = UTC_TIMESTAMP(6),
                lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL @micros MICROSECOND WHERE id = @jobId
            """, new { jobId, holder, micros = (long)from.TotalMicroseconds });

    public static async Task<Dictionary<string, ResourceInspection>> InspectAllAsync(this PanelApp app, Account account)
    {
        var identity = AccountIdentity.From(account);
        var all = await Task.WhenAll(app.Services.GetServices<IAccountResource>().Select(r => r.InspectAsync(identity, default)));
        return all.ToDictionary(i => i.Resource);
    }

    public static async Task<DeletionJob> WaitForJobAsync(this PanelApp app, long jobId)
    {
        DeletionJob? job = null;
        await WaitForAsync(async () => (job = await app.Get<DeletionJobStore>().FindAsync(jobId, default))!.Finished);
        return job!;
    }

    public static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 600; i++)
        {
            if (await condition()) return;
            await Task.Delay(100);
        }
        throw new TimeoutException("the condition did not become true within a minute");
    }
}
