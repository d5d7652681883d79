using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Opterius.Services.Commands;
using Opterius.Services.Data;
using Opterius.Services.Deletion;
using Opterius.Services.Files;
using Opterius.Services.Resources;
using ZstdSharp;
using static Opterius.Services.Files.Libc;

namespace Opterius.Services.Backups;

/// <summary>
/// Writes and purges final backups (ARCHIVE.md, format 1) as root: a PAX tar stream (System.Formats.Tar) compressed
/// with zstd (ZstdSharp.Port), written to <c>{id}.tar.zst.partial</c> in <c>Opterius:Deletion:BackupPath</c>, fsynced and
/// renamed when complete; a failure removes the partial file and every temporary file. Trees are read with
/// <see cref="SafeTree.Visit"/> (the removal's own walk), databases with the configured <c>MariaDbDump</c> command
/// (credentials in a 0600 defaults file, never on its command line). Memory stays flat: entries are streamed, the
/// manifest's per-file lists go to a temporary file as they are met.
/// </summary>
public sealed partial class FinalBackupWriter(
    ServerLayout layout,
    IOptions<DeletionOptions> options,
    IConfiguration configuration,
    CommandRunner commands,
    DatabasesResource databases,
    DatabaseUsersResource databaseUsers,
    SslCertificateResource certificates,
    NginxVhostResource vhosts,
    PhpFpmPoolResource pools,
    MariaDbAdmin admin,
    PowerDnsDb powerDns,
    TimeProvider time) : IBackupArchives
{
    // Read by the nested writer of one archive, which a primary constructor's parameters cannot reach.
    private readonly ServerLayout _layout = layout;
    private readonly IConfiguration _configuration = configuration;
    private readonly CommandRunner _commands = commands;
    private readonly DatabasesResource _databases = databases;
    private readonly DatabaseUsersResource _databaseUsers = databaseUsers;
    private readonly SslCertificateResource _certificates = certificates;
    private readonly NginxVhostResource _vhosts = vhosts;
    private readonly PhpFpmPoolResource _pools = pools;
    private readonly MariaDbAdmin _admin = admin;
    private readonly PowerDnsDb _powerDns = powerDns;
    private readonly TimeProvider _time = time;

    public const int Format = 1;
    public const string DumpCommand = "MariaDbDump";

    private const UnixFileMode Private = (UnixFileMode)0b110_000_000;       // 0600
    private const UnixFileMode PrivateFolder = (UnixFileMode)0b111_000_000; // 0700
    private const int ReportEvery = 1024;

    /// <summary>
    /// The panel's copy of the manifest (its backups row, the API) names this many skipped entries and counts them all: a
    /// tenant's million fifos must not make a row of megabytes. The archive's own manifest.json names every one.
    /// </summary>
    public const int SkippedShown = 100;

    // Stays zstd's fastest levels: the archive is written while the account still serves, before anything is removed.
    private const int ZstdLevel = 1;

    /// <summary>Test seam: called after each tree entry is archived, with its archive path (to change the tree mid-walk).</summary>
    internal Action<string>? EntryArchived { get; set; }

    public string Folder => Path.GetFullPath(options.Value.BackupPath);

    private TimeSpan DumpDeadline => TimeSpan.FromSeconds(options.Value.DumpTimeoutSeconds);

    public static string FileName(long backupId) => $"{backupId}.tar.zst";

    public Task<WrittenBackup> WriteAsync(BackupSubject subject, long backupId, Action<BackupProgress> progress, CancellationToken ct)
    {
        if (backupId <= 0) throw new ResourceException($"backup id {backupId} is not a backup's id");
        return Task.Run(() => WriteOnceAsync(subject, backupId, progress, ct), ct);
    }

    private async Task<WrittenBackup> WriteOnceAsync(BackupSubject subject, long backupId, Action<BackupProgress> progress, CancellationToken ct)
    {
        EnsureFolder();
        var final = Path.Join(Folder, FileName(backupId));
        if (File.Exists(final) || new FileInfo(final).LinkTarget is not null)
            throw new ResourceException($"{final} already exists: backup {backupId} was written before");
        var run = new Run(this, subject, backupId, progress, Folder, _time.GetUtcNow(), EntryArchived);
        try
        {
            var written = await run.WriteAsync(final + ".partial", (r, c) => r.EverythingAsync(c), ct);
            if (RenameAt(AT_FDCWD, Z(final + ".partial"), final) != 0) throw new IOException($"cannot rename to {final}: {Describe(Errno)}");
            FileWriter.SyncFolder(Folder);
            return written;
        }
        catch (Exception e)
        {
            File.Delete(final + ".partial");
            throw e is ResourceException or OperationCanceledException ? e
                : new ResourceException($"the final backup could not be written to {Folder}: {e.Message}", e);
        }
        finally { run.DeleteTemporaryFiles(); }
    }

    private static int RenameAt(int dirfd, byte[] from, string to)
    {
        unsafe
        {
            fixed (byte* f = from)
            fixed (byte* t = Z(to)) return Libc.RenameAt(dirfd, f, dirfd, t);
        }
    }

    /// <summary>
    /// Bench seam: an archive of <paramref name="tree"/> alone into <paramref name="file"/>, through the very streams, walk
    /// and manifest of a backup's home part (no databases or configuration files). Returns the archive's size.
    /// </summary>
    internal static async Task<long> ArchiveTreeAsync(string tree, string file, Action<BackupProgress>? progress = null)
    {
        var subject = new BackupSubject(new Accounts.AccountIdentity(1, "bench", "bench.test", "8.2", null), "bench@bench.test", 1, 1);
        // No writer: only the tree part is written, which needs none of its services (and the identity has no uid to look up).
        var run = new Run(null!, subject, 1, progress ?? (_ => { }), Path.GetDirectoryName(Path.GetFullPath(file))!, DateTimeOffset.UtcNow, null);
        try { return (await run.WriteAsync(file, (r, ct) => r.HomeOnlyAsync(tree, ct), CancellationToken.None)).Bytes; }
        finally { run.DeleteTemporaryFiles(); }
    }

    public Task<bool> PurgeAsync(long backupId, CancellationToken ct) => Task.Run(() =>
    {
        var any = false;
        foreach (var name in new[] { FileName(backupId), FileName(backupId) + ".partial" })
        {
            var path = Path.Join(Folder, name);
            if (!File.Exists(path) && new FileInfo(path).LinkTarget is null) continue;
            File.Delete(path);
            any = true;
        }
        if (any) FileWriter.SyncFolder(Folder);
        return any;
    }, ct);

    /// <summary>The folder is made root-only when missing; an existing one is the operator's (install.sh makes it 0700).</summary>
    private void EnsureFolder()
    {
        if (Directory.Exists(Folder)) return;
        Directory.CreateDirectory(Folder, PrivateFolder);
    }

    /// <summary>One archive being written: its parts in ARCHIVE.md's order, counts, and the temporary files it made.</summary>
    private sealed class Run(FinalBackupWriter w, BackupSubject subject, long id, Action<BackupProgress> progress, string folder, DateTimeOffset now,
        Action<string>? archived)
    {
        private readonly List<string> _temporary = [];
        private readonly List<object> _parts = [];
        // What is skipped goes to a temporary file, one JSON string a line, as it is met (a tenant's million fifos must
        // not be held in memory); only the first SkippedShown stay for the panel's copy.
        private readonly List<string> _skippedShown = [];
        private long _skippedCount;
        private StreamWriter? _skipped;
        private readonly DateTimeOffset _now = now;
        private long _files, _bytes, _untilReport = ReportEvery, _totalFiles, _totalBytes;
        private readonly IncrementalHash _fileHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256); // one file's at a time
        private TarWriter _tar = null!;
        private Utf8JsonWriter _manifest = null!;

        /// <summary>Every part of ARCHIVE.md after the first, in its order.</summary>
        public async Task EverythingAsync(CancellationToken ct)
        {
            var a = subject.Identity;
            Tree("home/", "home", w._layout.Home(a), ct, reported: true);
            Tree("mail/", "mailboxes", w._layout.Mailboxes(a), ct, reported: true);
            foreach (var db in await w._databases.ListAsync(a, ct)) await DumpAsync(db.Name, ct);
            if (await DatabaseUsersSqlAsync(ct) is { } users) AddBytes("database_users.sql", users, "database_users");
            if (await ZoneJsonAsync(ct) is { } zone) AddBytes("dns_zone.json", zone, "dns_zone");
            // The account as it is meant to be, not its suspended form (the 503 vhost, the pool moved aside, the logins
            // commented out): what unsuspend would put back, so a restore brings it back serving. account.json says it was suspended.
            if (w._vhosts.ArchivedVhost(a, subject.SuspendedAt is not null) is { } vhost) SingleFile("config/nginx_vhost.conf", "nginx_vhost", vhost);
            else Skip($"config/nginx_vhost.conf: {NginxVhostResource.NotStoredReason}");
            SingleFile("config/php_fpm_pool.conf", "php_fpm_pool", w._pools.UnsuspendedPool(a));
            SingleFile("cron/crontab", "cron", w._layout.Crontab(a));
            foreach (var lineage in w._certificates.Lineages(a))
            {
                var name = Path.GetFileName(lineage.Live);
                Tree($"ssl/live/{name}/", "ssl_certificate", lineage.Live, ct);
                Tree($"ssl/archive/{name}/", "ssl_certificate", lineage.Archive, ct);
                SingleFile($"ssl/renewal/{name}.conf", "ssl_certificate", lineage.Renewal);
            }
            MailLines("mail_lines/dovecot_users", "mail_users", w._layout.DovecotUsers, MailUsersResource.SuspendedPrefix, MailUsersResource.Unsuspended);
            MailLines("mail_lines/postfix_vmailbox", "mail_routes", w._layout.PostfixVmailbox, null);
        }

        /// <summary>Bench seam: one tree only, as the home part is written.</summary>
        public Task HomeOnlyAsync(string tree, CancellationToken ct)
        {
            Tree("home/", "home", tree, ct, reported: true);
            return Task.CompletedTask;
        }

        public async Task<WrittenBackup> WriteAsync(string partial, Func<Run, CancellationToken, Task> parts, CancellationToken ct)
        {
            var manifestPath = Temporary("manifest");
            await using (var manifestFile = new FileStream(manifestPath, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private }))
            await using (var file = new FileStream(partial, new FileStreamOptions
                         { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private, BufferSize = 0 }))
            {
                var counted = new CountingHashStream(file);
                await using (counted)
                {
                    await using (var zstd = new CompressionStream(counted, ZstdLevel, leaveOpen: true))
                    await using (_tar = new TarWriter(zstd, TarEntryFormat.Pax, leaveOpen: true))
                    await using (_manifest = new Utf8JsonWriter(manifestFile))
                    {
                        _manifest.WriteStartObject();
                        _manifest.WriteNumber("format", Format);
                        _manifest.WriteStartArray("parts");

                        AddBytes("account.json", AccountJson());
                        await parts(this, ct);

                        _manifest.WriteEndArray();
                        _manifest.WriteStartArray("skipped");
                        if (_skipped is not null)
                        {
                            await _skipped.DisposeAsync();
                            foreach (var line in File.ReadLines(_skippedPath!))
                            {
                                _manifest.WriteRawValue(line, skipInputValidation: true);
                                if (_manifest.BytesPending > 64 * 1024) await _manifest.FlushAsync(ct);
                            }
                        }
                        _manifest.WriteEndArray();
                        _manifest.WriteNumber("total_files", _totalFiles);
                        _manifest.WriteNumber("total_bytes", _totalBytes);
                        _manifest.WriteEndObject();
                        await _manifest.FlushAsync(ct);
                        await manifestFile.FlushAsync(ct);
                        AddFile("manifest.json", manifestPath, null);
                        progress(new BackupProgress(_files, _bytes, subject.PlannedFiles, subject.PlannedBytes));
                    }
                    await counted.FlushAsync(ct);
                    file.Flush(flushToDisk: true);
                    var summary = JsonSerializer.Serialize(new
                    {
                        format = Format, parts = _parts, skipped = _skippedShown, skipped_count = _skippedCount,
                        total_files = _totalFiles, total_bytes = _totalBytes,
                    });
                    return new WrittenBackup(FileName(id), counted.Written, counted.Sha256(), summary);
                }
            }
        }

        private byte[] AccountJson()
        {
            var a = subject.Identity;
            var gid = a.Uid is { } uid ? FileOwner.ForAccount(w._layout.Passwd, a.Username, uid)?.Gid : null;
            return JsonSerializer.SerializeToUtf8Bytes(new
            {
                format = Format,
                backup_id = id,
                created_at = _now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ"),
                account = new
                {
                    id = a.Id, username = a.Username, domain = a.Domain, email = subject.Email, package_id = subject.PackageId,
                    owner = subject.OwnerId, php_version = a.PhpVersion, uid = a.Uid, gid,
                    // The parts hold the unsuspended form; this says what the account was when it was backed up.
                    suspended = subject.SuspendedAt is not null,
                    suspended_at = subject.SuspendedAt is { } at ? UtcTimes.Utc(at).ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ") : null,
                },
            });
        }

        /// <summary>
        /// A whole tree under <paramref name="prefix"/>, read with <see cref="SafeTree.Visit"/>; no part when absent.
        /// <paramref name="reported"/>: its entries count in the progress (the home and mail, what the plan measured).
        /// </summary>
        private void Tree(string prefix, string kind, string path, CancellationToken ct, bool reported = false)
        {
            var part = new PartHash();
            var started = false;
            long files = 0, bytes = 0;
            var notUtf8 = new List<string>(); // folders skipped for their names: what they hold goes with them
            var measure = SafeTree.Visit(path, (in TreeEntry e, Stream? content) =>
            {
                ct.ThrowIfCancellationRequested();
                if (!started) { StartPart(prefix, kind); started = true; }
                var name = e.Path.Length == 0 ? prefix : e.Kind == TreeEntryKind.Directory ? prefix + e.Path + "/" : prefix + e.Path;
                if (e.LossyName)
                {
                    // Only what such a folder holds is lossy under its prefix: a valid sibling decoding alike is never lossy.
                    foreach (var folder in notUtf8)
                        if (name.StartsWith(folder, StringComparison.Ordinal)) return;
                    Skip($"{name}: its name {NotUtf8}");
                    if (e.Kind == TreeEntryKind.Directory) notUtf8.Add(name);
                    return;
                }
                // The target comes decoded from readlink: one holding U+FFFD is taken for lossy.
                if (e.LinkTarget?.Contains('\uFFFD') == true)
                {
                    Skip($"{name}: its link target {NotUtf8}");
                    return;
                }
                if (e.Kind == TreeEntryKind.Other)
                {
                    Skip($"{name}: not a file, folder or link (fifo, socket or device)");
                    return;
                }
                // A tenant can hard-link a file it cannot read (/etc/shadow on the same file system) into its home: a file
                // of several links that is not the account's is never read into its backup.
                if (e.Kind == TreeEntryKind.File && e.Links > 1 && e.Uid != subject.Identity.Uid)
                {
                    Skip($"{name}: a hard link to a file of uid {e.Uid}, not the account's");
                    return;
                }
                var entry = new PaxTarEntry(e.Kind switch
                {
                    TreeEntryKind.Directory => TarEntryType.Directory,
                    TreeEntryKind.SymbolicLink => TarEntryType.SymbolicLink,
                    _ => TarEntryType.RegularFile,
                }, name)
                {
                    Mode = (UnixFileMode)e.Mode, Uid = e.Uid, Gid = e.Gid, ModificationTime = e.ModifiedAt,
                };
                string? sha = null;
                if (e.Kind == TreeEntryKind.SymbolicLink) entry.LinkName = e.LinkTarget!;
                if (content is not null)
                {
                    entry.DataStream = new ArchivedContent(content, e.Size, _fileHash);
                    _tar.WriteEntry(entry);
                    sha = Convert.ToHexStringLower(_fileHash.GetHashAndReset());
                    part.Add(name, sha);
                    files++;
                    bytes += e.Size;
                    if (reported) _bytes += e.Size;
                }
                else _tar.WriteEntry(entry);
                // Counted as the plan counts a tree: every entry but folders.
                if (reported && e.Kind != TreeEntryKind.Directory) _files++;
                WriteFileRecord(name, e, sha);
                if (--_untilReport == 0)
                {
                    _untilReport = ReportEvery;
                    progress(new BackupProgress(_files, _bytes, subject.PlannedFiles, subject.PlannedBytes));
                }
                archived?.Invoke(name);
            });
            if (measure is null) return;
            foreach (var mount in measure.MountPoints) Skip($"{mount}: a mount point, never entered");
            EndPart(prefix, kind, files, bytes, part.Sha256());
        }

        // A tar name is UTF-8 text: an entry the walk decoded lossily would come back under another name.
        private const string NotUtf8 = "is not valid UTF-8, so it is not archived (a restore could not give it back byte for byte)";

        private string? _skippedPath;

        /// <summary>An entry not archived, with why: named in the manifest's <c>skipped</c> (all) and the panel's copy (the first ones).</summary>
        private void Skip(string what)
        {
            if (_skippedShown.Count < SkippedShown) _skippedShown.Add(what);
            _skippedCount++;
            if (_skipped is null)
            {
                _skippedPath = Temporary("skipped");
                _skipped = new StreamWriter(new FileStream(_skippedPath, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private }));
            }
            // A JSON string is one line (a newline in a name is escaped), ready to be copied into the manifest as it is.
            _skipped.WriteLine(JsonSerializer.Serialize(what));
        }

        private void WriteFileRecord(string name, in TreeEntry e, string? sha)
        {
            _manifest.WriteStartObject();
            _manifest.WriteString("path", name);
            _manifest.WriteString("type", e.Kind switch { TreeEntryKind.Directory => "directory", TreeEntryKind.SymbolicLink => "symlink", _ => "file" });
            _manifest.WriteNumber("size", e.Size);
            if (sha is not null) _manifest.WriteString("sha256", sha);
            _manifest.WriteNumber("mode", e.Mode);
            _manifest.WriteNumber("uid", e.Uid);
            _manifest.WriteNumber("gid", e.Gid);
            if (e.LinkTarget is not null) _manifest.WriteString("link", e.LinkTarget);
            _manifest.WriteEndObject();
            // The writer buffers until flushed: a tree of millions of entries must not hold its list in memory.
            if (_manifest.BytesPending > 64 * 1024) _manifest.Flush();
        }

        private void StartPart(string path, string kind)
        {
            _manifest.WriteStartObject();
            _manifest.WriteString("path", path);
            _manifest.WriteString("kind", kind);
            _manifest.WriteStartArray("files");
        }

        private void EndPart(string path, string kind, long files, long bytes, string sha256)
        {
            _manifest.WriteEndArray();
            _manifest.WriteNumber("file_count", files);
            _manifest.WriteNumber("bytes", bytes);
            _manifest.WriteString("sha256", sha256);
            _manifest.WriteEndObject();
            _parts.Add(new { path, kind, file_count = files, bytes, sha256 });
            _totalFiles += files;
            _totalBytes += bytes;
        }

        /// <summary>A part of one file whose content is in memory (small: JSON, SQL of users, mail lines).</summary>
        private void AddBytes(string path, byte[] content, string? kind = null)
        {
            var hash = SHA256.HashData(content);
            _tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path)
            {
                Mode = Private, ModificationTime = _now, DataStream = new MemoryStream(content, writable: false),
            });
            if (kind is not null) OnePart(path, kind, content.Length, Convert.ToHexStringLower(hash));
        }

        /// <summary>A part of one file on disk (a dump, the manifest), streamed from it.</summary>
        private void AddFile(string path, string file, string? kind)
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 0);
            var length = source.Length;
            _tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path)
            {
                Mode = Private, ModificationTime = _now, DataStream = new ArchivedContent(source, length, hash),
            });
            if (kind is not null) OnePart(path, kind, length, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }

        private void OnePart(string path, string kind, long bytes, string sha256)
        {
            StartPart(path, kind);
            EndPart(path, kind, 1, bytes, sha256);
        }

        /// <summary>A root-owned configuration file, opened without following a link; absent is no part.</summary>
        private void SingleFile(string path, string kind, string file)
        {
            var fd = OpenRegular(file, out var size);
            if (fd is null) return;
            using var handle = fd;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var source = new FileStream(handle, FileAccess.Read, 0);
            _tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path)
            {
                Mode = Private, ModificationTime = _now, DataStream = new ArchivedContent(source, size, hash),
            });
            OnePart(path, kind, size, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }

        private static unsafe Microsoft.Win32.SafeHandles.SafeFileHandle? OpenRegular(string file, out long size)
        {
            size = 0;
            var fd = Libc.Open(AT_FDCWD, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
            if (fd < 0)
            {
                var e = Errno;
                if (e is ENOENT or ENOTDIR) return null;
                throw new ResourceException(e == ELOOP ? $"{file} is a symbolic link: refusing to archive what it points at" : $"{file}: cannot open: {Describe(e)}");
            }
            var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
            if (StatFd(fd, out var st) != 0 || st.Type != S_IFREG)
            {
                handle.Dispose();
                throw new ResourceException($"{file} is not a regular file: refusing to archive it");
            }
            size = (long)st.Size;
            return handle;
        }

        private void MailLines(string path, string kind, string file, string? commentedPrefix, Func<byte[], byte[]>? unsuspended = null)
        {
            var lines = LineFile.Matching(file, subject.Identity.Domain, commentedPrefix);
            if (lines.Count == 0) return;
            using var text = new MemoryStream();
            foreach (var line in lines)
            {
                var bytes = Encoding.UTF8.GetBytes(line);
                text.Write(unsuspended is null ? bytes : unsuspended(bytes));
                text.WriteByte((byte)'\n');
            }
            AddBytes(path, text.ToArray(), kind);
        }

        /// <summary>
        /// One database through <c>mariadb-dump --single-transaction</c> into a temporary file (a tar entry needs its size
        /// first), then into the archive. The admin credentials go in a 0600 defaults file in the root-only backup folder.
        /// </summary>
        private async Task DumpAsync(string database, CancellationToken ct)
        {
            if (!w._commands.IsConfigured(DumpCommand))
                throw new ResourceException($"not configured: set Opterius:Commands:{DumpCommand} to back up database {database}");
            var defaults = DefaultsFile();
            var dump = Temporary("dump");
            await ResourceException.WhenCommandFails(() => w._commands.RunAsync(DumpCommand, new Dictionary<string, string>
            {
                ["defaults_file"] = defaults, ["result_file"] = dump, ["database"] = database,
            }, null, ct, w.DumpDeadline), $"dumping database {database}");
            AddFile($"databases/{database}.sql", dump, "databases");
            File.Delete(dump);
        }

        private string? _defaults;

        private string DefaultsFile()
        {
            if (_defaults is not null) return _defaults;
            var cs = new MySqlConnectionStringBuilder(w._configuration.GetConnectionString("MariaDbAdmin")
                ?? throw new ResourceException("ConnectionStrings:MariaDbAdmin is not set: the databases cannot be dumped"));
            var text = new StringBuilder("[client]\n");
            text.Append("user=").Append(Quote(cs.UserID)).Append('\n');
            text.Append("password=").Append(Quote(cs.Password)).Append('\n');
            if (cs.Server.StartsWith('/') || cs.ConnectionProtocol == MySqlConnectionProtocol.UnixSocket)
                text.Append("socket=").Append(Quote(cs.Server)).Append('\n');
            else text.Append("host=").Append(Quote(cs.Server)).Append("\nport=").Append(cs.Port).Append("\nprotocol=TCP\n");
            var path = Temporary("my.cnf");
            FileWriter.Write(path, text.ToString(), Private);
            return _defaults = path;

            // An option file's value in double quotes: \ and " escaped, so any password reads back as itself.
            static string Quote(string value) => "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }

        private async Task<byte[]?> DatabaseUsersSqlAsync(CancellationToken ct)
        {
            var users = await w._databaseUsers.ListAsync(subject.Identity, ct);
            if (users.Count == 0) return null;
            var text = new StringBuilder();
            await using var c = await w._admin.OpenAsync(ct);
            foreach (var u in users)
            {
                var account = $"{SqlNames.Literal(u.User)}@{SqlNames.Literal(u.Host)}";
                foreach (var sql in new[] { $"SHOW CREATE USER {account}", $"SHOW GRANTS FOR {account}" })
                {
                    await using var command = new MySqlCommand(sql, c);
                    await using var reader = await command.ExecuteReaderAsync(ct);
                    while (await reader.ReadAsync(ct)) text.Append(reader.GetString(0)).Append(";\n");
                }
            }
            return Encoding.UTF8.GetBytes(text.ToString());
        }

        private static readonly string[] ZoneTables = ["records", "comments", "domainmetadata", "cryptokeys"];

        /// <summary>The zone's rows, column name to value, without ids: a restore makes new ones.</summary>
        private async Task<byte[]?> ZoneJsonAsync(CancellationToken ct)
        {
            await using var c = await w._powerDns.OpenAsync(ct);
            var zoneId = await Dapper.SqlMapper.ExecuteScalarAsync<int?>(c, new Dapper.CommandDefinition(
                "SELECT id FROM domains WHERE name = @Domain", new { subject.Identity.Domain }, cancellationToken: ct));
            if (zoneId is not { } zid) return null;
            using var buffer = new MemoryStream();
            await using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                json.WritePropertyName("domain");
                await RowsAsync(c, json, "SELECT * FROM domains WHERE id = @id", zid, single: true, ct);
                foreach (var table in ZoneTables)
                {
                    json.WritePropertyName(table);
                    await RowsAsync(c, json, $"SELECT * FROM {table} WHERE domain_id = @id ORDER BY id", zid, single: false, ct);
                }
                json.WriteEndObject();
            }
            return buffer.ToArray();
        }

        private static async Task RowsAsync(MySqlConnection c, Utf8JsonWriter json, string sql, int id, bool single, CancellationToken ct)
        {
            await using var command = new MySqlCommand(sql, c);
            command.Parameters.AddWithValue("@id", id);
            await using var reader = await command.ExecuteReaderAsync(ct);
            if (!single) json.WriteStartArray();
            while (await reader.ReadAsync(ct))
            {
                json.WriteStartObject();
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    var column = reader.GetName(i);
                    if (column is "id" or "domain_id") continue;
                    if (reader.IsDBNull(i)) json.WriteNull(column);
                    else switch (reader.GetValue(i))
                    {
                        case bool b: json.WriteBoolean(column, b); break;
                        case sbyte or byte or short or ushort or int or uint or long or ulong:
                            json.WriteNumber(column, Convert.ToInt64(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)); break;
                        case DateTime t: json.WriteString(column, t.ToString("yyyy-MM-dd HH:mm:ss.ffffff")); break;
                        case var v: json.WriteString(column, Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)); break;
                    }
                }
                json.WriteEndObject();
                if (single) return;
            }
            if (single) json.WriteNullValue();
            else json.WriteEndArray();
        }

        private string Temporary(string what)
        {
            var path = Path.Join(folder, $"{id}.{what}.{Guid.NewGuid():N}.tmp");
            _temporary.Add(path);
            return path;
        }

        public void DeleteTemporaryFiles()
        {
            _skipped?.Dispose();
            foreach (var path in _temporary) File.Delete(path);
        }
    }

    /// <summary>
    /// The SHA-256 of a tree part: of one line "{sha256}  {path}\n" per regular file in archive order (sha256sum's own
    /// format), so the content is hashed once, per file, and the part's hash still changes with any byte or name.
    /// </summary>
    private sealed class PartHash
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public void Add(string path, string sha256) => _hash.AppendData(Encoding.UTF8.GetBytes($"{sha256}  {path}\n"));
        public string Sha256() => Convert.ToHexStringLower(_hash.GetHashAndReset());
    }
}
