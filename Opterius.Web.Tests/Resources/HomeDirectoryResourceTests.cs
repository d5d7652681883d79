using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

public sealed class HomeDirectoryResourceTests : IDisposable
{
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private string HomeOf(string username) => Path.Combine(_box.Root, "home", username);

    [Fact]
    public async Task AProvisionedHomeIsInspectedThenRemovedCompletely()
    {
        var bob = NewAccount("bob", "example.com", uid: 200001);
        await _box.Home.ProvisionAsync(bob, default);

        var index = File.ReadAllText(Path.Combine(HomeOf("bob"), "public_html", "index.php"));
        Assert.Contains("example.com", index);
        Assert.Contains("PHP_VERSION", index);
        Assert.Equal("711 200001:200001", Stat(HomeOf("bob")));
        Assert.Equal("644 200001:200001", Stat(Path.Combine(HomeOf("bob"), "public_html", "index.php")));

        var plan = await _box.Home.InspectAsync(bob.Identity, default);
        Assert.True(plan.Exists);
        Assert.Equal([HomeOf("bob")], plan.Items);
        Assert.Equal(3, plan.Count);
        Assert.True(plan.Bytes > index.Length);

        var outcome = await _box.Home.RemoveAsync(bob.Identity, default);
        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.False(Path.Exists(HomeOf("bob")));
        Assert.False((await _box.Home.InspectAsync(bob.Identity, default)).Exists);

        var again = await _box.Home.RemoveAsync(bob.Identity, default);
        Assert.Equal(StepStatus.Skipped, again.Status);
        Assert.Contains("nothing there", again.Detail);
    }

    [Fact]
    public async Task TheOwnerComesFromTheSandboxPasswdWhenTheIdentityHasNoUid()
    {
        File.AppendAllText(_box.Layout.Passwd, "carol:x:200007:200070::/home/carol:/bin/bash\n");
        await _box.Home.ProvisionAsync(NewAccount("carol", "carol.org"), default);
        Assert.Equal("711 200007:200070", Stat(HomeOf("carol")));
    }

    [Fact]
    public async Task RemovingBobLeavesBobbyByteForByte()
    {
        await _box.Home.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default);
        await _box.Home.ProvisionAsync(NewAccount("bobby", "example.com.au", uid: 200002), default);
        File.WriteAllText(Path.Combine(HomeOf("bobby"), "public_html", "data.txt"), "bobby's data");
        var bobby = Snapshot(HomeOf("bobby"));

        await _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default);

        Assert.False(Path.Exists(HomeOf("bob")));
        Assert.Equal(bobby, Snapshot(HomeOf("bobby")));
    }

    [Fact]
    public async Task AHostileHomeIsRemovedAndNothingOutsideItChanges()
    {
        var etc = Path.Combine(_box.Outside, "etc");
        Directory.CreateDirectory(etc);
        File.WriteAllText(Path.Combine(etc, "shadow"), "root:*:19000:0:99999:7:::\n");
        await _box.Home.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default);
        await _box.Home.ProvisionAsync(NewAccount("bobby", "bobby.net", uid: 200002), default);
        var home = HomeOf("bob");
        File.CreateSymbolicLink(Path.Combine(home, "public_html", "etc"), etc);
        File.CreateSymbolicLink(Path.Combine(home, "shadow"), Path.Combine(etc, "shadow"));
        File.CreateSymbolicLink(Path.Combine(home, "neighbour"), HomeOf("bobby"));
        File.CreateSymbolicLink(Path.Combine(home, "sandbox-etc"), Path.Combine(_box.Root, "etc"));
        File.CreateSymbolicLink(Path.Combine(home, "dangling"), Path.Combine(_box.Outside, "gone"));
        File.CreateSymbolicLink(Path.Combine(home, "loop"), "loop");
        var deep = home;
        for (var i = 0; i < 200; i++) deep = Path.Combine(deep, $"level{i % 10}");
        Directory.CreateDirectory(deep);
        File.CreateSymbolicLink(Path.Combine(deep, "root"), "/");
        var outside = Snapshot(_box.Outside);
        var neighbour = Snapshot(HomeOf("bobby"));
        // The whole sandbox server root but the removed home itself: "nothing outside it" means all of it.
        SortedDictionary<string, string> RestOfRoot() =>
            new(Snapshot(_box.Root).Where(e => e.Key != home && !e.Key.StartsWith(home + "/", StringComparison.Ordinal))
                .ToDictionary(e => e.Key, e => e.Value), StringComparer.Ordinal);
        var rest = RestOfRoot();

        var outcome = await _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.False(Path.Exists(home));
        Assert.Equal(outside, Snapshot(_box.Outside));
        Assert.Equal(neighbour, Snapshot(HomeOf("bobby")));
        Assert.Equal(rest, RestOfRoot());
    }

    [Fact]
    public async Task AHomeThatIsALinkIsRefusedWithAClearReasonAndItsTargetKept()
    {
        await _box.Home.ProvisionAsync(NewAccount("bobby", "bobby.net", uid: 200002), default);
        File.CreateSymbolicLink(HomeOf("bob"), HomeOf("bobby"));
        var neighbour = Snapshot(HomeOf("bobby"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default));

        Assert.Contains("symbolic link", e.Message);
        Assert.Equal(neighbour, Snapshot(HomeOf("bobby")));
    }

    [Fact]
    public async Task AHomeOwnedByAnotherUidIsRefusedAndKeptByteForByte()
    {
        File.AppendAllText(_box.Layout.Passwd, "bob:x:200001:200001::/home/bob:/bin/bash\ncarol:x:200003:200003::/home/carol:/bin/bash\n");
        await _box.Home.ProvisionAsync(NewAccount("bob", "example.com", uid: 200003), default); // made for carol's uid
        var before = Snapshot(HomeOf("bob"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default));

        Assert.Contains("200003", e.Message);
        Assert.Equal(before, Snapshot(HomeOf("bob")));
    }

    [Fact]
    public async Task AHomeThatIsAlsoAnotherAccountsHomeIsRefusedAndKeptByteForByte()
    {
        File.AppendAllText(_box.Layout.Passwd, "bob:x:200001:200001::/home/bob:/bin/bash\ndave:x:200004:200004::/home//bob/:/bin/bash\n");
        await _box.Home.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default);
        var before = Snapshot(HomeOf("bob"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default));

        Assert.Contains("dave", e.Message);
        Assert.Equal(before, Snapshot(HomeOf("bob")));
    }

    [Fact]
    public async Task AHomeHoldingAnotherAccountsHomeIsRefusedAndKeptByteForByte()
    {
        File.AppendAllText(_box.Layout.Passwd, "bob:x:200001:200001::/home/bob:/bin/bash\nerin:x:200005:200005::/home/bob/public_html/erin:/bin/bash\n");
        await _box.Home.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default);
        Directory.CreateDirectory(Path.Combine(HomeOf("bob"), "public_html", "erin"));
        var before = Snapshot(HomeOf("bob"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default));

        Assert.Contains("erin", e.Message);
        Assert.Equal(before, Snapshot(HomeOf("bob")));
    }

    [Fact]
    public async Task AHomeHoldingAnotherAccountsHomeThroughALinkIsRefusedAndKeptByteForByte()
    {
        // dave's home /home/dave is a link into bob's home: removing bob's would remove dave's files.
        File.AppendAllText(_box.Layout.Passwd, "bob:x:200001:200001::/home/bob:/bin/bash\ndave:x:200004:200004::/home/dave:/bin/bash\n");
        await _box.Home.ProvisionAsync(NewAccount("bob", "example.com", uid: 200001), default);
        Directory.CreateDirectory(Path.Combine(HomeOf("bob"), "public_html", "dave"));
        File.WriteAllText(Path.Combine(HomeOf("bob"), "public_html", "dave", "dave.txt"), "dave's data");
        File.CreateSymbolicLink(HomeOf("dave"), "bob/public_html/dave");
        var before = Snapshot(HomeOf("bob"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.Home.RemoveAsync(Identity("bob", "example.com", uid: 200001), default));

        Assert.Contains("dave", e.Message);
        Assert.Equal(before, Snapshot(HomeOf("bob")));
    }
}
