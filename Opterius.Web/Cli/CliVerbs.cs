using Opterius.Services.Data;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Agent;
using Opterius.Web.Hosting;

namespace Opterius.Web.Cli;

/// <summary>
/// The panel's command line: same binary, same configuration as the server. Bad input prints what to do
/// and exits with 2; nothing is changed.
/// </summary>
public static class CliVerbs
{
    private static readonly string[] Verbs = ["migrate", "users", "tokens", "license", "demo", "agent", "help", "--help"];

    public static bool IsVerb(string arg) => Verbs.Contains(arg);

    private const string Usage = """
        usage: Opterius.Web VERB ...
          migrate                                       create or upgrade the panel and PowerDNS schemas
          users create --username U --password P --role admin|reseller
          tokens create --name N --role admin|reseller [--owner U] [--scopes a,b] [--expires-days D]
          tokens revoke --name N
          license issue --signing-key FILE --out FILE [--plan P] [--max-accounts N] [--expires-days D]
          demo seed                                     demo users, packages and accounts (real create path)
          agent                                         the privileged agent on Opterius:Agent:Socket (root)
        with no verb, serves the panel
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var options = CliOptions.Parse(args.Skip(args.Length > 1 && !args[1].StartsWith("--") ? 2 : 1));
            var command = string.Join(' ', args.Take(args.Length > 1 && !args[1].StartsWith("--") ? 2 : 1));
            if (command is "help" or "--help") { Console.WriteLine(Usage); return 0; }
            if (command == "license issue") return IssueLicense(options);
            if (command == "agent") return await AgentHost.RunAsync(args[1..]);

            await using var services = BuildServices();
            var ct = CancellationToken.None;
            switch (command)
            {
                case "migrate":
                    await MigrateAsync(services, ct);
                    return 0;
                case "users create":
                    var user = await services.GetRequiredService<PanelUsers>().CreateAsync(
                        options.Required("username"), options.Required("password"), options.Required("role"), ct);
                    Console.WriteLine($"created {user.Role} '{user.Username}' (id {user.Id})");
                    return 0;
                case "tokens create":
                    return await CreateTokenAsync(services, options, ct);
                case "tokens revoke":
                    var name = options.Required("name");
                    if (!await services.GetRequiredService<TokenService>().RevokeAsync(name, ct))
                        throw new CliException($"no active token named '{name}'");
                    Console.WriteLine($"revoked token '{name}'");
                    return 0;
                case "demo seed":
                    await DemoSeed.RunAsync(services, ct);
                    return 0;
                default:
                    throw new CliException($"unknown command '{command}'");
            }
        }
        catch (Exception e) when (e is CliException or ArgumentException or FormatException or TokenRequestException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }

    /// <summary>Creates the databases when missing, then applies the schema files.</summary>
    public static async Task MigrateAsync(IServiceProvider services, CancellationToken ct)
    {
        var configuration = services.GetRequiredService<IConfiguration>();
        foreach (var name in new[] { "Panel", "PowerDns" })
            await Migrator.EnsureDatabaseAsync(configuration.GetConnectionString(name)!, ct);
        var applied = await services.GetRequiredService<Migrator>().MigrateAsync(ct);
        Console.WriteLine(applied.Count == 0 ? "schema is up to date" : $"applied {string.Join(", ", applied)}");
    }

    private static async Task<int> CreateTokenAsync(ServiceProvider services, CliOptions options, CancellationToken ct)
    {
        var role = options.Required("role");
        var users = services.GetRequiredService<PanelUsers>();
        var ownerName = options.Optional("owner");
        if (role == Roles.Reseller && ownerName is null) throw new CliException("a reseller token needs --owner RESELLER");
        long ownerId = 0;
        if (ownerName is not null)
        {
            var owner = await users.FindAsync(ownerName, ct) ?? throw new CliException($"no panel user named '{ownerName}'");
            if (owner.Role != role) throw new CliException($"'{ownerName}' is a {owner.Role}, not a {role}");
            ownerId = owner.Id;
        }
        var scopes = options.Optional("scopes")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                     ?? TokenScopes.All.ToArray();
        var expires = options.OptionalInt("expires-days", 1, 3650);
        var minted = await services.GetRequiredService<TokenService>().CreateAsync(options.Required("name"), role, ownerId, scopes, expires, ct);
        Console.WriteLine($"token '{minted.Info.Name}' ({role}; {string.Join(",", minted.Info.Scopes)}) — shown once, store it now:");
        Console.WriteLine(minted.Token);
        return 0;
    }

    private static int IssueLicense(CliOptions options)
    {
        var result = new LicenseIssuer(TimeProvider.System).Issue(options.Required("signing-key"), options.Required("out"),
            options.Optional("plan") ?? "pro", options.OptionalInt("max-accounts", 0, 10_000_000), options.OptionalInt("expires-days", 1, LicenseIssuer.MaxExpiryDays) ?? 365);
        Console.WriteLine($"license written to {result.LicenseFile}; it verifies with the public key {result.PublicKeyFile}"
            + (result.KeyPairCreated ? " (new key pair)" : ""));
        return 0;
    }

    private static ServiceProvider BuildServices()
    {
        var builder = PanelHost.CreateBuilder([]);
        builder.Services.AddPanelServices();
        return builder.Services.BuildServiceProvider();
    }
}

public sealed class CliException(string message) : Exception(message);

/// <summary>`--key value` pairs after the verb.</summary>
public sealed class CliOptions(Dictionary<string, string> values)
{
    public static CliOptions Parse(IEnumerable<string> args)
    {
        var values = new Dictionary<string, string>();
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var key = e.Current;
            if (!key.StartsWith("--") || key.Length < 3) throw new CliException($"expected an option like --name, got '{key}'");
            if (!e.MoveNext()) throw new CliException($"{key} needs a value");
            values[key[2..]] = e.Current;
        }
        return new(values);
    }

    public string Required(string key) =>
        values.TryGetValue(key, out var v) && v.Length > 0 ? v : throw new CliException($"--{key} is required");

    public string? Optional(string key) => values.GetValueOrDefault(key);

    public int? OptionalInt(string key, int min, int max)
    {
        if (!values.TryGetValue(key, out var raw)) return null;
        return int.TryParse(raw, out var v) && v >= min && v <= max ? v : throw new CliException($"--{key} must be a whole number from {min} to {max}");
    }
}
