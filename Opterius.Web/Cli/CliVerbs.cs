using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Backups;
using Opterius.Services.Data;
using Opterius.Services.Deletion;
using Opterius.Services.Files;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Agent;
using Opterius.Web.Hosting;

namespace Opterius.Web.Cli;

/// <summary>
/// The panel's command line: same binary, same configuration as the server. Bad input (a misspelt verb, an
/// unknown or repeated option, a missing value, a file that cannot be read or written) prints what is wrong
/// and the usage, exits with 2, and changes nothing.
/// </summary>
public static class CliVerbs
{
    /// <summary>
    /// One option of a verb: its name without the dashes, the value it takes (for the usage; empty for a flag, which
    /// takes none), whether it is required.
    /// </summary>
    private sealed record Option(string Name, string Value, bool Required = false)
    {
        /// <summary>A switch: given alone, without a value (<c>--backup</c>).</summary>
        public bool IsFlag => Value.Length == 0;

        public override string ToString() => (Required, IsFlag) switch
        {
            (true, _) => $"--{Name} {Value}",
            (false, true) => $"[--{Name}]",
            _ => $"[--{Name} {Value}]",
        };
    }

    /// <summary>A verb ("tokens create"), what it takes and does; <see cref="Run"/> gets services only when <see cref="NeedsServices"/>.</summary>
    private sealed record Verb(string Name, Option[] Options, string Does, Func<Context, Task<int>> Run, bool NeedsServices = true);

    private sealed record Context(IServiceProvider Services, CliOptions Options, CancellationToken Ct);

    // The one table of verbs: the parser, the usage and the dispatch all read it. Add a verb here.
    private static readonly Verb[] Table =
    [
        new("migrate", [], "create or upgrade the panel and PowerDNS schemas", async c => { await MigrateAsync(c.Services, c.Ct); return 0; }),
        new("users create", [new("username", "U", true), new("password", "P", true), new("role", "admin|reseller", true)],
            "a panel user", CreateUserAsync),
        new("tokens create", [new("name", "N", true), new("role", "admin|reseller", true), new("owner", "U"), new("scopes", "a,b"), new("expires-days", "D")],
            "mint an API token (an admin token's owner defaults to the only admin)", CreateTokenAsync),
        new("tokens revoke", [new("name", "N", true)], "revoke a token", RevokeTokenAsync),
        new("license issue", [new("signing-key", "FILE", true), new("out", "FILE", true), new("plan", "P"), new("max-accounts", "N"), new("expires-days", "D")],
            "sign a license (makes the key pair when FILE does not exist)", c => Task.FromResult(IssueLicense(c.Options)), NeedsServices: false),
        new("demo seed", [], "demo users, packages and accounts (real create path; refused on a production root)",
            async c => { await DemoSeed.RunAsync(c.Services, c.Ct); return 0; }),
        new("agent", [], "the privileged agent on Opterius:Agent:Socket (root); its settings come from OPTERIUS_CONFIG or the environment",
            _ => AgentHost.RunAsync([]), NeedsServices: false),
        new("accounts schedule-deletion", [new("id", "N", true), new("after-days", "D"), new("at", "TIME"), new("backup", "")],
            "suspend the account now and delete it in D days or at TIME (ISO 8601 with its zone); --backup: a final backup first", ScheduleDeletionAsync),
        new("accounts cancel-deletion", [new("id", "N", true)], "cancel a scheduled deletion (the account stays suspended)", CancelDeletionAsync),
        new("records key", [], "print the public key (PEM) that verifies erasure records", PrintRecordKey),
        new("records verify", [new("file", "F", true), new("public-key", "P", true)],
            "verify an erasure record offline with the panel's public key (exit 1 when it does not verify)", c => Task.FromResult(VerifyRecord(c.Options)), NeedsServices: false),
        new("accounts delete", [new("id", "N", true), new("backup", "")], "delete an account through the deletion service, printing each step live "
            + "(--backup: keep a final backup first)", DeleteAccountAsync),
        new("backups list", [new("account-id", "N")], "final backups, newest first", ListBackupsAsync),
        new("backups purge", [new("id", "N", true)], "purge a final backup now (audited)", PurgeBackupAsync),
        new("backups restore", [new("id", "N", true)], "restore a final backup through the create path, printing each step live", RestoreBackupAsync),
        new("help", [], "this text", _ => { Console.WriteLine(Usage); return Task.FromResult(0); }, NeedsServices: false),
    ];

    private static readonly string Usage = "usage: Opterius.Web VERB ...\n"
        + string.Concat(Table.Select(v => $"  {string.Join(' ', [v.Name, .. v.Options.Select(o => o.ToString())])}\n      {v.Does}\n"))
        + "with no verb (or only --Key=value settings), serves the panel";

    /// <summary>
    /// Whether a first argument is for the CLI rather than the server: any word (a misspelt verb too: it exits 2,
    /// it never starts a server) or a help flag. ASP.NET's own <c>--Key=value</c> settings still serve.
    /// </summary>
    public static bool IsVerb(string arg) => !arg.StartsWith('-') || arg is "--help" or "-h";

    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var (verb, rest) = Find(args);
            var options = CliOptions.Parse(rest, verb.Options.Select(o => o.Name).ToHashSet(), verb.Options.Where(o => o.IsFlag).Select(o => o.Name).ToHashSet());
            foreach (var required in verb.Options.Where(o => o.Required)) options.Required(required.Name);
            if (!verb.NeedsServices) return await verb.Run(new Context(EmptyServices.Instance, options, CancellationToken.None));
            await using var services = BuildServices();
            return await verb.Run(new Context(services, options, CancellationToken.None));
        }
        catch (Exception e) when (e is CliException or ArgumentException or FormatException or TokenRequestException
                                      or IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException
                                      or UnsafeSigningKeyException)
        {
            // One line that says what is wrong (file errors included), never a stack trace.
            Console.Error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        catch (Exception e) when (e is MySqlException or OptionsValidationException or InvalidOperationException)
        {
            // The input was fine but the configuration or the database is not (no usage then): still one line, exit 1.
            Console.Error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
    }

    private static (Verb Verb, string[] Arguments) Find(string[] args)
    {
        if (args is ["--help" or "-h", ..]) return (Table.Single(v => v.Name == "help"), []);
        foreach (var verb in Table.OrderByDescending(v => v.Name.Count(c => c == ' ')))
        {
            var words = verb.Name.Split(' ');
            if (args.Length >= words.Length && args.Take(words.Length).SequenceEqual(words)) return (verb, args[words.Length..]);
        }
        var typed = string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2));
        throw new CliException($"unknown command '{typed}'");
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

    private static async Task<int> CreateUserAsync(Context c)
    {
        var user = await c.Services.GetRequiredService<PanelUsers>().CreateAsync(
            c.Options.Required("username"), c.Options.Required("password"), c.Options.Required("role"), c.Ct);
        Console.WriteLine($"created {user.Role} '{user.Username}' (id {user.Id})");
        return 0;
    }

    private static async Task<int> RevokeTokenAsync(Context c)
    {
        var name = c.Options.Required("name");
        if (!await c.Services.GetRequiredService<TokenService>().RevokeAsync(name, c.Ct))
            throw new CliException($"no active token named '{name}'");
        Console.WriteLine($"revoked token '{name}'");
        return 0;
    }

    private static async Task<int> CreateTokenAsync(Context c)
    {
        var (options, ct) = (c.Options, c.Ct);
        var role = options.Required("role");
        var ownerName = options.Optional("owner");
        if (role == Roles.Reseller && ownerName is null) throw new CliException("a reseller token needs --owner RESELLER");
        long ownerId = 0;
        if (ownerName is not null)
        {
            var owner = await c.Services.GetRequiredService<PanelUsers>().FindAsync(ownerName, ct) ?? throw new CliException($"no panel user named '{ownerName}'");
            if (owner.Role != role) throw new CliException($"'{ownerName}' is a {owner.Role}, not a {role}");
            ownerId = owner.Id;
        }
        else if (role == Roles.Admin)
        {
            // The usual case, one admin: the token is theirs. With several, which one is the operator's call.
            var admins = await c.Services.GetRequiredService<TokenStore>().AdminsAsync(ct);
            ownerId = admins switch
            {
                [var only] => only.Id,
                [] => throw new CliException("there is no admin panel user to own the token: create one with `users create --role admin` first"),
                _ => throw new CliException($"there are {admins.Count} admin panel users: name the token's owner with --owner ({string.Join(", ", admins.Select(a => a.Username))})"),
            };
        }
        var scopes = options.Optional("scopes")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                     ?? TokenScopes.All.ToArray();
        var expires = options.OptionalInt("expires-days", 1, 3650);
        var minted = await c.Services.GetRequiredService<TokenService>().CreateAsync(options.Required("name"), role, ownerId, scopes, expires, ct);
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

    private static async Task<int> ScheduleDeletionAsync(Context c)
    {
        var (options, id) = (c.Options, c.Options.RequiredId("id"));
        var at = options.Optional("at") is { } text
            ? DeletionSchedule.TryParseAt(text, out var parsed) ? parsed : throw new CliException($"--at must be {DeletionSchedule.AtExample}")
            : (DateTimeOffset?)null;
        var request = new ScheduleRequest(options.OptionalInt("after-days", 0, DeletionSchedule.MaxDays), at, options.Flag("backup"));
        var account = await Refused(() => c.Services.GetRequiredService<DeletionSchedule>().ScheduleAsync(Actor.Cli(), id, request, c.Ct));
        Console.WriteLine($"account '{account.Username}' (id {account.Id}) is {account.Status}; its deletion is due at {DeletionSchedule.Format(account.DeletionDueAt!.Value)}"
            + (request.Backup ? ", after a final backup" : ""));
        return 0;
    }

    private static async Task<int> CancelDeletionAsync(Context c)
    {
        var account = await Refused(() => c.Services.GetRequiredService<DeletionSchedule>().CancelAsync(Actor.Cli(), c.Options.RequiredId("id"), c.Ct));
        Console.WriteLine($"the deletion of '{account.Username}' (id {account.Id}) is cancelled; it stays {account.Status} (unsuspend serves it again)");
        return 0;
    }

    private static Task<int> PrintRecordKey(Context c)
    {
        // Never made here: a key made by root would be unreadable by the panel, which signs with it.
        var path = Path.GetFullPath(c.Services.GetRequiredService<IOptions<DeletionOptions>>().Value.RecordSigningKey);
        if (!File.Exists(path))
            throw new CliException($"there is no record signing key at {path} yet: the panel makes it when it issues its first erasure record (or serves GET /api/v1/deletions/record-key)");
        Console.Write(c.Services.GetRequiredService<ErasureRecords>().PublicKeyPem);
        return Task.FromResult(0);
    }

    private static int VerifyRecord(CliOptions options)
    {
        var (file, key) = (options.Required("file"), options.Required("public-key"));
        try
        {
            var record = ErasureRecords.Verify(File.ReadAllBytes(file), File.ReadAllText(key));
            Console.WriteLine($"verified: erasure record of deletion job {record.Job.Id} ({record.Account.Username}, {record.Account.Domain}), "
                + $"finished {record.Job.FinishedAt:yyyy-MM-dd HH:mm:ss} UTC, issued {record.IssuedAt:yyyy-MM-dd HH:mm:ss} UTC");
            return 0;
        }
        catch (LicenseSignatureException)
        {
            Console.Error.WriteLine($"error: {file} does not verify with {key}: it was changed after signing, or signed by another key");
            return 1;
        }
        catch (LicenseFormatException e) { throw new CliException($"{file} is not an erasure record: {e.Message}"); }
    }

    /// <summary>The services' refusals (nothing changed) as the CLI's one-line errors.</summary>
    private static async Task<T> Refused<T>(Func<Task<T>> write)
    {
        try { return await write(); }
        catch (Exception e) when (e is AccountNotFoundException or AccountConflictException or AccountValidationException or LicenseRequiredException)
        {
            throw new CliException(e.Message);
        }
    }

    private static async Task<int> DeleteAccountAsync(Context c)
    {
        var id = c.Options.RequiredId("id");
        var events = c.Services.GetRequiredService<DeletionEvents>();
        var printed = new Lock();
        using var subscription = events.Subscribe(id, e =>
        {
            lock (printed) Console.WriteLine($"{e.At:HH:mm:ss} {e.Resource,-16} {e.Status,-9} {e.Detail}");
        }, out _);
        DeletionHandle handle;
        try { handle = await c.Services.GetRequiredService<AccountDeletionService>().StartAsync(Actor.Cli(), id, c.Options.Flag("backup") ? true : null, c.Ct); }
        catch (Exception e) when (Api.AccountWritesApi.Refusal(e) is not null)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        var job = await handle.Completion;
        if (job.Status == JobStatus.Succeeded)
        {
            Console.WriteLine($"deleted account {id} (job {job.Id})");
            return 0;
        }
        Console.Error.WriteLine($"error: job {job.Id} failed: {string.Join("; ", job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}"))}; run it again to resume");
        return 1;
    }

    private static async Task<int> ListBackupsAsync(Context c)
    {
        long? account = c.Options.Optional("account-id") is null ? null : c.Options.RequiredId("account-id");
        var (items, total) = await c.Services.GetRequiredService<BackupStore>().ListAsync(new Viewer(0, true), 1, 100, account, c.Ct);
        foreach (var b in items)
        {
            var state = b.PurgedAt is { } at ? $"purged {at:yyyy-MM-dd HH:mm} by {b.PurgedBy}" : b.Complete ? $"kept until {b.ExpiresAt:yyyy-MM-dd HH:mm}" : "writing";
            Console.WriteLine($"{b.Id,6}  {b.Username,-12} {b.Domain,-30} {b.CreatedAt:yyyy-MM-dd HH:mm}  {(b.Bytes is { } n ? ByteSize.Human(n) : "-"),10}  {state}");
        }
        Console.WriteLine($"{items.Count} of {total} backup(s)");
        return 0;
    }

    private static async Task<int> PurgeBackupAsync(Context c)
    {
        var id = c.Options.RequiredId("id");
        try { await c.Services.GetRequiredService<FinalBackups>().PurgeAsync(Actor.Cli(), id, c.Ct); }
        catch (Exception e) when (e is BackupNotFoundException or AccountConflictException) { throw new CliException(e.Message); }
        Console.WriteLine($"purged backup {id}");
        return 0;
    }

    private static async Task<int> RestoreBackupAsync(Context c)
    {
        var id = c.Options.RequiredId("id");
        var events = c.Services.GetRequiredService<RestoreEvents>().Stream;
        var printed = new Lock();
        long? job = null;
        var early = new List<DeletionEvent>();
        void Print(DeletionEvent e) => Console.WriteLine($"{e.At:HH:mm:ss} {e.Resource,-16} {e.Status,-9} {e.Detail}");
        // The job's id is known only once it has started: what it published before is held, then printed in order.
        using var subscription = events.Subscribe(null, e =>
        {
            lock (printed)
            {
                if (job is null) early.Add(e);
                else if (e.JobId == job) Print(e);
            }
        }, out _);
        RestoreHandle handle;
        try { handle = await c.Services.GetRequiredService<BackupRestoration>().StartAsync(Actor.Cli(), id, c.Ct); }
        catch (Exception e) when (Api.AccountWritesApi.Refusal(e) is not null)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        lock (printed)
        {
            job = handle.Job.Id;
            foreach (var e in early.Where(e => e.JobId == job)) Print(e);
        }
        var finished = await handle.Completion;
        if (finished.Status == JobStatus.Succeeded)
        {
            Console.WriteLine($"restored backup {id} as account {finished.AccountId} ({finished.Username}, {finished.Domain}): restore job {finished.Id}");
            return 0;
        }
        Console.Error.WriteLine($"error: restore job {finished.Id} failed: {finished.Detail}");
        return 1;
    }

    private static ServiceProvider BuildServices()
    {
        var builder = PanelHost.CreateBuilder([]);
        builder.Services.AddPanelServices();
        return builder.Services.BuildServiceProvider();
    }

    private sealed class EmptyServices : IServiceProvider
    {
        public static readonly EmptyServices Instance = new();
        public object? GetService(Type serviceType) => null;
    }
}

public sealed class CliException(string message) : Exception(message);

/// <summary>`--key value` pairs after the verb, each one of the verb's own options, each at most once.</summary>
public sealed class CliOptions(Dictionary<string, string> values)
{
    public static CliOptions Parse(IEnumerable<string> args, IReadOnlySet<string> known, IReadOnlySet<string>? flags = null)
    {
        var values = new Dictionary<string, string>();
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var key = e.Current;
            if (!key.StartsWith("--") || key.Length < 3) throw new CliException($"expected an option like --name, got '{key}'");
            // A typo (--scope, --expires-day) must not be dropped silently: it would widen what the command makes.
            if (!known.Contains(key[2..]))
                throw new CliException(known.Count == 0 ? $"this command takes no options, got '{key}'"
                    : $"unknown option '{key}': this command takes {string.Join(", ", known.Select(k => "--" + k))}");
            if (flags?.Contains(key[2..]) == true)
            {
                if (!values.TryAdd(key[2..], "true")) throw new CliException($"{key} is given twice");
                continue;
            }
            if (!e.MoveNext() || e.Current.StartsWith("--")) throw new CliException($"{key} needs a value");
            if (!values.TryAdd(key[2..], e.Current)) throw new CliException($"{key} is given twice");
        }
        return new(values);
    }

    public string Required(string key) =>
        values.TryGetValue(key, out var v) && v.Length > 0 ? v : throw new CliException($"--{key} is required");

    public string? Optional(string key) => values.GetValueOrDefault(key);

    public bool Flag(string key) => values.ContainsKey(key);

    public long RequiredId(string key) =>
        long.TryParse(Required(key), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id > 0
            ? id : throw new CliException($"--{key} must be a positive whole number");

    public int? OptionalInt(string key, int min, int max)
    {
        if (!values.TryGetValue(key, out var raw)) return null;
        return int.TryParse(raw, out var v) && v >= min && v <= max ? v : throw new CliException($"--{key} must be a whole number from {min} to {max}");
    }
}
