using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Resources;

/// <summary>
/// A sandbox server root made by <c>scripts/sandbox.sh</c> in a temp folder, the real file resources over it
/// (postmap configured unless asked otherwise), and a place outside the root for decoys a hostile tenant links to.
/// </summary>
public sealed class FileResourceSandbox : IDisposable
{
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"opterius-files-{Guid.NewGuid():N}");
    public string Root => Path.Combine(Folder, "root");
    /// <summary>Outside the server root: stands for /etc and other folders a tenant must never reach.</summary>
    public string Outside => Path.Combine(Folder, "outside");

    private readonly IOptions<OpteriusOptions> _options;

    public ServerLayout Layout { get; }
    public ServiceReloader Reloader { get; }
    public CommandRunner Commands { get; }

    public FileResourceSandbox(bool postmap = true)
    {
        Directory.CreateDirectory(Outside);
        Run("bash", Path.Combine(PrivateServices.RepoRoot, "scripts", "sandbox.sh"), Root);
        var commands = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
        if (postmap) commands["Postmap"] = ["postmap", "hash:{root}/etc/postfix/vmailbox"];
        var options = Options.Create(new OpteriusOptions { Root = Root, ReloadCoalesceMilliseconds = 0, Commands = commands, MinUid = 200000 });
        _options = options;
        Layout = new ServerLayout(options);
        Commands = new CommandRunner(options);
        Reloader = new ServiceReloader(Commands, options, TimeProvider.System);
    }

    public HomeDirectoryResource Home => new(Layout);
    public MailboxesResource Mailboxes => new(Layout);
    public MailUsersResource MailUsers => new(Layout, Mailboxes);
    public MailRoutesResource MailRoutes => new(Layout, Reloader);
    public CronResource Cron => new(Layout);
    public UserFilesResource UserFiles => new(Layout, _options);
    public SslCertificateResource Certificate => new(Layout);

    public static AccountIdentity Identity(string username, string domain, int? uid = null) => new(0, username, domain, "8.2", uid);

    public static NewAccount NewAccount(string username, string domain, int? uid = null) =>
        new(Identity(username, domain, uid), $"{username}@{domain}", "s3cret-pass");

    /// <summary>Everything under a folder, never following links: path → type, mode, owner and content hash or link target.</summary>
    public static SortedDictionary<string, string> Snapshot(string top)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Visit(string path)
        {
            var info = new FileInfo(path);
            var st = Stat(path);
            if (info.LinkTarget is { } target) { result[path] = $"link {target} {st}"; return; }
            if (Directory.Exists(path))
            {
                result[path] = $"dir {st}";
                foreach (var child in Directory.EnumerateFileSystemEntries(path)) Visit(child);
                return;
            }
            result[path] = $"file {st} {Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)))}";
        }
        if (Path.Exists(top) || new FileInfo(top).LinkTarget is not null) Visit(top);
        return result;
    }

    /// <summary>Mode (octal) and owner, never following a link.</summary>
    public static unsafe string Stat(string path)
    {
        Libc.Statx st;
        fixed (byte* p = Libc.Z(path))
            Assert.Equal(0, Libc.StatAt(Libc.AT_FDCWD, p, out st));
        return $"{Convert.ToString(st.Mode & 0xFFF, 8)} {st.Uid}:{st.Gid}";
    }

    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {stderr.Result}");
        return stdout;
    }

    public void Dispose()
    {
        try { Run("rm", "-rf", "--one-file-system", Folder); } catch (InvalidOperationException) { }
    }
}
