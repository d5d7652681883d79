using Bunit;
using MudBlazor.Services;
using Opterius.Services.Resources;
using Opterius.Web.Components.Pages.Deletions;

namespace Opterius.Web.Tests.Ui;

/// <summary>The one progress view of a long step (delete dialog, Deletions page): its share, its counts, its time left.</summary>
public sealed class RemovalProgressViewTests : BunitContext, IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 10, 0, 0, TimeSpan.Zero);

    public RemovalProgressViewTests()
    {
        Services.AddMudServices();
        JSInterop.Mode = JSRuntimeMode.Loose;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    Task IAsyncLifetime.DisposeAsync() => base.DisposeAsync().AsTask();

    [Fact]
    public void HalfThePlannedBytesGoneInTenSecondsLeavesTenSecondsAtThatRate()
    {
        var estimate = new ProgressEstimate();
        estimate.Add(Start, new RemovalProgress(0, 0, 0, PlannedFiles: 400, PlannedBytes: 2_000_000));
        estimate.Add(Start.AddSeconds(10), new RemovalProgress(300, 2, 1_000_000, PlannedFiles: 400, PlannedBytes: 2_000_000));

        Assert.Equal(0.5, estimate.Fraction);
        Assert.Equal(TimeSpan.FromSeconds(10), estimate.Remaining);
    }

    [Fact]
    public void TheRateIsMeasuredFromTheFirstReportSeenNotFromZero()
    {
        // Opened half-way: 600 KB were gone before this viewer's first report, which must not count as speed.
        var estimate = new ProgressEstimate();
        estimate.Add(Start, new RemovalProgress(10, 0, 600_000, PlannedBytes: 1_000_000));
        estimate.Add(Start.AddSeconds(2), new RemovalProgress(20, 0, 800_000, PlannedBytes: 1_000_000));

        Assert.Equal(0.8, estimate.Fraction!.Value, 6);
        Assert.Equal(TimeSpan.FromSeconds(2), estimate.Remaining);
    }

    [Fact]
    public void WithoutBytesInThePlanTheFilesGiveTheShareAndTheTimeLeft()
    {
        var estimate = new ProgressEstimate();
        estimate.Add(Start, new RemovalProgress(0, 0, 0, PlannedFiles: 1000));
        estimate.Add(Start.AddSeconds(4), new RemovalProgress(250, 0, 0, PlannedFiles: 1000));

        Assert.Equal(0.25, estimate.Fraction);
        Assert.Equal(TimeSpan.FromSeconds(12), estimate.Remaining);
    }

    [Fact]
    public void WithoutAPlanThereIsNeitherShareNorTimeLeft()
    {
        var estimate = new ProgressEstimate();
        estimate.Add(Start, new RemovalProgress(100, 1, 4096));
        estimate.Add(Start.AddSeconds(5), new RemovalProgress(900, 3, 40_960));

        Assert.Null(estimate.Fraction);
        Assert.Null(estimate.Remaining);
    }

    [Fact]
    public void OneReportOrAStandstillGivesNoTimeLeftAndAnOlderReportIsIgnored()
    {
        var estimate = new ProgressEstimate();
        estimate.Add(Start, new RemovalProgress(10, 0, 100, PlannedBytes: 1000));
        Assert.Null(estimate.Remaining); // one report: no rate yet

        estimate.Add(Start.AddSeconds(3), new RemovalProgress(10, 0, 100, PlannedBytes: 1000));
        Assert.Null(estimate.Remaining); // nothing moved: no rate either

        estimate.Add(Start.AddSeconds(1), new RemovalProgress(900, 0, 900, PlannedBytes: 1000));
        Assert.Equal(100, estimate.Latest!.Bytes); // reordered on the way: the older report does not count
    }

    [Fact]
    public void MoreThanThePlanIsAllOfItAndNothingLeft()
    {
        var estimate = new ProgressEstimate();
        estimate.Add(Start, new RemovalProgress(0, 0, 0, PlannedBytes: 1000));
        estimate.Add(Start.AddSeconds(1), new RemovalProgress(5, 0, 1500, PlannedBytes: 1000)); // the tree grew since the plan

        Assert.Equal(1.0, estimate.Fraction);
        Assert.Equal(TimeSpan.Zero, estimate.Remaining);
    }

    [Theory]
    [InlineData(0.4, "less than a second left")]
    [InlineData(40, "about 40 s left")]
    [InlineData(150, "about 3 min left")]
    [InlineData(3 * 3600, "about 3 h left")]
    public void TheTimeLeftReadsAsAPersonWouldSayIt(double seconds, string expected) =>
        Assert.Equal(expected, ProgressEstimate.Describe(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void TheViewShowsFilesAndBytesOfThePlanAndUpdatesItsTimeLeftWithEachReport()
    {
        var view = Render<RemovalProgressView>(p => p
            .Add(v => v.Progress, new RemovalProgress(1000, 3, 1024 * 1024, PlannedFiles: 4000, PlannedBytes: 4 * 1024 * 1024))
            .Add(v => v.At, Start));
        var root = view.Find("[data-testid=removal-progress]");
        Assert.Equal("25", root.GetAttribute("data-percent"));
        Assert.Equal("", root.GetAttribute("data-remaining-seconds"));
        Assert.Contains("1,000 of 4,000 files", root.TextContent);
        Assert.Contains("1 MiB of 4 MiB", root.TextContent);
        Assert.DoesNotContain("left", root.TextContent);

        view.Render(p => p
            .Add(v => v.Progress, new RemovalProgress(2000, 3, 2 * 1024 * 1024, PlannedFiles: 4000, PlannedBytes: 4 * 1024 * 1024))
            .Add(v => v.At, Start.AddSeconds(5)));

        root = view.Find("[data-testid=removal-progress]");
        Assert.Equal("50", root.GetAttribute("data-percent"));
        Assert.Equal("10", root.GetAttribute("data-remaining-seconds"));
        Assert.Contains("2,000 of 4,000 files", root.TextContent);
        Assert.Contains("about 10 s left", root.TextContent);
    }
}
