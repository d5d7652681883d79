using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.JSInterop;
using MudBlazor;
using Opterius.Services.Audit;
using Opterius.Services.Tokens;
using Opterius.Services.Users;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Tokens;

/// <summary>
/// Admins mint (shown once), list and revoke the panel's API tokens; a reseller does the same for its own reseller
/// tokens only (the token service refuses anything else, whatever the form sends). Every mint and revoke is audited.
/// </summary>
public sealed partial class TokensPage
{
    /// <summary>The audit log's actions for tokens.</summary>
    public const string AuditCreate = "token_create";
    public const string AuditRevoke = "token_revoke";

    [CascadingParameter] private Task<AuthenticationState> AuthState { get; set; } = default!;
    [CascadingParameter(Name = "SourceIp")] private string? SourceIp { get; set; }

    [Inject] private TokenService Tokens { get; set; } = default!;
    [Inject] private PanelUsers Users { get; set; } = default!;
    [Inject] private IDialogService Dialogs { get; set; } = default!;
    [Inject] private ISnackbar Snackbar { get; set; } = default!;
    [Inject] private IJSRuntime Js { get; set; } = default!;
    [Inject] private AuditLog Audit { get; set; } = default!;

    private IReadOnlyList<TokenInfo>? _tokens;
    private string? _name;
    private string _role = Roles.Admin;
    private string? _owner;
    private int? _expiresDays;
    private readonly HashSet<string> _scopes = [.. TokenScopes.All];
    private MintedToken? _minted;
    private string? _error;
    private bool _busy;
    private ClaimsPrincipal _user = new();
    private bool _isAdmin;

    protected override async Task OnInitializedAsync()
    {
        _user = (await AuthState).User;
        _isAdmin = _user.IsAdmin();
        if (!_isAdmin) _role = Roles.Reseller;
        await LoadAsync();
    }

    private async Task LoadAsync() => _tokens = await Tokens.ListAsync(_user.Viewer().OwnerFilter, CancellationToken.None);

    private void Toggle(string scope, bool on)
    {
        if (on) _scopes.Add(scope);
        else _scopes.Remove(scope);
    }

    private async Task CreateAsync()
    {
        _busy = true;
        _error = null;
        _minted = null;
        try
        {
            long ownerId;
            if (_role == Roles.Admin || !_isAdmin) ownerId = _user.UserIdOf();
            else
            {
                var owner = string.IsNullOrWhiteSpace(_owner) ? null : await Users.FindAsync(_owner.Trim(), CancellationToken.None);
                if (owner is not { Role: Roles.Reseller })
                {
                    _error = $"There is no reseller named '{_owner}': a reseller token belongs to a reseller panel user.";
                    return;
                }
                ownerId = owner.Id;
            }
            _minted = await Tokens.CreateAsync(_user.Viewer(), _name!.Trim(), _role, ownerId, [.. _scopes], _expiresDays, CancellationToken.None);
            _name = null;
            await Audit.WriteTokenAsync(_user.Actor(SourceIp), AuditCreate, ownerId, "created",
                $"token {_minted.Info.Name}: {_minted.Info.Role}, {string.Join(" ", _minted.Info.Scopes)}", CancellationToken.None);
            await LoadAsync();
        }
        catch (TokenRequestException e) { _error = e.Message; }
        finally { _busy = false; }
    }

    private async Task CopyAsync()
    {
        if (_minted is null) return;
        try
        {
            await Js.InvokeVoidAsync("navigator.clipboard.writeText", _minted.Token);
            Snackbar.Add("Token copied to the clipboard.", Severity.Success);
        }
        catch (JSException)
        {
            // Browsers refuse the clipboard outside HTTPS or without focus; the token stays on screen to copy by hand.
            Snackbar.Add("The browser refused the clipboard: select the token and copy it by hand.", Severity.Warning);
        }
    }

    private async Task RevokeAsync(TokenInfo token)
    {
        var confirmed = await Dialogs.ShowMessageBoxAsync($"Revoke {token.Name}",
            $"Revoke the token '{token.Name}'? Every client using it gets 401 from its next request. This cannot be undone.",
            yesText: "Revoke", cancelText: "Cancel");
        if (confirmed != true) return;
        if (await Tokens.RevokeAsync(_user.Viewer(), token.Name, CancellationToken.None))
        {
            await Audit.WriteTokenAsync(_user.Actor(SourceIp), AuditRevoke, token.OwnerId, "revoked", $"token {token.Name}", CancellationToken.None);
            Snackbar.Add($"Token {token.Name} revoked.", Severity.Success);
        }
        await LoadAsync();
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm") + " UTC";
}
