using System.Net.Mail;

namespace Opterius.Services.Accounts;

/// <summary>
/// What a create request's fields must look like, with the messages the API answers (422 <c>validation_failed</c>)
/// and the browser form shows: one set of rules and words for both, so the form never accepts what the API refuses.
/// </summary>
public static class AccountRules
{
    public const string Username = "username";
    public const string Domain = "domain";
    public const string Email = "email";
    public const string Password = "password";
    public const string PackageId = "package_id";

    public const string PackageMessage = "package_id must be the id of an existing package (GET /api/v1/packages)";

    /// <summary>Every field that breaks its rule, with its message; the package is checked by the create (it needs the database).</summary>
    public static Dictionary<string, string> Check(CreateAccountRequest r)
    {
        var errors = new Dictionary<string, string>();
        if (UsernameError(r.Username) is { } u) errors[Username] = u;
        if (DomainError(r.Domain) is { } d) errors[Domain] = d;
        if (EmailError(r.Email) is { } e) errors[Email] = e;
        if (PasswordError(r.Password) is { } p) errors[Password] = p;
        return errors;
    }

    public static string? UsernameError(string? username) => AccountNames.IsValidUsername(username) ? null
        : "username must be 3-32 lower-case letters and digits, starting with a letter, and not a reserved system name (such as vmail or postmaster)";

    public static string? DomainError(string? domain) => AccountNames.IsValidDomain(domain?.ToLowerInvariant()) ? null
        : "domain must be a public fully qualified domain name such as example.com: a top-level label of letters (or xn--), no label beginning or ending with '-'";

    public static string? EmailError(string? email) => IsEmail(email) ? null : "email must be a valid address such as owner@example.com";

    public static string? PasswordError(string? password) =>
        password is null || password.Length is < 8 or > 128 ? "password must be 8-128 characters"
        : password.Any(char.IsControl) || password.Contains(':') ? "password must not contain ':' or control characters"
        : null;

    private static bool IsEmail(string? email) =>
        email is { Length: <= 254 } && MailAddress.TryCreate(email, out var a) && a.Address == email && !email.Any(char.IsControl) && email.Contains('.');
}
