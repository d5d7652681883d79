using System.Diagnostics;
using Opterius.Web.Tests.Infrastructure;

namespace Opterius.Web.Tests.Scripts;

/// <summary>
/// scripts/test.sh's closing line, read from the TRX counters by its own Python block (run here as the script runs it):
/// a run must not pass for the wrong reason.
/// </summary>
public sealed class TestScriptTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("opterius-trx-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static string CountingBlock()
    {
        var script = File.ReadAllText(Path.Combine(PrivateServices.RepoRoot, "scripts", "test.sh"));
        var heredoc = script.IndexOf("<<'PY'", StringComparison.Ordinal);
        var start = heredoc < 0 ? -1 : script.IndexOf('\n', heredoc) + 1;
        var end = start <= 0 ? -1 : script.IndexOf("\nPY\n", start, StringComparison.Ordinal);
        Assert.True(end > start, "scripts/test.sh has no <<'PY' ... PY block that reads the TRX");
        return script[start..end];
    }

    private async Task<(int ExitCode, string LastLine)> CountAsync(string? counters, string outcome = "Completed", string? whmcsOutput = null)
    {
        var trx = Path.Combine(_folder, "results.trx");
        if (counters is not null)
            await File.WriteAllTextAsync(trx, $"""
                <?xml version="1.0" encoding="UTF-8"?>
                <TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
                  <ResultSummary outcome="{outcome}"><Counters {counters} /></ResultSummary>
                </TestRun>
                """);
        var block = Path.Combine(_folder, "count.py");
        await File.WriteAllTextAsync(block, CountingBlock());
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(block);
        psi.ArgumentList.Add(trx);
        if (whmcsOutput is not null)
        {
            var log = Path.Combine(_folder, "whmcs.log");
            await File.WriteAllTextAsync(log, whmcsOutput);
            psi.ArgumentList.Add(log);
        }
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, output.TrimEnd().Split('\n')[^1]);
    }

    [Fact]
    public async Task AGreenRunCountsPassedFailedAndSkippedAndSucceeds()
    {
        var (code, line) = await CountAsync("""total="5" executed="4" passed="4" failed="0" error="0" timeout="0" aborted="0" notRunnable="0" notExecuted="1" """);
        Assert.Equal("4 passed, 0 failed, 1 skipped", line);
        Assert.Equal(0, code);
    }

    [Theory]
    [InlineData("""total="3" executed="3" passed="2" failed="0" aborted="1" notExecuted="0" """, "2 passed, 1 failed, 0 skipped")]
    [InlineData("""total="3" executed="2" passed="2" failed="0" notRunnable="1" notExecuted="0" """, "2 passed, 1 failed, 0 skipped")]
    [InlineData("""total="3" executed="3" passed="1" failed="1" timeout="1" notExecuted="0" """, "1 passed, 2 failed, 0 skipped")]
    [InlineData("""total="0" executed="0" passed="0" failed="0" notExecuted="0" """, "0 passed, 1 failed, 0 skipped")]
    [InlineData("""total="2" executed="0" passed="0" failed="0" notExecuted="2" """, "0 passed, 1 failed, 2 skipped")]
    public async Task AbortedNotRunnableTimedOutOrNoExecutedTestsCountAsFailed(string counters, string expected)
    {
        var (code, line) = await CountAsync(counters);
        Assert.Equal(expected, line);
        Assert.NotEqual(0, code);
    }

    [Fact]
    public async Task AnAbortedRunFailsEvenWhenItsCountersLookGreen()
    {
        var (code, line) = await CountAsync("""total="9" executed="2" passed="2" failed="0" notExecuted="0" """, outcome: "Aborted");
        Assert.Equal("2 passed, 1 failed, 0 skipped", line);
        Assert.NotEqual(0, code);
    }

    [Fact]
    public async Task AMissingResultsFileIsOneFailure()
    {
        var (code, line) = await CountAsync(counters: null);
        Assert.Equal("0 passed, 1 failed, 0 skipped", line);
        Assert.NotEqual(0, code);
    }

    private const string GreenCounters = """total="4" executed="4" passed="4" failed="0" notExecuted="0" """;

    [Fact]
    public async Task TheWhmcsModuleTestsClosingLineIsAddedToTheCounts()
    {
        var (code, line) = await CountAsync(GreenCounters, whmcsOutput: "PHPUnit 9.6.7\n...\n17 passed, 0 failed, 1 skipped\n");
        Assert.Equal("21 passed, 0 failed, 1 skipped", line);
        Assert.Equal(0, code);
    }

    [Theory]
    [InlineData("PHPUnit 9.6.7\nFAILURES!\n15 passed, 2 failed, 0 skipped\n", "19 passed, 2 failed, 0 skipped")]
    [InlineData("the panel did not answer within 120 s\n", "4 passed, 1 failed, 0 skipped")]
    [InlineData("", "4 passed, 1 failed, 0 skipped")]
    public async Task AWhmcsRunWithFailuresOrWithoutItsClosingLineFailsTheRun(string whmcsOutput, string expected)
    {
        var (code, line) = await CountAsync(GreenCounters, whmcsOutput: whmcsOutput);
        Assert.Equal(expected, line);
        Assert.NotEqual(0, code);
    }
}
