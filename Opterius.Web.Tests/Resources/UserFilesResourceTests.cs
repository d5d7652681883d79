using Opterius.Services.Resources;
using static Opterius.Web.Tests.Resources.FileResourceSandbox;

namespace Opterius.Web.Tests.Resources;

/// <summary>user_files: the mail spool and the uid's entries in the shared temp folders, beside another uid's that must survive.</summary>
public sealed class UserFilesResourceTests : IDisposable
{
    private const int Bob = 200001, Carol = 200002;
    private readonly FileResourceSandbox _box = new();

    public void Dispose() => _box.Dispose();

    private string At(string relative) => Path.Combine(_box.Root, relative);

    private string Write(string relative, int owner, string content = "x")
    {
        var path = At(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        Run("chown", "-h", $"{owner}:{owner}", path);
        return path;
    }

    private string Folder(string relative, int owner)
    {
        var path = At(relative);
        Directory.CreateDirectory(path);
        Run("chown", $"{owner}:{owner}", path);
        return path;
    }

    private void Link(string relative, string target, int owner)
    {
        File.CreateSymbolicLink(At(relative), target);
        Run("chown", "-h", $"{owner}:{owner}", At(relative));
    }

    [Fact]
    public async Task TheSpoolAndTheUidsTempFilesGoAndAnotherUidsFilesSurviveByteForByte()
    {
        File.AppendAllText(_box.Layout.Passwd, $"bob:x:{Bob}:{Bob}::/home/bob:/bin/bash\ncarol:x:{Carol}:{Carol}::/home/carol:/bin/bash\n");
        var etc = Path.Combine(_box.Outside, "etc");
        Directory.CreateDirectory(etc);
        File.WriteAllText(Path.Combine(etc, "shadow"), "root:*:19000::::::\n");
        Write("var/mail/bob", Bob, "From someone\nmail for bob\n");
        Write("var/mail/bobby", Carol, "bobby's spool");
        Write("tmp/sess_bob", Bob);
        Write("var/tmp/cache.bin", Bob, "0123456789");
        Write("dev/shm/sem.bob", Bob);
        Folder("tmp/bob-work", Bob);
        Write("tmp/bob-work/deep/file.txt", Bob);
        Link("tmp/bob-work/etc", etc, Bob);
        Link("tmp/link-to-etc", etc, Bob);
        Write("tmp/carol.sock", Carol, "carol's");
        Folder("tmp/carol-dir", Carol);
        Write("tmp/carol-dir/from-bob.txt", Bob); // bob's file inside carol's folder: carol's folder is not bob's to walk
        var carolFiles = new[] { "tmp/carol.sock", "tmp/carol-dir", "var/mail/bobby" }.ToDictionary(p => p, p => Snapshot(At(p)));
        var outside = Snapshot(_box.Outside);
        var bob = Identity("bob", "bob.test", Bob);

        var plan = await _box.UserFiles.InspectAsync(bob, default);
        var outcome = await _box.UserFiles.RemoveAsync(bob, default);

        Assert.True(plan.Exists);
        Assert.Equal(6, plan.Items.Count);
        Assert.Equal(StepStatus.Done, outcome.Status);
        foreach (var gone in new[] { "var/mail/bob", "tmp/sess_bob", "var/tmp/cache.bin", "dev/shm/sem.bob", "tmp/bob-work", "tmp/link-to-etc" })
            Assert.False(Path.Exists(At(gone)) || new FileInfo(At(gone)).LinkTarget is not null, $"{gone} is still there");
        Assert.Equal(carolFiles, carolFiles.Keys.ToDictionary(p => p, p => Snapshot(At(p))));
        Assert.Equal(outside, Snapshot(_box.Outside));
        Assert.False((await _box.UserFiles.InspectAsync(bob, default)).Exists);
        Assert.Equal(StepStatus.Skipped, (await _box.UserFiles.RemoveAsync(bob, default)).Status);
    }

    [Fact]
    public async Task AUidThatNowBelongsToAnotherNameIsRefusedAndItsFilesAreKept()
    {
        File.AppendAllText(_box.Layout.Passwd, $"carol:x:{Bob}:{Bob}::/home/carol:/bin/bash\n");
        Write("tmp/sess", Bob);
        var before = Snapshot(At("tmp"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.UserFiles.RemoveAsync(Identity("bob", "bob.test", Bob), default));

        Assert.Contains("carol", e.Message);
        Assert.Equal(before, Snapshot(At("tmp")));
    }

    [Fact]
    public async Task ASpoolOfTheNameThatTheUidDoesNotOwnIsKeptByteForByteAndTheStepFails()
    {
        // A spool that was there before the account (another tool's, root's): the undo of a failed create must not take it.
        File.AppendAllText(_box.Layout.Passwd, $"bob:x:{Bob}:{Bob}::/home/bob:/bin/bash\n");
        Write("var/mail/bob", 0, "From root\nthe operator's mail\n");
        Write("tmp/sess_bob", Bob);
        var spool = Snapshot(At("var/mail"));

        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.UserFiles.RemoveAsync(Identity("bob", "bob.test", Bob), default));

        Assert.Contains("belongs to uid 0", e.Message);
        Assert.Equal(spool, Snapshot(At("var/mail")));
        Assert.False(File.Exists(At("tmp/sess_bob")), "what is the uid's goes before the step fails on the spool");
    }

    [Fact]
    public async Task ASpoolOfAnAccountWithNoUidIsKeptAndTheStepFails()
    {
        Write("var/mail/bob", Carol, "carol's mail under bob's name");
        var spool = Snapshot(At("var/mail"));

        var plan = await _box.UserFiles.InspectAsync(Identity("bob", "bob.test"), default);
        var e = await Assert.ThrowsAsync<ResourceException>(() => _box.UserFiles.RemoveAsync(Identity("bob", "bob.test"), default));

        Assert.True(plan.Exists, "the preflight of a create must see the spool");
        Assert.Contains(At("var/mail/bob"), plan.Items);
        Assert.Contains("no uid", e.Message);
        Assert.Equal(spool, Snapshot(At("var/mail")));
    }
}
