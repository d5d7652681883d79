using System.Text.Json;
using Microsoft.Extensions.Logging;

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
    /// <summary>
    /// The parts of the manifest summary the final backup writer stored with the row (ARCHIVE.md's kinds). A summary that
    /// cannot be read (not JSON, or not of that shape) is logged and shows no parts: the preview is a help to the admin,
    /// and the restore itself checks the archive's own manifest.
    /// </summary>
    public static IReadOnlyList<RestorePart> PartsOf(long backupId, string? manifest, ILogger log)
    {
        if (string.IsNullOrEmpty(manifest)) return [];
        JsonDocument doc;
        try { doc = JsonDocument.Parse(manifest); }
        catch (JsonException e)
        {
            log.LogWarning("Backup {Backup}'s stored manifest is not JSON ({Why}): its restore preview lists no parts", backupId, e.Message);
            return [];
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("parts", out var parts) || parts.ValueKind != JsonValueKind.Array)
            {
                log.LogWarning("Backup {Backup}'s stored manifest has no list of parts: its restore preview lists none", backupId);
                return [];
            }
            var byKey = new Dictionary<string, RestorePart>();
            foreach (var p in parts.EnumerateArray().Where(p => p.ValueKind == JsonValueKind.Object))
            {
                var kind = p.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "";
                if (kind.Length == 0) continue;
                // The home tree's kind is "home"; its restore step (and everything else's name for it) is home_directory.
                var key = kind == "home" ? "home_directory" : kind;
                var files = Count(p, "file_count");
                var bytes = Count(p, "bytes");
                byKey[key] = byKey.TryGetValue(key, out var seen)
                    ? seen with { Entries = seen.Entries + 1, Files = seen.Files + files, Bytes = seen.Bytes + bytes }
                    : new RestorePart(key, 1, files, bytes);
            }
            var rank = BackupRestoration.Steps.Select((step, i) => (step, i)).ToDictionary(x => x.step, x => x.i);
            return byKey.Values.OrderBy(p => rank.GetValueOrDefault(p.Key, int.MaxValue)).ToList();
        }
    }

    /// <summary>A count the part states as a whole number; 0 when it is missing, null or anything else.</summary>
    private static long Count(JsonElement part, string name) =>
        part.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : 0;
}
