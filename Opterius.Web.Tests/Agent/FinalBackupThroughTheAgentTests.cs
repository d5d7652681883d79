using System.Net;
using System.Text;
using Opterius.Services.Accounts;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Web.Tests.Api;
using Opterius.Web.Tests.Backups;
using Opterius.Web.Tests.Infrastructure;
using Opterius.Web.Tests.Resources;

namespace Opterius.Web.Tests.Agent;

/// <summary>The final backup written and purged by the real agent (root, a child process), the panel holding no credentials.</summary>
public sealed class FinalBackupThroughTheAgentTests(AgentServingApp app) : IClassFixture<AgentServingApp>
{
    [Fact]
    public async Task TheAgentWritesTheFinalBackupWithProgressBeforeTheDeletionAndPurgesItOnRequest()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var home = new ServerLayoutOf(app).Home(account);
        File.CreateSymbolicLink(Path.Join(home, "public_html", "latest"), "index.php");
        var expectedHome = FileResourceSandbox.Snapshot(home);
        var details = new List<string>();
        using var subscription = app.Get<DeletionEvents>().Subscribe(account.Id, e =>
        {
            if (e.Resource == DeletionOrder.FinalBackup && e.IsProgress) lock (details) details.Add(e.Detail!);
        }, out _);
        var client = await app.ClientAsync();

        var response = await client.DeleteAsync($"/api/v1/accounts/{account.Id}?backup=true");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.False(Directory.Exists(home));
        lock (details) Assert.Contains(details, d => d.StartsWith("archived ", StringComparison.Ordinal) && d.Contains(" of "));
        var backup = Assert.Single((await app.Get<BackupStore>().ListAsync(new Viewer(0, true), 1, 10, account.Id, default)).Items);
        var file = Path.Join(app.BackupPath, backup.FileName);
        var entries = ArchiveReader.Read(file, out _);
        Assert.Equal(expectedHome, ArchiveReader.TreeOf(entries, "home/", home));
        Assert.Contains("Hello world", Encoding.UTF8.GetString(entries[$"databases/{account.Username}_wp.sql"].Content!));

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/backups/{backup.Id}")).StatusCode);
        Assert.False(File.Exists(file));
        Assert.Equal("purged", (await (await client.GetAsync($"/api/v1/backups/{backup.Id}")).JsonOf()).GetProperty("data").GetProperty("status").GetString());
    }
}
