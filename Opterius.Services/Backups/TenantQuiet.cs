using System.Text.Json;
using Opterius.Services.Accounts;
using Opterius.Services.Commands;
using Opterius.Services.Files;
using Opterius.Services.Resources;

namespace Opterius.Services.Backups;

/// <summary>
/// Keeps a tenant from changing its account while its final backup is read (the backup runs before the deletion's
/// <c>logins</c> and <c>processes</c> steps, so a running tenant could tear the snapshot): its logins are held (account
/// expired, shell nologin, with <c>Opterius:Commands:UserHold</c>) and every process of its uid is stopped (SIGSTOP),
/// one that starts later (a pool worker for a request) within <see cref="Every"/>. When the backup ends, written or failed,
/// everything is given back as it was found: a failed backup leaves the account as it was, and a written one leaves the
/// locking and killing to the deletion's own steps, which come next. What was found (expiry, shell, the pids stopped)
/// is kept in a root-only file beside the archives until it is given back, so when an agent died mid-backup, the job's
/// next attempt gives back the tenant's own logins and processes, not the held ones.
/// </summary>
public sealed class TenantQuiet(ServerLayout layout, CommandRunner commands, ProcessesResource processes)
{
    public const string HoldCommand = "UserHold";

    // Read by a hold, which a primary constructor's parameters cannot reach.
    private readonly ProcessesResource _processes = processes;

    /// <summary>How often processes that started since are stopped while the backup runs.</summary>
    public static TimeSpan Every { get; set; } = TimeSpan.FromMilliseconds(250);

    private const UnixFileMode Private = (UnixFileMode)0b110_000_000; // 0600

    /// <summary>What the hold found and changed; the state file's content.</summary>
    internal sealed record Found(string Shell, long? ExpiresOnDay, List<int> Stopped);

    /// <summary>Holds the account's logins and stops its processes; a failure half-way gives back what it changed.</summary>
    public async Task<Hold> HoldAsync(AccountIdentity account, string folder, CancellationToken ct)
    {
        var uid = UserDatabase.CheckedUid(layout, account);
        if (uid is null || UserDatabase.Find(layout, account.Username) is not { } user) return new Hold(this, account, null, null, null);
        var file = Path.Join(folder, $"{account.Username}.hold.json");
        var found = Read(file) ?? new Found(user.Shell, UserDatabase.Shadow(layout, user.Name)?.ExpiresOnDay, []);
        FileWriter.Write(file, JsonSerializer.SerializeToUtf8Bytes(found), Private, durable: true);
        var hold = new Hold(this, account, uid, file, found);
        try
        {
            await SetLoginsAsync(user.Name, SystemUserResource.SuspendedShell, 1, ct);
            hold.Stop();
            hold.KeepStopping();
            return hold;
        }
        catch (Exception e)
        {
            await hold.GiveBackAfterAsync(e);
            throw;
        }
    }

    private static Found? Read(string file)
    {
        if (!File.Exists(file)) return null;
        try { return JsonSerializer.Deserialize<Found>(File.ReadAllBytes(file)); }
        catch (JsonException e) { throw new ResourceException($"{file} (what a final backup's hold found) is not valid: {e.Message}; the tenant's logins were not touched"); }
    }

    /// <summary>The user's expiry and shell; nothing is run when they are so already.</summary>
    private async Task SetLoginsAsync(string username, string shell, long? expiresOnDay, CancellationToken ct)
    {
        var user = UserDatabase.Find(layout, username);
        if (user is null || (user.Shell == shell && UserDatabase.Shadow(layout, username)?.ExpiresOnDay == expiresOnDay)) return;
        if (!commands.IsConfigured(HoldCommand))
            throw new ResourceException($"not configured: set Opterius:Commands:{HoldCommand} (usermod -e {{expires}} -s {{shell}} {{username}}): "
                + $"the logins of {username} are held while its final backup is read");
        await ResourceException.WhenCommandFails(() => commands.RunAsync(HoldCommand, new Dictionary<string, string>
        {
            ["username"] = username, ["shell"] = shell, ["expires"] = expiresOnDay?.ToString() ?? "",
        }, ct), $"setting the logins of {username}");
    }

    /// <summary>An account held for its backup; <see cref="GiveBackAsync"/> ends it.</summary>
    public sealed class Hold
    {
        private readonly TenantQuiet quiet;
        private readonly AccountIdentity account;
        private readonly int? uid;
        private readonly string? file;
        private readonly Found? found;
        private readonly HashSet<int> _stopped;
        private readonly CancellationTokenSource _stop = new();
        private readonly Lock _lock = new();
        private Task _keeping = Task.CompletedTask;

        internal Hold(TenantQuiet quiet, AccountIdentity account, int? uid, string? file, Found? found)
        {
            (this.quiet, this.account, this.uid, this.file, this.found) = (quiet, account, uid, file, found);
            _stopped = found is null ? [] : [.. found.Stopped];
        }

        /// <summary>Stops what runs now, and records the pids first: a crash after a stop must still know to continue it.</summary>
        internal void Stop()
        {
            if (uid is not { } u) return;
            lock (_lock)
            {
                var before = _stopped.Count;
                quiet._processes.StopAll(u, _stopped);
                if (_stopped.Count != before) Save();
            }
        }

        internal void KeepStopping()
        {
            if (uid is null) return;
            _keeping = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    try { await Task.Delay(Every, _stop.Token); }
                    catch (OperationCanceledException) { return; }
                    Stop();
                }
            });
        }

        private void Save() => FileWriter.Write(file!, JsonSerializer.SerializeToUtf8Bytes(found! with { Stopped = [.. _stopped] }), Private, durable: true);

        /// <summary>Continues every process stopped and gives back the expiry and shell found; throws when that fails.</summary>
        public async Task GiveBackAsync()
        {
            if (uid is not { } u) return;
            await _stop.CancelAsync();
            var problems = new List<string>();
            try { await _keeping; }
            catch (Exception e) { problems.Add($"stopping processes: {e.Message}"); }
            lock (_lock) quiet._processes.ContinueAll(u, _stopped);
            try { await quiet.SetLoginsAsync(account.Username, found!.Shell, found.ExpiresOnDay, CancellationToken.None); }
            catch (Exception e) { problems.Add(e.Message); }
            if (problems.Count > 0)
                throw new ResourceException($"the logins of {account.Username} could not be given back as they were (expiry {found!.ExpiresOnDay?.ToString() ?? "none"}, "
                    + $"shell {found.Shell}): {string.Join("; ", problems)}; {file} keeps them for the next attempt");
            File.Delete(file!);
        }

        /// <summary>Gives back after <paramref name="failure"/>; a failure to give back is added to its message.</summary>
        public async Task GiveBackAfterAsync(Exception failure)
        {
            try { await GiveBackAsync(); }
            catch (ResourceException e) { throw new ResourceException($"{failure.Message}; and {e.Message}", failure); }
        }
    }
}
