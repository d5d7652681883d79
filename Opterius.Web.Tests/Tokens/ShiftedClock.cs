namespace Opterius.Web.Tests.Tokens;

/// <summary>The real clock moved by a fixed offset: mints tokens and licenses "in the past" or "in the future".</summary>
public sealed class ShiftedClock(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
}
