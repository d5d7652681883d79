using Opterius.Services.Accounts;
using Opterius.Services.Resources;

namespace Opterius.Web.Tests.Deletion;

/// <summary>A real resource whose first removal fails before doing anything (the injected failure); later ones run for real.</summary>
public sealed class FailOnceResource(IAccountResource inner) : IAccountResource
{
    private int _calls;
    public string Key => inner.Key;
    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);
    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) =>
        Interlocked.Increment(ref _calls) == 1
            ? throw new ResourceException($"injected failure in {Key}")
            : inner.RemoveAsync(account, ct);
}

/// <summary>A real resource whose removal waits until the test opens the gate (to observe a job mid-way).</summary>
public sealed class GatedResource(IAccountResource inner) : IAccountResource
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public string Key => inner.Key;
    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);
    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        Entered.TrySetResult();
        await Gate.Task;
        return await inner.RemoveAsync(account, ct);
    }
}
