using System.Net;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Backups;

/// <summary>A panel whose BackupPath is a 256 KiB tmpfs, mounted for the test class.</summary>
public sealed class TinyBackupDiskApp : PanelApp
{
    public override string BackupPath { get; } = Directory.CreateTempSubdirectory("opterius-tiny-backups-").FullName;

    public override async Task InitializeAsync()
    {
        FileResourceSandbox.Run("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", BackupPath);
        await base.InitializeAsync();
    }
}

public sealed class FullBackupDiskTests(TinyBackupDiskApp app) : IClassFixture<TinyBackupDiskApp>, IDisposable
{
    [Fact]
    public async Task ABackupThatRunsOutOfDiskRemovesNothingSaysWhyAndLeavesNoPartialFile()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = new ServerLayoutOf(app).Home(account);
        // Incompressible, and four times the room the backup folder has.
        File.WriteAllBytes(Path.Join(home, "public_html", "video.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(1024 * 1024));
        var before = FileResourceSandbox.Snapshot(home);
        var inspectedBefore = (await app.InspectAllAsync(account.Id)).Select(i => (i.Resource, i.Exists, i.Count)).ToList();
        var client = await app.ClientAsync();

        var response = await client.DeleteAsync($"/api/v1/accounts/{account.Id}?backup=true");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.JsonOf();
        Assert.Equal("backup_failed", body.Error());
        Assert.Contains("No space left on device", body.GetProperty("message").GetString());
        Assert.Equal(before, FileResourceSandbox.Snapshot(home));
        Assert.Equal(inspectedBefore, (await app.InspectAllAsync(account.Id)).Select(i => (i.Resource, i.Exists, i.Count)).ToList());
        Assert.Empty(Directory.EnumerateFileSystemEntries(app.BackupPath));
        Assert.Equal(AccountStatus.Active, (await app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default))!.Status);
        var job = (await app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal((DeletionOrder.FinalBackup, StepStatus.Failed), (job.Steps[0].Resource, job.Steps[0].Status));
        Assert.All(job.Steps.Skip(1), s => Assert.Equal((s.Resource, StepStatus.Pending), (s.Resource, s.Status)));
        Assert.Empty((await app.Get<BackupStore>().ListAsync(new Viewer(0, true), 1, 10, account.Id, default)).Items);

        // The operator makes room (here: the tiny disk goes) and calls DELETE again, without repeating backup=true:
        // the job resumes at its backup, writes it, then deletes.
        FileResourceSandbox.Run("umount", app.BackupPath);
        var resumed = await client.DeleteAsync($"/api/v1/accounts/{account.Id}");

        Assert.Equal(HttpStatusCode.NoContent, resumed.StatusCode);
        job = (await app.Get<DeletionJobStore>().LatestForAccountAsync(account.Id, default))!;
        Assert.Equal((DeletionOrder.FinalBackup, StepStatus.Done), (job.Steps[0].Resource, job.Steps[0].Status));
        var backup = Assert.Single((await app.Get<BackupStore>().ListAsync(new Viewer(0, true), 1, 10, account.Id, default)).Items);
        Assert.True(backup.Available);
        Assert.True(File.Exists(Path.Join(app.BackupPath, backup.FileName)));
        Assert.False(Directory.Exists(home));
    }

    public void Dispose()
    {
        try { FileResourceSandbox.Run("umount", app.BackupPath); } catch (InvalidOperationException) { }
    }
}
