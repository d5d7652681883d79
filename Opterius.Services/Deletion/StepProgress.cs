namespace Opterius.Services.Deletion;

/// <summary>A long step's report of how far it is (a removal's, a final backup's), as its running detail.</summary>
public interface IStepProgress
{
    string Describe();
}

/// <summary>
/// Turns one step's progress reports into its running detail, published at most once per <see cref="Interval"/>
/// (a removal reports far more often than anyone reads); <see cref="Flush"/> publishes the last report held back,
/// so the final counts are seen before the step's outcome. Not journaled: only the outcome is.
/// </summary>
public sealed class StepProgress(Action<string> publish)
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private readonly Lock _gate = new();
    private long? _publishedAt;
    private IStepProgress? _held;

    public void Report(IStepProgress progress)
    {
        // Published under the lock, so two reports can never reach subscribers in the wrong order.
        lock (_gate)
        {
            var now = Environment.TickCount64;
            if (now - _publishedAt < (long)Interval.TotalMilliseconds)
            {
                _held = progress;
                return;
            }
            _publishedAt = now;
            _held = null;
            publish(progress.Describe());
        }
    }

    public void Flush()
    {
        lock (_gate)
        {
            if (_held is not { } last) return;
            _held = null;
            publish(last.Describe());
        }
    }
}
