using System.Globalization;
using System.Threading.Channels;
using Grpc.Core;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Services.Commands;
using Opterius.Services.Resources;
using Opterius.Services.Server;
using Opterius.Web.Agent.Protocol;
using NewAccount = Opterius.Services.Resources.NewAccount;

namespace Opterius.Web.Agent;

/// <summary>
/// The agent's side of agent.proto: one call is one resource's operation for one account. Nothing the caller sends
/// is trusted: names are re-validated with the API's rules, the resource builds every path and SQL identifier from
/// them, a uid must be that username's in the root's passwd, and a change acts only on a user the panel made (its
/// uid's ledger file names it). A refused call changes nothing. Changes of one resource and account run one at a time.
/// </summary>
public sealed class AgentService(IEnumerable<IAccountResource> resources, SystemUserResource users, DnsZoneResource zones, ResourceLocks locks,
    FinalBackupWriter backups, BackupRestorer restorer, LocalServerServices services, ServiceReloader reloader, DeletionFlights flights, ILogger<AgentService> log)
    : Protocol.Agent.AgentBase
{
    private readonly Dictionary<string, IAccountResource> _resources = resources.ToDictionary(r => r.Key);

    public override Task<Inspection> Inspect(ResourceRequest request, ServerCallContext context) =>
        GuardAsync("inspect", request.Key, async () =>
        {
            RemoveOnly(request);
            var (resource, identity) = await ResolveAsync(request.Key, request.Identity, changes: false);
            var found = await resource.InspectAsync(identity, context.CancellationToken);
            return new Inspection
            {
                Resource = found.Resource, Exists = found.Exists, Items = { found.Items }, Bytes = found.Bytes, Count = found.Count,
                Summary = found.Summary,
            };
        });

    // Provisions and suspensions are not cancelled by a caller that went away: a started step completes, and the
    // panel's journal (or the create path's undo) decides what happens next. A removal stops where its resource can
    // when the caller goes (a panel that lost its lease); the per-key turn keeps the next holder's call waiting for it.
    public override Task<Provisioned> Provision(ProvisionRequest request, ServerCallContext context) =>
        GuardAsync("provision", request.Key, async () =>
        {
            var account = request.Account ?? throw Refuse(StatusCode.InvalidArgument, "a provision needs the new account");
            var (resource, identity) = await ResolveAsync(request.Key, account.Identity, changes: true);
            if (account.Email.Any(char.IsControl) || account.Password.Any(char.IsControl) || account.Password.Contains(':'))
                throw Refuse(StatusCode.InvalidArgument, "the email and password must not contain ':' or control characters");
            using var turn = await locks.TakeAsync(request.Key, identity.Username, context.CancellationToken);
            await resource.ProvisionAsync(new NewAccount(identity, account.Email, account.Password), CancellationToken.None);
            return new Provisioned();
        });

    public override Task Remove(ResourceRequest request, IServerStreamWriter<RemoveEvent> stream, ServerCallContext context) =>
        GuardAsync("remove", request.Key, async () =>
        {
            if (request.HasInFlight && !DeletionFlights.IsId(request.InFlight))
                throw Refuse(StatusCode.InvalidArgument, "in_flight is not a deletion in flight this agent hands out: send DeletionInFlight's id (32 lowercase hex digits), or none");
            var (resource, identity) = await ResolveAsync(request.Key, request.Identity, changes: true);
            // Part of a deletion in flight: its reloads are that deletion's arrival. One the agent does not know (ended, or
            // opened before a restart) changes only that: the removal reloads as it would alone.
            if (request.HasInFlight && !flights.Join(request.InFlight))
                log.LogInformation("Remove of '{Key}' names deletion in flight '{Id}', which this agent does not know", request.Key, request.InFlight);
            using var turn = await locks.TakeAsync(request.Key, identity.Username, context.CancellationToken);
            await stream.WriteAsync(new RemoveEvent { Progress = new Progress { Stage = "started" } });
            var outcome = resource is IReportsRemovalProgress reports
                ? await RemoveStreamingAsync(reports, identity, stream)
                : await resource.RemoveAsync(identity, CancellationToken.None);
            var end = new Outcome { Status = outcome.Status };
            if (outcome.Detail is not null) end.Detail = outcome.Detail;
            await stream.WriteAsync(new RemoveEvent { Outcome = end });
            return true;
        });

    /// <summary>
    /// Holds a deletion the panel runs in flight until the panel ends the call or goes away (its connection closes), so
    /// a dead panel holds no reload, or until the agent stops. The one message is the deletion's id, for the panel's removals to name.
    /// </summary>
    public override Task DeletionInFlight(DeletionFlightRequest request, IServerStreamWriter<DeletionFlight> stream, ServerCallContext context) =>
        GuardAsync("deletion in flight", "", async () =>
        {
            if (request.Services.Any(s => !ServiceReloader.Services.ContainsKey(s)))
                throw Refuse(StatusCode.InvalidArgument, $"services names a service this agent does not reload: send only {string.Join(", ", ServiceReloader.Services.Keys)}");
            using var flight = flights.TryOpen(request.Services) ?? throw Refuse(StatusCode.ResourceExhausted,
                $"{DeletionFlights.MaxOpen} deletions are in flight on this agent already: end the calls of finished jobs (or restart the panel); " +
                "a removal without one runs, its reloads just do not wait for it");
            // A panel that went before the id was written ended the flight itself: nothing failed.
            try { await stream.WriteAsync(new DeletionFlight { Id = flight.Id }); }
            catch (Exception e) when (context.CancellationToken.IsCancellationRequested && e is InvalidOperationException or IOException) { return true; }
            using var ends = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, flights.Stopping);
            await Task.Delay(Timeout.Infinite, ends.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return true;
        });

    /// <summary>
    /// Removes while streaming its progress. The walk never waits for the panel: only the latest report is kept for
    /// the stream (older ones are dropped), and a stream that broke only stops the reports, not the removal.
    /// </summary>
    private static async Task<RemoveOutcome> RemoveStreamingAsync(IReportsRemovalProgress resource, AccountIdentity identity,
        IServerStreamWriter<RemoveEvent> stream)
    {
        var latest = Channel.CreateBounded<RemovalProgress>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        var pump = Task.Run(async () =>
        {
            await foreach (var p in latest.Reader.ReadAllAsync())
            {
                var sent = new Progress { Stage = "removing", FilesRemoved = p.Files, FoldersRemoved = p.Folders, BytesRemoved = p.Bytes };
                if (p.PlannedFiles is { } files) sent.PlannedFiles = files;
                if (p.PlannedBytes is { } bytes) sent.PlannedBytes = bytes;
                await stream.WriteAsync(new RemoveEvent { Progress = sent });
            }
        });
        // Not cancelled by the panel's call going away (a panel restart): a command such as userdel killed half-way could
        // leave the user database half-written. Only the wait for the lock above is cancellable; a takeover waits on it.
        try { return await resource.RemoveAsync(identity, p => latest.Writer.TryWrite(p), CancellationToken.None); }
        finally
        {
            // Every report is written before the outcome: one writer at a time on a gRPC stream.
            latest.Writer.TryComplete();
            await pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public override Task<Changed> Suspend(ResourceRequest request, ServerCallContext context) =>
        GuardAsync("suspend", request.Key, () => ChangeAsync(request, (r, a) => r.SuspendAsync(a, CancellationToken.None), context.CancellationToken));

    public override Task<Changed> Unsuspend(ResourceRequest request, ServerCallContext context) =>
        GuardAsync("unsuspend", request.Key, () => ChangeAsync(request, (r, a) => r.UnsuspendAsync(a, CancellationToken.None), context.CancellationToken));

    public override Task<UidReply> ReserveUid(Identity request, ServerCallContext context) =>
        GuardAsync("reserve uid", "", async () =>
        {
            AccountIdentity identity;
            // A uid sent is the one asked for again (a restore); the resource gives it only when the ledger binds it to these names.
            try { identity = AccountIdentity.Create(request.Id, request.Username, request.Domain, request.PhpVersion, request.HasUid ? request.Uid : null, "requested"); }
            catch (InvalidAccountNameException e) { throw Refuse(StatusCode.InvalidArgument, e.Message); }
            // A uid is the right to change what its ledger line names: never hand one out for names whose parts exist.
            var found = await WhatIsThere.FindAsync(_resources.Values, identity with { Uid = null }, context.CancellationToken);
            if (found.Count > 0)
                throw Refuse(StatusCode.AlreadyExists, $"'{identity.Username}' / '{identity.Domain}' already exist on the server: {string.Join("; ", found)}");
            return new UidReply { Uid = await users.ReserveUidAsync(identity, context.CancellationToken) };
        });

    public override Task<ServicesReply> Services(ServicesRequest request, ServerCallContext context) =>
        GuardAsync("services", "", async () =>
        {
            var states = await services.CheckAsync(context.CancellationToken);
            return new ServicesReply
            {
                Services = { states.Select(s => new ServiceStatus { Name = s.Name, Up = s.Up, Detail = s.Detail }) },
                Reloads = { reloader.RunCounts() },
            };
        });

    public override Task<ZonesReply> RelatedZones(ZonesRequest request, ServerCallContext context) =>
        GuardAsync("related zones", "", async () =>
        {
            if (!AccountNames.IsValidDomain(request.Domain))
                throw Refuse(StatusCode.InvalidArgument, $"requested domain '{request.Domain}' is not a valid domain");
            var reply = new ZonesReply();
            reply.Zones.AddRange(await zones.RelatedZonesAsync(request.Domain, context.CancellationToken));
            return reply;
        });

    /// <summary>
    /// Restores a backup for an account the panel made (its ledger binds the uid to the names). Stops at the next entry
    /// once its caller is gone (the panel died or lost the call): the panel undoes what the restore made, its own undo or
    /// its next start-up's, and an agent that kept writing meanwhile would leave parts behind that undo. The entry being
    /// written when the call went can still land after the panel's undo began (the panel does not wait for the agent's
    /// end): a known gap, one entry wide instead of the rest of the archive.
    /// </summary>
    public override Task RestoreBackup(RestoreRequest request, IServerStreamWriter<RestoreEvent> stream, ServerCallContext context) =>
        GuardAsync("restore", "backup", async () =>
        {
            var identity = await IdentifyAsync(request.Identity, changes: true);
            if (request.BackupId <= 0) throw Refuse(StatusCode.InvalidArgument, $"backup id {request.BackupId} is not a backup id");
            using var turn = await locks.TakeAsync("restore", identity.Username, context.CancellationToken);
            // Reports come from the restoring thread; one writer at a time on a gRPC stream.
            var reports = Channel.CreateUnbounded<RestoreReport>(new UnboundedChannelOptions { SingleReader = true });
            var pump = Task.Run(async () =>
            {
                await foreach (var r in reports.Reader.ReadAllAsync())
                {
                    var sent = new RestoreEvent { Resource = r.Resource, Status = r.Status };
                    if (r.Detail is not null) sent.Detail = r.Detail;
                    await stream.WriteAsync(sent);
                }
            });
            try { await restorer.RestoreAsync(request.BackupId, identity, r => reports.Writer.TryWrite(r), context.CancellationToken); }
            catch (ArchiveMissingException e) { throw Refuse(StatusCode.NotFound, e.Message); }
            finally
            {
                reports.Writer.TryComplete();
                await pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            return true;
        });

    // Unlike a removal, a backup stops when the panel's call goes away (a panel that lost its lease): it changes nothing on
    // the server, its partial file is removed, and whoever holds the job next writes it again from the start.
    public override Task WriteFinalBackup(BackupRequest request, IServerStreamWriter<BackupEvent> stream, ServerCallContext context) =>
        GuardAsync("final backup", DeletionOrder.FinalBackup, async () =>
        {
            if (request.BackupId <= 0) throw Refuse(StatusCode.InvalidArgument, $"backup id {request.BackupId} is not a backup's id");
            var identity = await IdentifyAsync(request.Identity, changes: true);
            if (request.Email.Any(char.IsControl)) throw Refuse(StatusCode.InvalidArgument, "the email must not contain control characters");
            DateTime? suspendedAt = null;
            if (request.HasSuspendedAt)
                suspendedAt = DateTime.TryParse(request.SuspendedAt, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var at) ? at
                    : throw Refuse(StatusCode.InvalidArgument, "suspended_at is not a time");
            var subject = new BackupSubject(identity, request.Email, request.PackageId, request.OwnerId,
                request.HasPlannedFiles ? request.PlannedFiles : null, request.HasPlannedBytes ? request.PlannedBytes : null, suspendedAt);
            using var turn = await locks.TakeAsync(DeletionOrder.FinalBackup, identity.Username, context.CancellationToken);
            var latest = Channel.CreateBounded<Opterius.Services.Backups.BackupProgress>(
                new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
            var pump = Task.Run(async () =>
            {
                await foreach (var p in latest.Reader.ReadAllAsync())
                    await stream.WriteAsync(new BackupEvent { Progress = new Protocol.BackupProgress { FilesArchived = p.Files, BytesArchived = p.Bytes } });
            });
            WrittenBackup written;
            try { written = await backups.WriteAsync(subject, request.BackupId, p => latest.Writer.TryWrite(p), context.CancellationToken); }
            finally
            {
                latest.Writer.TryComplete();
                await pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            await stream.WriteAsync(new BackupEvent
            {
                Outcome = new BackupOutcome { FileName = written.FileName, Bytes = written.Bytes, Sha256 = written.Sha256, Manifest = written.Manifest },
            });
            return true;
        });

    public override Task<Purged> PurgeBackup(PurgeRequest request, ServerCallContext context) =>
        GuardAsync("purge backup", DeletionOrder.FinalBackup, async () =>
        {
            if (request.BackupId <= 0) throw Refuse(StatusCode.InvalidArgument, $"backup id {request.BackupId} is not a backup's id");
            return new Purged { Removed = await backups.PurgeAsync(request.BackupId, CancellationToken.None) };
        });

    public override Task<BackupAccount> ReadBackupAccount(BackupAccountRequest request, ServerCallContext context) =>
        GuardAsync("read backup", "backup", async () =>
        {
            if (request.BackupId <= 0) throw Refuse(StatusCode.InvalidArgument, $"backup id {request.BackupId} is not a backup id");
            ArchivedAccount a;
            try { a = await restorer.ReadAccountAsync(request.BackupId, context.CancellationToken); }
            catch (ArchiveMissingException e) { throw Refuse(StatusCode.NotFound, e.Message); }
            var reply = new BackupAccount { Username = a.Username, Domain = a.Domain, Email = a.Email, PackageId = a.PackageId, Owner = a.Owner, PhpVersion = a.PhpVersion };
            if (a.Uid is { } uid) reply.Uid = uid;
            if (a.Gid is { } gid) reply.Gid = gid;
            reply.Suspended = a.Suspended;
            if (a.SuspendedAt is { } at) reply.SuspendedAt = at.ToString("O", CultureInfo.InvariantCulture);
            return reply;
        });

    private async Task<Changed> ChangeAsync(ResourceRequest request, Func<ISuspendableResource, AccountIdentity, Task> change, CancellationToken ct)
    {
        RemoveOnly(request);
        var (resource, identity) = await ResolveAsync(request.Key, request.Identity, changes: true);
        if (resource is not ISuspendableResource suspendable)
            throw Refuse(StatusCode.NotFound, $"resource '{request.Key}' has nothing to suspend");
        using var turn = await locks.TakeAsync(request.Key, identity.Username, ct);
        await change(suspendable, identity);
        return new Changed();
    }

    /// <summary>
    /// The resource for <paramref name="key"/> and the identity rebuilt from re-validated names. A call that
    /// <paramref name="changes"/> something acts on the user only when the panel made it.
    /// </summary>
    private async Task<(IAccountResource, AccountIdentity)> ResolveAsync(string key, Identity? sent, bool changes)
    {
        var resource = _resources.GetValueOrDefault(key) ?? throw Refuse(StatusCode.NotFound, $"no resource '{key}' on this server");
        return (resource, await IdentifyAsync(sent, changes));
    }

    /// <summary>The identity rebuilt from re-validated names; a call that <paramref name="changes"/> something (or reads all of it) needs a user the panel made.</summary>
    private async Task<AccountIdentity> IdentifyAsync(Identity? sent, bool changes)
    {
        if (sent is null) throw Refuse(StatusCode.InvalidArgument, "the request names no account");
        AccountIdentity identity;
        try { identity = AccountIdentity.Create(sent.Id, sent.Username, sent.Domain, sent.PhpVersion, sent.HasUid ? sent.Uid : null, "requested"); }
        catch (InvalidAccountNameException e) { throw Refuse(StatusCode.InvalidArgument, e.Message); }

        // A uid is acted on (its processes killed, files handed to it) only while it is this name's and no other's.
        if (identity.Uid is { } uid)
        {
            var holder = await users.FindNameAsync(uid);
            if (holder is not null && holder != identity.Username)
                throw Refuse(StatusCode.FailedPrecondition, $"uid {uid} belongs to '{holder}', not to '{identity.Username}'");
            if (await users.FindUidAsync(identity.Username) is { } actual && actual != uid)
                throw Refuse(StatusCode.FailedPrecondition, $"'{identity.Username}' has uid {actual}, not {uid}");
        }
        // A uid in the panel's range is not enough: the operator's own login has one too. Only a uid the ledger hands to
        // this username AND domain (sent, or the name's in passwd) is an account's, so a compromised panel can reach
        // neither anyone else's user nor another account's domain (its mail, zone, vhost) under a name of its choosing.
        if (changes)
        {
            var handed = identity.Uid ?? await users.FindUidAsync(identity.Username)
                ?? throw Refuse(StatusCode.FailedPrecondition, $"'{identity.Username}' has no uid the panel handed out: refusing to change anything of {identity.Domain}");
            if (!users.IsReservedFor(handed, identity.Username, identity.Domain))
                throw Refuse(StatusCode.FailedPrecondition, $"uid {handed} was not handed out by the panel to '{identity.Username}' of {identity.Domain}: refusing");
        }
        return identity;
    }

    // Only a removal is part of a deletion: a panel that names one elsewhere is confused, and is told so rather than ignored.
    private static void RemoveOnly(ResourceRequest request)
    {
        if (request.HasInFlight) throw Refuse(StatusCode.InvalidArgument, "in_flight is for Remove only: send it on no other call");
    }

    private static RpcException Refuse(StatusCode code, string message) => new(new Status(code, message));

    // A resource's own failure keeps its text (the panel shows it as the step's detail); a refusal is logged.
    private async Task<T> GuardAsync<T>(string operation, string key, Func<Task<T>> call)
    {
        try { return await call(); }
        catch (RpcException e)
        {
            log.LogWarning("Refused {Operation} of '{Key}': {Status} {Detail}", operation, key, e.StatusCode, e.Status.Detail);
            throw;
        }
        catch (AlreadyThereException e)
        {
            // A part someone else put there after the create's check: the panel answers 409, as it does in process.
            log.LogWarning("{Operation} of '{Key}' found its part already there: {Detail}", operation, key, e.Message);
            throw Refuse(StatusCode.AlreadyExists, e.Message);
        }
        catch (Exception e) when (e is ResourceException or CommandFailedException or InvalidAccountNameException)
        {
            log.LogWarning(e, "{Operation} of '{Key}' failed", operation, key);
            throw Refuse(StatusCode.Aborted, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "{Operation} of '{Key}' failed unexpectedly", operation, key);
            throw Refuse(StatusCode.Internal, $"{e.GetType().Name}: {e.Message}");
        }
    }
}
