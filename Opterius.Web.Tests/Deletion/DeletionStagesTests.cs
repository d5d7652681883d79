using Microsoft.Extensions.DependencyInjection;
using Opterius.Services.Accounts;
using Opterius.Services.Deletion;
using Opterius.Services.Resources;
using Opterius.Web.Tests.Infrastructure;
using static Opterius.Web.Tests.Deletion.DeletionTesting;

namespace Opterius.Web.Tests.Deletion;

/// <summary>
/// The steps of one stage of <see cref="DeletionOrder"/> run together; a stage starts only once the one before it has
/// finished; a failed step stops the job once the rest of its stage has finished. Seen through a real deletion whose
/// nginx step is held at a gate while the other steps run for real.
/// </summary>
public sealed class DeletionStagesTests(PanelApp app) : IClassFixture<PanelApp>
{
    private GatedResource Gated(string key) => new(app.Services.GetServices<IAccountResource>().Single(r => r.Key == key));

    private async Task<DeletionStep> StepAsync(long jobId, string key) =>
        (await app.Get<DeletionJobStore>().FindAsync(jobId, default))!.Steps.Single(s => s.Resource == key);

    [Fact]
    public async Task TheStepsOfAStageRunTogetherAndTheNextStageStartsOnlyOnceAllOfThemFinished()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        var nginx = Gated("nginx_vhost");
        var service = ServiceOf(app.Services, r => r.Key == "nginx_vhost" ? nginx : r);
        var events = new List<DeletionEvent>();
        using var _ = app.Get<DeletionEvents>().Subscribe(account.Id, e => { lock (events) events.Add(e); }, out var _);

        var handle = await service.StartAsync(app.AdminActor(), account.Id, default);
        await nginx.Entered.Task;
        // While the vhost's step is held, the pool and the cron job of its stage go; the processes (next stage) wait.
        await WaitForAsync(async () => (await StepAsync(handle.Job.Id, "php_fpm_pool")).Status == expected["php_fpm_pool"]
                                       && (await StepAsync(handle.Job.Id, "cron")).Status == expected["cron"]);
        Assert.Equal(StepStatus.Running, (await StepAsync(handle.Job.Id, "nginx_vhost")).Status);
        Assert.Equal(StepStatus.Pending, (await StepAsync(handle.Job.Id, "processes")).Status);
        nginx.Gate.SetResult();
        var job = await handle.Completion;

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.All(job.Steps, s => Assert.Equal((s.Resource, expected[s.Resource]), (s.Resource, s.Status)));
        // Every step of a stage ended before any step of the next one started, all through the job.
        List<DeletionEvent> seen;
        lock (events) seen = events.Where(e => e.Resource != DeletionEvent.JobResource && !e.IsProgress).ToList();
        for (var stage = 1; stage < DeletionOrder.Stages.Count; stage++)
        {
            var lastEndBefore = seen.FindLastIndex(e => DeletionOrder.StageOf(e.Resource) == stage - 1 && e.Status == expected[e.Resource]);
            var firstStart = seen.FindIndex(e => DeletionOrder.StageOf(e.Resource) == stage && e.Status == StepStatus.Running);
            Assert.True(lastEndBefore >= 0 && lastEndBefore < firstStart,
                $"stage {stage} ({string.Join(", ", DeletionOrder.Stages[stage])}) started before stage {stage - 1} had finished");
        }
    }

    [Fact]
    public async Task AFailedStepStopsTheJobOnlyOnceTheRestOfItsStageFinishedAndNoLaterStageStarts()
    {
        var account = await app.CreateAsync(TestAccounts.NewPrefix());
        var expected = await app.ExpectedStepStatusesAsync(account.Id);
        var nginx = Gated("nginx_vhost");
        var service = ServiceOf(app.Services, r => r.Key switch
        {
            "nginx_vhost" => nginx,
            "php_fpm_pool" => new FailOnceResource(r),
            _ => r,
        });

        var handle = await service.StartAsync(app.AdminActor(), account.Id, default);
        await nginx.Entered.Task;
        await WaitForAsync(async () => (await StepAsync(handle.Job.Id, "php_fpm_pool")).Status == StepStatus.Failed);
        // The failure is journalled, but the job goes on until the held step of its stage has finished.
        Assert.Equal(JobStatus.Running, (await app.Get<DeletionJobStore>().FindAsync(handle.Job.Id, default))!.Status);
        Assert.Equal(StepStatus.Running, (await StepAsync(handle.Job.Id, "nginx_vhost")).Status);
        nginx.Gate.SetResult();
        var failed = await handle.Completion;

        Assert.Equal(JobStatus.Failed, failed.Status);
        var statuses = failed.Steps.ToDictionary(s => s.Resource, s => s.Status);
        Assert.Equal(expected["logins"], statuses["logins"]);
        Assert.Equal(expected["nginx_vhost"], statuses["nginx_vhost"]);
        Assert.Equal(expected["cron"], statuses["cron"]);
        Assert.Equal(StepStatus.Failed, statuses["php_fpm_pool"]);
        Assert.Contains("injected failure", failed.Steps.Single(s => s.Resource == "php_fpm_pool").Detail);
        Assert.All(DeletionOrder.Stages.Skip(2).SelectMany(s => s), k => Assert.Equal((k, StepStatus.Pending), (k, statuses[k])));
        Assert.Equal(AccountStatus.DeletionFailed, (await app.Get<AccountStore>().FindAsync(new Viewer(0, true), account.Id, default))!.Status);

        var resumed = await (await service.StartAsync(app.AdminActor(), account.Id, default)).Completion;

        Assert.Equal(JobStatus.Succeeded, resumed.Status);
        Assert.All(resumed.Steps, s => Assert.Equal((s.Resource, expected[s.Resource]), (s.Resource, s.Status)));
    }
}
