using Opterius.Services.Files;
using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

public sealed class SafeTreeTests : IDisposable
{
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private string Make(string relative, string content = "x")
    {
        var path = Path.Combine(_box.Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Folders a tenant would love to reach: stand-ins for /etc and another account's home.</summary>
    private (string Etc, string OtherHome) Decoys()
    {
        var etc = Path.Combine(_box.Outside, "etc");
        Directory.CreateDirectory(Path.Combine(etc, "ssl"));
        File.WriteAllText(Path.Combine(etc, "passwd"), "root:x:0:0::/root:/bin/bash\n");
        File.WriteAllText(Path.Combine(etc, "ssl", "key.pem"), "secret");
        var other = Path.Combine(_box.Root, "home", "bobby");
        Directory.CreateDirectory(Path.Combine(other, "public_html"));
        File.WriteAllText(Path.Combine(other, "public_html", "index.php"), "<?php echo 'bobby';");
        return (etc, other);
    }

    [Fact]
    public void MeasuringCountsEveryFileFolderAndByteWithoutFollowingLinks()
    {
        var home = Path.Combine(_box.Root, "home", "bob");
        Make("home/bob/a.txt", "12345");
        Make("home/bob/d/b.txt", "123");
        Directory.CreateDirectory(Path.Combine(home, "d", "empty"));
        var (etc, _) = Decoys();
        File.CreateSymbolicLink(Path.Combine(home, "etc"), etc);

        var m = SafeTree.Measure(home);

        Assert.NotNull(m);
        Assert.Equal(3, m.Files); // two files and the link itself, nothing behind it
        Assert.Equal(3, m.Directories);
        Assert.Equal(8 + etc.Length, m.Bytes); // a link's size is its target's length
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)] // removed by four walks at once, each as safe as the one
    public void RemovingATreeDeletesEveryFileAndFolderAndSaysHowMany(int workers)
    {
        var home = Path.Combine(_box.Root, "home", "bob");
        for (var i = 0; i < 20; i++) Make($"home/bob/d{i % 4}/sub{i % 3}/f{i}.txt");

        var removed = SafeTree.Remove(home, workers: workers);

        Assert.Equal(new TreeRemoval(20, 1 + 4 + 12), removed);
        Assert.False(Path.Exists(home));
        Assert.True(Directory.Exists(Path.Combine(_box.Root, "home")));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)] // removed by four walks at once, each as safe as the one
    public void RemovingReportsEveryThousandOrSoEntriesWithGrowingCountsAndLastWhatWasRemovedAndMeasured(int workers)
    {
        var home = Path.Combine(_box.Root, "home", "bob");
        for (var i = 0; i < 3000; i++) Make($"home/bob/d{i % 7}/f{i}.txt", new string('x', i % 50));
        var measured = SafeTree.Measure(home)!;
        var reports = new List<RemovalProgress>();

        var removed = SafeTree.Remove(home, workers: workers, progress: reports.Add);

        Assert.Equal(new TreeRemoval(3000, 8), removed);
        // 3008 entries: a report after 1024 and 2048 of them, then the final one; never one per file. With workers, also
        // one as each of the 7 folders' walks ends.
        if (workers == 1) Assert.Equal(3, reports.Count);
        else Assert.InRange(reports.Count, 2, 3 + 7);
        Assert.Equal(reports.OrderBy(r => r.Files).ThenBy(r => r.Folders).ThenBy(r => r.Bytes), reports);
        Assert.All(reports.Skip(1).Zip(reports), pair => Assert.True(pair.First.Bytes >= pair.Second.Bytes && pair.First.Folders >= pair.Second.Folders));
        Assert.Equal(new RemovalProgress(measured.Files, measured.Directories, measured.Bytes), reports[^1]);
        Assert.False(Directory.Exists(home));
    }

    [Fact]
    public void NothingThereIsReportedAsNothingAndRemovingTwiceIsHarmless()
    {
        var home = Path.Combine(_box.Root, "home", "bob");
        Make("home/bob/a.txt");
        Assert.NotNull(SafeTree.Remove(home));
        Assert.Null(SafeTree.Remove(home));
        Assert.Null(SafeTree.Measure(home));
        Assert.Null(SafeTree.Remove(Path.Combine(_box.Root, "no", "such", "parent")));
    }

    [Fact]
    public void ATopThatIsASymbolicLinkIsRefusedAndWhatItPointsAtIsKept()
    {
        var (etc, _) = Decoys();
        var home = Path.Combine(_box.Root, "home", "bob");
        File.CreateSymbolicLink(home, etc);
        var before = Snapshot(_box.Outside);

        var e = Assert.Throws<ResourceException>(() => SafeTree.Remove(home));

        Assert.Contains("symbolic link", e.Message);
        Assert.Throws<ResourceException>(() => SafeTree.Measure(home));
        Assert.Equal(before, Snapshot(_box.Outside));
        Assert.NotNull(new FileInfo(home).LinkTarget);
    }

    [Fact]
    public void ATopThatIsAFileIsRefused()
    {
        var home = Make("home/bob");
        var e = Assert.Throws<ResourceException>(() => SafeTree.Remove(home));
        Assert.Contains("not a directory", e.Message);
        Assert.True(File.Exists(home));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)] // removed by four walks at once, each as safe as the one
    public void AHostileTreeLosesItsOwnEntriesAndNothingOutsideChanges(int workers)
    {
        var (etc, otherHome) = Decoys();
        var home = Path.Combine(_box.Root, "home", "bob");
        Make("home/bob/public_html/index.php");
        File.CreateSymbolicLink(Path.Combine(home, "etc"), etc);
        File.CreateSymbolicLink(Path.Combine(home, "public_html", "passwd"), Path.Combine(etc, "passwd"));
        File.CreateSymbolicLink(Path.Combine(home, "bobby"), otherHome);
        File.CreateSymbolicLink(Path.Combine(home, "up"), "../bobby");
        File.CreateSymbolicLink(Path.Combine(home, "dangling"), "/nonexistent/nowhere");
        File.CreateSymbolicLink(Path.Combine(home, "loop-a"), "loop-b");
        File.CreateSymbolicLink(Path.Combine(home, "loop-b"), "loop-a");
        File.CreateSymbolicLink(Path.Combine(home, "self"), "self");
        File.CreateSymbolicLink(Path.Combine(home, "dot"), ".");
        Run("ln", Path.Combine(etc, "passwd"), Path.Combine(home, "hard-passwd"));
        Run("mkfifo", Path.Combine(home, "fifo"));
        // Deeper than the walk keeps descriptors open for, so ancestors are reopened on the way back.
        var deep = home;
        for (var i = 0; i < 300; i++) deep = Path.Combine(deep, "d");
        Directory.CreateDirectory(deep);
        File.WriteAllText(Path.Combine(deep, "bottom.txt"), "deep");
        File.CreateSymbolicLink(Path.Combine(deep, "etc"), etc);
        var outside = Snapshot(_box.Outside);
        var neighbour = Snapshot(otherHome);

        var removed = SafeTree.Remove(home, workers: workers);

        Assert.False(Path.Exists(home) || new FileInfo(home).LinkTarget is not null);
        Assert.Equal(302, removed!.Directories);
        Assert.Equal(outside, Snapshot(_box.Outside));
        Assert.Equal(neighbour, Snapshot(otherHome));
        Assert.Equal("root:x:0:0::/root:/bin/bash\n", File.ReadAllText(Path.Combine(etc, "passwd")));
    }

    /// <summary>Mounts with the real mount(8); a test of mount points proves nothing without one, so it fails naming why.</summary>
    private static void Mount(params string[] args)
    {
        try { Run("mount", args); }
        catch (InvalidOperationException e) { Assert.Fail($"this test needs to mount (run the tests as root): {e.Message}"); }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)] // removed by four walks at once, each as safe as the one
    public void AFileSystemMountedInsideTheTreeIsNeverEnteredAndEverythingElseGoes(int workers)
    {
        var home = Path.Combine(_box.Root, "home", "bob");
        var mount = Path.Combine(home, "site", "mnt");
        Directory.CreateDirectory(mount);
        Make("home/bob/a.txt");
        Make("home/bob/site/b.txt");
        Mount("-t", "tmpfs", "opterius-test", mount);
        try
        {
            File.WriteAllText(Path.Combine(mount, "other-fs.txt"), "keep");

            var e = Assert.Throws<ResourceException>(() => SafeTree.Remove(home, workers: workers));

            Assert.Contains("mount point", e.Message);
            Assert.Contains(mount, e.Message);
            Assert.Equal("keep", File.ReadAllText(Path.Combine(mount, "other-fs.txt")));
            Assert.Equal([Path.Combine(home, "site")], Directory.GetFileSystemEntries(home));
            Assert.Equal([mount], Directory.GetFileSystemEntries(Path.Combine(home, "site")));
        }
        finally { Run("umount", mount); }
        Assert.NotNull(SafeTree.Remove(home, workers: workers)); // unmounted: the next run finishes the job
        Assert.False(Path.Exists(home));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)] // removed by four walks at once, each as safe as the one
    public void ABindMountOfTheSameFileSystemInsideTheTreeIsNeverEntered(int workers)
    {
        var (etc, otherHome) = Decoys();
        var home = Path.Combine(_box.Root, "home", "bob");
        var mount = Path.Combine(home, "neighbour");
        Directory.CreateDirectory(mount);
        Make("home/bob/a.txt");
        Mount("--bind", otherHome, mount);
        var outside = Snapshot(_box.Outside);
        var neighbour = Snapshot(otherHome);
        try
        {
            var measured = SafeTree.Measure(home);
            var e = Assert.Throws<ResourceException>(() => SafeTree.Remove(home, workers: workers));

            Assert.Equal(1, measured!.Files); // a.txt; nothing behind the mount point is counted
            Assert.Contains("mount point", e.Message);
            Assert.Contains(mount, e.Message);
            Assert.Equal(neighbour, Snapshot(otherHome));
            Assert.Equal(outside, Snapshot(_box.Outside));
            Assert.False(File.Exists(Path.Combine(home, "a.txt")));
        }
        finally { Run("umount", mount); }
        Assert.Equal(neighbour, Snapshot(otherHome));
        Assert.True(Directory.Exists(etc));
    }

    [Fact]
    public void ATopThatIsItselfAMountPointIsRefusedAndWhatIsMountedThereIsKept()
    {
        var (_, otherHome) = Decoys();
        var home = Path.Combine(_box.Root, "home", "bob");
        Directory.CreateDirectory(home);
        Mount("--bind", otherHome, home);
        var neighbour = Snapshot(otherHome);
        try
        {
            var e = Assert.Throws<ResourceException>(() => SafeTree.Remove(home));

            Assert.Contains("is a mount point", e.Message);
            Assert.Equal(neighbour, Snapshot(otherHome));
        }
        finally { Run("umount", home); }
        Assert.Equal(neighbour, Snapshot(otherHome));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)] // removed by four walks at once, each as safe as the one
    public void ATenantSwappingFoldersForLinksDuringRemovalNeverReachesOutside(int workers)
    {
        var (etc, otherHome) = Decoys();
        var home = Path.Combine(_box.Root, "home", "bob");
        for (var d = 0; d < 40; d++)
        for (var f = 0; f < 25; f++)
            Make($"home/bob/site/d{d}/sub/f{f}.txt");
        var outside = Snapshot(_box.Outside);
        var neighbour = Snapshot(otherHome);

        using var stop = new CancellationTokenSource();
        var swaps = 0;
        var attacker = new Thread(() =>
        {
            // Keeps replacing each folder by a link to "/etc" and back, as fast as it can.
            while (!stop.IsCancellationRequested)
                for (var d = 0; d < 40 && !stop.IsCancellationRequested; d++)
                {
                    var dir = Path.Combine(home, "site", $"d{d}");
                    var aside = dir + ".aside";
                    try
                    {
                        Directory.Move(dir, aside);
                        File.CreateSymbolicLink(dir, etc);
                        Thread.SpinWait(200);
                        File.Delete(dir);
                        Directory.Move(aside, dir);
                        swaps++;
                    }
                    catch (IOException) { }
                    catch (UnauthorizedAccessException) { }
                }
        });
        attacker.Start();

        for (var attempt = 0; attempt < 3 && Path.Exists(home); attempt++)
        {
            try { SafeTree.Remove(home, workers: workers); }
            catch (ResourceException) { } // a moved folder may stop a pass; the next one goes on
        }
        stop.Cancel();
        attacker.Join();
        SafeTree.Remove(home, workers: workers); // the tenant has stopped: this pass finishes the job

        Assert.True(swaps > 0);
        Assert.False(Path.Exists(home));
        Assert.Equal(outside, Snapshot(_box.Outside));
        Assert.Equal(neighbour, Snapshot(otherHome));
    }
}
