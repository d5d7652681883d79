using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

/// <summary>
/// Each file resource, asked to make a part that is already there (put by an operator, another tool, or a create
/// racing this one past the create path's own check), refuses and leaves every byte of the server as it was.
/// </summary>
public sealed class ProvisionRefusesWhatExistsTests : IDisposable
{
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private void Write(string productionPath, string text)
    {
        var path = _box.Layout.Under(productionPath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    [Theory]
    [InlineData("home_directory", "/home/bob/public_html/index.html")]
    [InlineData("cron", "/var/spool/cron/crontabs/bob")]
    [InlineData("ssl_certificate", "/etc/letsencrypt/live/example.com/fullchain.pem")]
    [InlineData("ssl_certificate", "/etc/letsencrypt/renewal/example.com.conf")]
    [InlineData("mailboxes", "/var/mail/vdomains/example.com/info/new/1.msg")]
    public async Task AnExistingPartIsRefusedAndEveryByteStays(string resource, string existing)
    {
        Write(existing, "the operator's own\n");
        IAccountResource r = resource switch
        {
            "home_directory" => _box.Home,
            "cron" => _box.Cron,
            "ssl_certificate" => _box.Certificate,
            _ => _box.Mailboxes,
        };
        var before = Snapshot(_box.Root);

        var refused = await Assert.ThrowsAsync<AlreadyThereException>(() => r.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default));

        Assert.Contains("left as it is", refused.Message);
        Assert.Equal(before, Snapshot(_box.Root));
    }
}
