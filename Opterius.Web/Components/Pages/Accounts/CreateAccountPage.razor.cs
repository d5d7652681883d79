using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Services.Licensing;
using Opterius.Services.Packages;
using Opterius.Services.Users;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// The create form: each field is checked as it is typed by the rules POST /api/v1/accounts applies
/// (<see cref="AccountRules"/>, same words), and the create itself is the API's (<see cref="AccountCreation"/>), so
/// what the server still refuses (a name taken or already on the server, the license) is shown here as the API says it.
/// Admins pick the owner; a reseller's accounts are always its own.
/// </summary>
public sealed partial class CreateAccountPage
{
    [CascadingParameter] private Task<AuthenticationState> AuthState { get; set; } = default!;
    [CascadingParameter(Name = "SourceIp")] private string? SourceIp { get; set; }

    [Inject] private AccountCreation Creation { get; set; } = default!;
    [Inject] private PackageStore Packages { get; set; } = default!;
    [Inject] private PanelUsers Users { get; set; } = default!;
    [Inject] private LicenseService License { get; set; } = default!;
    [Inject] private NavigationManager Navigation { get; set; } = default!;
    [Inject] private ISnackbar Snackbar { get; set; } = default!;

    private MudForm _form = default!;
    private ClaimsPrincipal _user = new();
    private bool _isAdmin;
    private bool _writable;
    private bool _busy;
    private bool _showPassword;
    private IReadOnlyList<HostingPackage> _packages = [];
    private IReadOnlyList<PanelUser> _owners = [];
    private string? _username;
    private string? _domain;
    private string? _email;
    private string? _password;
    private long? _packageId;
    private long _ownerId;
    private string? _error;
    private string? _errorCode;

    // What the server said about a field, shown until that field is changed.
    private readonly Dictionary<string, (string? Value, string Message)> _serverErrors = [];

    protected override async Task OnInitializedAsync()
    {
        _user = (await AuthState).User;
        _isAdmin = _user.IsAdmin();
        _ownerId = _user.UserIdOf();
        _writable = License.Current.Valid;
        _packages = await Packages.ListAsync(CancellationToken.None);
        _packageId = _packages.FirstOrDefault()?.Id;
        if (_isAdmin) _owners = await Users.ListAsync(CancellationToken.None);
    }

    private string? PackageError(long? id) => _packages.Any(p => p.Id == id) ? null : AccountRules.PackageMessage;

    /// <summary>A field's rule, with the server's word on the value it judged as long as the field still holds it.</summary>
    private Func<T, string?> Check<T>(string field, Func<T, string?> rule) => value =>
        _serverErrors.TryGetValue(field, out var said) && Equals(said.Value, value?.ToString()) ? said.Message : rule(value);

    private async Task CreateAsync()
    {
        _error = null;
        _errorCode = null;
        _serverErrors.Clear();
        await _form.ValidateAsync();
        if (!_form.IsValid) return;
        _busy = true;
        StateHasChanged();
        var request = new CreateAccountRequest(_username, _domain, _email, _password, _packageId);
        try
        {
            var ownerId = _isAdmin ? _ownerId : _user.UserIdOf();
            var account = await Creation.CreateAsync(_user.Actor(SourceIp), ownerId, request, CancellationToken.None);
            Snackbar.Add($"Account {account.Username} is created and served.", Severity.Success);
            Navigation.NavigateTo($"/accounts/{account.Id}");
        }
        catch (AccountValidationException e)
        {
            foreach (var (field, message) in e.Fields) _serverErrors[field] = (FieldValue(request, field), message);
            (_errorCode, _error) = ("validation_failed", e.Message);
            _busy = false;
            await _form.ValidateAsync();
        }
        catch (Exception e) when (e is ProvisioningFailedException || Refusals.IsRefusal(e))
        {
            (_errorCode, _error) = e switch
            {
                AccountConflictException => ("conflict", e.Message),
                LicenseRequiredException => ("license_required", $"Writes are blocked until a valid license is installed. {e.Message}"),
                AccountLimitReachedException => ("account_limit_reached", e.Message),
                ProvisioningFailedException p when p.KeptAccountId is { } kept => ("provisioning_failed", $"The account could not be created. {e.Message} (account {kept})"),
                ProvisioningFailedException => ("provisioning_failed", $"The account could not be created; nothing was kept. {e.Message}"),
                _ => ("operation_failed", e.Message),
            };
        }
        finally { _busy = false; }
    }

    private static string? FieldValue(CreateAccountRequest r, string field) => field switch
    {
        AccountRules.Username => r.Username,
        AccountRules.Domain => r.Domain,
        AccountRules.Email => r.Email,
        AccountRules.Password => r.Password,
        AccountRules.PackageId => r.PackageId?.ToString(),
        _ => null,
    };
}
