using Dapper;
using Opterius.Services.Data;

namespace Opterius.Services.Accounts;

/// <summary>How many accounts are in each status, from the trigger-kept totals (db/002): one small read at 100,000 accounts.</summary>
public sealed class AccountStatusCounts(PanelDb db)
{
    private const string ByStatus = """
        SELECT status AS Status, CAST(SUM(n) AS SIGNED) AS N FROM account_counts
        WHERE (@owner IS NULL OR owner_id = @owner) AND n > 0 GROUP BY status
        """;

    public async Task<IReadOnlyDictionary<string, long>> ByStatusAsync(Viewer viewer, CancellationToken ct)
    {
        await using var c = await db.OpenAsync(ct);
        var rows = await c.QueryAsync<(string Status, long N)>(new CommandDefinition(ByStatus, new { owner = viewer.OwnerFilter }, cancellationToken: ct));
        return rows.ToDictionary(r => r.Status, r => r.N);
    }
}
