using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// A change of one account the user confirms first (suspend, unsuspend, cancel a scheduled deletion), as every page
/// asks it: the question, then the change, then its outcome or its refusal as a message (a refusal never takes the
/// circuit down). One copy, so the accounts grid, the account page and the Deletions page ask and answer alike.
/// </summary>
public static class ConfirmedChange
{
    /// <summary>Asks, then changes; false when the user said no (then nothing was asked of the server).</summary>
    public static async Task<bool> ConfirmChangeAsync(this IDialogService dialogs, ISnackbar snackbar, string username, string verb, string question,
        Func<Task<Account>> change, Action<bool> busy, string? yes = null, string no = "Cancel")
    {
        var confirmed = await dialogs.ShowMessageBoxAsync($"{verb} {username}", question, yesText: yes ?? verb, cancelText: no);
        if (confirmed != true) return false;
        busy(true);
        try
        {
            var changed = await change();
            snackbar.Add($"{changed.Username} is {changed.Status}.", Severity.Success);
        }
        catch (Exception e) when (Refusals.IsRefusal(e))
        {
            snackbar.Add($"{verb} {username} failed: {e.Message}", Severity.Error);
        }
        finally { busy(false); }
        return true;
    }

    // "Keep account" / "Close": "Cancel deletion" beside "Cancel" left it unclear which button cancels what.
    public static Task<bool> CancelDeletionAsync(this IDialogService dialogs, ISnackbar snackbar, DeletionSchedule schedule, Actor actor,
        long accountId, string username, DateTime? due, Action<bool> busy) =>
        dialogs.ConfirmChangeAsync(snackbar, username, "Cancel deletion",
            $"Cancel the deletion of {username} due on {due:yyyy-MM-dd HH:mm} UTC? It stays suspended; Unsuspend serves it again.",
            () => schedule.CancelAsync(actor, accountId, CancellationToken.None), busy, yes: "Keep account", no: "Close");
}
