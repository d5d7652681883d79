using System.Text;
using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Commands;
using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

/// <summary>mailboxes, mail_users and mail_routes: the files and lines of one domain among look-alike neighbours.</summary>
public sealed class MailFilesResourceTests : IDisposable
{
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private static readonly (string User, string Domain)[] Neighbours =
        [("bobby", "example.com.au"), ("sub", "sub.example.com"), ("xbob", "xexample.com")];

    private async Task ProvisionMailAsync(string user, string domain)
    {
        var account = NewAccount(user, domain, uid: 200001);
        await _box.Mailboxes.ProvisionAsync(account, default);
        await _box.MailUsers.ProvisionAsync(account, default);
        await _box.MailRoutes.ProvisionAsync(account, default);
    }

    private string Postmap(string key)
    {
        try { return Run("postmap", "-q", key, $"hash:{_box.Layout.PostfixVmailbox}").Trim(); }
        catch (InvalidOperationException) { return ""; } // exit 1: not found
    }

    [Fact]
    public async Task ADomainsMailIsProvisionedInspectedAndRemovedWhileLookAlikeNeighboursKeepEverything()
    {
        foreach (var (u, d) in Neighbours) await ProvisionMailAsync(u, d);
        await ProvisionMailAsync("bob", "example.com");
        var users = File.ReadAllBytes(_box.Layout.DovecotUsers);
        var neighbourUsers = File.ReadAllLines(_box.Layout.DovecotUsers).Where(l => !l.Contains("@example.com:")).ToList();
        var neighbourRoutes = File.ReadAllLines(_box.Layout.PostfixVmailbox).Where(l => !l.StartsWith("admin@example.com ") && !l.StartsWith("info@example.com ")).ToList();
        var neighbourBoxes = Neighbours.Select(n => Snapshot(Path.Combine(_box.Layout.MailDomainsParent, n.Domain))).ToList();
        var bob = Identity("bob", "example.com");
        Assert.Equal("example.com/admin/", Postmap("admin@example.com"));
        Assert.Contains("admin@example.com:{SSHA512}", Encoding.UTF8.GetString(users));

        var boxes = await _box.Mailboxes.InspectAsync(bob, default);
        var mailUsers = await _box.MailUsers.InspectAsync(bob, default);
        var routes = await _box.MailRoutes.InspectAsync(bob, default);
        Assert.Equal(2, boxes.Count);
        Assert.True(boxes.Bytes > 0);
        Assert.Equal(["admin@example.com", "info@example.com"], mailUsers.Items);
        Assert.Equal(["admin@example.com", "info@example.com"], routes.Items);
        Assert.Single(Directory.GetFiles(Path.Combine(_box.Layout.Mailboxes(bob), "admin", "new")));

        Assert.Equal(StepStatus.Done, (await _box.MailRoutes.RemoveAsync(bob, default)).Status);
        Assert.Equal(StepStatus.Done, (await _box.MailUsers.RemoveAsync(bob, default)).Status);
        Assert.Equal(StepStatus.Done, (await _box.Mailboxes.RemoveAsync(bob, default)).Status);

        Assert.False(Path.Exists(_box.Layout.Mailboxes(bob)));
        Assert.Equal(neighbourUsers, File.ReadAllLines(_box.Layout.DovecotUsers));
        Assert.Equal(neighbourRoutes, File.ReadAllLines(_box.Layout.PostfixVmailbox));
        Assert.Equal(neighbourBoxes, Neighbours.Select(n => Snapshot(Path.Combine(_box.Layout.MailDomainsParent, n.Domain))));
        Assert.Equal("", Postmap("admin@example.com"));
        Assert.Equal("example.com.au/admin/", Postmap("admin@example.com.au"));
        Assert.Equal("sub.example.com/info/", Postmap("info@sub.example.com"));
        foreach (var r in new IAccountResource[] { _box.Mailboxes, _box.MailUsers, _box.MailRoutes })
        {
            Assert.False((await r.InspectAsync(bob, default)).Exists);
            var again = await r.RemoveAsync(bob, default);
            Assert.Equal(StepStatus.Skipped, again.Status);
            Assert.Contains("nothing there", again.Detail);
        }
    }

    [Fact]
    public async Task TheLineFilesKeepTheirOwnerAndMode()
    {
        await ProvisionMailAsync("bob", "example.com");
        await ProvisionMailAsync("bobby", "example.com.au");
        Run("chown", "0:8", _box.Layout.DovecotUsers);
        Run("chmod", "640", _box.Layout.DovecotUsers);
        Run("chown", "0:0", _box.Layout.PostfixVmailbox);
        Run("chmod", "644", _box.Layout.PostfixVmailbox);

        await _box.MailUsers.RemoveAsync(Identity("bob", "example.com"), default);
        await _box.MailRoutes.RemoveAsync(Identity("bob", "example.com"), default);

        Assert.Equal("640 0:8", Stat(_box.Layout.DovecotUsers));
        Assert.Equal("644 0:0", Stat(_box.Layout.PostfixVmailbox));
    }

    [Fact]
    public async Task SuspendingRefusesMailLoginAndUnsuspendGivesBackTheSameBytes()
    {
        await ProvisionMailAsync("bobby", "example.com.au");
        await ProvisionMailAsync("bob", "example.com");
        var before = File.ReadAllBytes(_box.Layout.DovecotUsers);
        var bob = Identity("bob", "example.com");

        await _box.MailUsers.SuspendAsync(bob, default);
        await _box.MailUsers.SuspendAsync(bob, default);
        var suspended = File.ReadAllLines(_box.Layout.DovecotUsers);

        // Dovecot's passwd-file skips '#' lines: the users are unknown, their logins refused.
        Assert.All(suspended.Where(l => l.Contains("@example.com:")), l => Assert.StartsWith("#", l));
        Assert.All(suspended.Where(l => l.Contains("@example.com.au:")), l => Assert.StartsWith("admin@", l.Replace("info@", "admin@")));
        Assert.Contains("suspended", (await _box.MailUsers.InspectAsync(bob, default)).Summary);

        await _box.MailUsers.UnsuspendAsync(bob, default);
        await _box.MailUsers.UnsuspendAsync(bob, default);
        Assert.Equal(before, File.ReadAllBytes(_box.Layout.DovecotUsers));

        await _box.MailUsers.SuspendAsync(bob, default);
        Assert.Equal(StepStatus.Done, (await _box.MailUsers.RemoveAsync(bob, default)).Status);
        Assert.DoesNotContain("@example.com:", File.ReadAllText(_box.Layout.DovecotUsers));
    }

    [Fact]
    public async Task CommentLinesThatLookLikeTheDomainsEntriesStayAndItsSuspendedUsersGo()
    {
        await ProvisionMailAsync("bob", "example.com");
        var bob = Identity("bob", "example.com");
        await _box.MailUsers.SuspendAsync(bob, default);
        const string comment = "#x@example.com:{SSHA512}old:5000:5000::/var/mail/vdomains/example.com/x::";
        File.AppendAllText(_box.Layout.DovecotUsers, comment + "\n");
        File.AppendAllText(_box.Layout.PostfixVmailbox, "#x@example.com  example.com/x/\n");

        var users = await _box.MailUsers.InspectAsync(bob, default);
        var routes = await _box.MailRoutes.InspectAsync(bob, default);
        Assert.Equal(StepStatus.Done, (await _box.MailUsers.RemoveAsync(bob, default)).Status);
        Assert.Equal(StepStatus.Done, (await _box.MailRoutes.RemoveAsync(bob, default)).Status);

        Assert.Equal(["admin@example.com", "info@example.com"], users.Items);
        Assert.Equal(["admin@example.com", "info@example.com"], routes.Items);
        Assert.Equal([comment], File.ReadAllLines(_box.Layout.DovecotUsers));
        Assert.Equal(["#x@example.com  example.com/x/"], File.ReadAllLines(_box.Layout.PostfixVmailbox));
        Assert.Equal(StepStatus.Skipped, (await _box.MailUsers.RemoveAsync(bob, default)).Status);
        Assert.Equal(StepStatus.Skipped, (await _box.MailRoutes.RemoveAsync(bob, default)).Status);
    }

    [Fact]
    public async Task WithoutAPostmapCommandTheStepFailsNamingTheKeyAndTheResumedStepRebuildsTheMap()
    {
        await ProvisionMailAsync("bob", "example.com");
        await ProvisionMailAsync("bobby", "example.com.au");
        var options = Options.Create(new OpteriusOptions { Root = _box.Root, ReloadCoalesceMilliseconds = 0 });
        var unconfigured = new MailRoutesResource(_box.Layout, new ServiceReloader(new CommandRunner(options), options, TimeProvider.System));
        var bob = Identity("bob", "example.com");

        var failure = await Assert.ThrowsAsync<ResourceException>(() => unconfigured.RemoveAsync(bob, default));

        Assert.StartsWith("not configured: set Opterius:Commands:Postmap;", failure.Message);
        Assert.Equal(["admin@example.com.au  example.com.au/admin/", "info@example.com.au  example.com.au/info/"],
            File.ReadAllLines(_box.Layout.PostfixVmailbox));
        Assert.Equal("example.com/admin/", Postmap("admin@example.com")); // what Postfix still routes
        Assert.True((await _box.MailRoutes.InspectAsync(bob, default)).Exists);

        var resumed = await _box.MailRoutes.RemoveAsync(bob, default);

        Assert.Equal(StepStatus.Done, resumed.Status);
        Assert.Contains("map rebuilt", resumed.Detail);
        Assert.Equal("", Postmap("admin@example.com"));
        Assert.Equal("example.com.au/admin/", Postmap("admin@example.com.au"));
        Assert.Equal(StepStatus.Skipped, (await _box.MailRoutes.RemoveAsync(bob, default)).Status);
    }

    [Fact]
    public async Task ThePostmapPendingMarkIsNeverWrittenThroughALinkAndTheLinesStayUntilItIsMade()
    {
        await ProvisionMailAsync("bob", "example.com");
        // A link where the mark goes would have the removal truncate whatever it points at.
        var mainCf = Path.Combine(_box.Root, "etc/postfix/main.cf");
        File.WriteAllText(mainCf, "virtual_mailbox_maps = hash:/etc/postfix/vmailbox\n");
        var mark = Path.Combine(Path.GetDirectoryName(_box.Layout.PostfixVmailbox)!, ".vmailbox.example.com.postmap-pending");
        File.CreateSymbolicLink(mark, mainCf);
        var linesBefore = File.ReadAllLines(_box.Layout.PostfixVmailbox);

        var failure = await Assert.ThrowsAsync<ResourceException>(() => _box.MailRoutes.RemoveAsync(Identity("bob", "example.com"), default));

        Assert.Contains("symbolic link", failure.Message);
        Assert.Equal("virtual_mailbox_maps = hash:/etc/postfix/vmailbox\n", File.ReadAllText(mainCf));
        Assert.Equal(linesBefore, File.ReadAllLines(_box.Layout.PostfixVmailbox));
    }

    [Fact]
    public async Task ProvisioningTwiceAddsNoSecondLine()
    {
        await ProvisionMailAsync("bob", "example.com");
        await _box.MailUsers.ProvisionAsync(NewAccount("bob", "example.com"), default);
        await _box.MailRoutes.ProvisionAsync(NewAccount("bob", "example.com"), default);
        Assert.Equal(2, File.ReadAllLines(_box.Layout.DovecotUsers).Length);
        Assert.Equal(2, File.ReadAllLines(_box.Layout.PostfixVmailbox).Length);
    }
}
