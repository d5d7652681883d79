using Microsoft.AspNetCore.Components;

namespace Opterius.Web.Components;

/// <summary>
/// An event handler after which its component is not rendered again (a component re-renders after every handler it
/// receives): for a handler that renders what it changed itself, such as a grid reload, which renders the grid.
/// </summary>
public static class WithoutRender
{
    public static Func<T, Task> Handler<T>(Func<T, Task> handler) => new Receiver<T>(handler).InvokeAsync;

    // The event callback goes to its delegate's target when that handles events: this record, which only runs it.
    private sealed record Receiver<T>(Func<T, Task> Handler) : IHandleEvent
    {
        public Task InvokeAsync(T value) => Handler(value);

        public Task HandleEventAsync(EventCallbackWorkItem item, object? arg) => item.InvokeAsync(arg);
    }
}
