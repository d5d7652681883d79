using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Packages;
using Opterius.Services.Users;
using Opterius.Web.Api;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// One account: who and what it is, what it owns on the server (the deletion's own inspection, with sizes), what was
/// done to it (its audit entries) and its deletion jobs, with the actions. A reseller sees only its own accounts: any
/// other id reads as not found. Kept live: a create, suspension or deletion anywhere reloads it.
/// </summary>
public sealed partial class AccountDetailPage : IDisposable
{
    [Parameter] public string Id { get; set; } = "";

    [CascadingParameter] private Task<AuthenticationState> AuthState { get; set; } = default!;
    [CascadingParameter(Name = "SourceIp")] private string? SourceIp { get; set; }

    [Inject] private AccountStore Accounts { get; set; } = default!;
    [Inject] private AccountSuspension Suspension { get; set; } = default!;
    [Inject] private AccountDeletionService Deletion { get; set; } = default!;
    [Inject] private AccountEvents AccountChanges { get; set; } = default!;
    [Inject] private DeletionEvents DeletionChanges { get; set; } = default!;
    [Inject] private DeletionJobStore Jobs { get; set; } = default!;
    [Inject] private PackageStore Packages { get; set; } = default!;
    [Inject] private PanelUsers Users { get; set; } = default!;
    [Inject] private AuditLog Audit { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;
    [Inject] private IDialogService Dialogs { get; set; } = default!;
    [Inject] private ISnackbar Snackbar { get; set; } = default!;

    private const int ShownJobs = 20;

    private ClaimsPrincipal _user = new();
    private long _id;
    private bool _loaded;
    private bool _writable;
    private bool _busy;
    private Account? _account;
    private HostingPackage? _package;
    private PanelUser? _owner;
    private DeletionPlan? _plan;
    private string? _planError;
    private IReadOnlyList<DeletionJob> _jobs = [];
    private MudDataGrid<AuditEntry>? _audit;
    private readonly List<IDisposable> _subscriptions = [];

    protected override async Task OnParametersSetAsync()
    {
        _user = (await AuthState).User;
        var id = ApiErrors.TryParseId(Id, out var parsed) ? parsed : 0;
        if (id != _id) (_plan, _planError) = (null, null);
        _id = id;
        // The inspection reads disks and databases: done once, by the live circuit, not also by the prerender.
        await LoadAsync(inspect: RendererInfo.IsInteractive);
    }

    protected override void OnAfterRender(bool firstRender)
    {
        if (!firstRender || !RendererInfo.IsInteractive) return;
        _subscriptions.Add(AccountChanges.Subscribe(c =>
        {
            if (c.AccountId == _id) _ = InvokeAsync(() => ReloadAsync(inspect: false));
        }));
        // Every account's, filtered here: the same page shows another account when only its id changes.
        _subscriptions.Add(DeletionChanges.Subscribe(null, e =>
        {
            if (e.AccountId == _id && e.Resource == DeletionEvent.JobResource) _ = InvokeAsync(() => ReloadAsync(inspect: e.IsJobEnd));
        }, out _));
    }

    private async Task LoadAsync(bool inspect)
    {
        _writable = License.Current.Valid;
        var viewer = _user.Viewer();
        _account = _id > 0 ? await Accounts.FindAsync(viewer, _id, CancellationToken.None) : null;
        // A job outlives its account; it is shown to whoever could see that account (an admin, or its owner).
        _jobs = _id > 0
            ? (await Jobs.ForAccountAsync(_id, ShownJobs, CancellationToken.None)).Where(j => viewer.IsAdmin || j.OwnerId == viewer.UserId).ToList()
            : [];
        if (_account is not null)
        {
            _package = await Packages.FindAsync(_account.PackageId, CancellationToken.None);
            _owner = await Users.FindAsync(_account.OwnerId, CancellationToken.None);
        }
        _loaded = true;
        if (_account is not null && inspect) await InspectAsync();
    }

    private async Task InspectAsync()
    {
        try
        {
            _plan = await Deletion.PlanAsync(_user.Viewer(), _id, CancellationToken.None);
            _planError = null;
        }
        catch (AccountNotFoundException) { _plan = null; }
        catch (Exception e) when (Refusals.IsRefusal(e)) { _planError = $"Could not inspect the account's resources: {e.Message}"; }
    }

    private async Task ReloadAsync(bool inspect)
    {
        await LoadAsync(inspect);
        StateHasChanged();
        if (_audit is not null) await _audit.ReloadServerData();
    }

    private async Task<GridData<AuditEntry>> LoadAuditAsync(GridState<AuditEntry> state, CancellationToken ct)
    {
        var (items, total) = await Audit.ForAccountAsync(_id, state.Page + 1, state.PageSize, ct);
        return new GridData<AuditEntry> { Items = items, TotalItems = (int)Math.Min(total, int.MaxValue) };
    }

    private Task SuspendAsync() => ChangeAsync("Suspend",
        $"Suspend {_account!.Username}? Its site answers 503, its mail and logins stop; nothing is removed and Unsuspend restores it.",
        () => Suspension.SuspendAsync(_user.Actor(SourceIp), _id, CancellationToken.None));

    private Task UnsuspendAsync() => ChangeAsync("Unsuspend",
        $"Unsuspend {_account!.Username}? Its site, mail and logins work again.",
        () => Suspension.UnsuspendAsync(_user.Actor(SourceIp), _id, CancellationToken.None));

    private async Task ChangeAsync(string verb, string question, Func<Task<Account>> change)
    {
        if (await Dialogs.ConfirmChangeAsync(Snackbar, _account!.Username, verb, question, change, busy => _busy = busy)) await ReloadAsync(inspect: false);
    }

    private async Task OpenDeleteAsync()
    {
        var a = _account!;
        var parameters = new DialogParameters<DeleteAccountDialog> { { d => d.Account, a }, { d => d.User, _user }, { d => d.SourceIp, SourceIp } };
        var options = new DialogOptions { MaxWidth = MaxWidth.Medium, FullWidth = true, CloseOnEscapeKey = true, BackdropClick = false };
        var dialog = await Dialogs.ShowAsync<DeleteAccountDialog>($"Delete {a.Username}", parameters, options);
        await dialog.Result;
        await ReloadAsync(inspect: true);
    }

    private static string StepSummary(DeletionJob j) =>
        string.Join(", ", j.Steps.GroupBy(s => s.Status).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key}"));

    private static Color JobColor(string status) => status switch
    {
        JobStatus.Succeeded => Color.Success,
        JobStatus.Failed => Color.Error,
        _ => Color.Info,
    };

    public void Dispose()
    {
        foreach (var s in _subscriptions) s.Dispose();
    }
}
