using System.Globalization;
using System.Runtime.CompilerServices;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Commands;
using Opterius.Services.Resources;
using Opterius.Services.Server;
using Opterius.Web.Agent.Protocol;
using NewAccount = Opterius.Services.Resources.NewAccount;

namespace Opterius.Web.Agent;

/// <summary>
/// One resource kind as the panel sees it when it uses the agent: the same <see cref="IAccountResource"/>, each
/// operation one call to the agent, which runs the real resource as root.
/// </summary>
public class AgentResource(string key, AgentChannel agent) : IAccountResource, IReportsRemovalProgress
{
    public string Key => key;

    protected AgentChannel Agent => agent;

    public Task ProvisionAsync(NewAccount account, CancellationToken ct) =>
        agent.CallAsync(async c => await c.ProvisionAsync(new ProvisionRequest
        {
            Key = key,
            Account = new Protocol.NewAccount { Identity = Sent(account.Identity), Email = account.Email, Password = account.Password },
        }, cancellationToken: ct));

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) =>
        agent.CallAsync(async c =>
        {
            var i = await c.InspectAsync(Request(account), cancellationToken: ct);
            return new ResourceInspection(i.Resource, i.Exists, i.Items.ToList(), i.Bytes, i.Count, i.Summary);
        });

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => Remove(account, null, ct);

    // Every kind may report: only the file trees' removals send counts, so the others never call progress.
    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, Action<RemovalProgress> progress, CancellationToken ct) =>
        Remove(account, progress, ct);

    private Task<RemoveOutcome> Remove(AccountIdentity account, Action<RemovalProgress>? progress, CancellationToken ct) =>
        agent.CallAsync(async c =>
        {
            var request = Request(account);
            // A removal of a deletion in flight names it: the agent's reloads for it count as that deletion's arrival.
            if (await AgentDeletionsInFlight.IdOfThisFlowAsync(agent, ct) is { } flight) request.InFlight = flight;
            using var call = c.Remove(request, cancellationToken: ct);
            await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                switch (e.EventCase)
                {
                    case RemoveEvent.EventOneofCase.Outcome:
                        return new RemoveOutcome(e.Outcome.Status, e.Outcome.HasDetail ? e.Outcome.Detail : null);
                    case RemoveEvent.EventOneofCase.Progress when e.Progress.Stage == "removing" && progress is not null:
                        var p = e.Progress;
                        progress(new RemovalProgress(p.FilesRemoved, p.FoldersRemoved, p.BytesRemoved,
                            p.HasPlannedFiles ? p.PlannedFiles : null, p.HasPlannedBytes ? p.PlannedBytes : null));
                        break;
                }
            throw new ResourceException($"the agent ended the removal of {key} without saying how it went");
        });

    protected ResourceRequest Request(AccountIdentity account) => new() { Key = key, Identity = Sent(account) };

    internal static Identity Sent(AccountIdentity a)
    {
        var sent = new Identity { Id = a.Id, Username = a.Username, Domain = a.Domain, PhpVersion = a.PhpVersion };
        if (a.Uid is { } uid) sent.Uid = uid;
        return sent;
    }
}

/// <summary>A resource kind that suspends (its in-process class is an <see cref="ISuspendableResource"/>).</summary>
public sealed class SuspendableAgentResource(string key, AgentChannel agent) : AgentResource(key, agent), ISuspendableResource
{
    public Task SuspendAsync(AccountIdentity account, CancellationToken ct) =>
        Agent.CallAsync(async c => await c.SuspendAsync(Request(account), cancellationToken: ct));

    public Task UnsuspendAsync(AccountIdentity account, CancellationToken ct) =>
        Agent.CallAsync(async c => await c.UnsuspendAsync(Request(account), cancellationToken: ct));
}

/// <summary>The server's user database, asked of the agent.</summary>
public sealed class AgentSystemUsers(string key, AgentChannel agent) : ISystemUsers
{
    public string Key => key;

    public Task<int> ReserveUidAsync(AccountIdentity account, CancellationToken ct) =>
        agent.CallAsync(async c => (await c.ReserveUidAsync(AgentResource.Sent(account), cancellationToken: ct)).Uid);
}

/// <summary>The DNS zones a new domain would meet, asked of the agent.</summary>
public sealed class AgentDnsZones(AgentChannel agent) : IDnsZones
{
    public Task<IReadOnlyList<string>> RelatedZonesAsync(string domain, CancellationToken ct) =>
        agent.CallAsync(async c => (IReadOnlyList<string>)(await c.RelatedZonesAsync(new ZonesRequest { Domain = domain }, cancellationToken: ct)).Zones.ToList());
}

/// <summary>A backup restored by the agent: its reports streamed back as they come.</summary>
public sealed class AgentBackupRestorer(AgentChannel agent) : IBackupRestorer
{
    public Task RestoreAsync(long backupId, AccountIdentity identity, Action<RestoreReport> report, CancellationToken ct) =>
        agent.CallAsync(async c =>
        {
            using var call = c.RestoreBackup(new RestoreRequest { BackupId = backupId, Identity = AgentResource.Sent(identity) }, cancellationToken: ct);
            await foreach (var e in call.ResponseStream.ReadAllAsync(ct)) report(new(e.Resource, e.Status, e.HasDetail ? e.Detail : null));
            return true;
        });

    public async Task<ArchivedAccount> ReadAccountAsync(long backupId, CancellationToken ct)
    {
        try
        {
            return await agent.CallAsync(async c =>
            {
                var a = await c.ReadBackupAccountAsync(new BackupAccountRequest { BackupId = backupId }, cancellationToken: ct);
                return new ArchivedAccount(0, a.Username, a.Domain, a.Email, a.PackageId, a.Owner, a.PhpVersion, a.HasUid ? a.Uid : null, a.HasGid ? a.Gid : null,
                    a.Suspended, a.HasSuspendedAt ? DateTime.Parse(a.SuspendedAt, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind) : null);
            });
        }
        catch (ResourceException e) when (e.InnerException is RpcException { StatusCode: StatusCode.NotFound })
        {
            throw new ArchiveMissingException(e.Message);
        }
    }
}

/// <summary>Final backups written and purged by the agent (root), which derives every path from the backup's id.</summary>
public sealed class AgentBackupArchives(AgentChannel agent) : IBackupArchives
{
    public Task<WrittenBackup> WriteAsync(BackupSubject subject, long backupId, Action<Opterius.Services.Backups.BackupProgress> progress, CancellationToken ct) =>
        agent.CallAsync(async c =>
        {
            var request = new BackupRequest
            {
                Identity = AgentResource.Sent(subject.Identity), BackupId = backupId, Email = subject.Email, PackageId = subject.PackageId, OwnerId = subject.OwnerId,
            };
            if (subject.PlannedFiles is { } files) request.PlannedFiles = files;
            if (subject.PlannedBytes is { } bytes) request.PlannedBytes = bytes;
            if (subject.SuspendedAt is { } at) request.SuspendedAt = at.ToString("O", CultureInfo.InvariantCulture);
            using var call = c.WriteFinalBackup(request, cancellationToken: ct);
            await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                switch (e.EventCase)
                {
                    case BackupEvent.EventOneofCase.Outcome:
                        return new WrittenBackup(e.Outcome.FileName, e.Outcome.Bytes, e.Outcome.Sha256, e.Outcome.Manifest);
                    case BackupEvent.EventOneofCase.Progress:
                        progress(new(e.Progress.FilesArchived, e.Progress.BytesArchived, subject.PlannedFiles, subject.PlannedBytes));
                        break;
                }
            throw new ResourceException($"the agent ended backup {backupId} without saying how it went");
        });

    public Task<bool> PurgeAsync(long backupId, CancellationToken ct) =>
        agent.CallAsync(async c => (await c.PurgeBackupAsync(new PurgeRequest { BackupId = backupId }, cancellationToken: ct)).Removed);
}

/// <summary>The overview's service states, checked by the agent where the services are.</summary>
public sealed class AgentServerServices(AgentChannel agent) : IServerServices
{
    public Task<IReadOnlyList<ServiceState>> CheckAsync(CancellationToken ct) =>
        agent.CallAsync(async c => (IReadOnlyList<ServiceState>)(await c.ServicesAsync(new ServicesRequest(), cancellationToken: ct)).Services
            .Select(s => new ServiceState(s.Name, s.Up, s.Detail)).ToList());

    /// <summary>How many times the agent reloaded each shared service since it started (the benchmark's and the tests' count).</summary>
    public Task<Dictionary<string, long>> ReloadsAsync(CancellationToken ct) =>
        agent.CallAsync(async c =>
        {
            var reply = await c.ServicesAsync(new ServicesRequest(), cancellationToken: ct);
            return ServiceReloader.Services.Keys.ToDictionary(s => s, s => reply.Reloads.GetValueOrDefault(s));
        });
}

public static class AgentResourceRegistration
{
    /// <summary>
    /// When <c>Opterius:Agent:Socket</c> is set, every resource kind (and the user database) is an agent client;
    /// otherwise the resources run in this process as before. Decided when first resolved, so a test host's
    /// configuration is the one that counts. Each kind keeps its key and whether it suspends, read from its class.
    /// </summary>
    public static IServiceCollection AddAgentClientsWhenConfigured(this IServiceCollection services)
    {
        services.AddOptions<AgentOptions>().BindConfiguration(AgentOptions.Section);
        services.TryAddSingleton<AgentChannel>();
        services.RemoveAll<IAccountResource>();
        services.RemoveAll<ISystemUsers>();
        foreach (var type in ServiceCollectionExtensions.ResourceTypes)
        {
            var key = KeyOf(type);
            var suspends = typeof(ISuspendableResource).IsAssignableFrom(type);
            services.AddSingleton(sp => !UsesAgent(sp) ? (IAccountResource)sp.GetRequiredService(type)
                : suspends ? new SuspendableAgentResource(key, sp.GetRequiredService<AgentChannel>())
                : new AgentResource(key, sp.GetRequiredService<AgentChannel>()));
        }
        var users = ServiceCollectionExtensions.ResourceTypes.Single(typeof(ISystemUsers).IsAssignableFrom);
        services.AddSingleton(sp => UsesAgent(sp)
            ? new AgentSystemUsers(KeyOf(users), sp.GetRequiredService<AgentChannel>())
            : (ISystemUsers)sp.GetRequiredService(users));
        services.RemoveAll<IBackupRestorer>();
        services.AddSingleton(sp => UsesAgent(sp) ? new AgentBackupRestorer(sp.GetRequiredService<AgentChannel>()) : (IBackupRestorer)sp.GetRequiredService<BackupRestorer>());
        services.RemoveAll<IBackupArchives>();
        services.AddSingleton(sp => UsesAgent(sp) ? new AgentBackupArchives(sp.GetRequiredService<AgentChannel>()) : (IBackupArchives)sp.GetRequiredService<FinalBackupWriter>());
        services.RemoveAll<IDnsZones>();
        services.AddSingleton(sp => UsesAgent(sp) ? new AgentDnsZones(sp.GetRequiredService<AgentChannel>()) : (IDnsZones)sp.GetRequiredService<DnsZoneResource>());
        services.RemoveAll<IDeletionsInFlight>();
        services.AddSingleton(sp => UsesAgent(sp)
            ? new AgentDeletionsInFlight(sp.GetRequiredService<AgentChannel>(), sp.GetRequiredService<ILogger<AgentDeletionsInFlight>>())
            : (IDeletionsInFlight)sp.GetRequiredService<ServiceReloader>());
        services.RemoveAll<IServerServices>();
        services.AddSingleton(sp => UsesAgent(sp) ? new AgentServerServices(sp.GetRequiredService<AgentChannel>()) : (IServerServices)sp.GetRequiredService<LocalServerServices>());
        return services;
    }

    private static bool UsesAgent(IServiceProvider sp) => sp.GetRequiredService<IOptions<AgentOptions>>().Value.Socket.Length > 0;

    // A resource's key is a constant of its class (`Key => "..."`): read without building it, since the panel holds
    // none of the credentials its dependencies need.
    private static string KeyOf(Type type) =>
        ((IAccountResource)RuntimeHelpers.GetUninitializedObject(type)).Key
        ?? throw new InvalidOperationException($"{type.Name}.Key must be a constant");
}
