using Dapper;
using MySqlConnector;
using Opterius.Services.Data;

namespace Opterius.Services.Tokens;

/// <summary>The <c>api_tokens</c> table. Times are written and compared in UTC, passed in by the caller.</summary>
public sealed class TokenStore(PanelDb db)
{
    private const int DuplicateKey = 1062;

    // A revoked or expired token can never be used again, so its name is free: the dead row goes, the new one comes.
    private const string DeleteDeadByName = """
        DELETE FROM api_tokens WHERE name = @Name AND (revoked_at IS NOT NULL OR expires_at <= @Now)
        """;

    private const string Insert = """
        INSERT INTO api_tokens (jti, name, role, owner_id, scopes, created_at, expires_at)
        VALUES (@Jti, @Name, @Role, @OwnerId, @Scopes, @CreatedAt, @ExpiresAt)
        """;

    /// <summary>Stores a new token; throws <see cref="TokenRequestException"/> when an active token has its name.</summary>
    public async Task InsertAsync(TokenInfo token, DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        try
        {
            await c.ExecuteAsync(new CommandDefinition(DeleteDeadByName, new { token.Name, Now = now.UtcDateTime }, tx, cancellationToken: ct));
            await c.ExecuteAsync(new CommandDefinition(Insert, new
            {
                token.Jti, token.Name, token.Role, token.OwnerId,
                Scopes = string.Join(' ', token.Scopes),
                CreatedAt = token.CreatedAt.UtcDateTime,
                ExpiresAt = token.ExpiresAt?.UtcDateTime,
            }, tx, cancellationToken: ct));
            await tx.CommitAsync(ct);
        }
        catch (MySqlException e) when (e.Number == DuplicateKey && e.Message.Contains("ux_api_tokens_name", StringComparison.Ordinal))
        {
            throw new TokenRequestException(TokenError.DuplicateName,
                $"A token named '{token.Name}' already exists: revoke it first or choose another name.");
        }
    }

    private const string SelectByJti = """
        SELECT jti AS Jti, name AS Name, role AS Role, owner_id AS OwnerId, scopes AS Scopes, created_at AS CreatedAt,
               expires_at AS ExpiresAt, revoked_at AS RevokedAt, last_used_at AS LastUsedAt, last_used_ip AS LastUsedIp
        FROM api_tokens WHERE jti = @Jti
        """;

    /// <summary>The stored token with this id, revoked and expired ones included; null when there is none.</summary>
    public async Task<TokenInfo?> FindAsync(string jti, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var row = await c.QuerySingleOrDefaultAsync<TokenRow>(new CommandDefinition(SelectByJti, new { Jti = jti }, cancellationToken: ct));
        return row is null ? null : Info(row);
    }

    private const string Touch = "UPDATE api_tokens SET last_used_at = @At, last_used_ip = @Ip WHERE jti = @Jti";

    public async Task TouchAsync(string jti, DateTimeOffset at, string? ip, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        await c.ExecuteAsync(new CommandDefinition(Touch, new { Jti = jti, At = at.UtcDateTime, Ip = ip }, cancellationToken: ct));
    }

    private const string Revoke = """
        UPDATE api_tokens SET revoked_at = @Now
        WHERE name = @Name AND revoked_at IS NULL AND (@OwnerId IS NULL OR owner_id = @OwnerId)
        """;

    /// <summary>Revokes the token with this name (of this owner, when given); false when there was none left to revoke.</summary>
    public async Task<bool> RevokeAsync(string name, long? ownerId, DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.ExecuteAsync(new CommandDefinition(Revoke, new { Name = name, OwnerId = ownerId, Now = now.UtcDateTime }, cancellationToken: ct)) > 0;
    }

    private const string List = """
        SELECT jti AS Jti, name AS Name, role AS Role, owner_id AS OwnerId, scopes AS Scopes, created_at AS CreatedAt,
               expires_at AS ExpiresAt, revoked_at AS RevokedAt, last_used_at AS LastUsedAt, last_used_ip AS LastUsedIp
        FROM api_tokens
        WHERE @OwnerId IS NULL OR owner_id = @OwnerId
        ORDER BY name
        """;

    public async Task<IReadOnlyList<TokenInfo>> ListAsync(long? ownerId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<TokenRow>(new CommandDefinition(List, new { OwnerId = ownerId }, cancellationToken: ct));
        return rows.Select(Info).ToList();
    }

    private static TokenInfo Info(TokenRow r) => new(
        r.Jti, r.Name, r.Role, r.OwnerId, r.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries),
        Utc(r.CreatedAt), Utc(r.ExpiresAt), Utc(r.RevokedAt), Utc(r.LastUsedAt), r.LastUsedIp);

    private const string SelectUserRole = "SELECT role FROM panel_users WHERE id = @Id";

    /// <summary>The role of the panel user with this id, or null when there is no such user.</summary>
    public async Task<string?> UserRoleAsync(long userId, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<string>(new CommandDefinition(SelectUserRole, new { Id = userId }, cancellationToken: ct));
    }

    private const string SelectAdmins = "SELECT id AS Id, username AS Username FROM panel_users WHERE role = 'admin' ORDER BY id";

    /// <summary>The admin panel users, who may own an admin token.</summary>
    public async Task<IReadOnlyList<(long Id, string Username)>> AdminsAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<(long Id, string Username)>(new CommandDefinition(SelectAdmins, cancellationToken: ct))).ToList();
    }

    private static DateTimeOffset Utc(DateTime value) => new(UtcTimes.Utc(value));

    private static DateTimeOffset? Utc(DateTime? value) => value is { } v ? Utc(v) : null;

    private sealed record TokenRow(
        string Jti, string Name, string Role, long OwnerId, string Scopes, DateTime CreatedAt,
        DateTime? ExpiresAt, DateTime? RevokedAt, DateTime? LastUsedAt, string? LastUsedIp);
}
