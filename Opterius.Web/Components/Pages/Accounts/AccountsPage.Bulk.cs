using MudBlazor;
using Opterius.Services.Accounts;
using Opterius.Web.Auth;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>The grid's bulk actions: the ticked rows (or all matching) resolved as they are now, then one dialog per action.</summary>
public sealed partial class AccountsPage
{
    private readonly AccountSelection _selection = new();
    private IReadOnlyList<Account> _pageItems = [];
    private long _total;

    private bool PageSelected => _pageItems.Count > 0 && _pageItems.All(a => _selection.Contains(a.Id));

    private async Task BulkAsync(BulkAction action)
    {
        var accounts = await _selection.ResolveAsync(Accounts, _user.Viewer(), Blank(_search), _status, CancellationToken.None);
        if (accounts.Count == 0)
        {
            Snackbar.Add("None of the selected accounts exists any more.", Severity.Info);
            _selection.Clear();
            return;
        }
        if (accounts.Count > AccountSelection.MaxBatch)
        {
            Snackbar.Add($"A bulk action takes at most {AccountSelection.MaxBatch} accounts: narrow the search or status filter. Nothing was changed.", Severity.Warning);
            return;
        }
        var options = new DialogOptions { MaxWidth = MaxWidth.Large, FullWidth = true, CloseOnEscapeKey = false, BackdropClick = false };
        IDialogReference dialog;
        if (action == BulkAction.Delete)
        {
            var parameters = new DialogParameters<BulkDeleteDialog> { { d => d.Accounts, accounts }, { d => d.User, _user }, { d => d.SourceIp, SourceIp } };
            dialog = await Dialogs.ShowAsync<BulkDeleteDialog>("Delete accounts", parameters, options);
        }
        else
        {
            var parameters = new DialogParameters<BulkChangeDialog>
            {
                { d => d.Accounts, accounts }, { d => d.Action, action }, { d => d.User, _user }, { d => d.SourceIp, SourceIp },
            };
            dialog = await Dialogs.ShowAsync<BulkChangeDialog>($"{action} accounts", parameters, options with { MaxWidth = MaxWidth.Medium });
        }
        var result = await dialog.Result;
        // What ran is done with the selection; a cancelled dialog keeps it for another try.
        if (result is { Canceled: false }) _selection.Clear();
        await ReloadAsync();
    }

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}
