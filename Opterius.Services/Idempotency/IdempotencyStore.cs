using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Data;
using Opterius.Services.Tokens;

namespace Opterius.Services.Idempotency;

/// <summary>A keyed write: whose key it is, the key, and the request it came with.</summary>
public sealed record IdempotentRequest(long OwnerId, string Key, byte[] Fingerprint, string RequestLine);

/// <summary>The answer kept for a key: status, the headers that matter (Location, ...), the body.</summary>
public sealed record KeptAnswer(int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body);

/// <summary>What a keyed request meets.</summary>
public abstract record KeyClaim
{
    /// <summary>The key is this request's: run it, then <see cref="IdempotencyStore.KeepAsync"/> or <see cref="IdempotencyStore.ReleaseAsync"/>.</summary>
    public sealed record Claimed(string Holder) : KeyClaim;

    /// <summary>The first request with the key finished: its answer, again.</summary>
    public sealed record Replay(KeptAnswer Answer) : KeyClaim;

    /// <summary>The key was used for another request (<paramref name="FirstRequestLine"/>).</summary>
    public sealed record Reused(string FirstRequestLine) : KeyClaim;

    /// <summary>The first request with the key was still running when the wait ended.</summary>
    public sealed record StillRunning : KeyClaim;
}

/// <summary>
/// The answers of keyed writes (<c>Idempotency-Key</c>), in the panel database so they outlive a restart and hold
/// across panel processes. A key is claimed by inserting its row as <c>running</c>: the primary key makes exactly one
/// request the runner, and every other with that key waits for its answer, reading the row without locking it. The
/// runner's lease is renewed while it runs (a failed renewal is tried again every second); a row whose lease ran out
/// belongs to a runner gone for <see cref="LeaseSeconds"/> s (its process died), and the next request takes the key over.
/// A runner that lost its lease so cannot keep its answer over the new holder's.
/// </summary>
public sealed class IdempotencyStore(PanelDb db, IOptions<JwtOptions> jwt, ILogger<IdempotencyStore> log)
{
    /// <summary>How long an answer is kept: at least a day, so a billing system's next daily run still gets it.</summary>
    public static readonly TimeSpan KeptFor = TimeSpan.FromHours(24);

    public const int LeaseSeconds = 30;
    private static readonly TimeSpan RenewEvery = TimeSpan.FromSeconds(LeaseSeconds / 3);
    private static readonly TimeSpan RetryRenewal = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan LastPoll = TimeSpan.FromSeconds(1);

    // A keyed HMAC, not a plain hash: a create's body holds the account's password, and a plain SHA-256 of a known body
    // shape could be guessed offline from a copy of the database. The key is derived from the token signing key, a
    // secret the panel already has; rotating it only makes the keys of the last day not match (422) once.
    private readonly Lazy<byte[]> _fingerprintKey = new(() =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, jwt.Value.SigningKeyBytes(), 32, info: "opterius idempotency fingerprint"u8.ToArray()));

    /// <summary>What makes two requests "the same": method, path with query, and the body's exact bytes.</summary>
    public byte[] Fingerprint(string method, string pathAndQuery, ReadOnlySpan<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _fingerprintKey.Value);
        hmac.AppendData(Encoding.UTF8.GetBytes($"{method}\n{pathAndQuery}\n"));
        hmac.AppendData(body);
        return hmac.GetHashAndReset();
    }

    /// <summary>Claims the key, or waits up to <paramref name="maxWait"/> for the request that holds it and answers what it found.</summary>
    public async Task<KeyClaim> ClaimAsync(IdempotentRequest request, TimeSpan maxWait, CancellationToken ct)
    {
        await SweepAsync(ct);
        var started = Stopwatch.GetTimestamp();
        var pause = FirstPoll;
        while (true)
        {
            var claim = await TryClaimAsync(request, ct);
            var left = maxWait - Stopwatch.GetElapsedTime(started);
            if (claim is not KeyClaim.StillRunning || left <= TimeSpan.Zero) return claim;
            await Task.Delay(pause < left ? pause : left, ct);
            pause = pause * 2 < LastPoll ? pause * 2 : LastPoll;
        }
    }

    // A few expired rows of other keys go with each keyed request (once, not at every poll), so the table holds about
    // one day of keys without a sweeper. Meeting another request's lock only leaves them for the next one.
    private const string SweepSql = "DELETE FROM idempotency_keys WHERE expires_at < NOW(6) LIMIT 50";

    private async Task SweepAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        try { await c.ExecuteAsync(new CommandDefinition(SweepSql, cancellationToken: ct)); }
        catch (MySqlException e) when (IsBusy(e)) { }
    }

    /// <summary>A deadlock (1213) or a lock wait timeout (1205) on the key's row: another request is at it; look again.</summary>
    private static bool IsBusy(MySqlException e) => e.ErrorCode is MySqlErrorCode.LockDeadlock or MySqlErrorCode.LockWaitTimeout;

    private const string InsertSql = """
        INSERT INTO idempotency_keys (owner_id, idem_key, fingerprint, request_line, state, holder, lease_expires_at, expires_at)
        VALUES (@OwnerId, @Key, @Fingerprint, @RequestLine, 'running', @holder,
                NOW(6) + INTERVAL @lease SECOND, NOW(6) + INTERVAL @keep SECOND)
        """;

    private const string ReadSql = """
        SELECT fingerprint AS Fingerprint, request_line AS RequestLine, state AS State,
               status_code AS StatusCode, headers AS Headers, body AS Body,
               expires_at AS ExpiresAt, lease_expires_at AS LeaseExpiresAt, NOW(6) AS Now
        FROM idempotency_keys WHERE owner_id = @OwnerId AND idem_key = @Key
        """;

    private sealed record Row(byte[] Fingerprint, string RequestLine, string State, short? StatusCode, string? Headers, byte[]? Body,
        DateTime ExpiresAt, DateTime? LeaseExpiresAt, DateTime Now)
    {
        /// <summary>The key is free (as <see cref="TakeOverSql"/> says, in the database's clock): an expired answer, or a dead run.</summary>
        public bool Free => ExpiresAt < Now || (State == "running" && LeaseExpiresAt < Now);
    }

    // An expired answer, or a run whose lease ran out (its runner gone that long), frees the key: one UPDATE of the row
    // takes it over, so two requests that both found it free cannot both run.
    private const string TakeOverSql = """
        UPDATE idempotency_keys SET fingerprint = @Fingerprint, request_line = @RequestLine, state = 'running', holder = @holder,
          lease_expires_at = NOW(6) + INTERVAL @lease SECOND, status_code = NULL, headers = NULL, body = NULL,
          created_at = NOW(6), expires_at = NOW(6) + INTERVAL @keep SECOND
        WHERE owner_id = @OwnerId AND idem_key = @Key AND (expires_at < NOW(6) OR (state = 'running' AND lease_expires_at < NOW(6)))
        """;

    private async Task<KeyClaim> TryClaimAsync(IdempotentRequest request, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        try
        {
            // A plain read first: a waiter polling a running key takes no lock, so it cannot deadlock the runner or other waiters.
            var row = await c.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(ReadSql, request, cancellationToken: ct));
            if (row is null || row.Free)
            {
                var holder = Guid.NewGuid().ToString("N");
                var claim = new
                {
                    request.OwnerId, request.Key, request.Fingerprint, request.RequestLine, holder,
                    lease = LeaseSeconds, keep = (int)KeptFor.TotalSeconds,
                };
                try
                {
                    var claimed = await c.ExecuteAsync(new CommandDefinition(row is null ? InsertSql : TakeOverSql, claim, cancellationToken: ct)) == 1;
                    // Not claimed: another request claimed it first. The next round reads what it is doing.
                    return claimed ? new KeyClaim.Claimed(holder) : new KeyClaim.StillRunning();
                }
                catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry) { return new KeyClaim.StillRunning(); }
            }
            if (!CryptographicOperations.FixedTimeEquals(row.Fingerprint, request.Fingerprint)) return new KeyClaim.Reused(row.RequestLine);
            if (row.State != "done") return new KeyClaim.StillRunning();
            var headers = JsonSerializer.Deserialize<Dictionary<string, string>>(row.Headers ?? "{}") ?? [];
            return new KeyClaim.Replay(new KeptAnswer(row.StatusCode ?? 200, headers, row.Body ?? []));
        }
        catch (MySqlException e) when (IsBusy(e)) { return new KeyClaim.StillRunning(); }
    }

    /// <summary>Renews the claim's lease until disposed (the request finished).</summary>
    public IAsyncDisposable Hold(IdempotentRequest request, KeyClaim.Claimed claim) => new Heartbeat(this, request, claim.Holder, log);

    private const string RenewSql = """
        UPDATE idempotency_keys SET lease_expires_at = NOW(6) + INTERVAL @lease SECOND
        WHERE owner_id = @OwnerId AND idem_key = @Key AND holder = @holder AND state = 'running'
        """;

    /// <summary>False when the claim is lost: the row is gone or another request took it over.</summary>
    private async Task<bool> RenewAsync(IdempotentRequest request, string holder, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return 1 == await c.ExecuteAsync(new CommandDefinition(RenewSql, new { request.OwnerId, request.Key, holder, lease = LeaseSeconds }, cancellationToken: ct));
    }

    private const string KeepSql = """
        UPDATE idempotency_keys SET state = 'done', status_code = @Status, headers = @headers, body = @Body,
          holder = NULL, lease_expires_at = NULL
        WHERE owner_id = @OwnerId AND idem_key = @Key AND holder = @holder AND state = 'running'
        """;

    /// <summary>
    /// Keeps the claimed request's answer for <see cref="KeptFor"/>: every later request with the key gets it. False when
    /// the claim was lost (its lease ran out and another request took the key over): that one's answer is kept, not this.
    /// </summary>
    public async Task<bool> KeepAsync(IdempotentRequest request, KeyClaim.Claimed claim, KeptAnswer answer, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return 1 == await c.ExecuteAsync(new CommandDefinition(KeepSql, new
        {
            request.OwnerId, request.Key, holder = claim.Holder, answer.Status, answer.Body, headers = JsonSerializer.Serialize(answer.Headers),
        }, cancellationToken: ct));
    }

    private const string ReleaseSql = "DELETE FROM idempotency_keys WHERE owner_id = @OwnerId AND idem_key = @Key AND holder = @holder AND state = 'running'";

    /// <summary>Frees the key without an answer: the next request with it runs as if it were the first.</summary>
    public async Task ReleaseAsync(IdempotentRequest request, KeyClaim.Claimed claim, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition(ReleaseSql, new { request.OwnerId, request.Key, holder = claim.Holder }, cancellationToken: ct));
    }

    private sealed class Heartbeat : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _beating;

        public Heartbeat(IdempotencyStore store, IdempotentRequest request, string holder, ILogger log) =>
            _beating = BeatAsync(store, request, holder, log);

        private async Task BeatAsync(IdempotencyStore store, IdempotentRequest request, string holder, ILogger log)
        {
            var wait = RenewEvery;
            try
            {
                while (true)
                {
                    await Task.Delay(wait, _stop.Token);
                    // A renewal that fails is tried again every second, so a short outage of the database does not let the
                    // lease run out under a running request (never fails the request: the write goes on either way).
                    try
                    {
                        if (!await store.RenewAsync(request, holder, _stop.Token))
                        {
                            log.LogWarning("Idempotency-Key {Key}: the lease was lost (taken over after {Lease} s without renewal); this request's answer will not be kept", request.Key, LeaseSeconds);
                            return;
                        }
                        wait = RenewEvery;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        log.LogWarning(e, "Idempotency-Key {Key}: renewing the lease failed; trying again in {Retry} s", request.Key, RetryRenewal.TotalSeconds);
                        wait = RetryRenewal;
                    }
                }
            }
            catch (OperationCanceledException) { }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _beating;
            _stop.Dispose();
        }
    }
}
