#!/usr/bin/env bash
# Installs the Debian packages the panel, its demo and its tests use, when they are missing.
# Installing starts nothing: every service is started privately by scripts/services.sh. systemd is there
# for `systemd-analyze verify` of the units in deploy/ (it checks them offline; nothing runs systemd); phpunit and
# php8.2-curl run the WHMCS module's tests (integrations/whmcs/tests/).
set -euo pipefail
packages=(mariadb-server mariadb-client nginx pdns-server pdns-backend-mysql dnsutils php8.2-fpm postfix
  chromium chromium-driver python3 curl openssl procps systemd phpunit php8.2-curl)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (https://dot.net)" >&2; exit 1; }

# The OpenAPI linter the tests run (Opterius.Web.Tests/Api/OpenApiLintTests), pinned and project-local in
# .tools/redocly: nothing is installed globally. 2.x, not 1.34 (which runs on Node.js 18): 1.34's recommended rules
# lack seven of 2.x's (no-unsafe-markdown, spec-ref-siblings, security-scopes-defined, ...), so its "clean" is weaker.
# 2.x needs Node.js 20.19+ (or 22.12+) and npm 10+, newer than Debian 12's nodejs (18) and npm (9).
# Not fatal: without it every other test still runs, and the lint test fails with the reason written to install-error.
redocly_version=2.77.0
redocly_dir="$(cd "$(dirname "$0")/.." && pwd)/.tools/redocly"
mkdir -p "$redocly_dir"
rm -f "$redocly_dir/install-error"
redocly_refuse() {
  echo "$1" > "$redocly_dir/install-error"
  echo "warning: $1 (OpenApiLintTests will fail)" >&2
}
if ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null || true
fi
node_version="$(node --version 2>/dev/null || echo none)"
npm_version="$(npm --version 2>/dev/null || echo none)"
node_ok() { # node >= 20.19 within 20.x, or >= 22.12; npm >= 10
  [[ "$node_version" =~ ^v([0-9]+)\.([0-9]+) ]] || return 1
  local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  { [ "$major" -eq 20 ] && [ "$minor" -ge 19 ]; } || { [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; } || [ "$major" -gt 22 ] || return 1
  [[ "$npm_version" =~ ^([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 10 ]
}
if ! node_ok; then
  redocly_refuse "@redocly/cli $redocly_version needs Node.js >= 20.19 (20.x) or >= 22.12 with npm >= 10, and this machine has node $node_version, npm $npm_version: install a newer Node.js (Debian 12's nodejs package is 18; NodeSource's nodejs 20.x or 22.x brings a fitting npm), then run scripts/install.sh again"
elif [ "$(cat "$redocly_dir/version" 2>/dev/null)" != "$redocly_version" ] || [ ! -x "$redocly_dir/node_modules/.bin/redocly" ]; then
  echo "installing @redocly/cli $redocly_version into .tools/redocly"
  rm -f "$redocly_dir/version"
  if npm_error="$(npm install --prefix "$redocly_dir" --save-exact --no-audit --no-fund --loglevel=error "@redocly/cli@$redocly_version" 2>&1 >/dev/null)"; then
    echo "$redocly_version" > "$redocly_dir/version"
  else
    redocly_refuse "npm install @redocly/cli@$redocly_version failed (node $node_version, npm $npm_version): ${npm_error:-no output}"
  fi
fi
