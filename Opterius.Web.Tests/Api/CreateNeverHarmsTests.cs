using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;
using Opterius.Services;
using Opterius.Services.Audit;
using Opterius.Services.Commands;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Packages;
using Opterius.Services.Resources;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Api;

/// <summary>
/// DESIGN section 2, "Create never harms what was there", through POST /api/v1/accounts on a production-like
/// panel: every refusal is a precise 409 or 422 naming the reason, and the whole server (every byte of the root,
/// every PowerDNS row, the tenant databases and users, the accounts) is exactly as it was.
/// </summary>
public sealed class CreateNeverHarmsTests(ProductionLikeApp app) : IClassFixture<ProductionLikeApp>
{
    private const string Password = "account-password-1";

    private static object Body(string username, string domain) =>
        new { username, domain, email = $"owner@{domain}", password = Password, package_id = 1 };

    /// <summary>
    /// Posts the create and asserts the refusal: status, error code, a message naming <paramref name="reason"/>, nothing
    /// changed. Returns the message.
    /// </summary>
    private async Task<string> AssertRefusedAsync(string username, string domain, HttpStatusCode status, string code, string reason)
    {
        var client = await app.ClientAsync();
        var before = await app.ServerStateAsync(username);

        var response = await client.PostAsJsonAsync("/api/v1/accounts", Body(username, domain));

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal(code, body.Error());
        var message = body.GetProperty("message").GetString()!;
        Assert.Contains(reason, message);
        Assert.Equal(before, await app.ServerStateAsync(username));
        return message;
    }

    [Fact]
    public async Task AnExistingSystemUserIsRefusedWith409AndKeepsItsPasswdEntryWhileNothingElseChanges()
    {
        var username = "l" + TestAccounts.NewPrefix(8);
        FileResourceSandbox.Run("useradd", "-R", app.Root, "-M", "-s", "/bin/bash", username);

        await AssertRefusedAsync(username, $"{username}.test", HttpStatusCode.Conflict, "conflict", $"system user {username}");

        Assert.Contains(File.ReadAllLines(app.Under("/etc/passwd")), l => l.StartsWith(username + ":", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("vmail")]
    [InlineData("postmaster")]
    [InlineData("hostmaster")]
    [InlineData("abuse")]
    [InlineData("ftp")]
    [InlineData("www")]
    public async Task ReservedSystemNamesAreRefusedWith422AndTheHostsVmailUserSurvives(string username)
    {
        var vmail = File.ReadAllLines(app.Under("/etc/passwd")).Single(l => l.StartsWith("vmail:", StringComparison.Ordinal));

        await AssertRefusedAsync(username, $"{TestAccounts.NewPrefix(8)}.test", HttpStatusCode.UnprocessableEntity, "validation_failed", "reserved system name");

        Assert.Contains(vmail, File.ReadAllLines(app.Under("/etc/passwd")));
    }

    [Fact]
    public async Task AZoneWithNoAccountIsRefusedWith409AndSurvivesRowForRow()
    {
        var username = ApiKit.NewUsername();
        var domain = $"{username}.test";
        await app.ExecAsync(app.Databases.PowerDns, """
            INSERT INTO domains (name, type, account) VALUES (@domain, 'NATIVE', NULL);
            INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
              VALUES (LAST_INSERT_ID(), @domain, 'A', '198.51.100.7', 300, 0, 0, 1);
            """, new { domain });

        await AssertRefusedAsync(username, domain, HttpStatusCode.Conflict, "conflict", $"zone {domain}");
    }

    /// <summary>Something of the domain or the username that an operator or another tool put on the server.</summary>
    public static TheoryData<string, string> ServerParts => new()
    {
        { "sites-available", "vhost " },
        { "sites-enabled", "vhost " },
        { "pool", "PHP 8.2 pool " },
        { "pool being removed", "PHP 8.2 pool " },
        { "live", "certificate of " },
        { "archive", "certificate of " },
        { "renewal", "certificate of " },
        { "lineage live", "certificate of " },
        { "lineage archive", "certificate of " },
        { "lineage renewal", "certificate of " },
        { "mail folder", "mailbox" },
        { "dovecot", "mail user" },
        { "vmailbox", "mail route" },
        { "postmap pending", "the map is not rebuilt yet" },
        { "purge pending", "the PowerDNS cache purge has not run yet" },
        { "home", "/home/" },
        { "crontab", "crontab of " },
        { "group", "group " },
        { "spool", "/var/mail/" },
    };

    [Theory]
    [MemberData(nameof(ServerParts))]
    public async Task WhatExistsOnTheServerForTheNamesIsRefusedWith409NamingItAndSurvivesByteForByte(string part, string reason)
    {
        var username = ApiKit.NewUsername();
        var domain = $"{username}.test";
        void Write(string path, string text)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(app.Under(path))!);
            File.WriteAllText(app.Under(path), text);
        }
        switch (part)
        {
            case "sites-available": Write($"/etc/nginx/sites-available/{domain}.conf", "# the operator's own site\n"); break;
            case "sites-enabled": File.CreateSymbolicLink(app.Under($"/etc/nginx/sites-enabled/{domain}.conf"), "/etc/nginx/sites-available/legacy.conf"); break;
            case "pool": Write($"/etc/php/8.2/fpm/pool.d/{domain}.conf", "; the operator's own pool\n"); break;
            case "pool being removed": Write($"/etc/php/8.2/fpm/pool.d/{domain}.conf.removing", "; a pool whose reload has not run\n"); break;
            case "live": Write($"/etc/letsencrypt/live/{domain}/README", "a real certificate\n"); break;
            case "archive": Write($"/etc/letsencrypt/archive/{domain}/privkey1.pem", "a real private key\n"); break;
            case "renewal": Write($"/etc/letsencrypt/renewal/{domain}.conf", "version = 2.1.0\n"); break;
            case "lineage live": Write($"/etc/letsencrypt/live/{domain}-0001/README", "certbot's second lineage\n"); break;
            case "lineage archive": Write($"/etc/letsencrypt/archive/{domain}-0001/privkey1.pem", "a real private key\n"); break;
            case "lineage renewal": Write($"/etc/letsencrypt/renewal/{domain}-0001.conf", "version = 2.1.0\n"); break;
            case "mail folder": Write($"/var/mail/vdomains/{domain}/info/new/1.msg", "Subject: kept\r\n\r\nmail\r\n"); break;
            case "dovecot": File.AppendAllText(app.Under("/etc/dovecot/users"), $"info@{domain}:{{PLAIN}}old-pass:5000:5000::/var/mail/vdomains/{domain}/info::\n"); break;
            case "vmailbox": File.AppendAllText(app.Under("/etc/postfix/vmailbox"), $"info@{domain}  {domain}/info/\n"); break;
            // A removal of the domain's lines whose postmap, or whose PowerDNS cache purge, has not run yet.
            case "postmap pending": Write($"/etc/postfix/.vmailbox.{domain}.postmap-pending", ""); break;
            case "purge pending": await app.ExecAsync(app.Databases.PowerDns, "INSERT INTO opterius_pending_purges (name) VALUES (@domain)", new { domain }); break;
            case "home": Write($"/home/{username}/public_html/index.html", "the old site\n"); break;
            case "crontab": Write($"/var/spool/cron/crontabs/{username}", "0 * * * * backup\n"); break;
            case "group": FileResourceSandbox.Run("groupadd", "-R", app.Root, username); break;
            case "spool": Write($"/var/mail/{username}", "From root\nmail kept for an old user\n"); break;
        }

        await AssertRefusedAsync(username, domain, HttpStatusCode.Conflict, "conflict", reason);
    }

    [Theory]
    [InlineData("database")]
    [InlineData("database user")]
    public async Task ExistingTenantDatabasesAndUsersAreRefusedWith409AndKeepTheirRowsAndPassword(string part)
    {
        var username = ApiKit.NewUsername();
        var admin = app.Databases.Admin;
        if (part == "database")
            await app.ExecAsync(admin, $"CREATE DATABASE `{username}_legacy`; CREATE TABLE `{username}_legacy`.t (id INT PRIMARY KEY); INSERT INTO `{username}_legacy`.t VALUES (1);");
        else
            await app.ExecAsync(admin, $"CREATE USER '{username}'@'localhost' IDENTIFIED BY 'the-old-password'");
        try
        {
            await AssertRefusedAsync(username, $"{username}.test", HttpStatusCode.Conflict, "conflict", part == "database" ? $"{username}_legacy" : $"{username}@localhost");
        }
        finally
        {
            await app.ExecAsync(admin, $"DROP DATABASE IF EXISTS `{username}_legacy`; DROP USER IF EXISTS '{username}'@'localhost';");
        }
    }

    [Theory]
    [InlineData("php8.2-fpm")]
    [InlineData("10.0.0.1")]
    [InlineData("example.123")]
    [InlineData("-bad.example.com")]
    [InlineData("bad-.example.com")]
    [InlineData("example.com-")]
    [InlineData("localhost")]
    [InlineData("example.com\n")]
    public async Task NamesThatAreNoPublicDomainAreRefusedWith422(string domain)
    {
        await AssertRefusedAsync(ApiKit.NewUsername(), domain, HttpStatusCode.UnprocessableEntity, "validation_failed", "public fully qualified domain name");
    }

    [Theory]
    [InlineData(ProductionLikeApp.Hostname, "is the server's own host name")]
    [InlineData("www." + ProductionLikeApp.Hostname, "is the server's own host name")]
    [InlineData("example.net", "set Opterius:Provisioning:Hostname to a name outside it")]
    public async Task TheServersOwnHostNameAndNamesUnderOrAboveItAreRefusedWith409(string domain, string reason)
    {
        await AssertRefusedAsync(ApiKit.NewUsername(), domain, HttpStatusCode.Conflict, "conflict", reason);
    }

    [Fact]
    public async Task AnExistingGroupIsNamedOnceInTheRefusal()
    {
        var username = ApiKit.NewUsername();
        FileResourceSandbox.Run("groupadd", "-R", app.Root, username);

        var message = await AssertRefusedAsync(username, $"{username}.test", HttpStatusCode.Conflict, "conflict", $"group {username}");

        Assert.Single(System.Text.RegularExpressions.Regex.Matches(message, $@"\bgroup {username}\b"));
    }

    [Fact]
    public async Task AParentOfAnotherOwnersSubdomainIsRefusedHoweverManySubdomainsOfItsOwnTheOwnerHas()
    {
        // The other owner's name sorts after the ten own ones: a check that looked at the first ten related names missed it.
        var parent = $"{ApiKit.NewUsername()}.test";
        var reseller = await app.NewResellerAsync();
        var store = app.Get<AccountStore>();
        var rows = new List<long>();
        try
        {
            foreach (var i in Enumerable.Range(0, 10))
                rows.Add(await store.InsertCheckedAsync(ApiKit.NewUsername(), $"s{i}.{parent}", $"owner@{parent}", 1, app.Admin.Id, "8.2", _ => { }, default));
            rows.Add(await store.InsertCheckedAsync(ApiKit.NewUsername(), $"z.{parent}", $"owner@{parent}", 1, reseller.Id, "8.2", _ => { }, default));

            await AssertRefusedAsync(ApiKit.NewUsername(), parent, HttpStatusCode.Conflict, "conflict", $"is a parent of 'z.{parent}'");
        }
        finally
        {
            foreach (var id in rows) await store.DeleteRowAsync(id, default);
        }
    }

    [Fact]
    public async Task ACreateThatWaitsTooLongForTheCreateLockIsA409NotATimeout()
    {
        // Another panel process holding the lock every create takes, for longer than a create waits.
        await using var holder = new MySqlConnector.MySqlConnection(app.Databases.Panel);
        await holder.OpenAsync();
        await using (var take = new MySqlConnector.MySqlCommand("SELECT GET_LOCK(CONCAT('opterius:create:', DATABASE()), 0)", holder))
            Assert.Equal(1L, Convert.ToInt64(await take.ExecuteScalarAsync()));

        var username = ApiKit.NewUsername();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        await AssertRefusedAsync(username, $"{username}.test", HttpStatusCode.Conflict, "conflict", "Other accounts were being created for 10 seconds");

        // Well inside MySqlConnector's 30-s command timeout, which a wait of 30 s raced (and lost as a timeout, a 500).
        Assert.InRange(waited.Elapsed, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task WithoutStarterContentAnAccountGetsAZoneOfTheConfiguredServerAndNoSampleDatabasesMailOrCron()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var (u, d) = (made.Username, made.Domain);

        var records = await ProductionLikeApp.DumpAsync(app.Databases.PowerDns, $"""
            SELECT r.name, r.type, r.content, r.prio FROM records r JOIN domains z ON z.id = r.domain_id
            WHERE z.name = '{d}' ORDER BY r.type, r.name, r.content
            """);
        var serial = DateTime.UtcNow.ToString("yyyyMMdd") + "01";
        Assert.Equal(string.Join('\n',
            $"mail.{d} | A | {ProductionLikeApp.IPv4} | 0",
            $"{d} | A | {ProductionLikeApp.IPv4} | 0",
            $"www.{d} | A | {ProductionLikeApp.IPv4} | 0",
            $"mail.{d} | AAAA | {ProductionLikeApp.IPv6} | 0",
            $"{d} | AAAA | {ProductionLikeApp.IPv6} | 0",
            $"www.{d} | AAAA | {ProductionLikeApp.IPv6} | 0",
            $"{d} | MX | mail.{d} | 10",
            $"{d} | NS | ns1.example.net | 0",
            $"{d} | NS | ns2.example.net | 0",
            $"{d} | SOA | ns1.example.net dns\\.admin.example.net {serial} 10800 3600 604800 3600 | 0",
            $"{d} | TXT | \"v=spf1 a mx -all\" | 0"), records);

        Assert.Equal("", await ProductionLikeApp.DumpAsync(app.Databases.Admin, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", u + "_"));
        Assert.False(Path.Exists(app.Under($"/var/mail/vdomains/{d}")));
        Assert.DoesNotContain(File.ReadAllLines(app.Under("/etc/dovecot/users")), l => l.Contains("@" + d));
        Assert.DoesNotContain(File.ReadAllLines(app.Under("/etc/postfix/vmailbox")), l => l.Contains("@" + d));
        Assert.False(Path.Exists(app.Under($"/var/spool/cron/crontabs/{u}")));
        // What a hosting account is, samples or not: its user, its site, its database login.
        Assert.Contains(File.ReadAllLines(app.Under("/etc/passwd")), l => l.StartsWith(u + ":", StringComparison.Ordinal));
        Assert.True(File.Exists(app.Under($"/home/{u}/public_html/index.php")));
        Assert.True(File.Exists(app.Under($"/etc/nginx/sites-available/{d}.conf")));
        Assert.NotEqual("", await ProductionLikeApp.DumpAsync(app.Databases.Admin, $"SELECT User FROM mysql.global_priv WHERE User = '{u}'"));
    }

    [Fact]
    public async Task ConcurrentCreatesAtTheLicensesLimitMakeExactlyTheAccountsItAllows()
    {
        var client = await app.ClientAsync();
        var count = await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts");
        app.IssueLicense(maxAccounts: (int)count + 2, expiresDays: 30);
        try
        {
            var names = Enumerable.Range(0, 8).Select(_ => ApiKit.NewUsername()).ToList();
            var responses = await Task.WhenAll(names.Select(n => client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(n))));

            var outcomes = new List<string>();
            foreach (var r in responses)
                outcomes.Add(r.StatusCode == HttpStatusCode.Created ? "created" : $"{(int)r.StatusCode} {(await r.JsonOf()).Error()}");
            Assert.Equal(2, outcomes.Count(o => o == "created"));
            Assert.Equal(6, outcomes.Count(o => o == "403 account_limit_reached"));
            Assert.Equal(count + 2, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM accounts"));
            var refused = names.Where((_, i) => responses[i].StatusCode != HttpStatusCode.Created);
            Assert.All(refused, n => Assert.False(Path.Exists(app.Under($"/home/{n}")), $"{n} was refused but has a home"));
        }
        finally { app.IssueLicense(maxAccounts: null, expiresDays: 30); }
    }

    [Fact]
    public async Task AProvisionFailingHalfWayUndoesEverythingItMadeAndLeavesTheServerAsBefore()
    {
        var username = ApiKit.NewUsername();
        // A neighbour's site, enabled by a link into sites-available as every vhost is.
        var neighbour = $"{ApiKit.NewUsername()}.test";
        var available = app.Under("/etc/nginx/sites-available");
        var neighbourVhost = Path.Join(available, $"{neighbour}.conf");
        var neighbourLink = app.Under($"/etc/nginx/sites-enabled/{neighbour}.conf");
        Directory.CreateDirectory(available);
        Directory.CreateDirectory(Path.GetDirectoryName(neighbourLink)!);
        File.WriteAllText(neighbourVhost, $"server {{ server_name {neighbour}; }}\n");
        File.CreateSymbolicLink(neighbourLink, $"../sites-available/{neighbour}.conf");
        // sites-available is a file for a moment: the vhost, made last, cannot be written, after every other part was
        // made, and every enabled link (the neighbour's) points at nothing meanwhile.
        var aside = available + ".aside";
        Directory.Move(available, aside);
        File.WriteAllText(available, "not a folder\n");
        try
        {
            var client = await app.ClientAsync();
            var before = await app.ServerStateAsync(username);

            var response = await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(username));

            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
            var body = await response.JsonOf();
            Assert.Equal("provisioning_failed", body.Error());
            Assert.Equal("nginx_vhost", body.GetProperty("details").GetProperty("resource").GetString());
            Assert.Equal(before, await app.ServerStateAsync(username));
        }
        finally
        {
            File.Delete(available);
            Directory.Move(aside, available);
            File.Delete(neighbourLink);
            File.Delete(neighbourVhost);
        }
    }

    /// <summary>A real resource that, just before it is made, finds its part put there by someone else (a race past the check).</summary>
    private sealed class PlantedFirst(IAccountResource inner, Action plant) : IAccountResource
    {
        public string Key => inner.Key;
        public Task ProvisionAsync(NewAccount account, CancellationToken ct) { plant(); return inner.ProvisionAsync(account, ct); }
        public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);
        public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => inner.RemoveAsync(account, ct);
    }

    [Fact]
    public async Task APartThatAppearsAfterTheCheckIsAConflictItSurvivesAndEverythingThisCreateMadeGoes()
    {
        var username = ApiKit.NewUsername();
        var domain = $"{username}.test";
        var vhost = app.Under($"/etc/nginx/sites-available/{domain}.conf");
        var creation = new AccountCreation(app.Get<AccountStore>(), app.Get<DeletionJobStore>(), app.Get<PackageStore>(),
            app.Services.GetServices<IAccountResource>().Select(r => r.Key == "nginx_vhost" ? new PlantedFirst(r, () => File.WriteAllText(vhost, "# the operator's own\n")) : r).ToList(),
            app.Get<SystemUserResource>(), app.Get<DnsZoneResource>(), app.Get<LicenseService>(), app.Get<AuditLog>(), app.Get<AccountEvents>(), app.Get<IOptions<ProvisioningOptions>>(), NullLogger<AccountCreation>.Instance);
        var before = await app.ServerStateAsync(username);

        var refused = await Assert.ThrowsAsync<AccountConflictException>(() => creation.CreateAsync(app.AdminActor(), app.Admin.Id,
            new CreateAccountRequest(username, domain, $"owner@{domain}", Password, 1), default));

        Assert.Contains($"nginx_vhost: {vhost} already exists", refused.Message);
        Assert.Equal("# the operator's own\n", File.ReadAllText(vhost));
        File.Delete(vhost);
        Assert.Equal(before, await app.ServerStateAsync(username));
    }

    /// <summary>A real resource whose making fails before it does anything (the create fails there).</summary>
    private sealed class FailsToProvision(IAccountResource inner) : IAccountResource
    {
        public string Key => inner.Key;
        public Task ProvisionAsync(NewAccount account, CancellationToken ct) => throw new ResourceException($"injected failure making {Key}");
        public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);
        public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => inner.RemoveAsync(account, ct);
    }

    /// <summary>A real resource made for real whose removal fails before it does anything (the undo of the create fails there).</summary>
    private sealed class FailsToRemove(IAccountResource inner) : IAccountResource
    {
        public string Key => inner.Key;
        public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);
        public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);
        public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) => throw new ResourceException($"injected failure removing {Key}");
    }

    [Fact]
    public async Task ACreateWhoseUndoFailsKeepsTheAccountAsDeletionFailedNamingItAndItsDeleteLeavesTheServerAsBefore()
    {
        var username = ApiKit.NewUsername();
        // The same panel, but its create fails at the vhost and its undo cannot remove the zone it made; deletions are the real ones.
        await using var panel = app.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton(sp => new AccountCreation(
            sp.GetRequiredService<AccountStore>(), sp.GetRequiredService<DeletionJobStore>(), sp.GetRequiredService<PackageStore>(),
            sp.GetServices<IAccountResource>().Select(r => r.Key switch { "nginx_vhost" => new FailsToProvision(r), "dns_zone" => new FailsToRemove(r), _ => r }).ToList(),
            sp.GetRequiredService<SystemUserResource>(), sp.GetRequiredService<IDnsZones>(), sp.GetRequiredService<LicenseService>(),
            sp.GetRequiredService<AuditLog>(), sp.GetRequiredService<AccountEvents>(), sp.GetRequiredService<IOptions<ProvisioningOptions>>(), NullLogger<AccountCreation>.Instance))));
        var minted = await panel.Services.GetRequiredService<TokenService>().CreateAsync($"t{Guid.NewGuid():N}", Roles.Admin, app.Admin.Id, TokenScopes.All, null, default);
        var client = panel.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", minted.Token);
        var before = await app.ServerStateAsync(username);

        var response = await client.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(username));

        var body = await response.JsonOf();
        Assert.True(response.StatusCode == HttpStatusCode.InternalServerError, $"expected 500, got {(int)response.StatusCode}: {body}");
        Assert.Equal("provisioning_failed", body.Error());
        var id = await app.Databases.PanelScalarAsync<long>("SELECT id FROM accounts WHERE username = @username", new { username });
        var message = body.GetProperty("message").GetString()!;
        Assert.Contains("dns_zone could not be undone: injected failure removing dns_zone", message);
        Assert.Contains($"DELETE /api/v1/accounts/{id} finishes it", message);
        Assert.Equal(id, body.GetProperty("details").GetProperty("account_id").GetInt64());
        var listed = (await (await client.GetAsync($"/api/v1/accounts/{id}")).JsonOf()).GetProperty("data");
        Assert.Equal(AccountStatus.DeletionFailed, listed.GetProperty("status").GetString());
        var job = (await app.Get<DeletionJobStore>().LatestForAccountAsync(id, default))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(DeletionOrder.Keys, job.Steps.Select(s => s.Resource));
        Assert.Equal([("dns_zone", StepStatus.Failed)], job.Steps.Where(s => s.Status == StepStatus.Failed).Select(s => (s.Resource, s.Status)));
        Assert.Equal(StepStatus.Done, job.Steps.Single(s => s.Resource == "system_user").Status);
        Assert.Equal(StepStatus.Pending, job.Steps.Single(s => s.Resource == "nginx_vhost").Status); // never made: the DELETE looks and says

        var deleted = await client.DeleteAsync($"/api/v1/accounts/{id}");

        Assert.True(deleted.StatusCode == HttpStatusCode.NoContent, $"expected 204, got {(int)deleted.StatusCode}: {await deleted.Content.ReadAsStringAsync()}");
        Assert.Equal(before, await app.ServerStateAsync(username));
    }

    /// <summary>The real useradd -R of the run, wrapped so it misbehaves the way a real one can after making the user.</summary>
    public static TheoryData<string, string> MisbehavingUserAdds => new()
    {
        // The user is in passwd with the uid asked for, then useradd fails (e.g. writing /etc/subuid).
        { "fails after adding", """useradd -R "$1" -M -d "/home/$3" -s /bin/bash -U -u "$2" "$3" && echo "useradd: cannot lock /etc/subuid" >&2 && exit 1""" },
        // The user is made, but with another uid than the one the panel reserved.
        { "another uid", """useradd -R "$1" -M -d "/home/$3" -s /bin/bash -U -u "$(($2 + 1))" "$3" """ },
    };

    [Theory]
    [MemberData(nameof(MisbehavingUserAdds))]
    public async Task AUserAddThatMisbehavesAfterMakingTheUserLeavesNoUserBehind(string how, string script)
    {
        var username = ApiKit.NewUsername();
        var domain = $"{username}.test";
        var configured = app.Get<IOptions<OpteriusOptions>>().Value;
        var options = Options.Create(new OpteriusOptions
        {
            Root = configured.Root, MinUid = configured.MinUid, CommandTimeoutSeconds = configured.CommandTimeoutSeconds,
            Commands = new(configured.Commands, StringComparer.OrdinalIgnoreCase) { ["UserAdd"] = ["sh", "-c", script, "useradd", "{root}", "{uid}", "{username}"] },
        });
        var systemUser = new SystemUserResource(app.Get<ServerLayout>(), new CommandRunner(options), app.Get<ProcessesResource>(), options);
        var creation = new AccountCreation(app.Get<AccountStore>(), app.Get<DeletionJobStore>(), app.Get<PackageStore>(),
            app.Services.GetServices<IAccountResource>().Select(r => r.Key == "system_user" ? systemUser : r).ToList(),
            systemUser, app.Get<IDnsZones>(), app.Get<LicenseService>(), app.Get<AuditLog>(), app.Get<AccountEvents>(), app.Get<IOptions<ProvisioningOptions>>(), NullLogger<AccountCreation>.Instance);
        var before = await app.ServerStateAsync(username);

        var failed = await Assert.ThrowsAsync<ProvisioningFailedException>(() => creation.CreateAsync(app.AdminActor(), app.Admin.Id,
            new CreateAccountRequest(username, domain, $"owner@{domain}", Password, 1), default));

        Assert.Equal("system_user", failed.Resource);
        Assert.DoesNotContain(File.ReadAllLines(app.Under("/etc/passwd")), l => l.StartsWith(username + ":", StringComparison.Ordinal));
        Assert.True(before == await app.ServerStateAsync(username), $"{how}: the server changed");
    }
}
