namespace Opterius.Services.Data;

/// <summary>
/// Times the panel writes with UTC_TIMESTAMP come back from MySqlConnector as unspecified; marked UTC here, they serialize
/// with their Z and compare with the clock as what they are.
/// </summary>
public static class UtcTimes
{
    public static DateTime Utc(DateTime at) => DateTime.SpecifyKind(at, DateTimeKind.Utc);

    public static DateTime? Utc(DateTime? at) => at is { } t ? Utc(t) : null;
}
