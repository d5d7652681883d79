using Dapper;
using MySqlConnector;
using Opterius.Services.Data;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Resources;

public sealed class SqlNamesTests
{
    public static readonly TheoryData<string> Hostile = new()
    {
        "plain",
        "it's",
        "x'; DROP DATABASE mysql; --",
        "back\\slash",
        "trailing backslash\\",
        "quote after backslash \\'",
        "`tick` and ``double``",
        "per%cent_under",
        "\"double quoted\"",
        "new\nline\ttab",
        "ünïcödé",
    };

    [Fact]
    public void IdentifiersDoubleTheirBackquotes() => Assert.Equal("`a``b`", SqlNames.Identifier("a`b"));

    [Theory]
    [InlineData("")]
    [InlineData("nul\0byte")]
    [InlineData("trailing space ")]
    [InlineData("an identifier far longer than the sixty-four characters mariadb allows")]
    public void NamesMariaDbWouldAlterOrRefuseAreNotIdentifiers(string name) =>
        Assert.Throws<ArgumentException>(() => SqlNames.Identifier(name));

    [Fact]
    public void LiteralsEscapeBackslashesAndQuotes() => Assert.Equal(@"'a\\b''c'", SqlNames.Literal(@"a\b'c"));

    [Fact]
    public void LikePatternsMatchWildcardsOnlyLiterally() => Assert.Equal(@"bob\_50\%\\%", SqlNames.LikePrefix(@"bob_50%\"));

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task AHostileLiteralReadsBackAsExactlyItself(string value)
    {
        await using var c = await OpenAsync();
        Assert.Equal(value, await c.ExecuteScalarAsync<string>($"SELECT {SqlNames.Literal(value)}"));
        Assert.Equal(value + "\0x", await c.ExecuteScalarAsync<string>($"SELECT {SqlNames.Literal(value + "\0x")}"));
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task AHostileIdentifierNamesExactlyOneDatabase(string value)
    {
        var name = $"sqln{Random.Shared.Next(100000)}_{value}";
        await using var c = await OpenAsync();
        await c.ExecuteAsync($"CREATE DATABASE {SqlNames.Identifier(name)}");
        try
        {
            var found = await c.QueryAsync<string>("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = BINARY @name", new { name });
            Assert.Equal(name, Assert.Single(found));
        }
        finally { await c.ExecuteAsync($"DROP DATABASE {SqlNames.Identifier(name)}"); }
    }

    [Theory]
    [InlineData("bob_", "bob_wp", true)]
    [InlineData("bob_", "bobxwp", false)]
    [InlineData("bob_", "bobby_x", false)]
    [InlineData("50%_", "50%_off", true)]
    [InlineData("50%_", "50 percent off", false)]
    [InlineData(@"a\_", @"a\_b", true)]
    [InlineData(@"a\_", "a_b", false)]
    public async Task AnEscapedPrefixMatchesOnlyNamesThatReallyStartWithIt(string prefix, string candidate, bool matches)
    {
        await using var c = await OpenAsync();
        Assert.Equal(matches, await c.ExecuteScalarAsync<bool>("SELECT @candidate LIKE @pattern", new { candidate, pattern = SqlNames.LikePrefix(prefix) }));
    }

    private static async Task<MySqlConnection> OpenAsync()
    {
        var c = new MySqlConnection(PrivateServices.RootConnectionString());
        await c.OpenAsync();
        return c;
    }
}
