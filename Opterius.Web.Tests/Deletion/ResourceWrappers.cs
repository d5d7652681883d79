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

/// <summary>
/// A real resource whose removal waits until the test opens the gate (to observe a job mid-way). It honours
/// cancellation while it waits, as a long removal does between files: a cancelled wait removes nothing.
/// </summary>
public sealed class GatedResource(IAccountResource inner) : IAccountResource
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public string Key => inner.Key;
    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);
    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);

    public async Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        Entered.TrySetResult();
        try { await Gate.Task.WaitAsync(ct); }
        catch (OperationCanceledException)
        {
            Cancelled.TrySetResult();
            throw;
        }
        return await inner.RemoveAsync(account, ct);
    }
}

/// <summary>A real resource whose first removal says "done" and removes nothing (a step that lies); later ones run for real.</summary>
public sealed class LyingOnceResource(IAccountResource inner) : IAccountResource
{
    private int _calls;
    public string Key => inner.Key;
    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);
    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) => inner.InspectAsync(account, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct) =>
        Interlocked.Increment(ref _calls) == 1 ? Task.FromResult(RemoveOutcome.Done("claimed, but nothing was removed")) : inner.RemoveAsync(account, ct);
}

/// <summary>A real resource whose first inspection after a removal throws (the check after the last step cannot see it).</summary>
public sealed class BlindOnceAfterRemovalResource(IAccountResource inner) : IAccountResource
{
    private int _removed;
    private int _blinded;
    public string Key => inner.Key;
    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct) =>
        Volatile.Read(ref _removed) > 0 && Interlocked.Exchange(ref _blinded, 1) == 0
            ? throw new IOException($"injected: {Key} cannot be read")
            : inner.InspectAsync(account, ct);

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        Interlocked.Increment(ref _removed);
        return inner.RemoveAsync(account, ct);
    }
}

/// <summary>
/// A real resource that counts its removals in a table shared by every wrapper of a test (across service instances),
/// and its inspections too when given a table for them.
/// </summary>
public sealed class CountingResource(IAccountResource inner, System.Collections.Concurrent.ConcurrentDictionary<string, int> removals,
    System.Collections.Concurrent.ConcurrentDictionary<string, int>? inspections = null) : IAccountResource
{
    public string Key => inner.Key;
    public Task ProvisionAsync(NewAccount account, CancellationToken ct) => inner.ProvisionAsync(account, ct);

    public Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct)
    {
        inspections?.AddOrUpdate(Key, 1, (_, n) => n + 1);
        return inner.InspectAsync(account, ct);
    }

    public Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct)
    {
        removals.AddOrUpdate(Key, 1, (_, n) => n + 1);
        return inner.RemoveAsync(account, ct);
    }
}
