using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Opterius.Services;
using Opterius.Services.Accounts;

namespace Opterius.Web.Tests.Hosting;

/// <summary>Opterius:Provisioning is checked when the panel starts, as the host does (its start-up validator), naming the key.</summary>
public sealed class ProvisioningOptionsTests
{
    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["Opterius:Provisioning:Addresses:0"] = "203.0.113.5",
        ["Opterius:Provisioning:Addresses:1"] = "2001:db8::5",
        ["Opterius:Provisioning:Nameservers:0"] = "ns1.example.net",
        ["Opterius:Provisioning:Nameservers:1"] = "ns2.example.net",
        ["Opterius:Provisioning:SoaContact"] = "hostmaster@example.net",
    };

    private static void Start(Dictionary<string, string?> settings)
    {
        using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build())
            .AddOpteriusServices()
            .BuildServiceProvider();
        services.GetRequiredService<IStartupValidator>().Validate();
    }

    [Fact]
    public void AServerWithItsAddressesNameserversAndContactStartsWithStarterContentOff()
    {
        Start(Valid);
        var options = new ProvisioningOptions();
        new ConfigurationBuilder().AddInMemoryCollection(Valid).Build().GetSection(ProvisioningOptions.Section).Bind(options);
        Assert.False(options.StarterContent);
        Assert.Equal("hostmaster.example.net", options.SoaRname());
    }

    [Theory]
    [InlineData("Opterius:Provisioning:Addresses:0", null, "Addresses must list")]
    [InlineData("Opterius:Provisioning:Addresses:0", "1", "'1' is not an IPv4 or IPv6 address")]
    [InlineData("Opterius:Provisioning:Addresses:1", "example.net", "'example.net' is not an IPv4 or IPv6 address")]
    [InlineData("Opterius:Provisioning:Nameservers:1", "ns2", "'ns2' is not a fully qualified host name")]
    [InlineData("Opterius:Provisioning:SoaContact", "hostmaster", "SoaContact 'hostmaster' must be an address")]
    [InlineData("Opterius:Provisioning:Hostname", "bad host", "Hostname 'bad host' is not a host name")]
    public void AMissingOrMalformedSettingStopsTheStartNamingTheKey(string key, string? value, string message)
    {
        var settings = new Dictionary<string, string?>(Valid) { [key] = value };
        if (value is null) foreach (var k in Valid.Keys.Where(k => k.StartsWith("Opterius:Provisioning:Addresses:"))) settings.Remove(k);

        var refused = Assert.Throws<OptionsValidationException>(() => Start(settings));

        Assert.Contains(message, refused.Message);
        Assert.Contains("Opterius:Provisioning:", refused.Message);
    }
}
