using Opterius.Services.Packages;
using Opterius.Web.Auth;

namespace Opterius.Web.Api;

public static class PackagesApi
{
    public static RouteGroupBuilder MapPackagesApi(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/packages").WithTags("Packages");
        group.MapGet("/", async (PackageStore packages, CancellationToken ct) =>
            TypedResults.Ok(new Envelope<IReadOnlyList<HostingPackage>>(await packages.ListAsync(ct)))).RequireAuthorization(ApiAuth.Read)
            .WithName("listPackages").WithSummary("The hosting packages (a fresh install has 'default')");
        return group;
    }
}
