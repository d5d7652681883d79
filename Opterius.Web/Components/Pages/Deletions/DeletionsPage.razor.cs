using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Deletions;

/// <summary>
/// Every deletion job the viewer may see (a reseller: its own accounts'), filtered by status and searched by username
/// or domain, server-side paged, and live: a job starting or ending reloads the page shown, a long step's progress
/// updates its row in place. Retry resumes a failed job at its failed step through the deletion service. The
/// scheduled deletions, which are no jobs yet, are a view of their own (DeletionsPage.Scheduled.cs).
/// </summary>
public sealed partial class DeletionsPage : IDisposable
{
    /// <summary>The status filters, in order; an empty value is every job, <see cref="ScheduledTab"/> the deletions not started yet.</summary>
    public static readonly IReadOnlyList<(string Value, string Label)> Tabs =
    [
        ("", "All"), (JobStatus.Running, "Running"), (JobStatus.Failed, "Failed"), (JobStatus.Succeeded, "Succeeded"), (ScheduledTab, "Scheduled"),
    ];

    [CascadingParameter] private Task<AuthenticationState> AuthState { get; set; } = default!;
    [CascadingParameter(Name = "SourceIp")] private string? SourceIp { get; set; }

    [Inject] private DeletionJobList Jobs { get; set; } = default!;
    [Inject] private AccountDeletionService Deletion { get; set; } = default!;
    [Inject] private DeletionEvents Events { get; set; } = default!;
    [Inject] private AccountEvents AccountChanges { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;
    [Inject] private ISnackbar Snackbar { get; set; } = default!;

    /// <summary>The status filter to start with (<c>/deletions?status=failed</c>, as the overview links).</summary>
    [SupplyParameterFromQuery(Name = "status")] public string? InitialStatus { get; set; }

    private MudDataGrid<DeletionJobSummary>? _grid;
    private ClaimsPrincipal _user = new();
    private string _status = "";
    private string? _search;
    private bool _writable;
    private IReadOnlyDictionary<string, long> _counts = new Dictionary<string, long>();
    private readonly HashSet<long> _retrying = [];
    private IDisposable? _subscription;
    private IDisposable? _accountSubscription;
    private int _reloadQueued;

    // The latest step event of each running job: which step runs, and a long step's counts. Rendered only for the jobs
    // the viewer's own query put on the page (_shown), so another owner's job is never drawn nor redraws this one.
    private readonly Dictionary<long, DeletionEvent> _live = [];
    private HashSet<long> _shown = [];

    protected override async Task OnInitializedAsync()
    {
        _user = (await AuthState).User;
        _writable = License.Current.Valid;
        if (Tabs.Any(t => t.Value == InitialStatus)) _status = InitialStatus!;
    }

    protected override void OnAfterRender(bool firstRender)
    {
        if (!firstRender || !RendererInfo.IsInteractive) return;
        _subscription = Events.Subscribe(null, e => _ = InvokeAsync(() => OnEventAsync(e)), out _);
        // A schedule made or cancelled changes the scheduled view and its count.
        _accountSubscription = AccountChanges.Subscribe(c =>
        {
            if (_user.IsAdmin() || c.OwnerId == _user.UserIdOf()) _ = InvokeAsync(ReloadSoonAsync);
        });
    }

    private async Task OnEventAsync(DeletionEvent e)
    {
        if (e.Resource != DeletionEvent.JobResource)
        {
            _live[e.JobId] = e;
            if (e.IsProgress)
            {
                if (_shown.Contains(e.JobId)) StateHasChanged();
                return;
            }
        }
        else _live.Remove(e.JobId);
        await ReloadSoonAsync();
    }

    /// <summary>A burst of transitions (a resumed job announces every step) costs one reload, not one per event.</summary>
    private async Task ReloadSoonAsync()
    {
        if (Interlocked.Exchange(ref _reloadQueued, 1) == 1) return;
        await Task.Delay(150);
        Interlocked.Exchange(ref _reloadQueued, 0);
        await ReloadAsync();
    }

    private async Task<GridData<DeletionJobSummary>> LoadAsync(GridState<DeletionJobSummary> state, CancellationToken ct)
    {
        var viewer = _user.Viewer();
        var page = await Jobs.ListAsync(viewer, new DeletionJobQuery(state.Page + 1, state.PageSize,
            _status.Length == 0 ? null : _status, string.IsNullOrWhiteSpace(_search) ? null : _search.Trim()), ct);
        await LoadCountsAsync(ct);
        _shown = page.Items.Select(j => j.Id).ToHashSet();
        return new GridData<DeletionJobSummary> { Items = page.Items, TotalItems = (int)Math.Min(page.Total, int.MaxValue) };
    }

    /// <summary>The tabs' counts, of everything the viewer may see (the search narrows the rows, not the counts).</summary>
    private async Task LoadCountsAsync(CancellationToken ct)
    {
        var viewer = _user.Viewer();
        var counts = await Jobs.CountsAsync(viewer, ct);
        var scheduled = await Schedules.CountAsync(viewer, ct);
        var next = new Dictionary<string, long>(counts) { [""] = counts.Values.Sum(), [ScheduledTab] = scheduled };
        var changed = next.Count != _counts.Count || next.Any(n => _counts.GetValueOrDefault(n.Key, -1) != n.Value);
        _counts = next;
        // A grid's load does not redraw the page around it: without this the tabs showed no counts until something else did.
        if (changed) StateHasChanged();
    }

    private async Task ReloadAsync()
    {
        _writable = License.Current.Valid;
        await ReloadShownAsync();
        StateHasChanged();
    }

    /// <summary>Reloads the grid on the page: the jobs', or the schedules' (only one of them is rendered at a time).</summary>
    private Task ReloadShownAsync() =>
        (ShowsScheduled ? _scheduledGrid?.ReloadServerData() : _grid?.ReloadServerData()) ?? Task.CompletedTask;

    private Task OnSearchChanged(string? text)
    {
        _search = text;
        return ReloadShownAsync();
    }

    private Task OnStatusChanged(string? status)
    {
        var wasScheduled = ShowsScheduled;
        _status = status ?? "";
        // Between the jobs and the schedules the other grid is rendered, and it loads itself.
        return wasScheduled == ShowsScheduled ? ReloadShownAsync() : Task.CompletedTask;
    }

    /// <summary>Resumes the job at its failed step, as a second DELETE would; the signed-in user is the actor in the audit.</summary>
    private async Task RetryAsync(DeletionJobSummary job)
    {
        _retrying.Add(job.Id);
        try
        {
            var handle = await Deletion.StartAsync(_user.Actor(SourceIp), job.AccountId, CancellationToken.None);
            Snackbar.Add($"Retrying the deletion of {job.Username} (job {handle.Job.Id}).", Severity.Info);
        }
        catch (Exception e) when (e is LicenseRequiredException or AccountNotFoundException or AccountConflictException or InvalidAccountNameException)
        {
            Snackbar.Add($"Retry of {job.Username} refused: {e.Message}", Severity.Error);
        }
        finally { _retrying.Remove(job.Id); }
        await ReloadAsync();
    }

    private static Color ChipColor(string status) => status switch
    {
        JobStatus.Running => Color.Info,
        JobStatus.Failed => Color.Error,
        JobStatus.Succeeded => Color.Success,
        _ => Color.Default,
    };

    public void Dispose()
    {
        _subscription?.Dispose();
        _accountSubscription?.Dispose();
    }
}
