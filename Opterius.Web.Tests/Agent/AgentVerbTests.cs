namespace Opterius.Web.Tests.Agent;

/// <summary>The <c>agent</c> verb refuses a configuration it cannot serve safely, saying what to set.</summary>
public sealed class AgentVerbTests
{
    [Fact]
    public async Task TheAgentWithoutASocketSaysWhatToSetAndExitsWith2()
    {
        var run = await RunAsync(new Dictionary<string, string?> { ["Opterius:Agent:Socket"] = "" });

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("error: Opterius:Agent:Socket is not set", run.Error);
    }

    [Fact]
    public async Task TheAgentWithAPanelUserThatDoesNotExistRefusesToStartAndMakesNoSocket()
    {
        var folder = Directory.CreateTempSubdirectory("opterius-agent-verb-").FullName;
        try
        {
            var socket = Path.Combine(folder, "agent.sock");
            var run = await RunAsync(new Dictionary<string, string?>
            {
                ["Opterius:Agent:Socket"] = socket,
                ["Opterius:Agent:PanelUser"] = "no-such-opterius-user",
            });

            Assert.Equal(2, run.ExitCode);
            Assert.Contains("Opterius:Agent:PanelUser 'no-such-opterius-user' is not a user on this host", run.Error);
            Assert.False(File.Exists(socket));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public async Task TheAgentWhoseSocketPathHoldsAFileRefusesToStartAndLeavesTheFile()
    {
        var folder = Directory.CreateTempSubdirectory("opterius-agent-verb-").FullName;
        try
        {
            var path = Path.Combine(folder, "passwd");
            File.WriteAllText(path, "root:x:0:0::/root:/bin/sh\n");

            var run = await RunAsync(new Dictionary<string, string?> { ["Opterius:Agent:Socket"] = path });

            Assert.Equal(2, run.ExitCode);
            Assert.Contains($"{path} exists and is not a socket", run.Error);
            Assert.Equal("root:x:0:0::/root:/bin/sh\n", File.ReadAllText(path));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    private static Task<(int ExitCode, string Error)> RunAsync(IReadOnlyDictionary<string, string?> settings) =>
        BinaryProcess.RunToEndAsync(["agent"], settings);
}
