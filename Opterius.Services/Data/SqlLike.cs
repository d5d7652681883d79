namespace Opterius.Services.Data;

/// <summary>LIKE patterns built from user text: '\', '%' and '_' match only themselves.</summary>
public static class SqlLike
{
    public static string Escape(string text) =>
        text.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_");
}
