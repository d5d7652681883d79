using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Users;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// Deletes a batch with one confirmation: the combined plan (each account's sizes and counts, and the totals), the
/// number of accounts typed and the user's password checked once; then every account's deletion is started through
/// the one deletion service at once (so their service reloads coalesce) and each is followed live. A failed one stays
/// listed with its failed step and Retry, which resumes it there. The jobs are the service's: closing stops nothing.
/// </summary>
public sealed partial class BulkDeleteDialog : IDisposable
{
    [CascadingParameter] private IMudDialogInstance Dialog { get; set; } = default!;

    [Parameter, EditorRequired] public IReadOnlyList<Account> Accounts { get; set; } = [];
    [Parameter, EditorRequired] public ClaimsPrincipal User { get; set; } = default!;
    [Parameter] public string? SourceIp { get; set; }

    [Inject] private AccountDeletionService Deletion { get; set; } = default!;
    [Inject] private DeletionEvents Events { get; set; } = default!;
    [Inject] private DeletionJobStore Jobs { get; set; } = default!;
    [Inject] private PanelUsers Users { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;
    [Inject] private AuditLog Audit { get; set; } = default!;
    [Inject] private PasswordRechecks Rechecks { get; set; } = default!;

    private enum Stage { Loading, Plan, Progress }

    // Inspections read the disk and the databases: a few at a time keeps a large batch from crowding the server.
    private const int PlanParallelism = 4;

    private Stage _stage = Stage.Loading;
    private List<BulkDeletion> _rows = [];
    private Dictionary<long, BulkDeletion> _byId = [];
    private int _planned;
    private string _typed = "";
    private string _password = "";
    private string? _error;
    private bool _busy;
    private IDisposable? _subscription;

    /// <summary>The accounts the plan found (an account gone or refused since it was ticked is listed, not counted).</summary>
    private List<BulkDeletion> Deletable => _rows.Where(r => r.Plan is not null).ToList();

    private bool CountMatches => _typed.Trim() == Deletable.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private bool CanDelete => !_busy && License.Current.Valid && Deletable.Count > 0 && CountMatches && _password.Length > 0 && Rechecks.MayTry(User.UserIdOf());

    private int Succeeded => Deletable.Count(r => r.JobStatus == JobStatus.Succeeded);
    private int FailedCount => Deletable.Count(r => r.JobStatus == JobStatus.Failed);
    private bool AllFinished => Deletable.All(r => r.JobStatus is JobStatus.Succeeded or JobStatus.Failed);

    protected override async Task OnInitializedAsync()
    {
        _rows = Accounts.Select(a => new BulkDeletion(a)).ToList();
        _byId = _rows.ToDictionary(r => r.Account.Id);
        // Subscribed before anything starts, so no transition of these accounts is missed.
        _subscription = Events.Subscribe(null, e =>
        {
            if (_byId.TryGetValue(e.AccountId, out var row)) _ = InvokeAsync(() => { row.Apply(e); StateHasChanged(); });
        }, out _);
        if (!Rechecks.MayTry(User.UserIdOf())) _error = PasswordRechecks.TooManyWrongPasswords;

        var viewer = User.Viewer();
        await Parallel.ForEachAsync(_rows, new ParallelOptions { MaxDegreeOfParallelism = PlanParallelism }, async (row, _) =>
        {
            try { row.Plan = await Deletion.PlanAsync(viewer, row.Account.Id, CancellationToken.None); }
            catch (AccountNotFoundException) { row.Error = "no longer exists: left out"; }
            catch (Exception e) when (Refusals.IsRefusal(e)) { row.Error = $"cannot be inspected, left out: {e.Message}"; }
            await InvokeAsync(() => { _planned++; StateHasChanged(); });
        });
        _stage = Stage.Plan;
    }

    private async Task DeleteAsync()
    {
        if (!CanDelete) return;
        _busy = true;
        _error = null;
        try
        {
            var password = _password;
            _password = "";
            var names = string.Join(", ", Deletable.Take(20).Select(r => r.Account.Username));
            _error = await Rechecks.RefuseDeletionAsync(Users, Audit, User, SourceIp, password, null, null,
                $"bulk delete of {Deletable.Count} accounts: {names}{(Deletable.Count > 20 ? ", …" : "")}");
            if (_error is not null) return;
            _stage = Stage.Progress;
            await StartAsync(Deletable);
        }
        finally { _busy = false; }
    }

    private Task RetryAllAsync() => StartAsync(Deletable.Where(r => r.JobStatus == JobStatus.Failed).ToList());

    /// <summary>Starts (or resumes at its failed step) each account's deletion at once; the service runs them concurrently.</summary>
    private async Task StartAsync(IReadOnlyList<BulkDeletion> rows)
    {
        var actor = User.Actor(SourceIp);
        foreach (var row in rows) row.Starting();
        await Task.WhenAll(rows.Select(row => FollowAsync(actor, row)));
    }

    private async Task FollowAsync(Actor actor, BulkDeletion row)
    {
        DeletionHandle handle;
        try { handle = await Deletion.StartAsync(actor, row.Account.Id, CancellationToken.None); }
        catch (AccountNotFoundException) { await ShowAsync(() => row.Refused("no longer exists")); return; }
        catch (Exception e) when (Refusals.IsRefusal(e)) { await ShowAsync(() => row.Refused(e.Message)); return; }
        await ShowAsync(() => row.Merge(handle.Job));
        // The outcome is streamed too; reading it here also covers a job that ended before this circuit heard of it.
        try
        {
            var finished = await handle.Completion;
            await ShowAsync(() => row.Merge(finished));
        }
        catch (Exception e)
        {
            // The executor's own failure (logged and audited by the service): shown on the row, never thrown at the circuit.
            await ShowAsync(() => row.Refused(e.GetBaseException().Message));
        }
    }

    private Task ShowAsync(Action change) => InvokeAsync(() =>
    {
        change();
        StateHasChanged();
    });

    private static string RowText(BulkDeletion row)
    {
        if (row.JobStatus == JobStatus.Succeeded) return "deleted";
        if (row.JobStatus == JobStatus.Failed) return row.Current is { Status: Services.Resources.StepStatus.Failed } f
            ? $"failed at {ResourceNames.Label(f.Resource)}: {f.Detail}" : $"failed: {row.Error}";
        return row.Current is { } c ? $"{row.Finished} of {row.StepCount}: {ResourceNames.Label(c.Resource)}{(c.Detail is null ? "" : $" ({c.Detail})")}"
            : $"{row.Finished} of {row.StepCount}";
    }

    // Cancelled before anything started: the grid keeps the selection for another try.
    private void Close()
    {
        if (_stage == Stage.Progress) Dialog.Close(DialogResult.Ok(true));
        else Dialog.Cancel();
    }

    public void Dispose() => _subscription?.Dispose();
}
