using static Opterius.Services.Data.UtcTimes;
using System.Security.Cryptography;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services.Data;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;

namespace Opterius.Services.Deletion;

/// <summary>
/// The erasure record of a finished deletion (DESIGN 3.12): the account, its owner, who asked (and who scheduled it),
/// the plan, every step with its times, the verification after the last step and the final backup's fate, signed with
/// the panel's record key (ECDSA P-256, SHA-256, DER signature) as a <see cref="SignedJson"/> document
/// <c>{"record": {...}, "signature": "base64"}</c>, so anyone with the public key can verify it offline (openssl).
/// Issued anew at each request (<c>issued_at</c>): a final backup purged since shows as purged.
/// </summary>
public sealed class ErasureRecords(PanelDb db, DeletionJobStore jobs, IFinalBackups backups, IOptions<DeletionOptions> options, TimeProvider time)
{
    public const string Name = "record";
    public const DSASignatureFormat Format = DSASignatureFormat.Rfc3279DerSequence;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = false,
    };

    // PublicationOnly: a key that could not be read (wrong mode or owner, not there yet) is tried again at the next
    // request, once repaired, instead of the failure being cached until a restart.
    private readonly Lazy<ECDsa> _key = new(() => SigningKeys.LoadOrCreate(Path.GetFullPath(options.Value.RecordSigningKey), out _),
        LazyThreadSafetyMode.PublicationOnly);

    /// <summary>The public key that verifies every record (PEM), made with the private key on first use.</summary>
    public string PublicKeyPem => SigningKeys.PublicPem(_key.Value);

    /// <summary>The key's id in each record: the SHA-256 of its public key (DER), hex.</summary>
    public string KeyId => Convert.ToHexStringLower(SHA256.HashData(_key.Value.ExportSubjectPublicKeyInfo()));

    /// <summary>
    /// The signed record of <paramref name="jobId"/>; null when there is no such job or it is another owner's.
    /// Throws <see cref="AccountConflictException"/> while the job is not finished, or finished without erasing the account.
    /// </summary>
    public async Task<byte[]?> IssueAsync(Viewer viewer, long jobId, CancellationToken ct)
    {
        var job = await jobs.FindAsync(jobId, ct);
        if (job is null || (!viewer.IsAdmin && job.OwnerId != viewer.UserId)) return null;
        if (job.Status == JobStatus.Running)
            throw new AccountConflictException($"Deletion job {jobId} is still running: ask for its record once it has finished (GET /api/v1/deletions/{jobId} says when).");
        if (job.Status != JobStatus.Succeeded)
            throw new AccountConflictException($"Deletion job {jobId} failed, so the account is not erased: DELETE /api/v1/accounts/{job.AccountId} resumes it, and the record is issued once the job succeeds.");

        var record = await BuildAsync(job, ct);
        return SignedJson.Write(Name, JsonSerializer.SerializeToUtf8Bytes(record, Json), _key.Value, Format);
    }

    /// <summary>The record in <paramref name="file"/> if it verifies with <paramref name="publicKeyPem"/>; throws <see cref="LicenseSignatureException"/> if not.</summary>
    public static ErasureRecord Verify(ReadOnlyMemory<byte> file, string publicKeyPem)
    {
        using var key = LicenseFile.PublicKeyFromPem(publicKeyPem);
        var payload = SignedJson.Verify(file, Name, key, Format);
        try { return JsonSerializer.Deserialize<ErasureRecord>(payload, Json) ?? throw new LicenseFormatException("its record object is empty"); }
        catch (JsonException e) { throw new LicenseFormatException($"its record object is malformed ({e.Message})"); }
    }

    private sealed record JobExtras(string? AccountEmail, string? PlanJson, DateTime? PlannedAt, string? Requester, string? RequesterKind, string? RequesterIp,
        string? ScheduledBy, string? ScheduledByKind, string? ScheduledByIp, DateTime? ScheduledAt);
    private sealed record StepTimes(int Position, DateTime? StartedAt);
    private sealed record OwnerRow(long Id, string Username, string Role);

    private const string ExtrasSql = """
        SELECT account_email AS AccountEmail, plan_json AS PlanJson, planned_at AS PlannedAt,
               requester AS Requester, requester_kind AS RequesterKind, requester_ip AS RequesterIp,
               scheduled_by AS ScheduledBy, scheduled_by_kind AS ScheduledByKind, scheduled_by_ip AS ScheduledByIp, scheduled_at AS ScheduledAt
        FROM deletion_jobs WHERE id = @Id;
        SELECT position AS Position, started_at AS StartedAt FROM deletion_steps WHERE job_id = @Id;
        SELECT id AS Id, username AS Username, role AS Role FROM panel_users WHERE id = @OwnerId;
        """;

    private sealed record AuditParty(string Actor, string Kind, string? SourceIp, DateTime At);

    // A job without who scheduled it (opened by a binary without db/011 during an upgrade, or one its backfill could not
    // fill) names the schedule's audit row before its 'started' row instead, read as db/011 reads it (the session's zone).
    private const string ScheduledByFromAuditSql = """
        SELECT s.actor AS Actor, s.actor_kind AS Kind, s.source_ip AS SourceIp, COALESCE(CONVERT_TZ(s.at, @@session.time_zone, '+00:00'), s.at) AS At
        FROM audit_log r
        JOIN audit_log s ON s.id = (SELECT MAX(x.id) FROM audit_log x
                                    WHERE x.account_id = r.account_id AND x.action = 'schedule_deletion' AND x.outcome = 'scheduled' AND x.id < r.id)
        WHERE r.account_id = @AccountId AND r.action = 'schedule_deletion' AND r.outcome = 'started' AND r.detail LIKE CONCAT('% started as job ', @Id)
        ORDER BY r.id DESC LIMIT 1
        """;

    private async Task<ErasureRecord> BuildAsync(DeletionJob job, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        JobExtras extras;
        Dictionary<int, DateTime?> started;
        OwnerRow? owner;
        await using (var results = await c.QueryMultipleAsync(new CommandDefinition(ExtrasSql, new { job.Id, job.OwnerId }, cancellationToken: ct)))
        {
            extras = await results.ReadSingleAsync<JobExtras>();
            started = (await results.ReadAsync<StepTimes>()).ToDictionary(s => s.Position, s => s.StartedAt);
            owner = await results.ReadSingleOrDefaultAsync<OwnerRow>();
        }
        var plan = extras.PlanJson is null ? null : JsonSerializer.Deserialize<ResourceInspection[]>(extras.PlanJson, Json);
        return new ErasureRecord(
            Type: "opterius.erasure_record",
            Version: 1,
            IssuedAt: time.GetUtcNow().UtcDateTime,
            KeyId: KeyId,
            Job: new(job.Id, job.Status, job.RequestedBy, Utc(job.CreatedAt), Utc(job.FinishedAt)),
            Account: new(job.AccountId, job.Username, job.Domain, extras.AccountEmail,
                new RecordOwner(job.OwnerId, owner?.Username, owner?.Role)),
            Requester: extras is { Requester: { } actor, RequesterKind: { } kind }
                ? new RecordParty(actor, kind, extras.RequesterIp, Utc(extras.PlannedAt!.Value)) : null,
            // Kept with the job by the scheduler's open (DeletionJobStore), as the schedule stored it: a UTC time.
            ScheduledBy: extras is { ScheduledBy: { } by, ScheduledByKind: { } byKind, ScheduledAt: { } at }
                ? new RecordParty(by, byKind, extras.ScheduledByIp, Utc(at))
                : await c.QuerySingleOrDefaultAsync<AuditParty>(new CommandDefinition(ScheduledByFromAuditSql, new { job.Id, job.AccountId }, cancellationToken: ct)) is { } p
                    ? new RecordParty(p.Actor, p.Kind, p.SourceIp, Utc(p.At)) : null,
            Plan: plan is null ? null : new RecordPlan(Utc(extras.PlannedAt), plan.Sum(r => r.Bytes), plan),
            Steps: job.Steps.Select(s => new RecordStep(s.Position, s.Resource, s.Status, s.Detail,
                Utc(started.GetValueOrDefault(s.Position)), Utc(s.UpdatedAt))).ToList(),
            Verification: job.Verification is { } v ? new RecordVerification(Utc(v.CheckedAt), v.Passed, v.Resources) : null,
            FinalBackup: await backups.OfJobAsync(job, ct));
    }
}

/// <summary>The signed body of an erasure record (snake_case on the wire). Times are UTC.</summary>
public sealed record ErasureRecord(string Type, int Version, DateTime IssuedAt, string KeyId, RecordJob Job, RecordAccount Account,
    RecordParty? Requester, RecordParty? ScheduledBy, RecordPlan? Plan, IReadOnlyList<RecordStep> Steps,
    RecordVerification? Verification, FinalBackupState FinalBackup);

public sealed record RecordJob(long Id, string Status, string RequestedBy, DateTime CreatedAt, DateTime? FinishedAt);

public sealed record RecordAccount(long Id, string Username, string Domain, string? Email, RecordOwner Owner);

/// <summary>The panel user who owned the account; its name and role are null when that user was removed since.</summary>
public sealed record RecordOwner(long Id, string? Username, string? Role);

/// <summary>Who acted, from the audit log: a token's or user's name, its kind (token, user, cli, system) and source address.</summary>
public sealed record RecordParty(string Actor, string Kind, string? SourceIp, DateTime At);

/// <summary>What the deletion found when it first planned: one inspection per resource.</summary>
public sealed record RecordPlan(DateTime? PlannedAt, long TotalBytes, IReadOnlyList<ResourceInspection> Resources);

/// <summary>A step: when it last started running and when it reached its status.</summary>
public sealed record RecordStep(int Position, string Resource, string Status, string? Detail, DateTime? StartedAt, DateTime FinishedAt);

public sealed record RecordVerification(DateTime CheckedAt, bool Passed, IReadOnlyList<ResourceCheck> Resources);
