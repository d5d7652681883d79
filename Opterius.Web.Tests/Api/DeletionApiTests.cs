using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Tests.Deletion;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Api;

public sealed class DeletionApiTests(ApiApp app) : IClassFixture<ApiApp>
{
    [Fact]
    public async Task DeletingAnAccountAnswers204AfterEveryResourceIsGone()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();

        var response = await client.DeleteAsync($"/api/v1/accounts/{made.Id}");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.False(Directory.Exists(ApiKit.HomeOf(made.Username)));
        Assert.False(File.Exists(ApiKit.VhostOf(made.Domain)));
        Assert.Null(await app.StatusOf(made.Id));
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);
    }

    [Fact]
    public async Task DeletingASuspendedAccountRemovesEverythingToo()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/accounts/{made.Id}/suspend", null)).StatusCode);
        var account = await app.Get<Opterius.Services.Accounts.AccountStore>().FindAsync(new(0, true), made.Id, default);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);
        var identity = Opterius.Services.Accounts.AccountIdentity.From(account!);
        foreach (var resource in app.Services.GetServices<Opterius.Services.Resources.IAccountResource>()) // the row is gone: inspect by identity
        {
            var left = await resource.InspectAsync(identity, default);
            Assert.False(left.Exists, $"{left.Resource} is still there: {left.Summary}");
        }
        Assert.Null(await app.StatusOf(made.Id));
    }

    [Fact]
    public async Task ADryRunReturnsThePlanAndChangesNothing()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var before = await app.SnapshotAsync(made.Id);

        var response = await client.DeleteAsync($"/api/v1/accounts/{made.Id}?dry_run=true");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var plan = (await response.JsonOf()).GetProperty("data");
        Assert.Equal(made.Username, plan.GetProperty("username").GetString());
        var resources = plan.GetProperty("resources").EnumerateArray().ToList();
        var home = resources.Single(r => r.GetProperty("resource").GetString() == "home_directory");
        Assert.True(home.GetProperty("exists").GetBoolean());
        Assert.Contains(home.GetProperty("items").EnumerateArray(), i => i.GetString() == ApiKit.HomeOf(made.Username));
        Assert.Equal(before, await app.SnapshotAsync(made.Id));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("18446744073709551616")]
    [InlineData("987654321")]
    public async Task DeletingAnUnknownIdIsNotFound(string id)
    {
        var client = await app.ClientAsync();
        foreach (var url in new[] { $"/api/v1/accounts/{id}", $"/api/v1/accounts/{id}?dry_run=true" })
        {
            var response = await client.DeleteAsync(url);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", (await response.JsonOf()).Error());
        }
    }

    [Fact]
    public async Task PreferRespondAsyncAnswers202WithTheJobToFollow()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();

        var expected = await app.ExpectedStepStatusesAsync(made.Id);
        var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/accounts/{made.Id}");
        request.Headers.Add("Prefer", "respond-async");
        var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var location = response.Headers.Location!.OriginalString;
        Assert.Matches("^/api/v1/deletions/[0-9]+$", location);

        var job = default(System.Text.Json.JsonElement);
        for (var i = 0; i < 600; i++)
        {
            job = (await (await client.GetAsync(location)).JsonOf()).GetProperty("data");
            if (job.GetProperty("status").GetString() != "running") break;
            await Task.Delay(50);
        }
        Assert.Equal("succeeded", job.GetProperty("status").GetString());
        Assert.Equal(made.Id, job.GetProperty("account_id").GetInt64());
        var steps = job.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(DeletionOrder.Keys, steps.Select(s => s.GetProperty("resource").GetString()));
        Assert.Equal(expected.OrderBy(e => e.Key), steps.ToDictionary(s => s.GetProperty("resource").GetString()!, s => s.GetProperty("status").GetString()!).OrderBy(e => e.Key));
        var verification = job.GetProperty("verification");
        Assert.True(verification.GetProperty("passed").GetBoolean());
        Assert.Equal(JsonValueKind.String, verification.GetProperty("checked_at").ValueKind);
        var checks = verification.GetProperty("resources").EnumerateArray().ToList();
        Assert.Equal(DeletionOrder.Keys, checks.Select(c => c.GetProperty("resource").GetString()));
        Assert.All(checks, c => Assert.Equal("gone", c.GetProperty("status").GetString()));
        Assert.False(Directory.Exists(ApiKit.HomeOf(made.Username)));
    }

    [Fact]
    public async Task AFailedStepIsA500NamingItAndTheNextDeleteResumes()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        // A tenant swapped its home for a link: the safe delete refuses to follow it, so that step fails.
        var home = ApiKit.HomeOf(made.Username);
        var moved = home + ".moved";
        Directory.Move(home, moved);
        File.CreateSymbolicLink(home, moved);

        var failed = await client.DeleteAsync($"/api/v1/accounts/{made.Id}");

        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        var body = await failed.JsonOf();
        Assert.Equal("deletion_failed", body.Error());
        var step = Assert.Single(body.GetProperty("details").GetProperty("failed_steps").EnumerateArray());
        Assert.Equal("home_directory", step.GetProperty("resource").GetString());
        Assert.False(string.IsNullOrWhiteSpace(step.GetProperty("detail").GetString()));
        Assert.Equal("deletion_failed", await app.StatusOf(made.Id));
        Assert.True(Directory.Exists(moved));

        File.Delete(home);
        Directory.Move(moved, home);
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);
        Assert.False(Directory.Exists(home));
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM deletion_jobs WHERE account_id = @id", new { id = made.Id }));
    }

    [Fact]
    public async Task TenConcurrentDeletesRunOneDeletionAndAllAnswer204()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();

        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => client.DeleteAsync($"/api/v1/accounts/{made.Id}")));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.NoContent, r.StatusCode));
        Assert.Equal(1, await app.Databases.PanelScalarAsync<long>("SELECT COUNT(*) FROM deletion_jobs WHERE account_id = @id", new { id = made.Id }));
        Assert.False(Directory.Exists(ApiKit.HomeOf(made.Username)));
    }

    [Fact]
    public async Task AResellerSeesOnlyItsOwnDeletionJobs()
    {
        var admin = await app.ClientAsync();
        var reseller = await app.NewResellerAsync();
        var resellerClient = await app.ClientAsync(Roles.Reseller, reseller.Id);
        var own = await resellerClient.CreateOverApiAsync();
        var foreign = await admin.CreateOverApiAsync();

        var ownJob = await StartAsync(resellerClient, own.Id);
        var foreignJob = await StartAsync(admin, foreign.Id);

        Assert.Equal(HttpStatusCode.OK, (await resellerClient.GetAsync(ownJob)).StatusCode);
        var refused = await resellerClient.GetAsync(foreignJob);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.Equal("not_found", (await refused.JsonOf()).Error());
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(ownJob)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/deletions/abc")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/v1/deletions/99999999")).StatusCode);
    }

    [Fact]
    public async Task ADeleteOnlyTokenCannotCreateAndAWriteOnlyTokenCannotDelete()
    {
        var admin = await app.ClientAsync();
        var made = await admin.CreateOverApiAsync();
        var writer = await app.ClientAsync(scopes: ["accounts:write"]);
        var deleter = await app.ClientAsync(scopes: ["accounts:delete"]);

        Assert.Equal(HttpStatusCode.Forbidden, (await writer.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await deleter.PostAsJsonAsync("/api/v1/accounts", ApiKit.NewAccountBody(ApiKit.NewUsername()))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await deleter.GetAsync("/api/v1/accounts")).StatusCode);
        Assert.Equal("active", await app.StatusOf(made.Id));
    }

    private static async Task<string> StartAsync(HttpClient client, long id)
    {
        var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/accounts/{id}");
        request.Headers.Add("Prefer", "respond-async");
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return response.Headers.Location!.OriginalString;
    }
}

/// <summary>The panel with one resource whose first removal says "done" and removes nothing: what only the verification can catch.</summary>
public sealed class LyingCronApp : ApiApp
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureTestServices(services =>
        {
            var kinds = services.Where(d => d.ServiceType == typeof(IAccountResource)).ToList();
            foreach (var d in kinds) services.Remove(d);
            foreach (var d in kinds)
            {
                var make = d.ImplementationFactory!;
                services.AddSingleton(sp => (IAccountResource)make(sp) is { Key: "cron" } cron ? new LyingOnceResource(cron) : (IAccountResource)make(sp));
            }
        });
    }
}

public sealed class DeletionVerificationApiTests(LyingCronApp app) : IClassFixture<LyingCronApp>
{
    [Fact]
    public async Task WhatIsStillThereAfterTheLastStepIsA500NamingItTheJobShowsTheVerificationAndTheNextDeleteFinishesIt()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var crontab = Path.Combine(PrivateServices.SandboxRoot, "var", "spool", "cron", "crontabs", made.Username);
        Assert.True(File.Exists(crontab), $"the account's crontab {crontab} should exist after creation");

        var failed = await client.DeleteAsync($"/api/v1/accounts/{made.Id}");

        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        var body = await failed.JsonOf();
        Assert.Equal("deletion_failed", body.Error());
        Assert.Contains("cron: still there after the last step", body.GetProperty("message").GetString());
        var details = body.GetProperty("details");
        var step = Assert.Single(details.GetProperty("failed_steps").EnumerateArray());
        Assert.Equal("cron", step.GetProperty("resource").GetString());
        Assert.StartsWith("still there after the last step: ", step.GetProperty("detail").GetString());
        Assert.False(details.GetProperty("verification").GetProperty("passed").GetBoolean());
        Assert.Equal("deletion_failed", await app.StatusOf(made.Id));
        Assert.True(File.Exists(crontab));

        var job = (await (await client.GetAsync($"/api/v1/deletions/{details.GetProperty("job_id").GetInt64()}")).JsonOf()).GetProperty("data");
        Assert.Equal("failed", job.GetProperty("status").GetString());
        var checks = job.GetProperty("verification").GetProperty("resources").EnumerateArray().ToList();
        Assert.Equal(DeletionOrder.Keys, checks.Select(c => c.GetProperty("resource").GetString()));
        Assert.All(checks, c => Assert.Equal(c.GetProperty("resource").GetString() == "cron" ? "left" : "gone", c.GetProperty("status").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(checks.Single(c => c.GetProperty("resource").GetString() == "cron").GetProperty("summary").GetString()));

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);

        Assert.False(File.Exists(crontab));
        Assert.Null(await app.StatusOf(made.Id));
        var finished = (await (await client.GetAsync($"/api/v1/deletions/{job.GetProperty("id").GetInt64()}")).JsonOf()).GetProperty("data");
        Assert.Equal("succeeded", finished.GetProperty("status").GetString());
        Assert.True(finished.GetProperty("verification").GetProperty("passed").GetBoolean());
        Assert.All(finished.GetProperty("steps").EnumerateArray(),
            s => Assert.Equal(s.GetProperty("resource").GetString() is "processes" or "user_files" ? "skipped" : "done", s.GetProperty("status").GetString()));
    }
}
