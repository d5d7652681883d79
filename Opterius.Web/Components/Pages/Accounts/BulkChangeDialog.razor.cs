using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Licensing;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// Suspends or unsuspends a batch through the ordinary suspension service, a few accounts at a time (their reloads
/// coalesce), and reports each account's result as it comes: the new status, or why it was refused or failed.
/// </summary>
public sealed partial class BulkChangeDialog
{
    [CascadingParameter] private IMudDialogInstance Dialog { get; set; } = default!;

    [Parameter, EditorRequired] public IReadOnlyList<Account> Accounts { get; set; } = [];
    [Parameter, EditorRequired] public BulkAction Action { get; set; }
    [Parameter, EditorRequired] public ClaimsPrincipal User { get; set; } = default!;
    [Parameter] public string? SourceIp { get; set; }

    [Inject] private AccountSuspension Suspension { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;

    private const string Waiting = "waiting";
    private const string Running = "running";
    private const string Done = "done";
    private const string FailedStatus = "failed";

    // Enough to overlap the reloads of several accounts, few enough not to crowd the server's daemons.
    private const int Parallelism = 4;

    private sealed record Row(string Status, string? Detail);

    private Dictionary<long, Row> _rows = [];
    private bool _started;

    private string Verb => Action == BulkAction.Suspend ? "Suspend" : "Unsuspend";
    private string PastTense => Action == BulkAction.Suspend ? "suspended" : "unsuspended";
    private string Question => Action == BulkAction.Suspend
        ? "Their sites answer 503, their mail and logins stop; nothing is removed and Unsuspend restores them."
        : "Their sites, mail and logins work again.";
    private int Failed => _rows.Values.Count(r => r.Status == FailedStatus);
    private bool Finished => _rows.Values.All(r => r.Status is Done or FailedStatus);

    protected override void OnParametersSet() => _rows = Accounts.ToDictionary(a => a.Id, _ => new Row(Waiting, null));

    private Task RunAsync()
    {
        _started = true;
        return RunOnAsync(Accounts);
    }

    private Task RetryAsync() => RunOnAsync(Accounts.Where(a => _rows[a.Id].Status == FailedStatus).ToList());

    private async Task RunOnAsync(IReadOnlyList<Account> batch)
    {
        foreach (var a in batch) _rows[a.Id] = new(Waiting, null);
        var actor = User.Actor(SourceIp);
        await Parallel.ForEachAsync(batch, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (a, _) =>
        {
            await InvokeAsync(() => { _rows[a.Id] = new(Running, null); StateHasChanged(); });
            Row result;
            try
            {
                var changed = Action == BulkAction.Suspend
                    ? await Suspension.SuspendAsync(actor, a.Id, CancellationToken.None)
                    : await Suspension.UnsuspendAsync(actor, a.Id, CancellationToken.None);
                result = new(Done, changed.Status);
            }
            catch (Exception e) when (Refusals.IsRefusal(e)) { result = new(FailedStatus, e.Message); }
            await InvokeAsync(() => { _rows[a.Id] = result; StateHasChanged(); });
        });
    }

    // Cancelled before anything started: the grid keeps the selection for another try.
    private void Close()
    {
        if (_started) Dialog.Close(DialogResult.Ok(true));
        else Dialog.Cancel();
    }
}
