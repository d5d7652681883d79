using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.EndToEnd;

/// <summary>
/// The real panel whose zones are the ones the private PowerDNS serves, and whose reload and user commands
/// can be made to fail once for real: each is run through a small script that, when its command has been
/// armed (<see cref="FailNext"/>), exits 1 with a message instead of running it, and otherwise runs the
/// real command with the same arguments. A failure is a genuine failing command, not a mock.
/// </summary>
public class ServingApp : PanelApp, IAsyncLifetime
{
    /// <summary>The commands that can be armed: the first step's reload, steps half-way and the last step's.</summary>
    public static readonly string[] Armable = ["NginxReload", "PhpFpmReload", "Postmap", "PdnsPurge", "UserDel"];

    private readonly string _scripts = Directory.CreateTempSubdirectory("opterius-fail-once-").FullName;

    protected override bool UseServedPowerDnsDatabase => true;

    public override async Task InitializeAsync()
    {
        // Tests of serving prove nothing without the daemons: say which one is missing instead of skipping.
        foreach (var (key, package) in new[] { ("NGINX_PORT", "nginx"), ("PDNS_PORT", "pdns-server and pdns-backend-mysql"), ("FPM_CONF", "php8.2-fpm") })
            if (PrivateServices.Get(key) is null)
                throw new InvalidOperationException($"The private {package} is not running ({key} missing from services.env): install it with scripts/install.sh.");
        // A daemon that died earlier in the run (e.g. php-fpm whose reload met a pool file deleted under it)
        // would fail every assertion here: name it instead.
        foreach (var (key, name, log) in new[] { ("NGINX_PID", "nginx", "nginx/logs/error.log"), ("FPM_PID", "php-fpm", "php-fpm/php-fpm.log"), ("PDNS_PID", "PowerDNS", "pdns/pdns.log") })
            if (!Directory.Exists($"/proc/{PrivateServices.Get(key)}"))
                throw new InvalidOperationException($"The private {name} (pid {PrivateServices.Get(key)}) is no longer running; see {Path.Combine(PrivateServices.Folder, log)}.");
        foreach (var tool in new[] { "postmap", "dig" })
            if (!OnPath(tool))
                throw new InvalidOperationException($"'{tool}' is not installed: scripts/install.sh installs it (postfix, dnsutils).");
        File.WriteAllText(Script, """
            #!/bin/sh
            # fail-once.sh MARKER COMMAND ARGS...: fails once when MARKER exists (removing it), else runs the command.
            marker=$1; shift
            if rm "$marker" 2>/dev/null; then echo "fail-once: $1 made to fail by the test" >&2; exit 1; fi
            exec "$@"
            """);
        File.SetUnixFileMode(Script, (UnixFileMode)0b111_101_101);
        await base.InitializeAsync();
    }

    /// <summary>Arms <paramref name="command"/>: its next run exits 1 without doing anything.</summary>
    public void FailNext(string command) => File.WriteAllText(Marker(command), "");

    public bool IsArmed(string command) => File.Exists(Marker(command));

    // Re-implements IAsyncLifetime so xunit calls this one, which also removes the scripts.
    public new async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_scripts, recursive: true);
    }

    private string Script => Path.Combine(_scripts, "fail-once.sh");
    private string Marker(string command) => Path.Combine(_scripts, command + ".armed");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.ConfigureAppConfiguration(config => config.AddInMemoryCollection(WrappedCommands()));
    }

    // The run's own commands with the script and its marker in front; longer than the originals, so every
    // index of each array is replaced.
    protected Dictionary<string, string?> WrappedCommands()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(PrivateServices.CommandsJson));
        var commands = json.RootElement.GetProperty("Opterius").GetProperty("Commands");
        var settings = new Dictionary<string, string?>();
        foreach (var name in Armable)
        {
            var argv = new[] { Script, Marker(name) }
                .Concat(commands.GetProperty(name).EnumerateArray().Select(a => a.GetString()!)).ToArray();
            for (var i = 0; i < argv.Length; i++) settings[$"Opterius:Commands:{name}:{i}"] = argv[i];
        }
        return settings;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/usr/sbin", "/usr/bin"])
            .Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));
}
