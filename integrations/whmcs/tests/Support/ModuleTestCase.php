<?php
// What every module test shares: WHMCS's $params for a service on the run's panel, and the check, after every
// test, that no module log entry holds the token or a customer's password (they may only be in the replace-vars).

use PHPUnit\Framework\TestCase;

abstract class ModuleTestCase extends TestCase
{
    /** @var string[] passwords handed to the module in this test */
    private $passwords = [];

    protected function setUp(): void
    {
        $GLOBALS['opterius_module_log'] = [];
    }

    protected function tearDown(): void
    {
        $this->assertNothingSecretLogged();
    }

    /** The server's settings as WHMCS passes them (Setup > Servers), for the run's panel unless overridden. */
    protected function server(array $overrides = []): array
    {
        return array_merge([
            'serverhostname' => Panel::host(),
            'serverip' => '',
            'serverport' => (string)Panel::port(),
            'serversecure' => true,
            'serverusername' => '',
            'serverpassword' => '',
            'serveraccesshash' => Panel::token() . "\n",
        ], $overrides);
    }

    /** $params of a new service with fresh names: its model keeps what the module stores across calls. */
    protected function service(array $overrides = []): array
    {
        $username = self::uniqueUsername();
        $password = $this->newPassword();
        return array_merge($this->server(), [
            'serviceid' => random_int(100000, 999999999),
            'userid' => 7,
            'pid' => 3,
            'domain' => "$username.example",
            'username' => $username,
            'password' => $password,
            'clientsdetails' => ['email' => "billing@$username.example"],
            'configoption1' => (string)Panel::defaultPackageId(),
            'configoption2' => '25',
            'customfields' => [],
            'model' => new FakeService(),
        ], $overrides);
    }

    /** A service password, which the secret check after the test also looks for. */
    protected function newPassword(): string
    {
        $password = 'Whmcs-' . bin2hex(random_bytes(6));
        $this->passwords[] = $password;
        return $password;
    }

    protected static function uniqueUsername(): string
    {
        return 'w' . substr(bin2hex(random_bytes(8)), 0, 11);
    }

    protected static function storedId(array $params): string
    {
        return $params['model']->serviceProperties->get('Opterius Account ID');
    }

    protected static function storedJob(array $params): string
    {
        return $params['model']->serviceProperties->get('Opterius Deletion Job');
    }

    /** @return array[] the module log entries of this test */
    protected static function log(): array
    {
        return $GLOBALS['opterius_module_log'];
    }

    private function assertNothingSecretLogged(): void
    {
        $secrets = array_merge([Panel::token(), Panel::env('OPTERIUS_TEST_READ_TOKEN')], $this->passwords);
        foreach (self::log() as $i => $entry) {
            $logged = var_export([$entry['request'], $entry['response'], $entry['processed']], true);
            foreach ($secrets as $secret)
                $this->assertStringNotContainsString($secret, $logged, "module log entry $i ({$entry['action']}) holds a secret");
        }
    }
}
