using Opterius.Services.Deletion;

namespace Opterius.Web.Components.Pages.Deletions;

/// <summary>
/// How far a long step is and how long it still needs: the share of the plan's bytes (or files, when the plan has no
/// bytes) removed, and the time left at the average rate since the first report this viewer saw. No estimate without
/// a plan, before a second report, or while nothing moves.
/// </summary>
public sealed class ProgressEstimate
{
    // Shorter than this between the first and last report, the rate is noise.
    private static readonly TimeSpan MinimumSpan = TimeSpan.FromMilliseconds(200);

    private (DateTimeOffset At, IStepProgress Progress)? _first;

    public IStepProgress? Latest { get; private set; }
    public DateTimeOffset LatestAt { get; private set; }

    /// <summary>Takes a report; one older than the latest (reordered) is ignored, as counts only grow.</summary>
    public void Add(DateTimeOffset at, IStepProgress progress)
    {
        if (Latest is not null && at < LatestAt) return;
        _first ??= (at, progress);
        Latest = progress;
        LatestAt = at;
    }

    /// <summary>0 to 1 of the planned total; null without a plan.</summary>
    public double? Fraction => Latest switch
    {
        { PlannedBytes: > 0 and var bytes } p => Math.Clamp((double)p.Bytes / bytes, 0, 1),
        { PlannedFiles: > 0 and var files } p => Math.Clamp((double)p.Files / files, 0, 1),
        _ => null,
    };

    /// <summary>The time left at the average rate seen so far; null when it cannot be told.</summary>
    public TimeSpan? Remaining
    {
        get
        {
            if (_first is not var (firstAt, first) || Latest is not { } last) return null;
            var span = LatestAt - firstAt;
            if (span < MinimumSpan) return null;
            var (done, start, planned) = last.PlannedBytes is > 0
                ? (last.Bytes, first.Bytes, last.PlannedBytes.Value)
                : last.PlannedFiles is > 0 ? (last.Files, first.Files, last.PlannedFiles.Value) : (0L, 0L, 0L);
            if (planned == 0 || done <= start) return null;
            var perSecond = (done - start) / span.TotalSeconds;
            return TimeSpan.FromSeconds(Math.Max(0, planned - done) / perSecond);
        }
    }

    /// <summary>"about 3 min left", "about 40 s left", "less than a second left".</summary>
    public static string Describe(TimeSpan left) => left.TotalSeconds switch
    {
        < 1 => "less than a second left",
        < 90 => $"about {Math.Ceiling(left.TotalSeconds):0} s left",
        < 90 * 60 => $"about {Math.Ceiling(left.TotalMinutes):0} min left",
        _ => $"about {left.TotalHours:0.#} h left",
    };
}
