using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Opterius.Services.Licensing;
using Opterius.Services.Tokens;

namespace Opterius.Services;

public static class TokensAndLicensingExtensions
{
    /// <summary>
    /// API tokens (<c>Opterius:Jwt</c>, signing key checked at start) and the license (<c>Opterius:License</c>).
    /// Needs the <see cref="Data.PanelDb"/> registered by <c>AddOpteriusServices</c>.
    /// </summary>
    public static IServiceCollection AddOpteriusTokensAndLicensing(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);

        services.AddOptions<JwtOptions>().BindConfiguration(JwtOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<TokenStore>();
        services.AddSingleton<TokenService>();

        // No ValidateOnStart beyond the paths being set: a missing or bad license blocks writes, never the start.
        services.AddOptions<LicenseOptions>().BindConfiguration(LicenseOptions.Section).ValidateDataAnnotations();
        services.AddSingleton<LicenseService>();
        services.AddSingleton<LicenseIssuer>();
        return services;
    }
}
