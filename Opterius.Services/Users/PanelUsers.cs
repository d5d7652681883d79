using Dapper;
using Microsoft.AspNetCore.Identity;
using MySqlConnector;
using Opterius.Services.Data;

namespace Opterius.Services.Users;

public static class Roles
{
    public const string Admin = "admin";
    public const string Reseller = "reseller";
    public static bool IsValid(string? role) => role is Admin or Reseller;
}

public sealed record PanelUser(long Id, string Username, string PasswordHash, string Role)
{
    public bool IsAdmin => Role == Roles.Admin;
}

/// <summary>Admins and resellers who sign in to the panel. Passwords are stored as ASP.NET Identity hashes (PBKDF2).</summary>
public sealed class PanelUsers(PanelDb db)
{
    private static readonly PasswordHasher<PanelUser> Hasher = new();

    // Verified against when the user does not exist, so a wrong name costs as much time as a wrong password.
    private static readonly string DecoyHash = Hasher.HashPassword(new PanelUser(0, "", "", ""), Guid.NewGuid().ToString());

    private const string Columns = "id AS Id, username AS Username, password_hash AS PasswordHash, role AS Role";

    public async Task<PanelUser> CreateAsync(string username, string password, string role, CancellationToken ct)
    {
        if (username.Length is < 3 or > 64 || !username.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-'))
            throw new ArgumentException("username must be 3-64 letters, digits, '.', '_' or '-'");
        if (password.Length is < 8 or > 256) throw new ArgumentException("password must be 8-256 characters");
        if (!Roles.IsValid(role)) throw new ArgumentException("role must be admin or reseller");
        var hash = Hasher.HashPassword(new PanelUser(0, username, "", role), password);
        await using var c = await db.OpenAsync(ct);
        try
        {
            var id = await c.ExecuteScalarAsync<long>(new CommandDefinition(
                "INSERT INTO panel_users (username, password_hash, role) VALUES (@username, @hash, @role); SELECT LAST_INSERT_ID();",
                new { username, hash, role }, cancellationToken: ct));
            return new(id, username, hash, role);
        }
        catch (MySqlException e) when (e.ErrorCode == MySqlErrorCode.DuplicateKeyEntry)
        {
            throw new ArgumentException($"a panel user named '{username}' already exists");
        }
    }

    public async Task<PanelUser?> FindAsync(string username, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<PanelUser>(new CommandDefinition(
            $"SELECT {Columns} FROM panel_users WHERE username = @username", new { username }, cancellationToken: ct));
    }

    public async Task<PanelUser?> FindAsync(long id, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return await c.QuerySingleOrDefaultAsync<PanelUser>(new CommandDefinition(
            $"SELECT {Columns} FROM panel_users WHERE id = @id", new { id }, cancellationToken: ct));
    }

    /// <summary>Every panel user (the owners an admin may create an account for), by name.</summary>
    public async Task<IReadOnlyList<PanelUser>> ListAsync(CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        return (await c.QueryAsync<PanelUser>(new CommandDefinition($"SELECT {Columns} FROM panel_users ORDER BY username", cancellationToken: ct))).AsList();
    }

    /// <summary>The user when the password is right, else null; the same work is done for unknown users.</summary>
    public async Task<PanelUser?> CheckPasswordAsync(string username, string password, CancellationToken ct)
    {
        var user = username.Length <= 64 ? await FindAsync(username, ct) : null;
        var result = Hasher.VerifyHashedPassword(user ?? new PanelUser(0, "", DecoyHash, ""), user?.PasswordHash ?? DecoyHash, password);
        return user is not null && result != PasswordVerificationResult.Failed ? user : null;
    }
}
