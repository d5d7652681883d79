using Opterius.Services.Accounts;
using Opterius.Services.Commands;

namespace Opterius.Services.Resources;

/// <summary>
/// One kind of thing a hosting account owns on the server. It can make it (create path), say what
/// exists (the deletion plan) and remove it (one deletion step). Removal is idempotent: removing what
/// is already gone reports <see cref="StepStatus.Skipped"/>.
/// </summary>
public interface IAccountResource
{
    /// <summary>The stable key used by the API, the hub, the journal and the UI (e.g. <c>home_directory</c>).</summary>
    string Key { get; }

    Task ProvisionAsync(NewAccount account, CancellationToken ct);

    Task<ResourceInspection> InspectAsync(AccountIdentity account, CancellationToken ct);

    /// <summary>Removes the account's part; throws <see cref="ResourceException"/> with a reason a human can act on.</summary>
    Task<RemoveOutcome> RemoveAsync(AccountIdentity account, CancellationToken ct);
}

/// <summary>What the create path knows about an account being made.</summary>
public sealed record NewAccount(AccountIdentity Identity, string Email, string Password);

/// <summary>What a resource holds for an account: the items (paths, names), their size in bytes and a count.</summary>
public sealed record ResourceInspection(string Resource, bool Exists, IReadOnlyList<string> Items, long Bytes, long Count, string Summary)
{
    public static ResourceInspection Nothing(string resource, string summary = "nothing there") =>
        new(resource, false, [], 0, 0, summary);
}

public static class StepStatus
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Done = "done";
    public const string Skipped = "skipped";
    public const string Failed = "failed";
}

/// <summary>How a removal ended: <see cref="StepStatus.Done"/> or <see cref="StepStatus.Skipped"/>, with a short detail.</summary>
public sealed record RemoveOutcome(string Status, string? Detail)
{
    public static RemoveOutcome Done(string? detail = null) => new(StepStatus.Done, detail);
    public static RemoveOutcome Skipped(string detail) => new(StepStatus.Skipped, detail);
}

/// <summary>A resource step that could not finish; the message is shown to the operator as the step's detail.</summary>
public class ResourceException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>
    /// Runs a step's external command (or a reload): a command that failed, timed out or could not start fails the
    /// step, its message (exit code and stderr) after <paramref name="context"/>.
    /// </summary>
    public static async Task<T> WhenCommandFails<T>(Func<Task<T>> run, string? context = null)
    {
        try { return await run(); }
        catch (CommandFailedException e) { throw new ResourceException(context is null ? e.Message : $"{context}: {e.Message}", e); }
    }
}

/// <summary>
/// A provision refused because its part already exists on the server: nothing was made, so there is nothing of
/// this create's to clean up, and what is there is not this create's to remove.
/// </summary>
public sealed class AlreadyThereException(string message) : ResourceException(message);

/// <summary>
/// A resource that changes while an account is suspended (vhost answers 503, pool stopped, shell nologin,
/// mail login refused) and is restored exactly on unsuspend. Both are idempotent.
/// </summary>
public interface ISuspendableResource
{
    Task SuspendAsync(AccountIdentity account, CancellationToken ct);

    Task UnsuspendAsync(AccountIdentity account, CancellationToken ct);
}
