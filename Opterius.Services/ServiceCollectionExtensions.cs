using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Backups;
using Opterius.Services.Commands;
using Opterius.Services.Data;
using Opterius.Services.Deletion;
using Opterius.Services.Idempotency;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Opterius.Services.Packages;
using Opterius.Services.Resources;
using Opterius.Services.Users;

namespace Opterius.Services;

public static class ServiceCollectionExtensions
{
    /// <summary>The domain services: databases, server layout, commands and resources.</summary>
    public static IServiceCollection AddOpteriusServices(this IServiceCollection services)
    {
        services.AddOpteriusResources();
        services.AddSingleton(sp => new PanelDb(ConnectionString(sp, "Panel")));
        services.AddSingleton<Migrator>();

        services.AddSingleton<AccountStore>();
        services.AddSingleton<AccountStatusCounts>();
        services.AddSingleton<PanelUsers>();
        services.AddSingleton<PackageStore>();
        services.AddSingleton<AuditLog>();
        services.AddSingleton<AccountEvents>();
        services.AddSingleton<AccountCreation>();
        services.AddSingleton<AccountSuspension>();
        services.AddSingleton<IdempotencyStore>();
        services.AddSingleton<DeletionJobStore>();
        services.AddSingleton<DeletionJobList>();
        services.AddSingleton<DeletionEvents>();
        services.AddSingleton<AccountDeletionService>();
        services.AddHostedService<DeletionResumer>();
        services.AddSingleton<DeletionSchedule>();
        services.AddSingleton<ScheduledDeletionList>();
        services.AddSingleton<ScheduledDeletions>();
        services.AddHostedService<ScheduledDeletionsRunner>();
        services.AddSingleton<ErasureRecords>();
        services.AddSingleton<BackupStore>();
        services.AddSingleton<FinalBackups>();
        services.AddSingleton<IFinalBackups>(sp => sp.GetRequiredService<FinalBackups>());
        services.AddHostedService<BackupRetention>();
        services.AddSingleton(sp => new BackupLocks(ConnectionString(sp, "Panel")));
        services.AddSingleton<RestoreJobStore>();
        services.AddSingleton<RestoreEvents>();
        services.AddSingleton<BackupRestoration>();
        services.AddHostedService<RestoreResumer>();
        return services;
    }

    /// <summary>
    /// What does the system work: the server layout, commands, reload batching, the PowerDNS and MariaDB admin
    /// databases and every resource. The agent hosts only these; the panel hosts them too unless it uses the agent.
    /// </summary>
    public static IServiceCollection AddOpteriusResources(this IServiceCollection services)
    {
        services.AddOptions<OpteriusOptions>().BindConfiguration(OpteriusOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ProvisioningOptions>().BindConfiguration(ProvisioningOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        // The panel reads the policy and retention, the agent where the archives go: both bind the section.
        services.AddOptions<DeletionOptions>().BindConfiguration(DeletionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton(sp => new PowerDnsDb(ConnectionString(sp, "PowerDns")));
        services.AddSingleton(sp => new MariaDbAdmin(ConnectionString(sp, "MariaDbAdmin")));
        services.TryAddSingleton(TimeProvider.System);

        services.AddSingleton<ServerLayout>();
        services.AddSingleton<CommandRunner>();
        services.AddSingleton<Server.LocalServerServices>();
        services.AddSingleton<Server.IServerServices>(sp => sp.GetRequiredService<Server.LocalServerServices>());
        services.AddSingleton<ServiceReloader>();
        // Where the resources run, the deletions in flight are told (the agent client replaces this in the split).
        services.AddSingleton<IDeletionsInFlight>(sp => sp.GetRequiredService<ServiceReloader>());

        // Every resource kind is one class in Resources/; each is registered as itself and as IAccountResource.
        foreach (var type in ResourceTypes)
        {
            services.AddSingleton(type);
            services.AddSingleton(sp => (IAccountResource)sp.GetRequiredService(type));
        }
        services.AddSingleton<ISystemUsers>(sp => sp.GetRequiredService<SystemUserResource>());
        services.AddSingleton<IDnsZones>(sp => sp.GetRequiredService<DnsZoneResource>());
        services.AddSingleton<RestoreParts>();
        services.AddSingleton<BackupRestorer>();
        services.AddSingleton<IBackupRestorer>(sp => sp.GetRequiredService<BackupRestorer>());
        services.AddSingleton<FinalBackupWriter>();
        services.AddSingleton<IBackupArchives>(sp => sp.GetRequiredService<FinalBackupWriter>());
        return services;
    }

    /// <summary>Every resource kind: each concrete <see cref="IAccountResource"/> class of this assembly.</summary>
    public static IReadOnlyList<Type> ResourceTypes { get; } = typeof(IAccountResource).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IAccountResource).IsAssignableFrom(t))
        .ToList();

    // Read when first needed, so a test host's configuration is the one that counts.
    private static string ConnectionString(IServiceProvider services, string name)
    {
        var configured = services.GetRequiredService<IConfiguration>().GetConnectionString(name)
            ?? throw new InvalidOperationException($"ConnectionStrings:{name} is not set");
        // The panel's only session state is the sql_mode MariaDbSource sets once per physical connection (no variables
        // or temporary tables), so a pooled connection need not be reset, and its character set re-sent, on every open.
        return new MySqlConnectionStringBuilder(configured) { ConnectionReset = false }.ConnectionString;
    }
}
