namespace Opterius.Services.Data;

/// <summary>
/// Quoting for the few statements that cannot take parameters (DDL, account management) and escaping for
/// LIKE patterns. Kept tiny and in one place so every identifier and literal built by hand goes through it.
/// </summary>
public static class SqlNames
{
    /// <summary>A backquoted identifier: <c>a`b</c> becomes <c>`a``b`</c>. Inside backquotes a backslash is an ordinary character.</summary>
    public static string Identifier(string name)
    {
        // MariaDB refuses NUL in names and silently trims trailing spaces, which would name a different object.
        if (name.Length is 0 or > 64 || name.Contains('\0') || name.EndsWith(' '))
            throw new ArgumentException($"'{name}' cannot be a MariaDB identifier", nameof(name));
        return "`" + name.Replace("`", "``", StringComparison.Ordinal) + "`";
    }

    /// <summary>
    /// A single-quoted string literal with <c>\</c> and <c>'</c> escaped (and NUL spelled <c>\0</c>). It reads back
    /// as exactly <paramref name="value"/> on a session without NO_BACKSLASH_ESCAPES, which is every
    /// <see cref="MariaDbSource"/> connection; even under that mode the doubled quote keeps the value inside its
    /// literal, so hostile input can never end the statement early.
    /// </summary>
    public static string Literal(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal)
                   .Replace("'", "''", StringComparison.Ordinal)
                   .Replace("\0", "\\0", StringComparison.Ordinal) + "'";

    /// <summary>Escapes LIKE's wildcards <c>_</c> and <c>%</c> and its escape character <c>\</c> (the default ESCAPE).</summary>
    public static string EscapeLike(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal)
             .Replace("%", "\\%", StringComparison.Ordinal)
             .Replace("_", "\\_", StringComparison.Ordinal);

    /// <summary>
    /// A LIKE pattern (also a GRANT database pattern) matching names that start with <paramref name="prefix"/> literally.
    /// A GRANT pattern reads <c>\</c> as its escape whatever the sql_mode; LIKE does only without NO_BACKSLASH_ESCAPES,
    /// so tenant matching compares prefixes exactly instead (<c>LEFT(name, CHAR_LENGTH(@Prefix)) = @Prefix</c>).
    /// </summary>
    public static string LikePrefix(string prefix) => EscapeLike(prefix) + "%";

    /// <summary>A list's search box as a <see cref="LikePrefix"/> of its trimmed text, cut to <paramref name="maxLength"/>; null when empty.</summary>
    public static string? SearchPrefix(string? search, int maxLength)
    {
        var text = search?.Trim();
        return string.IsNullOrEmpty(text) ? null : LikePrefix(text[..Math.Min(text.Length, maxLength)]);
    }
}
