# Sourced by bench/api-list.sh and bench/ui-grid.sh (with $accounts set): a private MariaDB (and the other services)
# under a temp folder, the panel published (Release) and serving on its own HTTPS port, $accounts accounts seeded by
# SQL, an admin "admin" / bench-password-1 and its API token. Sets $work, $base, $token, $total, $panel_pid; stops
# everything (by pid) on exit.
work=$(mktemp -d /tmp/opterius-bench-list-XXXXXX)
panel_pid=
cleanup() {
  [ -n "$panel_pid" ] && kill "$panel_pid" 2>/dev/null && wait "$panel_pid" 2>/dev/null || true
  scripts/services.sh stop "$work/services" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

scripts/sandbox.sh "$work/root" >/dev/null
scripts/services.sh start "$work/services" "$work/root" >/dev/null
# shellcheck disable=SC1091
source "$work/services/services.env"
sock=$MARIADB_SOCKET
sql() { mariadb --no-defaults -S "$sock" -uroot "$@"; }

export OPTERIUS_CONFIG=$work/services/commands.json
export ConnectionStrings__Panel="Server=$sock;Protocol=Unix;User ID=root;Database=opterius_bench;Maximum Pool Size=200"
export ConnectionStrings__PowerDns="Server=$sock;Protocol=Unix;User ID=root;Database=${PDNS_DATABASE:-powerdns}"
export ConnectionStrings__MariaDbAdmin="Server=$sock;Protocol=Unix;User ID=root"
export Opterius__Jwt__SigningKey=$(head -c 32 /dev/urandom | base64)
export Opterius__License__Path=$work/license.json
export Opterius__License__PublicKey=$work/license-signing.pem.pub
export Opterius__Https__SelfSignedPath=$work/selfsigned.pfx
export Opterius__Https__ListenAddress=127.0.0.1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export Opterius__Https__Port=$port
export ASPNETCORE_ENVIRONMENT=Production
export Logging__LogLevel__Default=Warning

echo "publishing the panel (Release)" >&2
dotnet publish Opterius.Web -c Release -o "$work/app" --nologo -v quiet >"$work/publish.log" 2>&1 || { cat "$work/publish.log"; exit 1; }
panel() { dotnet "$work/app/Opterius.Web.dll" "$@"; }
panel migrate >/dev/null
panel users create --username admin --password bench-password-1 --role admin >/dev/null
panel license issue --signing-key "$work/license-signing.pem" --out "$work/license.json" --plan bench >/dev/null
token=$(panel tokens create --name bench --role admin --owner admin | tail -n 1)

echo "seeding $accounts accounts by SQL" >&2
owner=$(sql -N opterius_bench -e "SELECT id FROM panel_users WHERE username = 'admin'")
sql opterius_bench -e "
  INSERT INTO accounts (username, domain, email, package_id, owner_id, php_version, status)
  SELECT CONCAT('user', LPAD(seq, 6, '0')), CONCAT('site', LPAD(seq, 6, '0'), '.example'),
         CONCAT('owner', seq, '@mail', seq % 97, '.example'), 1, $owner, '8.2',
         IF(seq % 100 = 0, 'suspended', 'active')
  FROM seq_1_to_$accounts;
  ANALYZE TABLE accounts;" >/dev/null

# exec: $! is then the panel itself, so the clean-up stops it and not just a subshell around it.
(exec dotnet "$work/app/Opterius.Web.dll" >"$work/panel.log" 2>&1) &
panel_pid=$!
base=https://127.0.0.1:$port
for _ in $(seq 1 200); do
  curl -sk -o /dev/null "$base/api/v1/whoami" -H "Authorization: Bearer $token" && break; sleep 0.1
done
total=$(curl -sk "$base/api/v1/accounts?per_page=1" -H "Authorization: Bearer $token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["total"])')
echo "panel up on $base with $total accounts" >&2
