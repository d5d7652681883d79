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
# .tools/redocly: nothing is installed globally. npm comes with Node.js; without it, Debian's.
redocly_version=2.77.0
redocly_dir="$(cd "$(dirname "$0")/.." && pwd)/.tools/redocly"
if [ "$(cat "$redocly_dir/version" 2>/dev/null)" != "$redocly_version" ] || [ ! -x "$redocly_dir/node_modules/.bin/redocly" ]; then
  if ! command -v npm >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null || true
  fi
  echo "installing @redocly/cli $redocly_version into .tools/redocly"
  mkdir -p "$redocly_dir"
  # Not fatal: without it every other test still runs, and the lint test fails naming what is missing.
  if npm install --prefix "$redocly_dir" --save-exact --no-audit --no-fund --loglevel=error "@redocly/cli@$redocly_version" >/dev/null; then
    echo "$redocly_version" > "$redocly_dir/version"
  else
    echo "warning: @redocly/cli $redocly_version could not be installed; OpenApiLintTests will fail" >&2
  fi
fi
