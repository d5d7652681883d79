using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Deletion.DeletionTesting;

namespace Opterius.Web.Tests.Deletion;

/// <summary>The signed erasure record of a finished deletion: what it says, who may have it, and that anyone can verify it offline.</summary>
public sealed class ErasureRecordTests(ApiApp app) : IClassFixture<ApiApp>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-record-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Deletes the account over the API (respond-async), waits for the job; its id.</summary>
    private async Task<long> DeleteAsync(HttpClient client, long accountId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/accounts/{accountId}");
        request.Headers.Add("Prefer", "respond-async");
        var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var jobId = long.Parse(response.Headers.Location!.OriginalString.Split('/')[^1]);
        Assert.Equal(JobStatus.Succeeded, (await app.WaitForJobAsync(jobId)).Status);
        return jobId;
    }

    private async Task<(byte[] Record, string Key)> RecordAsync(HttpClient client, long jobId)
    {
        var response = await client.GetAsync($"/api/v1/deletions/{jobId}/record");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var key = await client.GetAsync("/api/v1/deletions/record-key");
        Assert.Equal(HttpStatusCode.OK, key.StatusCode);
        return (await response.Content.ReadAsByteArrayAsync(), await key.Content.ReadAsStringAsync());
    }

    /// <summary>The README's openssl verification, word for word, on the files in <see cref="_folder"/>.</summary>
    private async Task<(int Exit, string Output)> OpensslVerifyAsync(byte[] record, string key)
    {
        await File.WriteAllBytesAsync(Path.Combine(_folder, "record.json"), record);
        await File.WriteAllTextAsync(Path.Combine(_folder, "record-key.pem"), key);
        var psi = new ProcessStartInfo("bash") { WorkingDirectory = _folder, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("""
            sed -n 2p record.json | tr -d '\n' > payload.json
            sed -n 3p record.json | cut -d'"' -f4 | base64 -d > signature.der
            openssl dgst -sha256 -verify record-key.pem -signature signature.der payload.json
            """);
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, output.Trim());
    }

    [Fact]
    public void ARecordKeyOthersCouldReadOrAnotherUserOwnsIsRefusedSayingWhyAndOnceRepairedIsUsedWithoutARestart()
    {
        var path = Path.Combine(_folder, "record.key");
        SigningKeys.LoadOrCreate(path, out var created).Dispose();
        Assert.True(created);
        var records = new ErasureRecords(app.Get<Opterius.Services.Data.PanelDb>(), app.Get<DeletionJobStore>(), app.Get<IFinalBackups>(),
            Microsoft.Extensions.Options.Options.Create(new DeletionOptions { RecordSigningKey = path }), TimeProvider.System);

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var open = Assert.Throws<UnsafeSigningKeyException>(() => records.PublicKeyPem);
        Assert.Contains("mode 0644", open.Message);
        Assert.Contains("0600", open.Message);

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Chown("200123", path);
        var foreign = Assert.Throws<UnsafeSigningKeyException>(() => records.PublicKeyPem);
        Assert.Contains("owned by uid 200123", foreign.Message);

        Chown(Environment.UserName, path);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", records.PublicKeyPem);
    }

    private static void Chown(string owner, string path)
    {
        using var p = Process.Start("chown", [owner, path]);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public async Task TheRecordOfAFinishedDeletionVerifiesWithThePanelsPublicKeyInOpensslAndInDotNetAndSaysWhatWasErased()
    {
        var tokenName = $"t{Guid.NewGuid():N}";
        var token = await app.Get<Opterius.Services.Tokens.TokenService>().CreateAsync(tokenName, "admin", app.Admin.Id, Opterius.Services.Tokens.TokenScopes.All, null, default);
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", token.Token);
        var made = await client.CreateOverApiAsync();
        var account = (await app.Get<AccountStore>().FindAsync(new Viewer(0, true), made.Id, default))!;
        var planned = await app.InspectAllAsync(account);
        var jobId = await DeleteAsync(client, made.Id);
        var job = (await app.Get<DeletionJobStore>().FindAsync(jobId, default))!;

        var (record, key) = await RecordAsync(client, jobId);

        Assert.Equal((0, "Verified OK"), await OpensslVerifyAsync(record, key));
        var r = ErasureRecords.Verify(record, key);
        Assert.Equal(("opterius.erasure_record", 1), (r.Type, r.Version));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(PublicKeyDer(key))), r.KeyId);
        Assert.Equal((jobId, JobStatus.Succeeded, job.FinishedAt), (r.Job.Id, r.Job.Status, r.Job.FinishedAt));
        Assert.Equal((made.Id, made.Username, made.Domain, account.Email), (r.Account.Id, r.Account.Username, r.Account.Domain, r.Account.Email));
        Assert.Equal((app.Admin.Id, app.Admin.Username, "admin"), (r.Account.Owner.Id, r.Account.Owner.Username, r.Account.Owner.Role));
        Assert.NotNull(r.Requester);
        Assert.Equal((tokenName, "token", ApiApp.ClientIp), (r.Requester.Actor, r.Requester.Kind, r.Requester.SourceIp));
        Assert.Null(r.ScheduledBy);
        Assert.NotNull(r.Plan);
        Assert.Equal(planned.Values.Where(i => i.Exists).Select(i => i.Resource).Order(), r.Plan.Resources.Where(i => i.Exists).Select(i => i.Resource).Order());
        Assert.Equal(planned.Values.Sum(i => i.Bytes), r.Plan.TotalBytes);
        Assert.Equal(job.Steps.Select(s => (s.Position, s.Resource, s.Status, s.Detail)), r.Steps.Select(s => (s.Position, s.Resource, s.Status, s.Detail)));
        Assert.All(r.Steps, s => Assert.True(s.StartedAt is { } at && at <= s.FinishedAt, $"{s.Resource}: started {s.StartedAt}, finished {s.FinishedAt}"));
        Assert.NotNull(r.Verification);
        Assert.True(r.Verification.Passed);
        Assert.Equal(DeletionOrder.Keys, r.Verification.Resources.Select(c => c.Resource));
        Assert.Equal(FinalBackupState.None, r.FinalBackup.Status);
        Assert.True(File.Exists(app.RecordKeyPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(app.RecordKeyPath));
    }

    [Fact]
    public async Task ARecordWithOneByteChangedDoesNotVerify()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var (record, key) = await RecordAsync(client, await DeleteAsync(client, made.Id));
        var text = Encoding.UTF8.GetString(record);
        var at = text.IndexOf($"\"username\":\"{made.Username}\"", StringComparison.Ordinal) + "\"username\":\"".Length;
        var changed = (byte[])record.Clone();
        changed[at] = (byte)(changed[at] == 'x' ? 'y' : 'x');

        var (exit, output) = await OpensslVerifyAsync(changed, key);

        Assert.Equal(1, exit);
        Assert.Contains("Verification failure", output);
        Assert.Throws<LicenseSignatureException>(() => ErasureRecords.Verify(changed, key));
        Assert.Equal((0, "Verified OK"), await OpensslVerifyAsync(record, key)); // the control: the original does
    }

    [Fact]
    public async Task AResellerGetsOnlyTheRecordsOfItsOwnAccounts()
    {
        var reseller = await app.NewResellerAsync();
        var resellers = await app.ClientAsync(Opterius.Services.Users.Roles.Reseller, reseller.Id);
        var admins = await app.ClientAsync();
        var ownJob = await DeleteAsync(resellers, (await resellers.CreateOverApiAsync()).Id);
        var foreignJob = await DeleteAsync(admins, (await admins.CreateOverApiAsync()).Id);

        Assert.Equal(HttpStatusCode.OK, (await resellers.GetAsync($"/api/v1/deletions/{ownJob}/record")).StatusCode);
        var foreign = await resellers.GetAsync($"/api/v1/deletions/{foreignJob}/record");
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Equal("not_found", (await foreign.JsonOf()).Error());
        Assert.Equal(HttpStatusCode.NotFound, (await admins.GetAsync("/api/v1/deletions/999999999/record")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admins.GetAsync("/api/v1/deletions/abc/record")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admins.GetAsync($"/api/v1/deletions/{ownJob}/record")).StatusCode);
    }

    [Fact]
    public async Task ThereIsNoRecordOfAJobThatRunsOrFailedAndTheAnswerSaysWhenToAskAgain()
    {
        var client = await app.ClientAsync();
        var made = await client.CreateOverApiAsync();
        var account = (await app.Get<AccountStore>().FindAsync(new Viewer(0, true), made.Id, default))!;
        var store = app.Get<DeletionJobStore>();
        var job = (await store.OpenAsync(account, "tests", default))!; // opened, leased to this panel, not run

        var running = await client.GetAsync($"/api/v1/deletions/{job.Id}/record");
        Assert.True(await store.FailAsync(job, default));
        var failed = await client.GetAsync($"/api/v1/deletions/{job.Id}/record");

        Assert.Equal(HttpStatusCode.Conflict, running.StatusCode);
        Assert.Contains("is still running: ask for its record once it has finished", (await running.JsonOf()).GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.Conflict, failed.StatusCode);
        Assert.Contains($"DELETE /api/v1/accounts/{made.Id} resumes it", (await failed.JsonOf()).GetProperty("message").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/accounts/{made.Id}")).StatusCode);
        var (record, key) = await RecordAsync(client, job.Id);
        Assert.Equal(JobStatus.Succeeded, ErasureRecords.Verify(record, key).Job.Status);
    }

    [Fact]
    public async Task TheUiDownloadNeedsASignedInUser()
    {
        var anonymous = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        var response = await anonymous.GetAsync("/ui/deletions/1/record");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Contains("/login", response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task ASignedInUserDownloadsTheRecordFromTheUiAndAResellerOnlyOfItsOwnAccounts()
    {
        var admins = await app.ClientAsync();
        var jobId = await DeleteAsync(admins, (await admins.CreateOverApiAsync()).Id);
        var reseller = await app.NewResellerAsync();
        var (adminBrowser, resellerBrowser) = (Browser(), Browser());
        Assert.Equal(HttpStatusCode.Redirect, (await Auth.SignInTests.PostSignInAsync(adminBrowser, app.Admin.Username, "admin-password-1")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await Auth.SignInTests.PostSignInAsync(resellerBrowser, reseller.Username, "reseller-password-1")).StatusCode);

        var download = await adminBrowser.GetAsync(Web.Api.ErasureRecordsApi.UiPathOf(jobId));
        var foreign = await resellerBrowser.GetAsync(Web.Api.ErasureRecordsApi.UiPathOf(jobId));

        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal($"erasure-record-job-{jobId}.json", download.Content.Headers.ContentDisposition?.FileName);
        var key = await (await admins.GetAsync("/api/v1/deletions/record-key")).Content.ReadAsStringAsync();
        Assert.Equal(jobId, ErasureRecords.Verify(await download.Content.ReadAsByteArrayAsync(), key).Job.Id);
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
    }

    private HttpClient Browser() =>
        app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    private static byte[] PublicKeyDer(string pem)
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(pem);
        return key.ExportSubjectPublicKeyInfo();
    }
}
