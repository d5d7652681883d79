using Opterius.Services.Accounts;
using Opterius.Services.Audit;

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

    public static Actor AdminActor(this PanelApp app) => new(app.Admin.Username, "user", "127.0.0.1", app.Admin.Id, true);
}
