using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Resources;

public sealed class RemovalProgressTests
{
    [Fact]
    public void ARunningDetailSaysFilesAndBytesRemovedOfThePlannedTotals() =>
        Assert.Equal("removed 12,340 of 48,000 files (1.2 GiB of 3.9 GiB)",
            new RemovalProgress(12_340, 17, 1_288_490_189, 48_000, 4_187_593_113).Describe());

    [Fact]
    public void ARunningDetailWithoutAPlanOrPastAStalePlanSaysOnlyWhatWasRemoved()
    {
        Assert.Equal("removed 1,024 files (3 KiB)", new RemovalProgress(1024, 0, 3072).Describe());
        Assert.Equal("removed 2,048 files (6 KiB)", new RemovalProgress(2048, 0, 6144, PlannedFiles: 1000, PlannedBytes: 3000).Describe());
    }
}
