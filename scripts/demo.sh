#!/usr/bin/env bash
# README command 1: installs what is missing, starts private MariaDB, nginx, PowerDNS and php-fpm under
# .run/ (nothing of the machine's own services is touched), makes a sandbox server root with demo
# accounts created by the real create path, and serves the panel at https://127.0.0.1:8443.
# Ctrl-C stops the panel and every service this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
run=$repo/.run
mkdir -p "$run"
scripts/install.sh

scripts/sandbox.sh "$run/root" >/dev/null
scripts/services.sh start "$run/services" "$run/root"
trap 'echo; echo "stopping private services"; scripts/services.sh stop "$run/services"' EXIT
trap 'exit 130' INT TERM
# shellcheck disable=SC1091
source "$run/services/services.env"

sock=$MARIADB_SOCKET
export OPTERIUS_CONFIG=$run/services/commands.json
export ConnectionStrings__Panel="Server=$sock;Protocol=Unix;User ID=root;Database=opterius"
export ConnectionStrings__PowerDns="Server=$sock;Protocol=Unix;User ID=root;Database=${PDNS_DATABASE:-powerdns}"
export ConnectionStrings__MariaDbAdmin="Server=$sock;Protocol=Unix;User ID=root"
[ -s "$run/jwt.key" ] || head -c 32 /dev/urandom | base64 >"$run/jwt.key"
export Opterius__Jwt__SigningKey=$(cat "$run/jwt.key")
export Opterius__License__Path=$run/license.json
export Opterius__License__PublicKey=$run/license-signing.pem.pub
export Opterius__Https__SelfSignedPath=$run/selfsigned.pfx
export Opterius__Https__ListenAddress=127.0.0.1
export ASPNETCORE_ENVIRONMENT=Production

echo "building the panel"
dotnet publish Opterius.Web -c Release -o "$run/app" --nologo -v quiet >"$run/publish.log" 2>&1 || { cat "$run/publish.log"; exit 1; }
panel() { dotnet "$run/app/Opterius.Web.dll" "$@"; }

panel migrate
[ -s "$run/license.json" ] || panel license issue --signing-key "$run/license-signing.pem" --out "$run/license.json" \
  --plan demo --max-accounts 1000 --expires-days 365
panel demo seed
token=$(panel tokens create --name "demo-$(date +%Y%m%d-%H%M%S)" --role admin --owner admin | tail -n 1)

cat <<INFO

  Opterius Panel demo
  -------------------
  Panel:     https://127.0.0.1:8443   (self-signed certificate)
  Sign in:   admin / opterius-demo    (reseller / opterius-demo sees only its own accounts)
  API token: $token

  curl -sk https://127.0.0.1:8443/api/v1/accounts -H "Authorization: Bearer $token"
  A demo site:  curl -H "Host: alpha.test" http://127.0.0.1:${NGINX_PORT:-?}/
  Its zone:     dig @127.0.0.1 -p ${PDNS_PORT:-?} alpha.test A +short
  Sandbox root: $run/root

  Ctrl-C stops the panel and the private services.

INFO
# In the foreground: Ctrl-C reaches the panel, which shuts down, and then the EXIT trap stops the services.
panel
