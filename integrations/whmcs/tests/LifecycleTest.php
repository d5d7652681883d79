<?php
// A product's life through the module against the real panel: create, suspend, unsuspend, terminate, and the
// retries WHMCS's automation makes after timeouts.

use Opterius\Whmcs\ServiceAccount;

final class LifecycleTest extends ModuleTestCase
{
    public function testCreateMakesOnePanelAccountWithTheServicesNamesAndStoresItsId(): void
    {
        $service = $this->service();

        $this->assertSame('success', opterius_CreateAccount($service));

        $id = self::storedId($service);
        $this->assertMatchesRegularExpression('/^[1-9][0-9]*$/', $id);
        $account = Panel::account((int)$id);
        $this->assertSame([$service['username'], $service['domain'], $service['clientsdetails']['email'], 'active'],
            [$account['username'], $account['domain'], $account['email'], $account['status']]);
        $this->assertCount(1, Panel::accountsNamed($service['username']));
        $create = array_values(array_filter(self::log(), function ($e) { return strpos($e['request'], 'POST ') === 0; }));
        $this->assertCount(1, $create);
        // The key names this WHMCS install (a hash of its System URL) and the service.
        $this->assertMatchesRegularExpression('/^Idempotency-Key: whmcs-[0-9a-f]{10}-service-' . $service['serviceid'] . '$/m', $create[0]['request']);
        $this->assertSame('opterius', $create[0]['module']);
        $this->assertSame('CreateAccount', $create[0]['action']);
    }

    public function testARetriedCreateWhoseFirstAnswerWasLostGetsTheFirstAccountNotASecondOrAConflict(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $first = self::storedId($service);
        // The first answer never reached WHMCS (a timeout): nothing was stored, and WHMCS runs Create again.
        $service['model']->serviceProperties->values = [];

        $this->assertSame('success', opterius_CreateAccount($service));

        $this->assertSame($first, self::storedId($service));
        $this->assertCount(1, Panel::accountsNamed($service['username']));
    }

    public function testCreateRunAgainAfterTheServicesPasswordChangedSaysTheAccountKeepsItsFirstPassword(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $first = self::storedId($service);
        $service['password'] = $this->newPassword();

        $this->assertSame("Create: the panel account #$first '{$service['username']}' ({$service['domain']}) was made by an earlier Create of this service "
            . "and has the password it was made with, not the service's current one (the panel cannot change an account's password): "
            . 'set the service\'s password back to the first one and mark the service Active, or Terminate and Create again (this deletes the account\'s files).',
            opterius_CreateAccount($service));

        $this->assertSame($first, self::storedId($service));
        $this->assertCount(1, Panel::accountsNamed($service['username']));
    }

    public function testCreateRunAgainForAnotherPackageNamesThePackageTheAccountKept(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $first = self::storedId($service);
        $service['configoption1'] = '999999';

        $this->assertSame("Create: the panel account #$first '{$service['username']}' ({$service['domain']}) was made by an earlier Create of this service, "
            . "but its package is " . Panel::defaultPackageId() . ", not the product's 999999: the panel cannot change it through the module; "
            . 'set the service back to what the account has and mark it Active, or Terminate and Create again (this deletes the account\'s files).',
            opterius_CreateAccount($service));
        $this->assertSame(Panel::defaultPackageId(), Panel::account((int)$first)['package_id']);
    }

    public function testCreateRunAgainAfterTheKeysDayFindsTheNameTakenByItsOwnAccountAndSaysThePasswordIsTheFirst(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $first = self::storedId($service);
        // A key the panel no longer remembers (its day is over): the create is refused as a name taken, by this service's account.
        $service['serviceid'] = random_int(100000, 999999999);

        $this->assertStringStartsWith("Create: the panel account #$first '{$service['username']}' ({$service['domain']}) was made by an earlier Create of this service "
            . 'and has the password it was made with', opterius_CreateAccount($service));
        $this->assertCount(1, Panel::accountsNamed($service['username']));
    }

    public function testTwoWhmcsInstallsOnOnePanelWithTheSameServiceIdEachCreateTheirOwnAccount(): void
    {
        $kept = $GLOBALS['CONFIG']['SystemURL'];
        $ours = $this->service();
        $theirs = $this->service(['serviceid' => $ours['serviceid']]);
        try {
            $this->assertSame('success', opterius_CreateAccount($ours));
            $GLOBALS['CONFIG']['SystemURL'] = 'https://billing.other-host.example/';
            $this->assertSame('success', opterius_CreateAccount($theirs));
        } finally {
            $GLOBALS['CONFIG']['SystemURL'] = $kept;
        }

        $this->assertNotSame(self::storedId($ours), self::storedId($theirs));
        $this->assertSame($theirs['username'], Panel::account((int)self::storedId($theirs))['username']);
        $this->assertCount(1, Panel::accountsNamed($ours['username']));
        $this->assertSame('success', opterius_TerminateAccount($ours));
        $this->assertSame('success', opterius_TerminateAccount($theirs));
    }

    public function testAnUnexpectedFailureIsLoggedAsClassMessageAndPlaceWithoutTraceAndWithTheSecretsAsReplaceVars(): void
    {
        $service = $this->service();
        $service['model'] = new FailingService("WHMCS could not save the service (password {$service['password']})");

        $answer = opterius_CreateAccount($service);

        $this->assertSame('CreateAccount failed unexpectedly in the Opterius module: WHMCS could not save the service (password [redacted])', $answer);
        $entry = self::log()[count(self::log()) - 1];
        $this->assertSame(['opterius', 'CreateAccount', ''], [$entry['module'], $entry['action'], $entry['request']]);
        $this->assertMatchesRegularExpression('/^RuntimeException: WHMCS could not save the service \(password \[redacted\]\) at \S+LifecycleTest\.php:[0-9]+$/', $entry['response']);
        $this->assertSame('', $entry['processed'], 'no trace: its arguments may hold the password');
        $this->assertContains($service['password'], $entry['replaceVars']);
        $this->assertContains(Panel::token(), $entry['replaceVars']);
        foreach (Panel::accountsNamed($service['username']) as $made) Panel::call('DELETE', "/api/v1/accounts/{$made['id']}");
    }

    public function testCreateOfANameAnotherAccountHoldsNamesThatAccount(): void
    {
        $service = $this->service();
        $theirs = Panel::createAccount($service['username'], 'other-' . $service['domain']);

        $this->assertSame("Create: the panel refused (409 conflict): The username '{$service['username']}' is taken by account {$theirs['id']} (other-{$service['domain']}).",
            opterius_CreateAccount($service));
        $this->assertSame('', self::storedId($service));
        Panel::call('DELETE', "/api/v1/accounts/{$theirs['id']}");
    }

    public function testSuspendAndUnsuspendChangeTheAccountAndRepeatingEitherIsSuccess(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $id = (int)self::storedId($service);

        $this->assertSame('success', opterius_SuspendAccount($service));
        $this->assertSame('suspended', Panel::account($id)['status']);
        $this->assertSame('success', opterius_SuspendAccount($service));
        $this->assertSame('suspended', Panel::account($id)['status']);

        $this->assertSame('success', opterius_UnsuspendAccount($service));
        $this->assertSame('active', Panel::account($id)['status']);
        $this->assertSame('success', opterius_UnsuspendAccount($service));
        $this->assertSame('active', Panel::account($id)['status']);
    }

    public function testTerminateDeletesTheAccountAndASecondTerminateIsSuccess(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $id = (int)self::storedId($service);
        $home = Panel::root() . '/home/' . $service['username'];
        $this->assertDirectoryExists($home);

        $this->assertSame('success', opterius_TerminateAccount($service));
        $this->assertNull(Panel::account($id));
        clearstatcache();
        $this->assertDirectoryDoesNotExist($home);
        $this->assertSame('succeeded', Panel::job((int)self::storedJob($service))['status']);

        $this->assertSame('success', opterius_TerminateAccount($service));
        $delete = array_filter(self::log(), function ($e) { return strpos($e['request'], 'DELETE ') === 0; });
        $this->assertCount(1, $delete, 'the second Terminate found the account gone and deleted nothing');
        $this->assertStringContainsString('Prefer: respond-async', array_values($delete)[0]['request']);
    }

    public function testTerminateOfABigAccountThatOutlivesTheBudgetNamesTheRunningJobAndTheNextTerminateSucceeds(): void
    {
        $service = $this->service(['configoption2' => '0.5']);
        $this->assertSame('success', opterius_CreateAccount($service));
        $id = (int)self::storedId($service);
        self::fillHome(Panel::root() . '/home/' . $service['username'], 30000);
        // However fast the machine removes the home, the deletion outlives the budget: its mail_users step waits for the
        // Dovecot file's lock, held here as another writer would, until after the first Terminate has answered.
        $lock = fopen(Panel::root() . '/etc/dovecot/users.lock', 'c');
        $this->assertTrue(flock($lock, LOCK_EX), 'the Dovecot users lock could not be taken');

        $started = microtime(true);
        try {
            $answer = opterius_TerminateAccount($service);
        } finally {
            $took = microtime(true) - $started;
            $job = self::storedJob($service);
            $status = $job === '' ? null : Panel::job((int)$job)['status'];
            flock($lock, LOCK_UN);
            fclose($lock);
        }

        $this->assertNotSame('', $job);
        $this->assertStringStartsWith("The deletion is still running on the panel after 0.5 s (deletion job $job, now at ", $answer);
        $this->assertStringContainsString("Run Terminate again (or let the next automation run do it): it joins job $job", $answer);
        // The bound: 5 s to find the account and start the deletion (more than the budget), then a last poll of at most 1 s.
        $this->assertLessThan(6.5, $took, 'Terminate answered within its start allowance and budget');
        $this->assertSame('running', $status);
        $this->assertMatchesRegularExpression("/^#$job /", opterius_AdminServicesTabFields($service)['Last deletion job']);

        // The next Terminate joins the running job; its budget is large enough here for the job to end under any load.
        $service['configoption2'] = '300';
        $this->assertSame('success', opterius_TerminateAccount($service));
        $this->assertNull(Panel::account($id));
        $this->assertSame('succeeded', Panel::job((int)$job)['status']);
    }

    public function testAFailedDeletionNamesItsStepAndTheNextTerminateResumesIt(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $id = (int)self::storedId($service);
        $home = Panel::root() . '/home/' . $service['username'];
        // A home that is not the account's own is refused by the home_directory step, and kept.
        $owner = fileowner($home);
        chown($home, 'nobody');
        try {
            $answer = opterius_TerminateAccount($service);
        } finally {
            chown($home, $owner);
        }
        $job = self::storedJob($service);
        $this->assertMatchesRegularExpression("/^Deletion failed at home_directory: .+; run Terminate again to resume \\(panel deletion job $job\\)\\.$/", $answer);
        $this->assertSame('deletion_failed', Panel::account($id)['status']);
        $tab = opterius_AdminServicesTabFields($service);
        $this->assertSame("#$id {$service['username']} ({$service['domain']}): deletion_failed, package {$service['configoption1']}", $tab['Opterius account']);
        $this->assertStringContainsString(': Deletion failed at home_directory: ', $tab['Last deletion job']);

        $this->assertSame('success', opterius_TerminateAccount($service));
        $this->assertNull(Panel::account($id));
        clearstatcache();
        $this->assertDirectoryDoesNotExist($home);
    }

    public function testCreatingAgainAfterTerminateMakesANewAccountAlthoughTheFirstCreatesKeyIsStillRemembered(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $first = self::storedId($service);
        $this->assertSame('success', opterius_TerminateAccount($service));

        $this->assertSame('success', opterius_CreateAccount($service));

        $second = self::storedId($service);
        $this->assertNotSame($first, $second);
        $this->assertSame('active', Panel::account((int)$second)['status']);
        // That second create's answer lost too: its retry gets the second account again.
        $service['model']->serviceProperties->values = [];
        $this->assertSame('success', opterius_CreateAccount($service));
        $this->assertSame($second, self::storedId($service));
        $this->assertCount(1, Panel::accountsNamed($service['username']));
        $this->assertSame('success', opterius_TerminateAccount($service));
    }

    public function testAServiceWithoutAStoredIdIsFoundByUsernameAndDomainForSuspendUnsuspendAndTerminate(): void
    {
        $service = $this->service();
        $made = Panel::createAccount($service['username'], $service['domain']);

        $this->assertSame('success', opterius_SuspendAccount($service));
        $this->assertSame('suspended', Panel::account($made['id'])['status']);
        $this->assertSame((string)$made['id'], self::storedId($service), 'the id found is stored for the next calls');

        $service['model']->serviceProperties->values = [];
        $this->assertSame('success', opterius_UnsuspendAccount($service));
        $this->assertSame('active', Panel::account($made['id'])['status']);

        $service['model']->serviceProperties->values = [];
        $this->assertSame('success', opterius_TerminateAccount($service));
        $this->assertNull(Panel::account($made['id']));
        $this->assertSame((string)$made['id'], self::storedId($service), 'the id found is stored: a second Terminate finds it gone');
        $this->assertSame('success', opterius_TerminateAccount($service));
        // Without the id, the deletion job this service started still proves the account gone.
        $service['model']->serviceProperties->values['Opterius Account ID'] = '';
        $this->assertSame('success', opterius_TerminateAccount($service));
    }

    public function testTerminateOfAServiceWithNeitherIdNorAccountOnThePanelSaysSoInsteadOfSuccess(): void
    {
        $service = $this->service();

        $this->assertSame("Terminate: the panel has no account '{$service['username']}' / {$service['domain']}, and this service has no "
            . "Opterius Account ID nor a deletion job that succeeded: nothing was deleted. If the account was removed by hand, mark the service Terminated; "
            . "otherwise correct the service's username and domain, or set its Opterius Account ID.", opterius_TerminateAccount($service));
    }

    public function testAServiceWithoutAStoredIdIsFoundPastTheFirstPageOfTheSearch(): void
    {
        $service = $this->service();
        // Accounts the search for the service's username also matches (their domain begins with it) and that sort before it.
        $others = [Panel::createAccount('a' . substr(self::uniqueUsername(), 1), "{$service['username']}-1.example"),
            Panel::createAccount('a' . substr(self::uniqueUsername(), 1), "{$service['username']}-2.example")];
        $made = Panel::createAccount($service['username'], $service['domain']);
        ServiceAccount::$perPage = 1;
        try {
            $answer = opterius_TerminateAccount($service);
        } finally {
            ServiceAccount::$perPage = 100;
            foreach ($others as $other) Panel::call('DELETE', "/api/v1/accounts/{$other['id']}");
        }

        $this->assertSame('success', $answer);
        $this->assertNull(Panel::account($made['id']));
        $this->assertSame((string)$made['id'], self::storedId($service));
    }

    public function testAnAccountOfTheServicesUsernameForAnotherDomainIsNeitherSuspendedNorDeleted(): void
    {
        $service = $this->service();
        $theirs = Panel::createAccount($service['username'], 'other-' . $service['domain']);

        foreach (['opterius_SuspendAccount', 'opterius_TerminateAccount'] as $call) {
            $answer = $call($service);
            $this->assertSame("The panel's account '{$service['username']}' (id {$theirs['id']}) is for other-{$service['domain']}, not this service's "
                . "{$service['domain']}: nothing was changed. Correct the service's domain, or set its Opterius Account ID to {$theirs['id']} if it is this service's account.", $answer);
        }
        $this->assertSame('active', Panel::account($theirs['id'])['status']);
        $this->assertSame('', self::storedId($service));
        Panel::call('DELETE', "/api/v1/accounts/{$theirs['id']}");
    }

    public function testTheAdminServicesTabShowsTheAccountAndItsLastDeletionJob(): void
    {
        $service = $this->service();
        $this->assertSame('success', opterius_CreateAccount($service));
        $id = self::storedId($service);

        $before = opterius_AdminServicesTabFields($service);
        $this->assertSame("#$id {$service['username']} ({$service['domain']}): active, package {$service['configoption1']}", $before['Opterius account']);
        $this->assertSame('none', $before['Last deletion job']);

        $this->assertSame('success', opterius_TerminateAccount($service));
        $after = opterius_AdminServicesTabFields($service);
        $job = self::storedJob($service);
        $this->assertSame("none on the panel for &#039;{$service['username']}&#039; ({$service['domain']}, panel id $id)", $after['Opterius account']);
        $this->assertMatchesRegularExpression("/^#$job succeeded, requested by .+ at .+, finished at .+$/", $after['Last deletion job']);
    }

    /** $files small files in nested folders of the account's home, as a site with many uploads has. */
    private static function fillHome(string $home, int $files): void
    {
        $uid = fileowner($home);
        for ($d = 0; $d < $files / 500; $d++) {
            $dir = "$home/uploads/$d";
            mkdir($dir, 0755, true);
            for ($f = 0; $f < 500; $f++) file_put_contents("$dir/$f.txt", 'x');
        }
        exec('chown -R ' . (int)$uid . ' ' . escapeshellarg("$home/uploads"), $out, $rc);
        if ($rc !== 0) throw new RuntimeException("chown of $home/uploads failed");
    }
}

/** A WHMCS service model whose properties cannot be saved (WHMCS's database refused): an error the module does not expect. */
final class FailingService
{
    /** @var object */
    public $serviceProperties;

    public function __construct(string $message)
    {
        $this->serviceProperties = new class($message) {
            /** @var string */
            private $message;
            public function __construct(string $message) { $this->message = $message; }
            public function get($name) { return ''; }
            public function save(array $properties) { throw new RuntimeException($this->message); }
        };
    }
}
