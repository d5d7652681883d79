using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Packages;
using Opterius.Services.Users;

namespace Opterius.Web.Cli;

/// <summary>
/// `demo seed`: an admin, a reseller, packages and demo accounts, each made by the real create path (so
/// each has a home, a zone, a vhost, a pool and a certificate, and, with the demo's
/// <c>Opterius:Provisioning:StarterContent</c> on, sample databases, mailboxes and a cron job). Safe to run twice.
/// </summary>
public static class DemoSeed
{
    public const string AdminName = "admin";
    public const string ResellerName = "reseller";
    public const string Password = "opterius-demo";

    private static readonly string[] Names =
    [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
        "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
        "xray", "yankee", "zulu", "bob", "bobby",
    ];

    public static async Task RunAsync(IServiceProvider services, CancellationToken ct)
    {
        // Demo accounts are real Linux users, sites, zones and mailboxes with a published password: never on a real server.
        var root = Path.GetFullPath(services.GetRequiredService<IOptions<OpteriusOptions>>().Value.Root);
        if (root == "/")
            throw new CliException("demo seed refuses to run on a production root (Opterius:Root is \"/\"): it makes demo users, sites and "
                + "zones with a published password. Point Opterius:Root at a sandbox folder (scripts/demo.sh does).");
        var users = services.GetRequiredService<PanelUsers>();
        var admin = await users.FindAsync(AdminName, ct) ?? await users.CreateAsync(AdminName, Password, Roles.Admin, ct);
        var reseller = await users.FindAsync(ResellerName, ct) ?? await users.CreateAsync(ResellerName, Password, Roles.Reseller, ct);

        var packages = services.GetRequiredService<PackageStore>();
        var starter = await packages.EnsureAsync("starter", 5120, 2, 5, "8.2", ct);
        var business = await packages.EnsureAsync("business", 51200, 20, 50, "8.2", ct);

        var creation = services.GetRequiredService<AccountCreation>();
        var accounts = services.GetRequiredService<AccountStore>();
        var created = 0;
        // A few at a time: creations share reloads (nginx, php-fpm, postmap) without crowding the server.
        foreach (var batch in Names.Select((name, i) => (name, i)).Chunk(6))
        {
            var results = await Task.WhenAll(batch.Select(async x =>
            {
                var owner = x.i % 3 == 2 ? reseller : admin;
                // The create's own claims check: an account seeded by an earlier run is left as it is.
                var claims = await accounts.ClaimsAsync(x.name, $"{x.name}.test", owner.Id, ct);
                if (claims.UsernameTaken || claims.RelatedDomains.Any(d => d.Domain == $"{x.name}.test")) return false;
                var actor = new Actor(owner.Username, "cli", null, owner.Id, owner.IsAdmin);
                await creation.CreateAsync(actor, owner.Id,
                    new CreateAccountRequest(x.name, $"{x.name}.test", $"owner@{x.name}.test", Password, x.i % 2 == 0 ? starter : business), ct);
                return true;
            }));
            created += results.Count(r => r);
            Console.WriteLine($"demo accounts: {created} created so far");
        }
        Console.WriteLine($"demo seed done: {created} new accounts; sign in as '{AdminName}' or '{ResellerName}' with password '{Password}'");
    }
}
