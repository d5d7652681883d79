using System.Diagnostics;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Deploy;

/// <summary>
/// The two systemd units in deploy/: systemd's own offline check, and the sandboxing they promise. verify reads
/// them where they are; the programs they start (/usr/bin/dotnet) must exist here, as on the server.
/// </summary>
public sealed class UnitFilesTests
{
    private static string Unit(string name) => Path.Combine(PrivateServices.RepoRoot, "deploy", name);

    /// <summary>Every `Key=value` of the unit, in order (a key may repeat).</summary>
    private static ILookup<string, string> Settings(string name) =>
        File.ReadLines(Unit(name))
            .Where(l => l.Length > 0 && !l.StartsWith('#') && !l.StartsWith('[') && l.Contains('='))
            .Select(l => l.Split('=', 2))
            .ToLookup(p => p[0], p => p[1]);

    [Fact]
    public async Task BothUnitsPassSystemdAnalyzeVerifyWithoutAWarning()
    {
        var psi = new ProcessStartInfo("systemd-analyze") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "verify", Unit("opterius-panel.service"), Unit("opterius-agent.service") }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("systemd-analyze is not installed (scripts/install.sh installs systemd)");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal((0, "", ""), (p.ExitCode, await stdout, await stderr));
    }

    [Fact]
    public void ThePanelRunsAsOpteriusWithNoCapabilitiesAndAReadOnlySystem()
    {
        var s = Settings("opterius-panel.service");
        Assert.Equal(["opterius"], s["User"]);
        Assert.Equal(["/usr/bin/dotnet /opt/opterius/Opterius.Web.dll"], s["ExecStart"]);
        Assert.Contains("OPTERIUS_CONFIG=/etc/opterius/panel.json", s["Environment"]);
        foreach (var (key, value) in new[] { ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                     ("CapabilityBoundingSet", ""), ("AmbientCapabilities", ""), ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
                     ("StateDirectory", "opterius/panel"), ("ProtectProc", "invisible") })
            Assert.True(s[key].SequenceEqual([value]), $"{key}={string.Join(" | ", s[key])}, expected {value}");
        // Its one writable place is its state folder: no ReadWritePaths at all.
        Assert.Empty(s["ReadWritePaths"]);
    }

    [Fact]
    public void TheAgentRunsAsRootOnItsSocketWithTheNarrowestWritablePaths()
    {
        var s = Settings("opterius-agent.service");
        Assert.Empty(s["User"]);
        Assert.Equal(["/usr/bin/dotnet /opt/opterius/Opterius.Web.dll agent"], s["ExecStart"]);
        Assert.Contains("OPTERIUS_CONFIG=/etc/opterius/agent.json", s["Environment"]);
        Assert.Equal(["opterius"], s["RuntimeDirectory"]);
        Assert.Equal(["opterius"], s["StateDirectory"]); // root's /var/lib/opterius: the uid ledger
        Assert.Equal(["strict"], s["ProtectSystem"]);
        Assert.Empty(s["PrivateTmp"]); // a deleted uid's files in the real /tmp go with the account
        Assert.Equal(
            ["/etc", "/home", "/var/mail", "/var/spool/cron", "/var/www/suspended", "/var/backups/opterius", "/tmp", "/var/tmp", "/run",
             "-/var/lib/nginx", "-/var/log/nginx", "-/var/log/php8.2-fpm.log", "-/var/log/lastlog", "-/var/log/faillog"],
            s["ReadWritePaths"].SelectMany(v => v.Split(' ')));
    }
}
