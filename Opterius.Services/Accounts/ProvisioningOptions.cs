using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Sockets;

namespace Opterius.Services.Accounts;

/// <summary>
/// The <c>Opterius:Provisioning</c> section: what a new account's zone points at, and whether it gets the demo's
/// sample content. Validated at start: a server that does not know its own addresses would hand out dead zones.
/// </summary>
public sealed class ProvisioningOptions : IValidatableObject
{
    public const string Section = "Opterius:Provisioning";

    /// <summary>The server's public addresses: the zone's A (IPv4) and AAAA (IPv6) records for the domain, www and mail.</summary>
    public List<string> Addresses { get; set; } = [];

    /// <summary>The zone's NS records, in order; the first is also the SOA's primary name server.</summary>
    public List<string> Nameservers { get; set; } = [];

    /// <summary>The SOA's responsible person as an address (<c>hostmaster@example.com</c>).</summary>
    public string SoaContact { get; set; } = "";

    /// <summary>
    /// The demo's samples: databases <c>{username}_wp</c> and <c>_shop</c> with rows, mailboxes admin@ and info@
    /// (with their Dovecot and Postfix lines, logging in with the account password) and a cron job. Off in production.
    /// </summary>
    public bool StarterContent { get; set; }

    /// <summary>The server's own name, which no account may take; empty means <c>/etc/hostname</c> (else the machine name).</summary>
    public string Hostname { get; set; } = "";

    /// <summary>The configured hostname, else the machine's, lower-case.</summary>
    public string EffectiveHostname()
    {
        if (Hostname.Length > 0) return Hostname.ToLowerInvariant();
        // The real machine's file, not the sandbox root's: this is the name of the server the panel runs on.
        var file = File.Exists("/etc/hostname") ? File.ReadAllText("/etc/hostname").Trim() : "";
        return (file.Length > 0 ? file : Environment.MachineName).ToLowerInvariant();
    }

    /// <summary>The SOA's rname: the address with its '@' as a dot, dots of the local part escaped (RFC 1035).</summary>
    public string SoaRname()
    {
        var at = SoaContact.LastIndexOf('@');
        return SoaContact[..at].Replace(".", "\\.") + "." + SoaContact[(at + 1)..].ToLowerInvariant();
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext context)
    {
        if (Addresses.Count == 0)
            yield return Fail("Addresses", "must list the server's public IPv4 and/or IPv6 addresses (the zones' A/AAAA records)");
        foreach (var a in Addresses.Where(a => !IsAddress(a)))
            yield return Fail("Addresses", $"'{a}' is not an IPv4 or IPv6 address");
        if (Nameservers.Count == 0)
            yield return Fail("Nameservers", "must list the name servers of the zones (e.g. ns1.example.net, ns2.example.net)");
        foreach (var n in Nameservers.Where(n => !AccountNames.IsValidDomain(n.ToLowerInvariant())))
            yield return Fail("Nameservers", $"'{n}' is not a fully qualified host name");
        var at = SoaContact.LastIndexOf('@');
        if (at < 1 || SoaContact[..at].Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '+'))
            || !AccountNames.IsValidDomain(SoaContact[(at + 1)..].ToLowerInvariant()))
            yield return Fail("SoaContact", $"'{SoaContact}' must be an address such as hostmaster@example.net");
        if (Hostname.Length > 0 && !Hostname.ToLowerInvariant().Split('.').All(l => l.Length is > 0 and <= 63 && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
            yield return Fail("Hostname", $"'{Hostname}' is not a host name");
    }

    private static bool IsAddress(string value) =>
        // IPAddress also reads "1" as 0.0.0.1: an IPv4 address must be written as four numbers.
        IPAddress.TryParse(value, out var ip) && (ip.AddressFamily == AddressFamily.InterNetwork
            ? value.Split('.').Length == 4
            : ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.ScopeId == 0);

    private static ValidationResult Fail(string key, string message) => new($"{Section}:{key} {message}", [key]);
}
