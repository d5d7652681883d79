<?php
// The panel run.sh started, reached directly (not through the module) to set up and check what the module did.

final class Panel
{
    public static function env(string $name): string
    {
        $value = getenv($name);
        if ($value === false || $value === '')
            throw new RuntimeException("$name is not set: run these tests with integrations/whmcs/tests/run.sh, which starts the panel");
        return $value;
    }

    public static function host(): string { return self::env('OPTERIUS_TEST_HOST'); }
    public static function port(): int { return (int)self::env('OPTERIUS_TEST_PORT'); }
    public static function token(): string { return self::env('OPTERIUS_TEST_TOKEN'); }
    /** The sandbox server root the panel provisions into (homes are ROOT/home/USERNAME). */
    public static function root(): string { return self::env('OPTERIUS_TEST_ROOT'); }

    /** [status, decoded body] of one API call with the run's admin token. */
    public static function call(string $method, string $path, ?array $body = null, array $headers = []): array
    {
        $curl = curl_init('https://' . self::host() . ':' . self::port() . $path);
        $send = ['Accept: application/json', 'Authorization: Bearer ' . self::token()];
        foreach ($headers as $name => $value) $send[] = "$name: $value";
        if ($body !== null) {
            $send[] = 'Content-Type: application/json';
            curl_setopt($curl, CURLOPT_POSTFIELDS, json_encode($body));
        }
        curl_setopt_array($curl, [CURLOPT_CUSTOMREQUEST => $method, CURLOPT_RETURNTRANSFER => true, CURLOPT_HTTPHEADER => $send, CURLOPT_TIMEOUT => 120]);
        $raw = curl_exec($curl);
        if ($raw === false) throw new RuntimeException("$method $path: " . curl_error($curl));
        $status = (int)curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        return [$status, $raw === '' ? null : json_decode($raw, true)];
    }

    /** The account, or null when the panel answers 404. */
    public static function account(int $id): ?array
    {
        [$status, $body] = self::call('GET', "/api/v1/accounts/$id");
        if ($status === 404) return null;
        if ($status !== 200) throw new RuntimeException("GET account $id: HTTP $status " . json_encode($body));
        return $body['data'];
    }

    /** Every account with exactly this username (the list's search is a prefix match). */
    public static function accountsNamed(string $username): array
    {
        [$status, $body] = self::call('GET', '/api/v1/accounts?per_page=100&search=' . rawurlencode($username));
        if ($status !== 200) throw new RuntimeException("GET accounts: HTTP $status " . json_encode($body));
        return array_values(array_filter($body['data'], function ($a) use ($username) { return $a['username'] === $username; }));
    }

    public static function defaultPackageId(): int
    {
        [$status, $body] = self::call('GET', '/api/v1/packages');
        if ($status !== 200 || empty($body['data'])) throw new RuntimeException('the panel lists no package: HTTP ' . $status);
        foreach ($body['data'] as $p) if ($p['name'] === 'default') return (int)$p['id'];
        return (int)$body['data'][0]['id'];
    }

    /** Creates an account directly (as another tool, or an older module, would have). */
    public static function createAccount(string $username, string $domain): array
    {
        [$status, $body] = self::call('POST', '/api/v1/accounts', [
            'username' => $username, 'domain' => $domain, 'email' => "billing@$domain",
            'password' => 'Direct-pass-123', 'package_id' => self::defaultPackageId(),
        ]);
        if ($status !== 201) throw new RuntimeException("creating $username directly: HTTP $status " . json_encode($body));
        return $body['data'];
    }

    public static function job(int $id): array
    {
        [$status, $body] = self::call('GET', "/api/v1/deletions/$id");
        if ($status !== 200) throw new RuntimeException("GET deletion $id: HTTP $status " . json_encode($body));
        return $body['data'];
    }

    /** Waits until the deletion job has ended (the panel carries on after a Terminate that ran out of budget). */
    public static function waitForJob(int $id, float $seconds = 120): array
    {
        $until = microtime(true) + $seconds;
        do {
            $job = self::job($id);
            if ($job['status'] !== 'running') return $job;
            usleep(200000);
        } while (microtime(true) < $until);
        throw new RuntimeException("deletion job $id still running after $seconds s");
    }

    /** A 127.0.0.1 port nothing listens on (bound, then released). */
    public static function closedPort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $error);
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int)substr($name, strrpos($name, ':') + 1);
    }
}
