using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Daemons;

/// <summary>
/// Services wired like the panel's, configured from the run's <c>commands.json</c> (the private nginx,
/// php-fpm and PowerDNS of <see cref="PrivateServices"/>), plus helpers to fetch a site through that nginx.
/// </summary>
internal static class DaemonKit
{
    private static int _counter;
    private static readonly HttpClient Http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero })
    {
        Timeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>A provider bound to the private daemons; <paramref name="settings"/> override single keys.</summary>
    public static ServiceProvider Services(IDictionary<string, string?>? settings = null, bool privateDaemons = true)
    {
        var config = new ConfigurationBuilder();
        if (privateDaemons) config.AddJsonFile(PrivateServices.CommandsJson);
        config.AddInMemoryCollection(new Dictionary<string, string?> { ["Opterius:ReloadCoalesceMilliseconds"] = "20" });
        if (settings is not null) config.AddInMemoryCollection(settings);
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(config.Build())
            .AddOpteriusServices()
            .BuildServiceProvider();
    }

    /// <summary>A fresh, valid username unique in this run (the sandbox root is shared by the run's tests).</summary>
    public static string Username(string prefix) =>
        $"{prefix}{Environment.ProcessId % 10000}n{Interlocked.Increment(ref _counter)}";

    public static AccountIdentity Account(string username, string domain, int? uid = null) =>
        new(Interlocked.Increment(ref _counter), username, domain, "8.2", uid);

    /// <summary>A sandbox root of its own (scripts/sandbox.sh), for tests that must not touch the shared one.</summary>
    public static string NewSandboxRoot()
    {
        var root = Path.Combine(PrivateServices.Folder, $"sandbox-{Interlocked.Increment(ref _counter)}");
        Run("bash", Path.Combine(PrivateServices.RepoRoot, "scripts", "sandbox.sh"), root);
        return root;
    }

    /// <summary>The tenant's own PHP page, the way a customer would upload it.</summary>
    public static void WritePhpPage(string root, AccountIdentity a)
    {
        const UnixFileMode dirMode = (UnixFileMode)0b111_101_101;
        var docroot = Path.Combine(root, "home", a.Username, "public_html");
        Directory.CreateDirectory(Path.Combine(root, "home", a.Username), dirMode);
        Directory.CreateDirectory(docroot, dirMode);
        File.WriteAllText(Path.Combine(docroot, "index.php"), $"<?php echo 'site ' . '{a.Domain}' . ' by PHP ' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;\n");
    }

    public static async Task<(HttpStatusCode Status, string Body)> GetAsync(string host, string path = "/")
    {
        var port = PrivateServices.Get("NGINX_PORT") ?? throw new InvalidOperationException("nginx is not installed");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{port}{path}");
        request.Headers.Host = host;
        using var response = await Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Reloads of nginx and php-fpm are asynchronous (the old workers finish first): asks again until the
    /// answer is the expected one or a generous deadline passes, then returns the last answer.
    /// </summary>
    public static async Task<(HttpStatusCode Status, string Body)> GetUntilAsync(string host, HttpStatusCode expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            (HttpStatusCode, string) last;
            try { last = await GetAsync(host); }
            catch (HttpRequestException e) { last = (0, e.Message); }
            if (last.Item1 == expected || DateTime.UtcNow > deadline) return last;
            await Task.Delay(100);
        }
    }

    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {err.Result}");
        return output;
    }

    /// <summary>A sleeping process of real uid <paramref name="uid"/>, once setpriv has switched to it; added to <paramref name="started"/> for the caller to kill.</summary>
    public static async Task<Process> SleepAsAsync(int uid, int gid, List<Process> started)
    {
        var psi = new ProcessStartInfo("setpriv");
        foreach (var arg in new[] { $"--reuid={uid}", $"--regid={gid}", "--clear-groups", "sleep", "600" }) psi.ArgumentList.Add(arg);
        var p = Process.Start(psi)!;
        started.Add(p);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!ProcessesResource.Running(uid).Any(r => r.Pid == p.Id))
        {
            Assert.True(DateTime.UtcNow < deadline, $"setpriv never ran sleep as uid {uid}");
            await Task.Delay(20);
        }
        return p;
    }
}
