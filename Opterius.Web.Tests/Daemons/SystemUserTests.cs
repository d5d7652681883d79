using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Daemons;

/// <summary>system_user with the real useradd, usermod and userdel -R on a sandbox root of its own.</summary>
public sealed class SystemUserTests : IDisposable
{
    private readonly string _root = DaemonKit.NewSandboxRoot();
    private readonly ServiceProvider _services;
    private SystemUserResource Users => _services.GetRequiredService<SystemUserResource>();

    public SystemUserTests() =>
        _services = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = _root });

    public void Dispose() => _services.Dispose();

    private string[] Lines(string file, string name) =>
        File.ReadAllLines(Path.Combine(_root, "etc", file)).Where(l => l.StartsWith(name + ":")).ToArray();

    private string Shell(string name) => Lines("passwd", name).Single().Split(':')[6];

    [Fact]
    public async Task ProvisionAddsTheUserAndItsGroupToTheSandboxWithAUidFarAboveTheHosts()
    {
        var user = DaemonKit.Username("usr");
        var a = DaemonKit.Account(user, $"{user}.test");

        await Users.ProvisionAsync(new(a, "o@example.com", "unused"), default);

        var uid = await Users.FindUidAsync(user);
        Assert.NotNull(uid);
        Assert.InRange(uid.Value, 200000, 299999);
        Assert.Single(Lines("group", user));
        Assert.Single(Lines("shadow", user));
        Assert.False(Directory.Exists(Path.Combine(_root, "home", user)), "home_directory makes the home, not system_user");
        var inspection = await Users.InspectAsync(a, default);
        Assert.True(inspection.Exists);
        Assert.Contains($"uid {uid}", inspection.Summary);
        await Assert.ThrowsAsync<ResourceException>(() => Users.ProvisionAsync(new(a, "o@example.com", "unused"), default));
    }

    [Fact]
    public async Task SuspendDisablesTheLoginShellAndUnsuspendGivesItBack()
    {
        var user = DaemonKit.Username("sus");
        var a = DaemonKit.Account(user, $"{user}.test");
        await Users.ProvisionAsync(new(a, "o@example.com", "unused"), default);

        await Users.SuspendAsync(a, default);
        await Users.SuspendAsync(a, default);
        Assert.Equal(SystemUserResource.SuspendedShell, Shell(user));

        await Users.UnsuspendAsync(a, default);
        Assert.Equal(SystemUserResource.DefaultShell, Shell(user));
    }

    [Fact]
    public async Task RemovalDeletesOnlyThatUserAndGroupAndLeavesALookAlikeNeighbourByteForByte()
    {
        var user = DaemonKit.Username("rem");
        var a = DaemonKit.Account(user, $"{user}.test");
        var b = DaemonKit.Account(user + "x", $"x{user}.test");
        await Users.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        await Users.ProvisionAsync(new(b, "o@example.com", "unused"), default);
        var neighbour = new[] { "passwd", "group", "shadow", "gshadow" }.ToDictionary(f => f, f => Lines(f, b.Username));

        var outcome = await Users.RemoveAsync(a, default);

        Assert.Equal(StepStatus.Done, outcome.Status);
        Assert.Null(await Users.FindUidAsync(user));
        foreach (var (file, lines) in neighbour)
        {
            Assert.Empty(Lines(file, user));
            Assert.Equal(lines, Lines(file, b.Username));
        }
        Assert.Equal(StepStatus.Skipped, (await Users.RemoveAsync(a, default)).Status);
        Assert.False((await Users.InspectAsync(a, default)).Exists);
    }

    [Fact]
    public async Task WithoutAUserDelCommandRemovalIsSkippedNamingTheKeyAndTheUserStays()
    {
        var user = DaemonKit.Username("keep");
        var a = DaemonKit.Account(user, $"{user}.test");
        await Users.ProvisionAsync(new(a, "o@example.com", "unused"), default);
        using var withoutCommands = DaemonKit.Services(new Dictionary<string, string?> { ["Opterius:Root"] = _root }, privateDaemons: false);

        var outcome = await withoutCommands.GetRequiredService<SystemUserResource>().RemoveAsync(a, default);

        Assert.Equal(StepStatus.Skipped, outcome.Status);
        Assert.Contains("Opterius:Commands:UserDel", outcome.Detail);
        Assert.NotNull(await Users.FindUidAsync(user));
    }
}
