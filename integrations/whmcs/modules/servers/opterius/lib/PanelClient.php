<?php
// The Opterius panel's REST API as the module uses it: one HTTPS request at a time, each with its own time limit,
// each written to WHMCS's module log with the token and passwords redacted, and every way a request can go wrong
// turned into one sentence a billing admin can act on (PanelError).

namespace Opterius\Whmcs;

/** Something went wrong; the message is what WHMCS shows the admin. */
final class PanelError extends \RuntimeException
{
    /** @var bool the panel did not answer in time (the request may still be carried out) */
    public $timedOut;

    public function __construct(string $message, bool $timedOut = false)
    {
        parent::__construct($message);
        $this->timedOut = $timedOut;
    }
}

/** One answer of the panel. */
final class PanelResponse
{
    /** @var int */
    public $status;
    /** @var array|null the decoded JSON body, null when there is none or it is not JSON */
    public $json;
    /** @var array<string,string> lower-cased header names */
    public $headers;

    public function __construct(int $status, ?array $json, array $headers)
    {
        $this->status = $status;
        $this->json = $json;
        $this->headers = $headers;
    }

    /** The error code of an error body ("license_required"), or "". */
    public function code(): string
    {
        return is_array($this->json) && isset($this->json['error']) && is_string($this->json['error']) ? $this->json['error'] : '';
    }

    /** The panel's own message of an error body, or "". */
    public function message(): string
    {
        return is_array($this->json) && isset($this->json['message']) && is_string($this->json['message']) ? $this->json['message'] : '';
    }

    /** The "data" member of a success body, or null. */
    public function data()
    {
        return is_array($this->json) && array_key_exists('data', $this->json) ? $this->json['data'] : null;
    }
}

final class PanelClient
{
    public const MODULE = 'opterius';
    public const DEFAULT_PORT = 8443;
    public const CONNECT_TIMEOUT = 10.0;

    /** @var string */
    private $base;
    /** @var string */
    private $token;
    /** @var bool */
    private $verifyTls;
    /** @var string the WHMCS function the calls are logged under */
    private $action;
    /** @var string[] values that must never reach the log */
    private $secrets;

    public function __construct(string $host, int $port, string $token, bool $verifyTls, string $action)
    {
        // An IPv6 address needs brackets in a URL.
        $this->base = 'https://' . (strpos($host, ':') !== false && $host[0] !== '[' ? "[$host]" : $host) . ':' . $port;
        $this->token = $token;
        $this->verifyTls = $verifyTls;
        $this->action = $action;
        $this->secrets = [$token];
    }

    /**
     * The server's settings as WHMCS passes them: Hostname (else IP address), Port (8443 when empty), the token in
     * Access Hash (else Password), and Secure: ticked verifies the panel's certificate; unticked still speaks HTTPS
     * (the panel serves nothing else) but accepts any certificate, for a panel with its own self-signed one.
     */
    public static function fromParams(array $params, string $action): self
    {
        $host = trim((string)($params['serverhostname'] ?? ''));
        if ($host === '') $host = trim((string)($params['serverip'] ?? ''));
        if ($host === '') throw new PanelError("The server has no hostname or IP address: set the panel's Hostname in this server's settings (Setup > Servers).");
        $port = (int)($params['serverport'] ?? 0);
        if ($port <= 0) $port = self::DEFAULT_PORT;
        // The access hash is a text area: a pasted token often carries a newline.
        $token = preg_replace('/\s+/', '', (string)($params['serveraccesshash'] ?? ''));
        if ($token === '') $token = trim((string)($params['serverpassword'] ?? ''));
        if ($token === '') throw new PanelError("The server has no API token: paste a panel token (Settings > API tokens, or `tokens create`) into this server's Access Hash or Password.");
        return new self($host, $port, $token, self::isTicked($params['serversecure'] ?? false), $action);
    }

    private static function isTicked($value): bool
    {
        if (is_bool($value)) return $value;
        $v = strtolower(trim((string)$value));
        return $v !== '' && $v !== '0' && $v !== 'off' && $v !== 'false' && $v !== 'no';
    }

    public function baseUrl(): string
    {
        return $this->base;
    }

    /** Another value (a customer's password) that is redacted wherever it would be logged. */
    public function addSecret(string $secret): void
    {
        if ($secret !== '') $this->secrets[] = $secret;
    }

    /**
     * Sends one request and returns the panel's answer, whatever its status. Throws PanelError when no answer came:
     * the host is unreachable, TLS failed, or it took longer than $timeout seconds ($whenTimedOut is appended then,
     * to say what the admin should do about a request that may still be carried out).
     */
    public function request(string $method, string $path, ?array $body, float $timeout, array $headers = [], string $whenTimedOut = ''): PanelResponse
    {
        $url = $this->base . $path;
        $send = ['Accept: application/json', 'Authorization: Bearer ' . $this->token];
        foreach ($headers as $name => $value) $send[] = "$name: $value";
        $json = null;
        if ($body !== null) {
            $json = json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
            $send[] = 'Content-Type: application/json';
        }
        $timeout = max(1.0, $timeout);

        $received = [];
        $curl = curl_init($url);
        curl_setopt_array($curl, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => $send,
            CURLOPT_CONNECTTIMEOUT_MS => (int)(min(self::CONNECT_TIMEOUT, $timeout) * 1000),
            CURLOPT_TIMEOUT_MS => (int)($timeout * 1000),
            CURLOPT_SSL_VERIFYPEER => $this->verifyTls,
            CURLOPT_SSL_VERIFYHOST => $this->verifyTls ? 2 : 0,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_HEADERFUNCTION => static function ($c, string $line) use (&$received): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) $received[strtolower(trim($parts[0]))] = trim($parts[1]);
                return strlen($line);
            },
        ]);
        if ($json !== null) curl_setopt($curl, CURLOPT_POSTFIELDS, $json);
        $raw = curl_exec($curl);
        $errno = curl_errno($curl);
        $error = curl_error($curl);
        $status = (int)curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);

        $logged = $this->describeRequest($method, $url, $headers, $body);
        if ($raw === false || $errno !== 0) {
            $failure = $this->transportError($errno, $error, $timeout, $whenTimedOut);
            $this->log($logged, "no answer: curl error $errno: $error", $failure->getMessage());
            throw $failure;
        }
        $decoded = $raw === '' ? null : json_decode($raw, true);
        $response = new PanelResponse($status, is_array($decoded) ? $decoded : null, $received);
        $this->log($logged, "HTTP $status\n" . $raw, $response->json ?? $raw);
        return $response;
    }

    /** The admin's sentence for an answer that is not the success the caller expected. */
    public function explain(PanelResponse $r, string $what): string
    {
        $said = $r->message() !== '' ? $r->message() : 'no message';
        if ($r->json === null && $r->status !== 204)
            return "$what: the panel at {$this->base} answered HTTP {$r->status} without a JSON body: check that Hostname and Port point at the Opterius panel (its HTTPS port is 8443 by default).";
        switch ($r->status) {
            case 401:
                return "$what: the panel refused the API token (401 unauthenticated): it is wrong, expired or revoked. Paste a valid token into this server's Access Hash (or Password).";
            case 403:
                if ($r->code() === 'license_required') return "$what: the panel's license is invalid: writes are blocked. $said";
                if ($r->code() === 'insufficient_scope') return "$what: the API token lacks a scope ($said): use a token with accounts:read, accounts:write and accounts:delete.";
                if ($r->code() === 'account_limit_reached') return "$what: the panel's license allows no more accounts: $said";
                return "$what: the panel refused (403 {$r->code()}): $said";
            case 404:
                return "$what: not found on the panel: $said";
            case 409:
                return "$what: the panel refused (409 conflict): $said";
            case 422:
                $details = isset($r->json['details']) && is_array($r->json['details']) ? $r->json['details'] : [];
                $fields = [];
                foreach ($details as $field => $problem) if (is_string($problem)) $fields[] = "$field: $problem";
                return "$what: the panel refused the request (422 {$r->code()}): " . ($fields ? implode('; ', $fields) : $said);
            case 429:
                $after = $r->headers['retry-after'] ?? '';
                return "$what: the panel is rate-limiting this token (429)" . ($after !== '' ? ": try again in $after s" : '') . '.';
        }
        return "$what: the panel failed (HTTP {$r->status} {$r->code()}): $said";
    }

    private function transportError(int $errno, string $error, float $timeout, string $whenTimedOut): PanelError
    {
        $at = $this->base;
        switch ($errno) {
            case 6: // CURLE_COULDNT_RESOLVE_HOST
                return new PanelError("Cannot resolve the panel's hostname ($at): check the Hostname in this server's settings.");
            case 7: // CURLE_COULDNT_CONNECT
                return new PanelError("Cannot reach the panel at $at ($error): check that the panel is running, the server's Hostname and Port (8443 by default), and that the firewall lets WHMCS in.");
            case 28: // CURLE_OPERATION_TIMEDOUT
                if (stripos($error, 'connect') !== false || stripos($error, 'resolv') !== false)
                    return new PanelError("Cannot reach the panel at $at: no connection within " . self::seconds(min(self::CONNECT_TIMEOUT, $timeout)) . " s. Check the Hostname, the Port and the firewall.");
                return new PanelError("The panel at $at did not answer within " . self::seconds($timeout) . " s." . ($whenTimedOut !== '' ? " $whenTimedOut" : ''), true);
            case 35: // CURLE_SSL_CONNECT_ERROR
                return new PanelError("The TLS handshake with $at failed ($error): check that the Port is the panel's HTTPS port (8443 by default).");
            case 51: // CURLE_PEER_FAILED_VERIFICATION (older libcurl)
            case 58: // CURLE_SSL_CERTPROBLEM
            case 60: // CURLE_PEER_FAILED_VERIFICATION / CURLE_SSL_CACERT
            case 77: // CURLE_SSL_CACERT_BADFILE
                return new PanelError("The panel's TLS certificate at $at is not trusted ($error); it is probably self-signed. "
                    . "Give the panel a certificate this WHMCS server trusts (Opterius:Https:CertificatePath and KeyPath), "
                    . "or untick Secure in this server's settings to skip certificate verification.");
        }
        return new PanelError("Cannot talk to the panel at $at (curl error $errno: $error).");
    }

    private static function seconds(float $s): string
    {
        return rtrim(rtrim(number_format($s, 1, '.', ''), '0'), '.');
    }

    private function describeRequest(string $method, string $url, array $headers, ?array $body): string
    {
        $lines = ["$method $url", 'Authorization: Bearer [redacted]'];
        foreach ($headers as $name => $value) $lines[] = "$name: $value";
        if (!$this->verifyTls) $lines[] = '(TLS certificate not verified: Secure is unticked)';
        if ($body !== null) {
            if (array_key_exists('password', $body)) $body['password'] = '[redacted]';
            $lines[] = '';
            $lines[] = json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        }
        return implode("\n", $lines);
    }

    /** The text with the token and the passwords written as [redacted]. */
    public function scrub(string $text): string
    {
        return str_replace($this->secrets, '[redacted]', $text);
    }

    /**
     * An error the module did not expect, in the module log: its class, message and place, scrubbed, never its trace
     * (the trace's arguments may hold the customer's password, or a part of it that no scrubbing finds).
     */
    public function logUnexpected(\Throwable $e): void
    {
        $this->log('', get_class($e) . ': ' . $e->getMessage() . ' at ' . $e->getFile() . ':' . $e->getLine(), '');
    }

    /** Every call goes to WHMCS's module log; the secrets are also handed over as replace-vars, as WHMCS asks. */
    private function log(string $request, string $response, $processed): void
    {
        if (!function_exists('logModuleCall')) return;
        $scrub = function ($value) use (&$scrub) {
            if (is_string($value)) return $this->scrub($value);
            if (is_array($value)) return array_map($scrub, $value);
            return $value;
        };
        logModuleCall(self::MODULE, $this->action, $scrub($request), $scrub($response), $scrub($processed), $this->secrets);
    }
}
