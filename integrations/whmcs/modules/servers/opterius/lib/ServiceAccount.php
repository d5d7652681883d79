<?php
// Which panel account a WHMCS service is, and what the module remembers about it. The panel's account id and the
// last deletion job are kept as WHMCS service properties (custom fields of the service, WHMCS 7.2+), so an admin
// sees them and can correct them. A service without a stored id (imported, made before the module, or whose
// field was cleared) is found by its username, and must then have the service's domain too.

namespace Opterius\Whmcs;

final class ServiceAccount
{
    public const ACCOUNT_ID = 'Opterius Account ID';
    public const DELETION_JOB = 'Opterius Deletion Job';
    /** Accounts per page of the panel's list: its maximum (the tests make it small, to page over a few accounts). */
    public static $perPage = 100;

    /** @var PanelClient */
    private $client;
    /** @var array */
    private $params;

    public function __construct(PanelClient $client, array $params)
    {
        $this->client = $client;
        $this->params = $params;
    }

    public function username(): string
    {
        return strtolower(trim((string)($this->params['username'] ?? '')));
    }

    public function domain(): string
    {
        return strtolower(rtrim(trim((string)($this->params['domain'] ?? '')), '.'));
    }

    public function get(string $property): string
    {
        $model = $this->params['model'] ?? null;
        if (is_object($model) && isset($model->serviceProperties)) return trim((string)$model->serviceProperties->get($property));
        return trim((string)($this->params['customfields'][$property] ?? ''));
    }

    public function set(string $property, string $value): void
    {
        $model = $this->params['model'] ?? null;
        if (!is_object($model) || !isset($model->serviceProperties))
            throw new PanelError("WHMCS passed no service model, so the module cannot store '$property' = $value: WHMCS 7.2 or later is needed.");
        $model->serviceProperties->save([$property => $value]);
        $this->params['customfields'][$property] = $value;
    }

    public function storedId(): ?int
    {
        $raw = $this->get(self::ACCOUNT_ID);
        if ($raw === '') return null;
        if (!ctype_digit($raw) || (int)$raw <= 0)
            throw new PanelError("The service's '" . self::ACCOUNT_ID . "' is '$raw', not a panel account id: correct it (or clear it to find the account by username and domain).");
        return (int)$raw;
    }

    /**
     * The panel's account of this service (its "data" object), or null when the panel has none: the stored id is
     * gone (404), or no account has the service's username. Throws PanelError when the account found is another
     * service's (a stored id whose username differs; the username held for another domain): nothing is changed then.
     * $timeout bounds the whole lookup (every page of a search by name).
     */
    public function locate(float $timeout): ?array
    {
        $id = $this->storedId();
        $username = $this->username();
        if ($id !== null) {
            $r = $this->client->request('GET', "/api/v1/accounts/$id", null, $timeout);
            if ($r->status === 404) return null;
            if ($r->status !== 200 || !is_array($r->data())) throw new PanelError($this->client->explain($r, "Reading panel account $id"));
            $account = $r->data();
            if ($username !== '' && strtolower((string)$account['username']) !== $username)
                throw new PanelError("The stored " . self::ACCOUNT_ID . " $id is the panel's account '{$account['username']}' ({$account['domain']}), "
                    . "not this service's '$username': nothing was changed. Correct the service's username or its " . self::ACCOUNT_ID . '.');
            return $account;
        }
        $account = $this->findByName($timeout);
        if ($account === null) return null;
        if (strtolower((string)$account['domain']) !== $this->domain())
            throw new PanelError("The panel's account '$username' (id {$account['id']}) is for {$account['domain']}, not this service's "
                . ($this->domain() !== '' ? $this->domain() : 'empty domain') . ": nothing was changed. Correct the service's domain, "
                . "or set its " . self::ACCOUNT_ID . " to {$account['id']} if it is this service's account.");
        // Found by name: remembered, so the next call goes by id (and a Terminate run again finds that id gone).
        $this->set(self::ACCOUNT_ID, (string)$account['id']);
        return $account;
    }

    /**
     * The panel's account whose username is exactly the service's, whatever its domain, or null. The list's search is
     * a prefix match over username, domain and email, sorted by username, so the account may be on any page: every
     * page is read until the list's total. Throws PanelError when that takes longer than $timeout.
     */
    public function findByName(float $timeout): ?array
    {
        $username = $this->username();
        if ($username === '') throw new PanelError("The service has no username and no " . self::ACCOUNT_ID . ": set the username the panel account has.");
        $until = microtime(true) + $timeout;
        $seen = 0;
        for ($page = 1; ; $page++) {
            $r = $this->client->request('GET', '/api/v1/accounts?per_page=' . self::$perPage . "&page=$page&search=" . rawurlencode($username), null, $until - microtime(true));
            if ($r->status !== 200 || !is_array($r->data())) throw new PanelError($this->client->explain($r, "Looking up the panel account '$username'"));
            foreach ($r->data() as $account)
                if (is_array($account) && strtolower((string)($account['username'] ?? '')) === $username) return $account;
            $seen += count($r->data());
            $total = (int)($r->json['meta']['total'] ?? 0);
            if (count($r->data()) === 0 || $seen >= $total) return null;
            if (microtime(true) >= $until)
                throw new PanelError("Looking up the panel account '$username' took longer than " . round($timeout, 1) . " s ($seen of the $total accounts its search matches read): run it again.", true);
        }
    }

    /** "alice (alice.example)", for messages. */
    public function describe(): string
    {
        $id = $this->get(self::ACCOUNT_ID);
        return "'" . $this->username() . "' (" . $this->domain() . ($id !== '' ? ", panel id $id" : '') . ')';
    }
}
