<?php
// What the admin sees when the server's settings, the network, the certificate or the panel's license are wrong,
// and that the module log never holds the token.

final class ConnectionTest extends ModuleTestCase
{
    public function testTestConnectionOfAGoodServerIsSuccessAndThePackagePickerListsThePanelsPackages(): void
    {
        $this->assertSame(['success' => true, 'error' => ''], opterius_TestConnection($this->server()));

        $packages = opterius_LoadPackages($this->server());
        $id = (string)Panel::defaultPackageId();
        $this->assertSame("default (id $id)", $packages[$id]);
        $this->assertSame('Opterius Panel', opterius_MetaData()['DisplayName']);
        $this->assertSame(['1.1', '8443'], [opterius_MetaData()['APIVersion'], opterius_MetaData()['DefaultSSLPort']]);
        $this->assertSame('opterius_LoadPackages', opterius_ConfigOptions()['Package']['Loader']);
        $this->assertSame('25', opterius_ConfigOptions()['Terminate time budget']['Default']);
    }

    public function testTheTokenInThePasswordFieldWorksWhenTheAccessHashIsEmpty(): void
    {
        $server = $this->server(['serveraccesshash' => '', 'serverpassword' => Panel::token()]);

        $this->assertSame(['success' => true, 'error' => ''], opterius_TestConnection($server));
    }

    public function testAWrongTokenIsNamedAsTheTokenByTestConnectionAndByCreate(): void
    {
        $wrong = ['serveraccesshash' => 'not-a-token-' . bin2hex(random_bytes(8))];
        $expected = 'the panel refused the API token (401 unauthenticated): it is wrong, expired or revoked. Paste a valid token into this server\'s Access Hash (or Password).';

        $this->assertSame(['success' => false, 'error' => "Connection test: $expected"], opterius_TestConnection($this->server($wrong)));
        $service = $this->service($wrong);
        $this->assertSame("Create: $expected", opterius_CreateAccount($service));
        $this->assertSame([], Panel::accountsNamed($service['username']));
    }

    public function testAnUnreachableHostIsNamedWithWhatToCheck(): void
    {
        $port = Panel::closedPort();
        $answer = opterius_TestConnection($this->server(['serverport' => (string)$port]));

        $this->assertFalse($answer['success']);
        $this->assertStringStartsWith("Cannot reach the panel at https://127.0.0.1:$port (", $answer['error']);
        $this->assertStringEndsWith('check that the panel is running, the server\'s Hostname and Port (8443 by default), and that the firewall lets WHMCS in.', $answer['error']);
        $this->assertStringStartsWith("Cannot reach the panel at https://127.0.0.1:$port", opterius_TerminateAccount($this->service(['serverport' => (string)$port])));
    }

    public function testASelfSignedCertificateWithVerificationOnIsRefusedSayingSoAndUntickingSecureGetsPastIt(): void
    {
        [$port, $server] = self::selfSignedServer();
        try {
            $answer = opterius_TestConnection($this->server(['serverport' => (string)$port]));
            $this->assertFalse($answer['success']);
            $this->assertStringStartsWith("The panel's TLS certificate at https://127.0.0.1:$port is not trusted (", $answer['error']);
            $this->assertStringEndsWith('it is probably self-signed. Give the panel a certificate this WHMCS server trusts '
                . '(Opterius:Https:CertificatePath and KeyPath), or untick Secure in this server\'s settings to skip certificate verification.', $answer['error']);

            // Unverified, the TLS connection is made: what answers there is no panel (openssl's test server), and that is what is said.
            $unverified = opterius_TestConnection($this->server(['serverport' => (string)$port, 'serversecure' => '']));
            $this->assertStringContainsString('without a JSON body: check that Hostname and Port point at the Opterius panel', $unverified['error']);
        } finally {
            proc_terminate($server);
            proc_close($server);
        }
    }

    public function testATokenWithoutTheWriteAndDeleteScopesIsNamedByTestConnectionAndCreate(): void
    {
        $readOnly = ['serveraccesshash' => Panel::env('OPTERIUS_TEST_READ_TOKEN')];

        $this->assertSame(['success' => false, 'error' => "Connected, but the token 'whmcs-read-only' lacks accounts:write, accounts:delete: "
            . 'use a token with accounts:read, accounts:write and accounts:delete.'], opterius_TestConnection($this->server($readOnly)));
        $service = $this->service($readOnly);
        $this->assertStringStartsWith('Create: the API token lacks a scope (', opterius_CreateAccount($service));
        $this->assertSame([], Panel::accountsNamed($service['username']));
    }

    public function testAPanelThatNeverAnswersMakesTerminateGiveUpWithinItsAllowanceSayingSo(): void
    {
        // A TLS server with the panel's own (trusted) certificate that reads the request and never answers it.
        $dir = Panel::env('OPTERIUS_TEST_DIR');
        [$port, $server] = self::tlsServer("$dir/panel.pem", "$dir/panel.key", []);
        try {
            $started = microtime(true);
            $answer = opterius_TerminateAccount($this->service(['serverport' => (string)$port, 'configoption2' => '0.5']));
            $took = microtime(true) - $started;
        } finally {
            proc_terminate($server);
            proc_close($server);
        }

        $this->assertSame("The panel at https://127.0.0.1:$port did not answer within 5 s.", $answer);
        $this->assertLessThan(7.0, $took);
    }

    public function testTheAdminTabOfAPanelThatNeverAnswersShowsBothFieldsWithinAFewSeconds(): void
    {
        $dir = Panel::env('OPTERIUS_TEST_DIR');
        [$port, $server] = self::tlsServer("$dir/panel.pem", "$dir/panel.key", []);
        $service = $this->service(['serverport' => (string)$port]);
        $service['model']->serviceProperties->values = ['Opterius Account ID' => '5', 'Opterius Deletion Job' => '7'];
        try {
            $started = microtime(true);
            $tab = opterius_AdminServicesTabFields($service);
            $took = microtime(true) - $started;
        } finally {
            proc_terminate($server);
            proc_close($server);
        }

        // The page waits 3 s for the account, then at least 1 s for the job (the least any request gets).
        $this->assertSame(['Opterius account' => "The panel at https://127.0.0.1:$port did not answer within 3 s.",
            'Last deletion job' => "#7 not read: the panel at https://127.0.0.1:$port did not answer within 1 s."], $tab);
        $this->assertLessThan(5.5, $took);
    }

    public function testALicenseBlockedPanelSaysWritesAreBlockedOnTestConnectionCreateSuspendAndTerminate(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $id = (int)self::storedId($service);
        $blocked = $this->service();
        $license = Panel::env('OPTERIUS_TEST_LICENSE');
        $kept = file_get_contents($license);
        copy(Panel::env('OPTERIUS_TEST_FOREIGN_LICENSE'), $license);
        try {
            $test = opterius_TestConnection($this->server());
            $create = opterius_CreateAccount($blocked);
            $suspend = opterius_SuspendAccount($service);
            $terminate = opterius_TerminateAccount($service);
        } finally {
            file_put_contents($license, $kept);
        }

        $this->assertFalse($test['success']);
        $this->assertStringStartsWith("Connected and the token is valid, but the panel's license is invalid: writes are blocked", $test['error']);
        foreach (['Create' => $create, 'Suspend' => $suspend, 'Terminate' => $terminate] as $what => $answer)
            $this->assertStringStartsWith("$what: the panel's license is invalid: writes are blocked. ", $answer);
        $this->assertSame([], Panel::accountsNamed($blocked['username']));
        $this->assertSame('active', Panel::account($id)['status']);
        $this->assertSame('success', opterius_TerminateAccount($service));
    }

    public function testNoModuleLogEntryHoldsTheTokenOrThePasswordWhichAreHandedOverAsReplaceVars(): void
    {
        $service = $this->service();
        $calls = [
            function () { return opterius_TestConnection($this->server())['error']; },
            function () use ($service) { return opterius_CreateAccount($service); },
            function () use ($service) { return opterius_CreateAccount($service); },
            function () use ($service) { return opterius_SuspendAccount($service); },
            function () use ($service) { return opterius_UnsuspendAccount($service); },
            function () use ($service) { return opterius_TerminateAccount($service); },
            function () use ($service) { return opterius_AdminServicesTabFields($service)['Opterius account']; },
            function () { return opterius_TestConnection($this->server(['serveraccesshash' => 'wrong-token']))['error']; },
        ];
        foreach ($calls as $call) $call();

        $this->assertGreaterThanOrEqual(10, count(self::log()));
        foreach (self::log() as $entry) {
            $this->assertSame('opterius', $entry['module']);
            $this->assertNotEmpty(array_intersect([Panel::token(), 'wrong-token'], $entry['replaceVars']), 'the token is a replace-var');
            $this->assertStringContainsString('Authorization: Bearer [redacted]', $entry['request']);
        }
        $create = array_values(array_filter(self::log(), function ($e) { return strpos($e['request'], 'POST ') === 0 && $e['action'] === 'CreateAccount'; }));
        $this->assertStringContainsString('"password":"[redacted]"', $create[0]['request']);
        $this->assertContains($service['password'], $create[0]['replaceVars']);
        // tearDown checks every request, response and processed value of these entries for the token and the password.
    }

    /** openssl's TLS test server with a fresh self-signed certificate for 127.0.0.1, as a panel without its own certificate has. */
    private static function selfSignedServer(): array
    {
        $dir = Panel::env('OPTERIUS_TEST_DIR');
        $make = 'openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 '
            . '-keyout ' . escapeshellarg("$dir/self.key") . ' -out ' . escapeshellarg("$dir/self.pem") . ' 2>/dev/null';
        exec($make, $out, $rc);
        if ($rc !== 0) throw new RuntimeException('openssl could not make a self-signed certificate');
        return self::tlsServer("$dir/self.pem", "$dir/self.key", ['-www']);
    }

    /** openssl s_server on a free port with this certificate: [port, process] (stopped by the caller, by its pid). */
    private static function tlsServer(string $cert, string $key, array $options): array
    {
        $port = Panel::closedPort();
        $server = proc_open(array_merge(['openssl', 's_server', '-accept', (string)$port, '-cert', $cert, '-key', $key, '-quiet'], $options),
            [0 => ['pipe', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        for ($i = 0; $i < 100; $i++) {
            $probe = @fsockopen('127.0.0.1', $port, $errno, $error, 0.2);
            if ($probe) { fclose($probe); return [$port, $server]; }
            usleep(50000);
        }
        proc_terminate($server);
        throw new RuntimeException("openssl s_server did not listen on $port");
    }
}
