using System.Text.Json;

namespace Opterius.Services.Backups;

/// <summary>
/// One part a restore brings back, by its restore step (<see cref="BackupRestoration.Steps"/>): how many of the
/// manifest's parts it is (each database is one), their files and bytes.
/// </summary>
public sealed record RestorePart(string Key, int Entries, long Files, long Bytes);

/// <summary>
/// What a restore of a final backup would make, read before anything changes: the backup's row (taken, size, kept
/// until, owner), the account as its archive names it (its <c>account.json</c>, through the same read the restore
/// makes) and the parts its stored manifest lists, in the order the restore runs them.
/// </summary>
public sealed record RestorePreview(FinalBackup Backup, ArchivedAccount Account, IReadOnlyList<RestorePart> Parts)
{
    /// <summary>The parts of the manifest summary the final backup writer stored with the row (ARCHIVE.md's kinds).</summary>
    public static IReadOnlyList<RestorePart> PartsOf(string? manifest)
    {
        if (string.IsNullOrEmpty(manifest)) return [];
        using var doc = JsonDocument.Parse(manifest);
        if (!doc.RootElement.TryGetProperty("parts", out var parts) || parts.ValueKind != JsonValueKind.Array) return [];
        var byKey = new Dictionary<string, RestorePart>();
        foreach (var p in parts.EnumerateArray())
        {
            var kind = p.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "";
            if (kind.Length == 0) continue;
            // The home tree's kind is "home"; its restore step (and everything else's name for it) is home_directory.
            var key = kind == "home" ? "home_directory" : kind;
            var files = p.TryGetProperty("file_count", out var f) && f.TryGetInt64(out var n) ? n : 1;
            var bytes = p.TryGetProperty("bytes", out var b) && b.TryGetInt64(out var m) ? m : 0;
            byKey[key] = byKey.TryGetValue(key, out var seen)
                ? seen with { Entries = seen.Entries + 1, Files = seen.Files + files, Bytes = seen.Bytes + bytes }
                : new RestorePart(key, 1, files, bytes);
        }
        var rank = BackupRestoration.Steps.Select((step, i) => (step, i)).ToDictionary(x => x.step, x => x.i);
        return byKey.Values.OrderBy(p => rank.GetValueOrDefault(p.Key, int.MaxValue)).ToList();
    }
}
