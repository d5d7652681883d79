using Microsoft.AspNetCore.Components;
using MudBlazor;
using Opterius.Services.Deletion;
using Opterius.Web.Auth;
using Opterius.Web.Components.Pages.Accounts;

namespace Opterius.Web.Components.Pages.Deletions;

/// <summary>
/// The "scheduled" view: accounts whose deletion is scheduled (not yet a job), soonest first, with Cancel through the
/// accounts grid's own confirmation. Live: a schedule made or cancelled anywhere, or one the scheduler starts (it
/// becomes a running job), reloads the page shown.
/// </summary>
public sealed partial class DeletionsPage
{
    public const string ScheduledTab = "scheduled";

    [Inject] private ScheduledDeletionList Schedules { get; set; } = default!;
    [Inject] private DeletionSchedule Schedule { get; set; } = default!;
    [Inject] private IDialogService Dialogs { get; set; } = default!;

    private MudDataGrid<ScheduledDeletion>? _scheduledGrid;
    private bool _busy;

    private bool ShowsScheduled => _status == ScheduledTab;

    private async Task<GridData<ScheduledDeletion>> LoadScheduledAsync(GridState<ScheduledDeletion> state, CancellationToken ct)
    {
        var viewer = _user.Viewer();
        var page = await Schedules.ListAsync(viewer, new ScheduledDeletionQuery(state.Page + 1, state.PageSize,
            string.IsNullOrWhiteSpace(_search) ? null : _search.Trim()), ct);
        await LoadCountsAsync(ct);
        return new GridData<ScheduledDeletion> { Items = page.Items, TotalItems = (int)Math.Min(page.Total, int.MaxValue) };
    }

    /// <summary>Who scheduled it, as the viewer may be told: a reseller learns that the host did, not which admin.</summary>
    private string ScheduledBy(ScheduledDeletion s) => _user.IsAdmin() || s.ByOwner ? s.ScheduledBy ?? "unknown" : "the host";

    /// <summary>
    /// Why a due deletion waits, as the viewer may be told: an admin reads the scheduler's reason as it is (the audit has
    /// it too); a reseller reads what it means for them, never a server's exception. A conflict or a missing account is
    /// said in the refusal's own words, which are the API's to anyone.
    /// </summary>
    private string BlockedNote(string reason) => BlockedReasons.For(_user, reason);

    private async Task CancelScheduledAsync(ScheduledDeletion s)
    {
        if (await Dialogs.CancelDeletionAsync(Snackbar, Schedule, _user.Actor(SourceIp), s.AccountId, s.Username, s.DueAt, busy => _busy = busy))
            await ReloadAsync();
    }
}
