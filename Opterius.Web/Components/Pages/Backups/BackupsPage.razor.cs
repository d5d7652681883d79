using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using MudBlazor;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Users;
using Opterius.Web.Api;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Backups;

/// <summary>
/// The final backups the viewer may see (admins all, resellers their own), server-side paged, with Restore (after a
/// confirmation that shows what the archive holds, its steps shown live) and Purge now (after a confirmation). A refusal is shown, never thrown.
/// </summary>
public sealed partial class BackupsPage : IDisposable
{
    [CascadingParameter] private Task<AuthenticationState> AuthState { get; set; } = default!;
    [CascadingParameter(Name = "SourceIp")] private string? SourceIp { get; set; }

    [Inject] private BackupStore Store { get; set; } = default!;
    [Inject] private FinalBackups Backups { get; set; } = default!;
    [Inject] private BackupRestoration Restores { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;
    [Inject] private RestoreEvents RestoreEvents { get; set; } = default!;
    [Inject] private PanelUsers Users { get; set; } = default!;
    [Inject] private IDialogService Dialogs { get; set; } = default!;
    [Inject] private ISnackbar Snackbar { get; set; } = default!;

    /// <summary>A restore as the page shows it while it runs and after.</summary>
    private sealed record ShownRestore(long JobId, long BackupId, string Username, string Domain, string Status, string? Detail, IReadOnlyList<ShownStep> Steps);

    private sealed record ShownStep(string Resource, string Status, string? Detail);

    private MudDataGrid<FinalBackup> _grid = default!;
    private ClaimsPrincipal _user = new();
    private bool _writable;
    private bool _busy;
    private ShownRestore? _restore;
    private IDisposable? _subscription;

    protected override async Task OnInitializedAsync()
    {
        _user = (await AuthState).User;
        _writable = License.Current.Valid;
    }

    private async Task<GridData<FinalBackup>> LoadAsync(GridState<FinalBackup> state, CancellationToken ct)
    {
        var (items, total) = await Store.ListAsync(_user.Viewer(), state.Page + 1, state.PageSize, null, ct);
        return new GridData<FinalBackup> { Items = items, TotalItems = (int)Math.Min(total, int.MaxValue) };
    }

    private static string State(FinalBackup b) => b.PurgedAt is not null ? "purged" : b.Complete ? "kept" : "writing";

    private async Task RestoreAsync(FinalBackup b)
    {
        if (!await ConfirmRestoreAsync(b)) return;
        _busy = true;
        var events = RestoreEvents.Stream;
        var live = new Dictionary<string, ShownStep>();
        long? jobId = null;
        var early = new List<DeletionEvent>();
        _subscription?.Dispose();
        // The job's id is known once it started: what it published before is held, then shown.
        _subscription = events.Subscribe(null, e =>
        {
            lock (live)
            {
                if (jobId is null) early.Add(e);
                else if (e.JobId == jobId) Show(e);
            }
        }, out _);
        try
        {
            var handle = await Restores.StartAsync(_user.Actor(SourceIp), b.Id, CancellationToken.None);
            var job = handle.Job;
            _restore = new ShownRestore(job.Id, b.Id, b.Username, b.Domain, job.Status, null, job.Steps.Select(s => new ShownStep(s.Resource, s.Status, s.Detail)).ToList());
            lock (live)
            {
                jobId = job.Id;
                foreach (var e in early.Where(e => e.JobId == job.Id)) Show(e);
            }
            StateHasChanged();
            var finished = await handle.Completion;
            _restore = _restore with
            {
                Status = finished.Status, Detail = finished.Detail,
                Steps = finished.Steps.Select(s => new ShownStep(s.Resource, s.Status, s.Detail)).ToList(),
            };
            Snackbar.Add(finished.Status == JobStatus.Succeeded ? $"{b.Username} is restored." : $"Restoring {b.Username} failed: {finished.Detail}",
                finished.Status == JobStatus.Succeeded ? Severity.Success : Severity.Error);
        }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal)
        {
            Snackbar.Add($"Restore of {b.Username} refused ({refusal.Value!.Error}): {e.Message}", Severity.Error);
        }
        finally
        {
            _subscription?.Dispose();
            _subscription = null;
            _busy = false;
        }
        await _grid.ReloadServerData();
        StateHasChanged();

        // Called under the publisher's lock on its thread: only hands the event to the renderer.
        void Show(DeletionEvent e) => _ = InvokeAsync(() =>
        {
            if (_restore is null || _restore.JobId != e.JobId) return;
            _restore = e.Resource == DeletionEvent.JobResource
                ? _restore with { Status = e.Status, Detail = e.Status == JobStatus.Running ? null : e.Detail }
                : _restore with { Steps = _restore.Steps.Select(s => s.Resource == e.Resource ? new ShownStep(e.Resource, e.Status, e.Detail) : s).ToList() };
            StateHasChanged();
        });
    }

    /// <summary>Shows what the archive will restore (its manifest, the account it names); true once the user confirms.</summary>
    private async Task<bool> ConfirmRestoreAsync(FinalBackup b)
    {
        RestorePreview preview;
        try { preview = await Restores.PreviewAsync(_user.Viewer(), b.Id, CancellationToken.None); }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal)
        {
            Snackbar.Add($"Restore of {b.Username} refused ({refusal.Value!.Error}): {e.Message}", Severity.Error);
            await _grid.ReloadServerData();
            return false;
        }
        var owner = await Users.FindAsync(preview.Backup.OwnerId, CancellationToken.None);
        var parameters = new DialogParameters<RestoreDialog>
        {
            { d => d.Preview, preview },
            { d => d.Owner, owner?.Username ?? $"#{preview.Backup.OwnerId}" },
        };
        var options = new DialogOptions { MaxWidth = MaxWidth.Small, FullWidth = true, CloseOnEscapeKey = true };
        var result = await (await Dialogs.ShowAsync<RestoreDialog>($"Restore {b.Username}", parameters, options)).Result;
        return result is { Canceled: false };
    }

    private async Task PurgeAsync(FinalBackup b)
    {
        var confirmed = await Dialogs.ShowMessageBoxAsync($"Purge backup {b.Id}",
            $"Remove the final backup of {b.Username} ({b.Domain}) now? It cannot be restored afterwards; the audit keeps who purged it.",
            yesText: "Purge now", cancelText: "Cancel");
        if (confirmed != true) return;
        _busy = true;
        try
        {
            await Backups.PurgeAsync(_user.Actor(SourceIp), b.Id, CancellationToken.None);
            Snackbar.Add($"Backup {b.Id} of {b.Username} is purged.", Severity.Success);
        }
        catch (Exception e) when (AccountWritesApi.Refusal(e) is { } refusal)
        {
            Snackbar.Add($"Purge of backup {b.Id} refused ({refusal.Value!.Error}): {e.Message}", Severity.Error);
        }
        finally { _busy = false; }
        await _grid.ReloadServerData();
    }

    public void Dispose() => _subscription?.Dispose();
}
