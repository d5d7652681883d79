<?php
// The few WHMCS functions and objects the module uses, as small fakes: logModuleCall records its arguments, and a
// service's properties (WHMCS keeps them in custom fields) live in memory. Then the module itself, as WHMCS loads it.

define('WHMCS', true);

/** WHMCS's settings as its modules read them: the System URL names this install (the module's Idempotency-Keys hold a hash of it). */
$GLOBALS['CONFIG'] = ['SystemURL' => 'https://billing.example/'];

/** Every logModuleCall of the module, in order: [module, action, request, response, processed, replaceVars]. */
$GLOBALS['opterius_module_log'] = [];

function logModuleCall($module, $action, $requestString, $responseData, $processedData = '', $replaceVars = [])
{
    $GLOBALS['opterius_module_log'][] = [
        'module' => $module, 'action' => $action, 'request' => $requestString,
        'response' => $responseData, 'processed' => $processedData, 'replaceVars' => $replaceVars,
    ];
}

/** $service->serviceProperties of WHMCS 7.2+: get(name) and save([name => value]). */
final class FakeServiceProperties
{
    /** @var array<string,string> */
    public $values = [];

    public function get($name)
    {
        return $this->values[$name] ?? '';
    }

    public function save(array $properties)
    {
        foreach ($properties as $name => $value) $this->values[$name] = (string)$value;
    }
}

/** The `model` WHMCS passes in $params (a WHMCS\Service\Service), reduced to what the module touches. */
final class FakeService
{
    /** @var FakeServiceProperties */
    public $serviceProperties;

    public function __construct()
    {
        $this->serviceProperties = new FakeServiceProperties();
    }
}

require __DIR__ . '/Support/Panel.php';
require __DIR__ . '/Support/ModuleTestCase.php';
require __DIR__ . '/../modules/servers/opterius/opterius.php';
