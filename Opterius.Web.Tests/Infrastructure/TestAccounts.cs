using Dapper;
using Microsoft.Extensions.DependencyInjection;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Infrastructure;

/// <summary>Accounts made through the real create path, with names unique to this test run.</summary>
public static class TestAccounts
{
    private static readonly Random Random = new();

    /// <summary>A fresh lower-case prefix (letters only) so look-alike names stay unique across test classes.</summary>
    public static string NewPrefix(int length = 6)
    {
        lock (Random) return new string(Enumerable.Range(0, length).Select(_ => (char)('a' + Random.Next(26))).ToArray());
    }

    public static Task<Account> CreateAsync(this PanelApp app, string username, string? domain = null, long? ownerId = null) =>
        app.Get<AccountCreation>().CreateAsync(
            new Actor("tests", "cli", null, ownerId ?? app.Admin.Id, true), ownerId ?? app.Admin.Id,
            new CreateAccountRequest(username, domain ?? $"{username}.test", $"owner@{username}.test", "account-password-1", 1),
            CancellationToken.None);

    /// <summary>
    /// The status each deletion step must end with for this account as the server holds it now, by resource key:
    /// <c>done</c> where its resource is there, <c>skipped</c> where nothing is (DESIGN, "What a step's status means").
    /// Read before the deletion; assert every step against it exactly.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>> ExpectedStepStatusesAsync(this PanelApp app, long accountId) =>
        (await app.InspectAllAsync(accountId)).ToDictionary(i => i.Resource, i => i.Exists ? StepStatus.Done : StepStatus.Skipped);

    /// <summary>Every resource's inspection of this account (which must exist).</summary>
    public static async Task<IReadOnlyList<ResourceInspection>> InspectAllAsync(this PanelApp app, long accountId)
    {
        var account = await app.Get<AccountStore>().FindAsync(new Viewer(0, true), accountId, default)
                      ?? throw new InvalidOperationException($"account {accountId} does not exist");
        var identity = AccountIdentity.From(account);
        return await Task.WhenAll(app.Services.GetServices<IAccountResource>().Select(r => r.InspectAsync(identity, default)));
    }

    /// <summary>
    /// Everything the panel and the server hold of an account, as text to compare before and after a request that must
    /// change nothing: its row, column by column, its deletion jobs, and every resource's inspection (items, bytes, count).
    /// </summary>
    public static async Task<string> SnapshotAsync(this PanelApp app, long accountId)
    {
        await using var c = new MySqlConnection(app.Databases.Panel);
        await c.OpenAsync();
        var columns = new List<string>();
        // Every column, whatever the schema has grown to: a column a refused request changed must show.
        await using (var reader = await new MySqlCommand("SELECT * FROM accounts WHERE id = @id", c) { Parameters = { new("@id", accountId) } }.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                for (var i = 0; i < reader.FieldCount; i++) columns.Add($"{reader.GetName(i)}={reader.GetValue(i)}");
        var jobs = await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deletion_jobs WHERE account_id = @accountId", new { accountId });
        var inspections = (await app.InspectAllAsync(accountId))
            .Select(i => $"{i.Resource}: {i.Exists} {i.Bytes} B {i.Count} [{string.Join(", ", i.Items)}]");
        return string.Join("\n", [.. columns, $"deletion jobs: {jobs}", .. inspections]);
    }

    public static Actor AdminActor(this PanelApp app) => new(app.Admin.Username, "user", "127.0.0.1", app.Admin.Id, true);
}
