using Dapper;
using Opterius.Services.Data;

namespace Opterius.Services.Audit;

/// <summary>Who acted: a signed-in panel user, an API token, the CLI or the panel itself (start-up resume).</summary>
public sealed record Actor(string Name, string Kind, string? SourceIp, long UserId, bool IsAdmin)
{
    public static Actor System(string name) => new(name, "system", null, 0, true);
    public static Actor Cli() => new(Environment.UserName, "cli", null, 0, true);
}

public sealed record AuditEntry(long Id, DateTime At, string Actor, string ActorKind, string? SourceIp, string Action,
    long? AccountId, string? AccountUsername, string Outcome, string? Detail);

public sealed record AuditQuery(int Page = 1, int PerPage = 50, string? Actor = null, string? Action = null, string? Account = null, string? Outcome = null);

/// <summary>The audit log: one row per request on an account, kept after the account is gone.</summary>
public sealed class AuditLog(PanelDb db)
{
    public Task WriteAsync(Actor actor, string action, long? accountId, string? accountUsername, string outcome, string? detail, CancellationToken ct) =>
        WriteAsync(actor, action, accountId, accountUsername, null, outcome, detail, ct);

    /// <summary>An entry about an API token of <paramref name="ownerId"/> (minted, revoked): no account, the token's owner's.</summary>
    public Task WriteTokenAsync(Actor actor, string action, long ownerId, string outcome, string detail, CancellationToken ct) =>
        WriteAsync(actor, action, null, null, ownerId, outcome, detail, ct);

    // The owner is read first with a plain (non-locking) read: inside the INSERT a subquery would lock the account's row.
    private const string OwnerOf = """
        SELECT COALESCE((SELECT owner_id FROM accounts WHERE id = @accountId),
                        (SELECT owner_id FROM deletion_jobs WHERE account_id = @accountId ORDER BY id DESC LIMIT 1))
        """;

    private const string Insert = """
        INSERT INTO audit_log (actor, actor_kind, source_ip, action, account_id, account_username, outcome, detail, owner_id)
        VALUES (@Name, @Kind, @SourceIp, @action, @accountId, @accountUsername, @outcome, @detail, @ownerId)
        """;

    private async Task WriteAsync(Actor actor, string action, long? accountId, string? accountUsername, long? ownerId,
        string outcome, string? detail, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        if (ownerId is null && accountId is not null)
            ownerId = await c.ExecuteScalarAsync<long?>(new CommandDefinition(OwnerOf, new { accountId }, cancellationToken: ct));
        // A reseller's request naming no account it could see (a create refused, an id that does not exist) is its own.
        if (ownerId is null && !actor.IsAdmin && actor.UserId > 0) ownerId = actor.UserId;
        await c.ExecuteAsync(new CommandDefinition(Insert,
            new { actor.Name, actor.Kind, actor.SourceIp, action, accountId, accountUsername, outcome, detail, ownerId }, cancellationToken: ct));
    }

    /// <summary>A page of every entry (an admin's view), newest first.</summary>
    public Task<(IReadOnlyList<AuditEntry> Items, long Total)> ListAsync(AuditQuery q, CancellationToken ct) =>
        ListAsync(new Accounts.Viewer(0, IsAdmin: true), q, ct);

    /// <summary>A page of entries, newest first; a reseller's viewer sees only the entries it owns.</summary>
    public async Task<(IReadOnlyList<AuditEntry> Items, long Total)> ListAsync(Accounts.Viewer viewer, AuditQuery q, CancellationToken ct)
    {
        const string filter = """
            WHERE (@owner IS NULL OR owner_id = @owner)
              AND (@actor IS NULL OR actor = @actor) AND (@action IS NULL OR action = @action)
              AND (@account IS NULL OR account_username = @account) AND (@outcome IS NULL OR outcome = @outcome)
            """;
        var args = new { owner = viewer.OwnerFilter, q.Actor, q.Action, q.Account, q.Outcome, limit = q.PerPage, offset = (long)(q.Page - 1) * q.PerPage };
        await using var c = await db.OpenAsync(ct);
        var total = await c.ExecuteScalarAsync<long>(new CommandDefinition($"SELECT COUNT(*) FROM audit_log {filter}", args, cancellationToken: ct));
        var items = await c.QueryAsync<AuditEntry>(new CommandDefinition($"""
            SELECT id AS Id, at AS At, actor AS Actor, actor_kind AS ActorKind, source_ip AS SourceIp, action AS Action,
                   account_id AS AccountId, account_username AS AccountUsername, outcome AS Outcome, detail AS Detail
            FROM audit_log {filter} ORDER BY id DESC LIMIT @limit OFFSET @offset
            """, args, cancellationToken: ct));
        return (items.AsList(), total);
    }

    /// <summary>One account's entries, newest first (its page in the panel); kept by id, so they outlive a reused username.</summary>
    public async Task<(IReadOnlyList<AuditEntry> Items, long Total)> ForAccountAsync(long accountId, int page, int perPage, CancellationToken ct)
    {
        const string sql = """
            SELECT COUNT(*) FROM audit_log WHERE account_id = @accountId;
            SELECT id AS Id, at AS At, actor AS Actor, actor_kind AS ActorKind, source_ip AS SourceIp, action AS Action,
                   account_id AS AccountId, account_username AS AccountUsername, outcome AS Outcome, detail AS Detail
            FROM audit_log WHERE account_id = @accountId ORDER BY id DESC LIMIT @limit OFFSET @offset
            """;
        await using var c = await db.OpenAsync(ct);
        await using var results = await c.QueryMultipleAsync(new CommandDefinition(sql,
            new { accountId, limit = perPage, offset = (long)(page - 1) * perPage }, cancellationToken: ct));
        var total = await results.ReadSingleAsync<long>();
        return ((await results.ReadAsync<AuditEntry>()).AsList(), total);
    }
}
