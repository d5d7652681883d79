using System.Text;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

public sealed class LineFileTests : IDisposable
{
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private string Vmailbox => _box.Layout.PostfixVmailbox;

    private const string LookAlikes = """
        # routes kept by hand
        admin@example.com.au  example.com.au/admin/
        admin@example.com  example.com/admin/
        info@sub.example.com  sub.example.com/info/
        Info@EXAMPLE.COM	example.com/info/
        admin@xexample.com  xexample.com/admin/
        @example.com  example.com/catchall/
        example.com  not-an-address
        multi@example.com  example.com/multi/,
          continued@example.com.au
        web@example.com.au  example.com.au/web/

        """;

    [Fact]
    public async Task RemovingADomainDropsExactlyItsLinesAndKeepsLookAlikesByteForByte()
    {
        File.WriteAllText(Vmailbox, LookAlikes);

        var removed = await LineFile.RemoveDomainAsync(Vmailbox, "example.com");

        Assert.Equal(5, removed); // four entries and one continuation line
        Assert.Equal("""
            # routes kept by hand
            admin@example.com.au  example.com.au/admin/
            info@sub.example.com  sub.example.com/info/
            admin@xexample.com  xexample.com/admin/
            example.com  not-an-address
            web@example.com.au  example.com.au/web/

            """, File.ReadAllText(Vmailbox));
        Assert.Equal(0, await LineFile.RemoveDomainAsync(Vmailbox, "example.com"));
    }

    [Fact]
    public async Task ACommentThatLooksLikeAnEntryIsNobodysAndStaysByteForByte()
    {
        File.WriteAllText(Vmailbox, """
            #x@example.com  example.com/x/
            #old@example.com:{SSHA512}abc:5000:5000::/var/mail/vdomains/example.com/old::
            admin@example.com  example.com/admin/
            #suspended#info@example.com  example.com/info/

            """);

        Assert.Equal(["admin@example.com  example.com/admin/"], LineFile.Matching(Vmailbox, "example.com"));
        Assert.Equal(["admin@example.com  example.com/admin/", "#suspended#info@example.com  example.com/info/"],
            LineFile.Matching(Vmailbox, "example.com", "#suspended#"));
        Assert.Equal(2, await LineFile.RemoveDomainAsync(Vmailbox, "example.com", "#suspended#"));
        Assert.Equal("""
            #x@example.com  example.com/x/
            #old@example.com:{SSHA512}abc:5000:5000::/var/mail/vdomains/example.com/old::

            """, File.ReadAllText(Vmailbox));
        Assert.Equal(0, await LineFile.RemoveDomainAsync(Vmailbox, "example.com"));
    }

    [Fact]
    public void MatchingListsOnlyTheExactDomain()
    {
        File.WriteAllText(Vmailbox, LookAlikes);
        Assert.Equal(
            ["admin@example.com  example.com/admin/", "Info@EXAMPLE.COM\texample.com/info/", "@example.com  example.com/catchall/", "multi@example.com  example.com/multi/,"],
            LineFile.Matching(Vmailbox, "example.com"));
        Assert.Equal(["info@sub.example.com  sub.example.com/info/"], LineFile.Matching(Vmailbox, "sub.example.com"));
        Assert.Empty(LineFile.Matching(Path.Combine(_box.Root, "absent"), "example.com"));
    }

    [Fact]
    public async Task ARewriteKeepsTheOwnerAndModeAndLeavesNoTempFileOrOtherFile()
    {
        File.WriteAllText(Vmailbox, LookAlikes);
        Run("chown", "1234:5678", Vmailbox);
        Run("chmod", "640", Vmailbox);
        var folder = Directory.GetFiles(Path.GetDirectoryName(Vmailbox)!).Order().ToList();

        await LineFile.RemoveDomainAsync(Vmailbox, "example.com.au");

        Assert.Equal("640 1234:5678", Stat(Vmailbox));
        Assert.Equal(folder.Append(Vmailbox + ".lock").Distinct().Order(), Directory.GetFiles(Path.GetDirectoryName(Vmailbox)!).Order());
        Assert.DoesNotContain("example.com.au/", File.ReadAllText(Vmailbox));
    }

    [Fact]
    public async Task AppendingAddsOnlyMissingLinesAndEndsTheLastLineFirst()
    {
        File.WriteAllText(Vmailbox, "keep@other.org  other.org/keep/");

        Assert.Equal(2, await LineFile.AppendAsync(Vmailbox, ["a@example.com  example.com/a/", "b@example.com  example.com/b/"]));
        Assert.Equal(1, await LineFile.AppendAsync(Vmailbox, ["a@example.com  example.com/a/", "c@example.com  example.com/c/"]));

        Assert.Equal("""
            keep@other.org  other.org/keep/
            a@example.com  example.com/a/
            b@example.com  example.com/b/
            c@example.com  example.com/c/

            """, File.ReadAllText(Vmailbox));
    }

    [Fact]
    public async Task AppendingToAnAbsentFileCreatesItWithTheGivenMode()
    {
        var path = Path.Combine(_box.Root, "etc", "postfix", "new-map");
        await LineFile.AppendAsync(path, ["a@example.com  example.com/a/"], (UnixFileMode)0b110_100_000);
        Assert.Equal("640 0:0", Stat(path));
        Assert.Equal("a@example.com  example.com/a/\n", File.ReadAllText(path));
    }

    [Fact]
    public async Task EditingChangesOnlyTheDomainsLinesAndCanBeUndoneExactly()
    {
        var original = LookAlikes.Replace("\n", "\r\n") + "last@example.com  no-newline";
        File.WriteAllText(Vmailbox, original);
        var prefix = "#x#"u8.ToArray();

        await LineFile.EditDomainAsync(Vmailbox, "example.com", l => [.. prefix, .. l], "#x#");
        var edited = File.ReadAllText(Vmailbox);
        await LineFile.EditDomainAsync(Vmailbox, "example.com", l => l.AsSpan().StartsWith(prefix) ? l[prefix.Length..] : l, "#x#");

        Assert.Contains("#x#admin@example.com  example.com/admin/\r\n", edited);
        Assert.Contains("admin@example.com.au  example.com.au/admin/\r\n", edited);
        Assert.EndsWith("#x#last@example.com  no-newline", edited);
        Assert.Equal(Encoding.UTF8.GetBytes(original), File.ReadAllBytes(Vmailbox));
    }

    [Fact]
    public async Task ALineFileThatIsASymbolicLinkIsNotRewritten()
    {
        var target = Path.Combine(_box.Outside, "vmailbox");
        File.WriteAllText(target, "admin@example.com  example.com/admin/\n");
        File.Delete(Vmailbox);
        File.CreateSymbolicLink(Vmailbox, target);

        await Assert.ThrowsAsync<ResourceException>(() => LineFile.RemoveDomainAsync(Vmailbox, "example.com"));
        Assert.Equal("admin@example.com  example.com/admin/\n", File.ReadAllText(target));
        Assert.NotNull(new FileInfo(Vmailbox).LinkTarget);
    }

    [Fact]
    public async Task AWriterWaitingForABusyLockReturnsAtOnceHoldingNoThreadAndWritesWhenTheLockIsFreed()
    {
        File.WriteAllText(Vmailbox, "admin@example.com  example.com/admin/\nkeep@example.org  example.org/keep/\n");
        Task<int> pending;
        // Another writer: .NET takes flock(LOCK_EX) on the lock file for FileShare.None, the very lock LineFile waits for.
        using (new FileStream(Vmailbox + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            pending = LineFile.RemoveDomainAsync(Vmailbox, "example.com");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the caller's thread was held {clock.Elapsed.TotalSeconds:0.0} s");
            await Task.Delay(500);
            Assert.False(pending.IsCompleted);
            Assert.Contains("admin@example.com", File.ReadAllText(Vmailbox));
        }
        Assert.Equal(1, await pending.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("keep@example.org  example.org/keep/\n", File.ReadAllText(Vmailbox));
    }

    [Fact]
    public async Task ConcurrentWritersNeverLoseEachOthersLines()
    {
        var writers = Enumerable.Range(0, 16).Select(i => Task.Run(() =>
            LineFile.AppendAsync(Vmailbox, [$"u@d{i}.example.org  d{i}.example.org/u/"])));
        await Task.WhenAll(writers);
        var lines = File.ReadAllLines(Vmailbox);
        Assert.Equal(16, lines.Length);
        Assert.Equal(16, lines.Distinct().Count());
    }
}
