using Opterius.Services.Accounts;

namespace Opterius.Web.Components.Pages.Accounts;

/// <summary>
/// The rows ticked in the accounts grid (by id, so a row that changes status stays ticked), or every account matching
/// the grid's search and status ("all N matching"), which is read again when an action runs.
/// </summary>
public sealed class AccountSelection
{
    /// <summary>A bulk action takes at most this many accounts: a larger batch is refused before any is touched.</summary>
    public const int MaxBatch = 1000;

    private readonly HashSet<long> _ids = [];

    public bool AllMatching { get; private set; }

    public IReadOnlyCollection<long> Ids => _ids;

    public bool IsEmpty => !AllMatching && _ids.Count == 0;

    public bool Contains(long id) => AllMatching || _ids.Contains(id);

    public void Set(long id, bool on)
    {
        AllMatching = false;
        if (on) _ids.Add(id);
        else _ids.Remove(id);
    }

    public void SetPage(IEnumerable<Account> page, bool on)
    {
        AllMatching = false;
        foreach (var a in page) Set(a.Id, on);
    }

    public void SelectAllMatching() => AllMatching = true;

    /// <summary>A new search or filter no longer matches what "all" meant.</summary>
    public void FilterChanged() => AllMatching = false;

    public void Clear()
    {
        AllMatching = false;
        _ids.Clear();
    }

    /// <summary>The selected accounts as they are now (those still there and visible to the viewer), by username.</summary>
    public async Task<IReadOnlyList<Account>> ResolveAsync(AccountStore accounts, Viewer viewer, string? search, string? status, CancellationToken ct)
    {
        if (AllMatching) return await accounts.MatchingAsync(viewer, search, status, MaxBatch + 1, ct);
        var found = new List<Account>();
        foreach (var id in _ids)
            if (await accounts.FindAsync(viewer, id, ct) is { } a) found.Add(a);
        return found.OrderBy(a => a.Username, StringComparer.Ordinal).ToList();
    }
}
