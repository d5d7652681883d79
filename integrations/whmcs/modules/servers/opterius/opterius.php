<?php
/**
 * Opterius Panel provisioning module for WHMCS (copy this folder to WHMCS's modules/servers/).
 *
 * Every function answers "success" or one sentence a billing admin can act on. Create is idempotent (it sends an
 * Idempotency-Key derived from the WHMCS install and the service id, so a retry after a timeout gets the panel's first answer);
 * Terminate is idempotent and bounded (an asynchronous DELETE, polled within the product's time budget; an account
 * already gone is success; a deletion still running is named, and the next Terminate joins it). Every request is in
 * the module log with the token and the customer's password redacted.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

require_once __DIR__ . '/lib/PanelClient.php';
require_once __DIR__ . '/lib/ServiceAccount.php';
require_once __DIR__ . '/lib/DeletionJob.php';

use Opterius\Whmcs\DeletionJob;
use Opterius\Whmcs\PanelClient;
use Opterius\Whmcs\PanelError;
use Opterius\Whmcs\ServiceAccount;

/** Seconds for a read, for suspend/unsuspend, and for a create (synchronous: every resource is made before it answers). */
const OPTERIUS_READ_TIMEOUT = 15.0;
const OPTERIUS_WRITE_TIMEOUT = 30.0;
const OPTERIUS_CREATE_TIMEOUT = 90.0;
/** Seconds the admin's service page waits for the panel (both its reads together; a request gets at least 1 s). */
const OPTERIUS_TAB_TIMEOUT = 3.0;
/** Terminate's default time budget, and its bounds (a PHP request of WHMCS's must not run for ever). */
const OPTERIUS_TERMINATE_BUDGET = 25.0;
const OPTERIUS_TERMINATE_BUDGET_MIN = 0.5;
const OPTERIUS_TERMINATE_BUDGET_MAX = 300.0;
/** Seconds Terminate may take to find the account and start its deletion when the budget is smaller. */
const OPTERIUS_TERMINATE_START = 5.0;
/** How often Terminate asks how the deletion is going. */
const OPTERIUS_POLL_INTERVAL = 0.5;

function opterius_MetaData()
{
    return [
        'DisplayName' => 'Opterius Panel',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        // The panel speaks HTTPS only, on 8443; Secure decides whether its certificate is verified.
        'DefaultSSLPort' => '8443',
        'DefaultNonSSLPort' => '8443',
    ];
}

function opterius_ConfigOptions()
{
    return [
        // configoption1
        'Package' => [
            'Type' => 'text',
            'Size' => '10',
            'Loader' => 'opterius_LoadPackages',
            'SimpleMode' => true,
            'Description' => 'The panel package new accounts get (GET /api/v1/packages).',
        ],
        // configoption2
        'Terminate time budget' => [
            'Type' => 'text',
            'Size' => '5',
            'Default' => (string)OPTERIUS_TERMINATE_BUDGET,
            'SimpleMode' => true,
            'Description' => 'Seconds Terminate waits for the deletion (default 25). A deletion still running then is named in the answer; the next Terminate joins it.',
        ],
    ];
}

/** The Package field's choices: the panel's packages, id => name. */
function opterius_LoadPackages(array $params)
{
    try {
        $client = PanelClient::fromParams($params, 'LoadPackages');
        $r = $client->request('GET', '/api/v1/packages', null, OPTERIUS_READ_TIMEOUT);
        if ($r->status !== 200 || !is_array($r->data())) throw new PanelError($client->explain($r, 'Listing the panel packages'));
        $choices = [];
        foreach ($r->data() as $package) $choices[(string)$package['id']] = $package['name'] . ' (id ' . $package['id'] . ')';
        return $choices;
    } catch (PanelError $e) {
        // WHMCS shows a loader's exception message beside the field.
        throw new \Exception($e->getMessage());
    }
}

function opterius_TestConnection(array $params)
{
    $error = opterius_run('TestConnection', $params, function (PanelClient $client): string {
        $r = $client->request('GET', '/api/server/stats', null, OPTERIUS_READ_TIMEOUT);
        if ($r->status !== 200 || !is_array($r->data())) return $client->explain($r, 'Connection test');
        $stats = $r->data();
        if (empty($stats['license_valid']))
            return "Connected and the token is valid, but the panel's license is invalid: writes are blocked (create, suspend, unsuspend and terminate will fail). " . ($stats['license_message'] ?? '');

        $who = $client->request('GET', '/api/v1/whoami', null, OPTERIUS_READ_TIMEOUT);
        if ($who->status !== 200 || !is_array($who->data())) return $client->explain($who, 'Reading the token');
        $missing = array_values(array_diff(['accounts:read', 'accounts:write', 'accounts:delete'], (array)($who->data()['scopes'] ?? [])));
        if ($missing)
            return "Connected, but the token '{$who->data()['name']}' lacks " . implode(', ', $missing) . ': use a token with accounts:read, accounts:write and accounts:delete.';
        return 'success';
    });
    return ['success' => $error === 'success', 'error' => $error === 'success' ? '' : $error];
}

function opterius_CreateAccount(array $params)
{
    return opterius_run('CreateAccount', $params, function (PanelClient $client, ServiceAccount $service) use ($params): string {
        $package = trim((string)($params['configoption1'] ?? ''));
        if ($package === '') return "The product has no Opterius package: choose one in the product's Module Settings.";
        $password = (string)($params['password'] ?? '');
        $client->addSecret($password);
        $body = [
            'username' => $service->username(),
            'domain' => $service->domain(),
            'email' => trim((string)($params['clientsdetails']['email'] ?? '')),
            'password' => $password,
            'package_id' => ctype_digit($package) ? (int)$package : $package,
        ];
        $base = opterius_createKey((int)$params['serviceid']);
        $key = $base;
        $retry = 'The panel may still be creating the account: run Create again. It sends the same Idempotency-Key, so it gets the panel\'s first answer, never a second account.';
        // The panel replays a key's first success for a day. When that answer's account has been deleted since (the
        // service was terminated and is created again), the next key is derived from the deleted id, so a retry of
        // this create in turn replays its own answer.
        for ($attempt = 0; $attempt < 10; $attempt++) {
            $r = $client->request('POST', '/api/v1/accounts', $body, OPTERIUS_CREATE_TIMEOUT, ['Idempotency-Key' => $key], $retry);
            if ($r->status === 409 || $r->code() === 'idempotency_key_reused') {
                // Made by this service before: its name is taken by its own account (the key's day is over), or the
                // key is refused for another body (Create run again after the service's password, email or package changed).
                $own = opterius_alreadyCreated($service);
                if ($own !== null) return opterius_createdBefore($service, $own, $body, $r->code() === 'idempotency_key_reused');
                // The key's first success was an account deleted since, created with another body.
                $gone = $service->storedId();
                if ($r->code() === 'idempotency_key_reused' && $gone !== null && $key !== "$base-after-$gone") {
                    $key = "$base-after-$gone";
                    continue;
                }
            }
            if ($r->status !== 201 || !isset($r->data()['id'])) return $client->explain($r, 'Create');
            $id = (int)$r->data()['id'];
            if (($r->headers['idempotent-replayed'] ?? '') === 'true'
                && $client->request('GET', "/api/v1/accounts/$id", null, OPTERIUS_READ_TIMEOUT)->status === 404) {
                $key = "$base-after-$id";
                continue;
            }
            $service->set(ServiceAccount::ACCOUNT_ID, (string)$id);
            if ($service->get(ServiceAccount::DELETION_JOB) !== '') $service->set(ServiceAccount::DELETION_JOB, '');
            return 'success';
        }
        return 'Create: the panel kept replaying answers for accounts deleted since: clear the service\'s ' . ServiceAccount::ACCOUNT_ID . ' and run Create again.';
    });
}

/**
 * The Create's Idempotency-Key: "whmcs-{install}-service-{id}". Service ids restart at 1 in every WHMCS, and two
 * installs may share one panel and its admin token (the panel keeps keys per token owner), so the key also holds a
 * short hash of this install's System URL (WHMCS's General Settings).
 */
function opterius_createKey(int $serviceId): string
{
    $url = class_exists('WHMCS\\Config\\Setting') ? (string)\WHMCS\Config\Setting::getValue('SystemURL') : (string)($GLOBALS['CONFIG']['SystemURL'] ?? '');
    $url = strtolower(rtrim(trim($url), '/'));
    // A WHMCS without a System URL (it asks for one at install): the module's own folder names the install instead.
    if ($url === '') $url = __DIR__;
    return 'whmcs-' . substr(sha1($url), 0, 10) . "-service-$serviceId";
}

/** The account this service made earlier (its stored id, else its username, with the service's domain), or null. */
function opterius_alreadyCreated(ServiceAccount $service): ?array
{
    $account = $service->storedId() !== null ? $service->locate(OPTERIUS_READ_TIMEOUT) : $service->findByName(OPTERIUS_READ_TIMEOUT);
    return $account !== null && strtolower($account['domain']) === $service->domain() ? $account : null;
}

/**
 * Create run again on a service whose account exists: never "success", because the account keeps what it was made
 * with and the panel's API cannot change an account's package, email or password. The answer names what differs;
 * the password cannot be read back: a key refused for another body with nothing else different means it changed,
 * a name taken (the key's day over) leaves it unknown.
 */
function opterius_createdBefore(ServiceAccount $service, array $account, array $body, bool $bodyChanged): string
{
    $service->set(ServiceAccount::ACCOUNT_ID, (string)$account['id']);
    $which = "Create: the panel account #{$account['id']} '{$account['username']}' ({$account['domain']}) was made by an earlier Create of this service";
    $again = "Terminate and Create again (this deletes the account's files).";
    $differs = [];
    if ((string)$account['package_id'] !== (string)$body['package_id'])
        $differs[] = "its package is {$account['package_id']}, not the product's {$body['package_id']}";
    if (strtolower((string)$account['email']) !== strtolower($body['email']))
        $differs[] = "its email is {$account['email']}, not the client's {$body['email']}";
    if ($differs)
        return "$which, but " . implode(' and ', $differs) . ": the panel cannot change it through the module; set the service back to what the account has and mark it Active, or $again";
    if ($bodyChanged)
        return "$which and has the password it was made with, not the service's current one (the panel cannot change an account's password): "
            . "set the service's password back to the first one and mark the service Active, or $again";
    return "$which and has the password it was made with (the panel can neither show nor change it): if the service's password "
        . "has not changed since, mark the service Active; otherwise $again";
}

function opterius_SuspendAccount(array $params)
{
    return opterius_changeState('SuspendAccount', $params, 'suspend', 'suspended');
}

function opterius_UnsuspendAccount(array $params)
{
    return opterius_changeState('UnsuspendAccount', $params, 'unsuspend', 'active');
}

/**
 * Suspend and unsuspend. An account already in the wanted state is success (a retry after a timeout): that is read
 * from the account, not replayed by an Idempotency-Key, because suspending again next month is a new request.
 */
function opterius_changeState(string $action, array $params, string $verb, string $wanted): string
{
    return opterius_run($action, $params, function (PanelClient $client, ServiceAccount $service) use ($verb, $wanted): string {
        $what = ucfirst($verb);
        $account = $service->locate(OPTERIUS_READ_TIMEOUT);
        if ($account === null)
            return "$what: the panel has no account for this service " . $service->describe() . ": nothing to $verb. "
                . 'Check the service\'s username and domain, or its ' . ServiceAccount::ACCOUNT_ID . '.';
        if ($account['status'] === $wanted) return 'success';
        $id = (int)$account['id'];
        $r = $client->request('POST', "/api/v1/accounts/$id/$verb", null, OPTERIUS_WRITE_TIMEOUT, [],
            "Run $what again: an account already $wanted counts as success.");
        if ($r->status === 200) return 'success';
        if ($r->status === 409 && ($now = $service->locate(OPTERIUS_READ_TIMEOUT)) !== null && $now['status'] === $wanted) return 'success';
        return $client->explain($r, $what);
    });
}

function opterius_TerminateAccount(array $params)
{
    return opterius_run('TerminateAccount', $params, function (PanelClient $client, ServiceAccount $service) use ($params): string {
        $budget = opterius_budget($params['configoption2'] ?? '');
        $started = microtime(true);
        $deadline = $started + $budget;
        // Finding the account and starting the deletion share a few seconds even of a tiny budget: else nothing would ever start.
        $startBy = $started + max(OPTERIUS_TERMINATE_START, $budget);
        $stored = $service->storedId();
        $account = $service->locate(min(OPTERIUS_READ_TIMEOUT, $startBy - microtime(true)));
        if ($account === null) return opterius_terminatedBefore($client, $service, $stored !== null, $startBy);

        $id = (int)$account['id'];
        $r = $client->request('DELETE', "/api/v1/accounts/$id", null, min(OPTERIUS_WRITE_TIMEOUT, $startBy - microtime(true)), ['Prefer' => 'respond-async'],
            'The deletion may have started: run Terminate again; it joins the running deletion.');
        if ($r->status === 204 || $r->status === 404) return 'success';
        if ($r->status !== 202 || !isset($r->data()['id'])) return $client->explain($r, 'Terminate');
        $job = (int)$r->data()['id'];
        $service->set(ServiceAccount::DELETION_JOB, (string)$job);

        while (true) {
            $state = $r->data();
            if ($state['status'] === 'succeeded') return 'success';
            if ($state['status'] === 'failed') return DeletionJob::failed($state);
            $left = $deadline - microtime(true);
            if ($left <= 0) return DeletionJob::stillRunning($state, $budget);
            usleep((int)(min(OPTERIUS_POLL_INTERVAL, $left) * 1e6));
            try {
                $r = $client->request('GET', "/api/v1/deletions/$job", null, max(1.0, $deadline - microtime(true)));
            } catch (PanelError $e) {
                if ($e->timedOut) return DeletionJob::stillRunning($state, $budget);
                throw $e;
            }
            if ($r->status !== 200 || !is_array($r->data())) return $client->explain($r, "Reading deletion job $job");
        }
    });
}

/**
 * Terminate of a service whose account the panel does not have: success only when this service's account is known to
 * be gone (its stored id, which Create or the lookup that found it stored, answers 404; or the deletion job this
 * service started succeeded). No id and no account by its name may be a wrong username or domain, or an account
 * removed by hand: the admin decides.
 */
function opterius_terminatedBefore(PanelClient $client, ServiceAccount $service, bool $hadId, float $startBy): string
{
    if ($hadId) return 'success';
    $job = $service->get(ServiceAccount::DELETION_JOB);
    if (ctype_digit($job)) {
        $r = $client->request('GET', "/api/v1/deletions/$job", null, min(OPTERIUS_READ_TIMEOUT, $startBy - microtime(true)));
        if ($r->status === 200 && ($r->data()['status'] ?? '') === 'succeeded') return 'success';
    }
    return "Terminate: the panel has no account '{$service->username()}' / {$service->domain()}, and this service has no "
        . ServiceAccount::ACCOUNT_ID . " nor a deletion job that succeeded: nothing was deleted. If the account was removed by hand, mark the service Terminated; "
        . "otherwise correct the service's username and domain, or set its " . ServiceAccount::ACCOUNT_ID . '.';
}

/** configoption2 in seconds: the default when empty or not a number, held within bounds. */
function opterius_budget($raw): float
{
    $raw = trim((string)$raw);
    if ($raw === '' || !is_numeric($raw)) return OPTERIUS_TERMINATE_BUDGET;
    return max(OPTERIUS_TERMINATE_BUDGET_MIN, min(OPTERIUS_TERMINATE_BUDGET_MAX, (float)$raw));
}

/**
 * The service's panel account and its last deletion job, on the service's page in the admin area. The page waits for
 * it, so both reads share a few seconds; each field shows its own read's failure.
 */
function opterius_AdminServicesTabFields(array $params)
{
    $fields = [];
    $found = opterius_run('AdminServicesTabFields', $params, function (PanelClient $client, ServiceAccount $service) use (&$fields): string {
        $until = microtime(true) + OPTERIUS_TAB_TIMEOUT;
        try {
            $account = $service->locate(OPTERIUS_TAB_TIMEOUT);
            $fields['Opterius account'] = $account === null
                ? 'none on the panel for ' . $service->describe()
                : "#{$account['id']} {$account['username']} ({$account['domain']}): {$account['status']}, package {$account['package_id']}";
        } catch (PanelError $e) {
            $fields['Opterius account'] = $e->getMessage();
        }
        $job = $service->get(ServiceAccount::DELETION_JOB);
        if ($job === '' || !ctype_digit($job)) {
            $fields['Last deletion job'] = 'none';
            return 'success';
        }
        try {
            $r = $client->request('GET', "/api/v1/deletions/$job", null, $until - microtime(true));
        } catch (PanelError $e) {
            $fields['Last deletion job'] = "#$job not read: " . lcfirst($e->getMessage());
            return 'success';
        }
        if ($r->status !== 200 || !is_array($r->data())) {
            $fields['Last deletion job'] = $client->explain($r, "Reading deletion job $job");
            return 'success';
        }
        $state = $r->data();
        $fields['Last deletion job'] = "#$job {$state['status']}, requested by {$state['requested_by']} at {$state['created_at']}"
            . ($state['status'] === 'running' ? ', ' . DeletionJob::where($state) : '')
            . ($state['status'] === 'failed' ? ': ' . DeletionJob::failed($state) : '')
            . ($state['status'] === 'succeeded' ? ", finished at {$state['finished_at']}" : '');
        return 'success';
    });
    // Failed before either read (no hostname or token), or unexpectedly: said in a field of its own.
    if ($found !== 'success') $fields['Opterius module'] = $found;
    return array_map(function (string $text): string { return htmlspecialchars($text, ENT_QUOTES); }, $fields);
}

/**
 * Runs one module function: the client from the server's settings, the service, and every failure as the
 * admin's one sentence (a PanelError's message; anything unexpected is said as such and logged).
 */
function opterius_run(string $action, array $params, callable $body): string
{
    $client = null;
    try {
        $client = PanelClient::fromParams($params, $action);
        // The service's password is never logged, whichever function has it in its $params.
        $client->addSecret((string)($params['password'] ?? ''));
        return $body($client, new ServiceAccount($client, $params));
    } catch (PanelError $e) {
        return $e->getMessage();
    } catch (\Throwable $e) {
        // fromParams throws only PanelErrors: the client, which knows the secrets to scrub, exists here.
        if ($client === null) return "$action failed unexpectedly in the Opterius module: " . get_class($e);
        $client->logUnexpected($e);
        return "$action failed unexpectedly in the Opterius module: " . $client->scrub($e->getMessage());
    }
}
