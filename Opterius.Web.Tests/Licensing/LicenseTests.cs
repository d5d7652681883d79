using System.Text;
using Microsoft.Extensions.Options;
using Opterius.Services.Licensing;
using Opterius.Web.Tests.Tokens;

namespace Opterius.Web.Tests.Licensing;

public sealed class LicenseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("opterius-license-").FullName;
    private readonly LicenseIssuer _issuer = new(TimeProvider.System);

    private string KeyFile => Path.Combine(_dir, "keys", "signing.pem");
    private string LicensePath => Path.Combine(_dir, "etc", "license.json");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private LicenseService Service(string? publicKey = null, string? path = null) =>
        new(Options.Create(new LicenseOptions { Path = path ?? LicensePath, PublicKey = publicKey ?? KeyFile + ".pub" }), TimeProvider.System);

    [Fact]
    public void AnIssuedLicenseIsValidAndTheNewPrivateKeyIsReadableOnlyByItsOwner()
    {
        var issued = _issuer.Issue(KeyFile, LicensePath, "pro", 250, 365, "Example Hosting Ltd");

        var status = Service().Current;

        Assert.True(status.Valid, status.Message);
        Assert.Equal("pro", status.Plan);
        Assert.Equal(250, status.MaxAccounts);
        Assert.Equal(issued.License.ExpiresAt, status.ExpiresAt);
        Assert.InRange(status.ExpiresAt!.Value, DateTimeOffset.UtcNow.AddDays(364), DateTimeOffset.UtcNow.AddDays(366));
        Assert.Contains("Example Hosting Ltd", status.Message);
        Assert.True(issued.KeyPairCreated);
        Assert.Equal(KeyFile + ".pub", issued.PublicKeyFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyFile));
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", File.ReadAllText(issued.PublicKeyFile));
        Assert.DoesNotContain("PRIVATE", File.ReadAllText(LicensePath));
    }

    [Fact]
    public void ALicenseWithoutLimitOrExpiryIsValidForever()
    {
        _issuer.Issue(KeyFile, LicensePath, "unlimited", null, null);

        var status = Service().Current;

        Assert.True(status.Valid, status.Message);
        Assert.Null(status.MaxAccounts);
        Assert.Null(status.ExpiresAt);
        Assert.Contains("never expires", status.Message);
    }

    [Fact]
    public void ASecondIssueReusesTheKeyAndReplacesTheLicense()
    {
        var first = _issuer.Issue(KeyFile, LicensePath, "basic", 10, 30);
        var publicKey = File.ReadAllText(first.PublicKeyFile);
        var privateKey = File.ReadAllText(KeyFile);

        var second = _issuer.Issue(KeyFile, LicensePath, "pro", 100, 30);

        Assert.False(second.KeyPairCreated);
        Assert.Equal(publicKey, File.ReadAllText(second.PublicKeyFile));
        Assert.Equal(privateKey, File.ReadAllText(KeyFile));
        Assert.Equal("pro", Service().Current.Plan);
    }

    [Fact]
    public void AMissingLicenseIsInvalidAndTellsTheOperatorWhatToDo()
    {
        _issuer.Issue(KeyFile, Path.Combine(_dir, "elsewhere.json"), "pro", 1, 1);

        var status = Service().Current;

        Assert.False(status.Valid);
        Assert.Contains($"No license is installed at {LicensePath}", status.Message);
        Assert.Contains("license issue", status.Message);
        var e = Assert.Throws<LicenseRequiredException>(() => Service().EnsureValid());
        Assert.Equal(status.Message, e.Message);
    }

    [Fact]
    public void ALicenseWhoseMaxAccountsWasEditedIsInvalid()
    {
        _issuer.Issue(KeyFile, LicensePath, "basic", 10, 30);
        var text = File.ReadAllText(LicensePath);
        var edited = text.Replace("\"max_accounts\":10", "\"max_accounts\":10000");
        Assert.NotEqual(text, edited);
        File.WriteAllText(LicensePath, edited);

        var status = Service().Current;

        Assert.False(status.Valid);
        Assert.Null(status.MaxAccounts);
        Assert.Contains("edited after signing, or signed by another key", status.Message);
        Assert.Contains(LicensePath, status.Message);
    }

    [Fact]
    public void ALicenseSignedByAnotherKeyIsInvalid()
    {
        _issuer.Issue(KeyFile, Path.Combine(_dir, "ours.json"), "pro", 10, 30);
        _issuer.Issue(Path.Combine(_dir, "other.pem"), LicensePath, "pro", 10, 30);

        var status = Service().Current;

        Assert.False(status.Valid);
        Assert.Contains("does not verify with the public key", status.Message);
        Assert.True(Service(publicKey: Path.Combine(_dir, "other.pem.pub")).Current.Valid);
    }

    [Fact]
    public void AnExpiredLicenseIsInvalidAndSaysWhenItExpired()
    {
        var issued = new LicenseIssuer(new ShiftedClock(TimeSpan.FromDays(-400))).Issue(KeyFile, LicensePath, "pro", 10, 30);

        var status = Service().Current;

        Assert.False(status.Valid);
        Assert.Equal("pro", status.Plan);
        Assert.Equal(issued.License.ExpiresAt, status.ExpiresAt);
        Assert.StartsWith($"License expired on {issued.License.ExpiresAt!.Value.UtcDateTime:yyyy-MM-dd HH:mm} UTC", status.Message);
        Assert.Contains($"install a new license at {LicensePath}", status.Message);
    }

    [Fact]
    public void ALicenseIssuedInTheFutureIsInvalid()
    {
        new LicenseIssuer(new ShiftedClock(TimeSpan.FromDays(2))).Issue(KeyFile, LicensePath, "pro", 10, 30);

        var status = Service().Current;

        Assert.False(status.Valid);
        Assert.Contains("in the future", status.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json at all")]
    [InlineData("""{"license": "cGxhbg==", "signature": "AAAA"}""")]
    [InlineData("""{"license": {"plan": "pro"}}""")]
    [InlineData("""{"license": {"plan": "pro"}, "signature": "%%%"}""")]
    public void AFileThatIsNotALicenseIsInvalid(string content)
    {
        _issuer.Issue(KeyFile, Path.Combine(_dir, "ours.json"), "pro", 10, 30);
        Directory.CreateDirectory(Path.GetDirectoryName(LicensePath)!);
        File.WriteAllText(LicensePath, content);

        var status = Service().Current;

        Assert.False(status.Valid);
        Assert.Contains($"The license at {LicensePath} cannot be used because", status.Message);
    }

    [Fact]
    public void AMissingPublicKeyIsInvalidAndNamesTheSetting()
    {
        _issuer.Issue(KeyFile, LicensePath, "pro", 10, 30);

        var status = Service(publicKey: Path.Combine(_dir, "nowhere.pub")).Current;

        Assert.False(status.Valid);
        Assert.Contains("Opterius:License:PublicKey", status.Message);
    }

    [Fact]
    public void ThePublicKeyCanBeConfiguredAsPemText()
    {
        var issued = _issuer.Issue(KeyFile, LicensePath, "pro", 10, 30);

        Assert.True(Service(publicKey: File.ReadAllText(issued.PublicKeyFile)).Current.Valid);
    }

    [Fact]
    public void ALicenseReplacedOrRemovedWhileRunningIsNoticedOnTheNextCheck()
    {
        var service = Service();
        Assert.False(service.Current.Valid);

        _issuer.Issue(KeyFile, LicensePath, "basic", 10, 30);
        Assert.Equal(("basic", 10), (service.Current.Plan, service.Current.MaxAccounts));
        Assert.True(service.Current.Valid);

        _issuer.Issue(KeyFile, LicensePath, "pro", 500, 30);
        Assert.Equal(("pro", 500), (service.Current.Plan, service.Current.MaxAccounts));

        // A hand edit that keeps the size is still noticed: its modification time moves.
        var signed = File.ReadAllBytes(LicensePath);
        var stamp = File.GetLastWriteTimeUtc(LicensePath);
        File.WriteAllBytes(LicensePath, Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(signed).Replace("\"max_accounts\":500", "\"max_accounts\":900")));
        File.SetLastWriteTimeUtc(LicensePath, stamp.AddSeconds(1));
        Assert.False(service.Current.Valid);

        File.Delete(LicensePath);
        Assert.Contains("No license is installed", service.Current.Message);

        File.WriteAllBytes(LicensePath, signed);
        Assert.True(service.Current.Valid);
    }

    [Fact]
    public void IssuingRefusesBadPlansLimitsAndExpiries()
    {
        Assert.Throws<ArgumentException>(() => _issuer.Issue(KeyFile, LicensePath, "", 1, 1));
        Assert.Throws<ArgumentException>(() => _issuer.Issue(KeyFile, LicensePath, "pro plan", 1, 1));
        Assert.Throws<ArgumentException>(() => _issuer.Issue(KeyFile, LicensePath, "pro", -1, 1));
        Assert.Throws<ArgumentException>(() => _issuer.Issue(KeyFile, LicensePath, "pro", 1, 0));
        Assert.False(File.Exists(LicensePath));
    }
}
