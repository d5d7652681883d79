using System.Security.Claims;
using Opterius.Services.Audit;
using Opterius.Services.Users;

namespace Opterius.Web.Auth;

/// <summary>How a re-check ended: no guess was left (nothing was checked), or the password was wrong or right.</summary>
public enum Recheck { NoGuessesLeft, Wrong, Right }

/// <summary>
/// Counts wrong passwords at the re-checks that guard destructive actions (the delete dialog), per panel user and
/// server-wide: closing and reopening a dialog, or opening it in another tab or circuit, gives no new guesses.
/// Like the sign-in limiter, a fixed window: at most <see cref="MaxFailures"/> wrong passwords per <see cref="Window"/>.
/// </summary>
/// <remarks>
/// A check holds its place while it runs (<see cref="TryBegin"/>) and gives it back when the password was right, so
/// concurrent checks from several circuits cannot together pass the limit.
/// </remarks>
public sealed class PasswordRechecks(TimeProvider time)
{
    public const int MaxFailures = 5;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);

    private readonly Dictionary<long, (DateTimeOffset Start, int Count)> _windows = [];

    // Said by every destructive dialog that asks for the password (one account, or a batch).
    public static readonly string TooManyWrongPasswords =
        $"Wrong password too many times: nothing was deleted. Try again in {Window.TotalMinutes:0} minutes.";

    public const string WrongPassword = "Wrong password: nothing was deleted. Enter the password you signed in with.";

    /// <summary>
    /// The password check of a deletion's confirmation, as every delete dialog (one account, or a batch) makes it: null
    /// when the password is right; else what to tell the user. A wrong password is audited as a refused delete of
    /// <paramref name="accountId"/> (or, for a batch, of what <paramref name="detail"/> names).
    /// </summary>
    public async Task<string?> RefuseDeletionAsync(PanelUsers users, AuditLog audit, ClaimsPrincipal user, string? sourceIp, string password,
        long? accountId, string? username, string? detail)
    {
        var check = await CheckAsync(users, user, password, CancellationToken.None);
        if (check == Recheck.Right) return null;
        if (check == Recheck.NoGuessesLeft) return TooManyWrongPasswords;
        await audit.WriteAsync(user.Actor(sourceIp), "delete", accountId, username, "wrong_password", detail, CancellationToken.None);
        return MayTry(user.UserIdOf()) ? WrongPassword : TooManyWrongPasswords;
    }

    /// <summary>Checks the signed-in user's own password, counted against the limit.</summary>
    public async Task<Recheck> CheckAsync(PanelUsers users, ClaimsPrincipal user, string password, CancellationToken ct)
    {
        var id = user.UserIdOf();
        if (!TryBegin(id)) return Recheck.NoGuessesLeft;
        var name = user.FindFirst(PanelClaims.Name)?.Value;
        var found = name is null ? null : await users.CheckPasswordAsync(name, password, ct);
        var right = found is not null && found.Id == id;
        End(id, passwordWasRight: right);
        return right ? Recheck.Right : Recheck.Wrong;
    }

    /// <summary>Whether this panel user may try a password now.</summary>
    public bool MayTry(long userId)
    {
        lock (_windows) return Current(userId).Count < MaxFailures;
    }

    /// <summary>Takes a place for one check; false when the user has no guesses left. End it with <see cref="End"/>.</summary>
    public bool TryBegin(long userId)
    {
        lock (_windows)
        {
            var (start, count) = Current(userId);
            if (count >= MaxFailures) return false;
            _windows[userId] = (start, count + 1);
            return true;
        }
    }

    /// <summary>Ends a check begun with <see cref="TryBegin"/>: a right password gives its place back, a wrong one keeps it.</summary>
    public void End(long userId, bool passwordWasRight)
    {
        if (!passwordWasRight) return;
        lock (_windows)
            if (_windows.TryGetValue(userId, out var w) && w.Count > 0) _windows[userId] = (w.Start, w.Count - 1);
    }

    private (DateTimeOffset Start, int Count) Current(long userId)
    {
        var now = time.GetUtcNow();
        if (_windows.TryGetValue(userId, out var w) && now - w.Start < Window) return w;
        // An expired window is replaced when its user is next seen: at most one entry per panel user.
        return _windows[userId] = (now, 0);
    }
}
