using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Audit;
using Opterius.Services.Backups;
using Opterius.Services.Deletion;
using Opterius.Services.Licensing;
using Opterius.Services.Resources;
using Opterius.Services.Users;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// Confirms and follows one account's deletion. The plan view asks for the exact username and the user's own
/// password (checked on the server); the progress view follows the job live. The job belongs to the deletion
/// service, not to this dialog: closing it stops nothing, and reopening it shows the job where it is.
/// </summary>
public sealed partial class DeleteAccountDialog : IDisposable
{
    [CascadingParameter] private IMudDialogInstance Dialog { get; set; } = default!;

    [Parameter, EditorRequired] public Account Account { get; set; } = default!;

    /// <summary>The signed-in panel user: whose password is asked for, and who the audit log names.</summary>
    [Parameter, EditorRequired] public ClaimsPrincipal User { get; set; } = default!;

    [Parameter] public string? SourceIp { get; set; }

    [Inject] private AccountDeletionService Deletion { get; set; } = default!;
    [Inject] private DeletionEvents Events { get; set; } = default!;
    [Inject] private DeletionJobStore Jobs { get; set; } = default!;
    [Inject] private FinalBackups Backups { get; set; } = default!;
    [Inject] private PanelUsers Users { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;
    [Inject] private AuditLog Audit { get; set; } = default!;
    [Inject] private PasswordRechecks Rechecks { get; set; } = default!;

    private enum Stage { Loading, Plan, Progress }

    private Stage _stage = Stage.Loading;
    private DeletionPlan? _plan;
    private string _typed = "";
    private string _password = "";
    private string? _error;
    private bool _busy;
    private bool _keepBackup;
    private string _jobStatus = JobStatus.Running;
    private string? _jobDetail;
    private DeletionVerification? _verification;
    private long? _jobId; // the job shown, for its erasure record once it succeeded
    private IDisposable? _subscription;

    private readonly Dictionary<string, (string Status, string? Detail)> _steps =
        DeletionOrder.Keys.ToDictionary(k => k, _ => (StepStatus.Pending, (string?)null));

    // A long step's latest counts while it runs (home_directory, mailboxes): the bar and time left in its row.
    private readonly Dictionary<string, DeletionEvent> _progress = [];

    // Keys whose state came from a live event: the journal read may be older than them, never newer.
    private readonly HashSet<string> _live = [];

    private bool LicenseValid => License.Current.Valid;

    /// <summary>Exactly the username (ordinal: case and whitespace count) and some password.</summary>
    private bool UsernameMatches => string.Equals(_typed, Account.Username, StringComparison.Ordinal);

    private bool CanDelete => !_busy && LicenseValid && UsernameMatches && _password.Length > 0 && Rechecks.MayTry(User.UserIdOf());

    private int Finished => _steps.Values.Count(s => s.Status is StepStatus.Done or StepStatus.Skipped);

    private double Percent => 100.0 * Finished / _steps.Count;

    protected override async Task OnInitializedAsync()
    {
        // Subscribed before the journal is read, so no transition falls between the two.
        _subscription = Events.Subscribe(Account.Id, e => _ = InvokeAsync(async () =>
        {
            Apply(e);
            StateHasChanged();
            if (e.IsJobEnd) await ReadVerificationAsync(e.JobId);
        }), out var current);
        foreach (var e in current) Apply(e);
        if (!Rechecks.MayTry(User.UserIdOf())) _error = TooManyWrongPasswords;

        var job = await Jobs.LatestForAccountAsync(Account.Id, CancellationToken.None);
        if (job is { Status: JobStatus.Running or JobStatus.Failed })
        {
            Merge(job);
            _stage = Stage.Progress;
            return;
        }
        try { _plan = await Deletion.PlanAsync(User.Viewer(), Account.Id, CancellationToken.None); }
        catch (AccountNotFoundException) { _error = $"Account {Account.Username} no longer exists."; }
        catch (Exception e) when (e is AccountValidationException or AccountConflictException) { _error = e.Message; }
        if (_stage == Stage.Loading) _stage = Stage.Plan;
    }

    private void Apply(DeletionEvent e)
    {
        _live.Add(e.Resource);
        _jobId = e.JobId;
        if (e.Resource == DeletionEvent.JobResource)
        {
            if (e.Status == JobStatus.Running) _verification = null; // a new run: the last check no longer holds
            _jobStatus = e.Status;
            _jobDetail = e.Detail;
            _stage = Stage.Progress; // started here, in another tab, by the API or by a restart: follow it
        }
        else
        {
            _steps[e.Resource] = (e.Status, e.Detail);
            if (e.Progress is not null) _progress[e.Resource] = e;
            else _progress.Remove(e.Resource);
        }
    }

    /// <summary>The outcome says what the check after the last step found, and that is in the journal, not in the event.</summary>
    private async Task ReadVerificationAsync(long jobId)
    {
        try { _verification = (await Jobs.FindAsync(jobId, CancellationToken.None))?.Verification; }
        catch (Exception e) { _error = $"Could not read the deletion's verification: {e.Message}"; }
        StateHasChanged();
    }

    private void Merge(DeletionJob job)
    {
        _verification = job.Status == JobStatus.Running ? null : job.Verification;
        _jobId ??= job.Id;
        if (!_live.Contains(DeletionEvent.JobResource))
        {
            _jobStatus = job.Status;
            _jobDetail = job.FailedSteps.Select(s => $"{s.Resource}: {s.Detail}").FirstOrDefault();
        }
        foreach (var step in job.Steps.Where(s => !_live.Contains(s.Resource)))
            _steps[step.Resource] = (step.Status, step.Detail);
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
            _error = await Rechecks.RefuseDeletionAsync(Users, Audit, User, SourceIp, password, Account.Id, Account.Username, null);
            if (_error is null) await StartAsync();
        }
        finally { _busy = false; }
    }

    /// <summary>Starts the deletion, or resumes a failed one at its failed step (Retry).</summary>
    private async Task StartAsync()
    {
        _busy = true;
        _error = null;
        try
        {
            // Unticked is "as the job says": a Retry of a job that keeps a backup keeps it.
            var handle = await Deletion.StartAsync(User.Actor(SourceIp), Account.Id, _keepBackup || Backups.Policy == FinalBackupPolicy.Always ? true : null, CancellationToken.None);
            if (!_live.Contains(DeletionEvent.JobResource)) _jobStatus = JobStatus.Running;
            Merge(handle.Job);
            _stage = Stage.Progress;
        }
        catch (LicenseRequiredException e) { _error = e.Message; }
        catch (AccountNotFoundException) { _error = $"Account {Account.Username} no longer exists."; }
        catch (Exception e) when (e is AccountValidationException or AccountConflictException) { _error = e.Message; }
        finally { _busy = false; }
    }

    // Counted per panel user on the server (PasswordRechecks), so reopening the dialog does not reset it.
    private static readonly string TooManyWrongPasswords = PasswordRechecks.TooManyWrongPasswords;

    private void Close() => Dialog.Close(DialogResult.Ok(_jobStatus));

    public void Dispose() => _subscription?.Dispose();

    private static Color ColorOf(string status) => status switch
    {
        StepStatus.Done => Color.Success,
        StepStatus.Skipped => Color.Default,
        StepStatus.Running => Color.Info,
        StepStatus.Failed => Color.Error,
        _ => Color.Default,
    };

    private static string IconOf(string status) => status switch
    {
        StepStatus.Done => Icons.Material.Filled.CheckCircle,
        StepStatus.Skipped => Icons.Material.Filled.RemoveCircleOutline,
        StepStatus.Running => Icons.Material.Filled.Autorenew,
        StepStatus.Failed => Icons.Material.Filled.Error,
        _ => Icons.Material.Filled.HourglassEmpty,
    };
}
