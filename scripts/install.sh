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
