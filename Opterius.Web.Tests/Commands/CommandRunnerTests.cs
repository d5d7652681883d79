using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Commands;

namespace Opterius.Web.Tests.Commands;

public sealed class CommandRunnerTests
{
    [Fact]
    public async Task AnExternalCommandSeesOnlyPathLangAndTheRootNeverThePanelsSecrets()
    {
        // Stand-ins for the JWT key and the connection strings the panel is configured with (names nothing else reads).
        const string Key = "Opterius__Jwt__TestOnlySigningKey", Connection = "ConnectionStrings__TestOnlyPanel";
        Environment.SetEnvironmentVariable(Key, "jwt-secret-value");
        Environment.SetEnvironmentVariable(Connection, "Server=x;Password=db-secret-value");
        try
        {
            var root = Path.GetTempPath();
            var runner = new CommandRunner(Options.Create(new OpteriusOptions
            {
                Root = root,
                Commands = new Dictionary<string, string[]> { ["Env"] = ["env"] },
            }));

            var result = await runner.RunAsync("Env", null, default) ?? throw new InvalidOperationException("Env is configured");

            var seen = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
            Assert.Equal(["LANG", "OPTERIUS_ROOT", "PATH"], seen.Keys.Order(StringComparer.Ordinal));
            Assert.Equal("C", seen["LANG"]);
            Assert.Equal(Path.GetFullPath(root), seen["OPTERIUS_ROOT"]);
            Assert.Equal(Environment.GetEnvironmentVariable("PATH"), seen["PATH"]);
            Assert.DoesNotContain("secret-value", result.StandardOutput);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Key, null);
            Environment.SetEnvironmentVariable(Connection, null);
        }
    }
}
