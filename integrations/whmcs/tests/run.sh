#!/usr/bin/env bash
# The WHMCS module's PHPUnit tests against a real panel this script starts and stops:
#   integrations/whmcs/tests/run.sh [phpunit arguments]
# Private MariaDB, nginx, PowerDNS and php-fpm (scripts/services.sh) under /tmp/opterius-whmcs-PID, a sandbox root,
# a test CA and a leaf for 127.0.0.1, a license, an admin and its token, then the panel (one process, in-process
# resources as the .NET tests run it: the module only ever speaks HTTP to it) on a free port. PHP trusts the test CA
# (curl.cainfo), as a WHMCS server trusts a panel's real certificate. Stops only what it started, by pid.
# The last line is "N passed, N failed, N skipped" (scripts/test.sh adds it to the .NET tests' counts).
# -E: the ERR trap below also fires inside functions (cli) and command substitutions, so every failed step says so.
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
dir=/tmp/opterius-whmcs-$$
mkdir -p "$dir"
panel_pid=""
stop_all() {
  trap - EXIT
  if [ -n "$panel_pid" ] && kill -0 "$panel_pid" 2>/dev/null; then
    kill -TERM "$panel_pid"
    for _ in $(seq 1 100); do kill -0 "$panel_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$panel_pid" 2>/dev/null && kill -KILL "$panel_pid"
    wait "$panel_pid" 2>/dev/null || true
  fi
  bash "$repo/scripts/services.sh" stop "$dir/services" >/dev/null || true
  if [ "${OPTERIUS_KEEP_TEST_FOLDER:-}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap stop_all EXIT
counts() { echo "$1 passed, $2 failed, $3 skipped"; }
# The script's own stdout and stderr: a step that fails may have its output redirected into a log (cli ... >>setup.log).
exec 3>&1 4>&2
fail() {
  trap - ERR
  echo "$1" >&4
  # In a command substitution ($(cli ...)), the script itself fails next and says so once.
  [ "$BASHPID" = "$$" ] || exit 1
  local f; for f in setup.log panel.log; do [ -f "$dir/$f" ] && tail -n 40 "$dir/$f" >&4; done
  counts 0 1 0 >&3; exit 1
}
# A step that fails before the tests ran still ends with the closing line, saying so.
trap 'fail "integrations/whmcs/tests/run.sh: line $LINENO failed"' ERR

command -v phpunit >/dev/null && php -r 'exit(extension_loaded("curl") ? 0 : 1);' || fail "phpunit and php8.2-curl are required (scripts/install.sh installs them)"
bash "$repo/scripts/services.sh" start "$dir/services" "$dir/root" >/dev/null || fail "the private services did not start"
# shellcheck disable=SC1091
source "$dir/services/services.env"
mariadb --no-defaults -S "$MARIADB_SOCKET" -uroot -e "CREATE DATABASE IF NOT EXISTS opterius CHARACTER SET utf8mb4"

# A test CA and a leaf for 127.0.0.1 signed by it (a trusted panel); the module's self-signed case brings its own.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Opterius WHMCS test CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/panel.key" -out "$dir/panel.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$dir/panel.ext"
openssl x509 -req -in "$dir/panel.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
  -extfile "$dir/panel.ext" -out "$dir/panel.pem" 2>/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$dir PORT=$port SOCK=$MARIADB_SOCKET COMMANDS=$COMMANDS_JSON PDNS_DB=${PDNS_DATABASE:-powerdns} python3 - <<'PY'
import base64, json, os
e = os.environ
d = e["DIR"]
root = f"Server={e['SOCK']};Protocol=Unix;User ID=root"
with open(e["COMMANDS"]) as f: opterius = json.load(f)["Opterius"]
opterius.update({
    "Jwt": {"SigningKey": base64.b64encode(os.urandom(48)).decode()},
    "License": {"Path": f"{d}/license.json", "PublicKey": f"{d}/license-signing.pem.pub"},
    "Https": {"Port": int(e["PORT"]), "ListenAddress": "127.0.0.1", "CertificatePath": f"{d}/panel.pem", "KeyPath": f"{d}/panel.key"},
    # The suite makes a few dozen writes in a minute with one token: the production limit (60) is not under test here.
    "Api": {"WritesPerMinute": 10000},
})
config = {"ConnectionStrings": {"Panel": f"{root};Database=opterius", "PowerDns": f"{root};Database={e['PDNS_DB']}",
                                "MariaDbAdmin": root}, "Opterius": opterius}
with open(f"{d}/panel.json", "w") as f: json.dump(config, f, indent=2)
PY

# The build output of the web project (scripts/test.sh has just built it; a run of this script alone builds it).
app=$repo/Opterius.Web/bin/Debug/net10.0/Opterius.Web.dll
dotnet build "$repo/Opterius.Web" -v q --nologo >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; fail "the panel did not build"; }
export OPTERIUS_CONFIG=$dir/panel.json DOTNET_NOLOGO=1 ASPNETCORE_ENVIRONMENT=Production
cli() { dotnet "$app" "$@"; }
cli migrate >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log" >&2; fail "migrate failed"; }
cli license issue --signing-key "$dir/license-signing.pem" --out "$dir/license.json" --plan test --expires-days 2 >>"$dir/setup.log"
# A license signed by a key the panel does not trust: installing it blocks every write, as a tampered one does.
cli license issue --signing-key "$dir/foreign-signing.pem" --out "$dir/foreign-license.json" --plan test >>"$dir/setup.log"
cli users create --username admin --password "whmcs-test-$$-admin" --role admin >>"$dir/setup.log"
token=$(cli tokens create --name whmcs-tests --role admin | tail -n 1)
read_token=$(cli tokens create --name whmcs-read-only --role admin --scopes accounts:read | tail -n 1)

(cd "$repo/Opterius.Web/bin/Debug/net10.0" && exec dotnet "$app") >"$dir/panel.log" 2>&1 &
panel_pid=$!
for _ in $(seq 1 600); do
  curl -sf --cacert "$dir/ca.pem" "https://127.0.0.1:$port/api/server/stats" -H "Authorization: Bearer $token" >/dev/null && break
  kill -0 "$panel_pid" 2>/dev/null || fail "the panel exited at start"
  sleep 0.2
done
curl -sf --cacert "$dir/ca.pem" "https://127.0.0.1:$port/api/server/stats" -H "Authorization: Bearer $token" >/dev/null ||
  fail "the panel did not answer within 120 s"

junit=$dir/junit.xml
status=0
OPTERIUS_TEST_HOST=127.0.0.1 OPTERIUS_TEST_PORT=$port OPTERIUS_TEST_TOKEN=$token OPTERIUS_TEST_READ_TOKEN=$read_token \
OPTERIUS_TEST_ROOT=$dir/root \
OPTERIUS_TEST_LICENSE=$dir/license.json OPTERIUS_TEST_FOREIGN_LICENSE=$dir/foreign-license.json OPTERIUS_TEST_DIR=$dir \
  php -d curl.cainfo="$dir/ca.pem" -d openssl.cafile="$dir/ca.pem" "$(command -v phpunit)" \
  -c "$here/phpunit.xml" --log-junit "$junit" "$@" || status=$?
# As scripts/test.sh counts xunit: a missing or unreadable report, a run that executed nothing, or phpunit failing
# although its report names no failure (a risky test, an error after the report), is a failure.
python3 - "$junit" "$status" <<'PY2' || status=1
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    n = lambda k: int(suite.get(k, 0))
    failed, skipped = n("failures") + n("errors") + n("warnings"), n("skipped")
    passed = n("tests") - failed - skipped
    if n("tests") == 0: failed = max(failed, 1)
except Exception:
    passed, failed, skipped = 0, 1, 0
if sys.argv[2] != "0" and failed == 0:
    print(f"phpunit exited {sys.argv[2]} although its report names no failure: counted as 1 failed", file=sys.stderr)
    failed = 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY2
exit "$status"
