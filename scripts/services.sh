#!/usr/bin/env bash
# Private instances of the services the panel drives, under one folder of ours.
#   scripts/services.sh start DIR [ROOT]   starts what is installed and not running yet (idempotent),
#                                          writes DIR/services.env and DIR/commands.json
#   scripts/services.sh stop DIR           stops what it started, by the pids it recorded
# ROOT is the sandbox server root whose vhosts and pools the private nginx and php-fpm serve: the 3rd
# argument, else $OPTERIUS_ROOT, else the root recorded by an earlier start, else DIR/root. It is
# prepared with scripts/sandbox.sh. The PowerDNS gmysql database is $OPTERIUS_PDNS_DATABASE (default
# powerdns) on the private MariaDB, migrated with db/powerdns/*.sql.
# Nothing of the machine's own services is touched: every daemon gets --no-defaults / its own config,
# prefix, pid file, sockets and a free 127.0.0.1 port.
set -euo pipefail
cmd=${1:?usage: services.sh start|stop DIR [ROOT]}
dir=$(mkdir -p "${2:?usage: services.sh start|stop DIR [ROOT]}" && cd "$2" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# A pid that runs and is not a zombie: a daemon whose parent (this script) is gone may wait a while for
# init to reap it, and `kill -0` still succeeds on it meanwhile.
running() { local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [ "${s%% *}" != Z ]; }
alive() { [ -f "$1" ] && running "$(cat "$1")"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A port kept across restarts of one DIR, so commands.json and the vhosts' listen snippet stay valid.
port_of() { local f=$1; [ -s "$f" ] || free_port >"$f"; cat "$f"; }
wait_for() { for _ in $(seq 1 200); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }

start_mariadb() {
  local d=$dir/mariadb
  mkdir -p "$d"
  if alive "$d/mysqld.pid"; then return; fi
  if [ ! -d "$d/data/mysql" ]; then
    # root@localhost by unix_socket only, as Debian's production MariaDB: MariaDB's root is OS root's alone,
    # so a test can prove an unprivileged process (the panel) cannot reach MariaDB as admin.
    mariadb-install-db --no-defaults --datadir="$d/data" --user=root --auth-root-authentication-method=socket \
      --skip-test-db --innodb-log-file-size=8M >"$d/install.log" 2>&1
  fi
  local port; port=$(port_of "$d/port")
  mariadbd --no-defaults --datadir="$d/data" --socket="$d/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
    --user=root --pid-file="$d/mysqld.pid" --log-error="$d/error.log" --innodb-log-file-size=8M \
    --innodb-flush-log-at-trx-commit=2 --max-connections=500 >/dev/null 2>&1 &
  wait_for "mariadb-admin --no-defaults -S '$d/mysqld.sock' -uroot ping" && return
  echo "MariaDB did not start; see $d/error.log" >&2; exit 1
}

sql() { mariadb --no-defaults -S "$dir/mariadb/mysqld.sock" -uroot "$@"; }

# The same ledger as Opterius.Services.Data.Migrator, so `migrate` later sees these files as applied.
migrate_powerdns() {
  local db=$1
  sql -e "CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4"
  sql "$db" -e "CREATE TABLE IF NOT EXISTS schema_migrations (version VARCHAR(128) PRIMARY KEY,
                applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
  local f name
  for f in "$repo"/db/powerdns/*.sql; do
    name=$(basename "$f")
    [ -n "$(sql -N "$db" -e "SELECT 1 FROM schema_migrations WHERE version='$name'")" ] && continue
    sql "$db" <"$f"
    sql "$db" -e "INSERT INTO schema_migrations (version) VALUES ('$name')"
  done
}

start_pdns() {
  local d=$dir/pdns db=$1
  mkdir -p "$d"
  if alive "$d/pdns.pid"; then return; fi
  migrate_powerdns "$db"
  local port; port=$(port_of "$d/port")
  # Caches off: a deleted zone must stop answering at once in tests (production purges instead).
  cat >"$d/pdns.conf" <<CONF
launch=gmysql
gmysql-socket=$dir/mariadb/mysqld.sock
gmysql-user=root
gmysql-password=
gmysql-dbname=$db
local-address=127.0.0.1
local-port=$port
daemon=no
guardian=no
socket-dir=$d
disable-syslog=yes
query-cache-ttl=0
negquery-cache-ttl=0
cache-ttl=0
zone-cache-refresh-interval=0
webserver=no
security-poll-suffix=
CONF
  pdns_server --config-dir="$d" >"$d/pdns.log" 2>&1 &
  echo $! >"$d/pdns.pid"
  wait_for "[ -S '$d/pdns.controlsocket' ] && pdns_control --config-dir='$d' --socket-dir='$d' rping" && return
  echo "PowerDNS did not start; see $d/pdns.log" >&2; exit 1
}

start_nginx() {
  local d=$dir/nginx
  mkdir -p "$d/logs" "$d/temp" "$root/etc/nginx/snippets" "$root/etc/nginx/sites-enabled"
  local port; port=$(port_of "$d/port")
  # Every vhost includes this snippet for its listen line (production: `listen 80;`), so the private
  # instance's port is decided here and nowhere else.
  echo "listen 127.0.0.1:$port;" >"$root/etc/nginx/snippets/opterius-listen.conf"
  if alive "$d/nginx.pid"; then return; fi
  local f; for f in mime.types fastcgi_params; do cp /etc/nginx/$f "$d/$f"; done
  # `user root;`: workers must read sandbox homes and reach pool sockets that belong to sandbox uids.
  cat >"$d/nginx.conf" <<CONF
user root;
worker_processes 1;
pid $d/nginx.pid;
events { worker_connections 256; }
http {
    include mime.types;
    default_type application/octet-stream;
    access_log $d/logs/access.log;
    client_body_temp_path $d/temp/body;
    proxy_temp_path $d/temp/proxy;
    fastcgi_temp_path $d/temp/fastcgi;
    uwsgi_temp_path $d/temp/uwsgi;
    scgi_temp_path $d/temp/scgi;
    # A domain no vhost names (a deleted account's) lands here.
    server { listen 127.0.0.1:$port default_server; server_name _; return 404; }
    include $root/etc/nginx/sites-enabled/*.conf;
}
CONF
  nginx -p "$d" -c nginx.conf -e "$d/logs/error.log" -g 'daemon off;' >"$d/nginx.log" 2>&1 &
  wait_for "alive '$d/nginx.pid'" && return
  echo "nginx did not start; see $d/logs/error.log and $d/nginx.log" >&2; exit 1
}

start_fpm() {
  local d=$dir/php-fpm
  mkdir -p "$d" "$root/etc/php/8.2/fpm/pool.d" "$root/run/php"
  if alive "$d/php-fpm.pid"; then return; fi
  # php-fpm refuses a configuration without any pool, so it always has this idle one.
  cat >"$d/php-fpm.conf" <<CONF
[global]
pid = $d/php-fpm.pid
error_log = $d/error.log
daemonize = no
include = $root/etc/php/8.2/fpm/pool.d/*.conf

[opterius-default]
user = nobody
group = nogroup
listen = $d/default.sock
pm = ondemand
pm.max_children = 1
CONF
  php-fpm8.2 -y "$d/php-fpm.conf" -R >"$d/php-fpm.log" 2>&1 &
  wait_for "alive '$d/php-fpm.pid'" && return
  echo "php-fpm did not start; see $d/error.log" >&2; exit 1
}

# The Opterius section a panel using this DIR needs (tests and the demo load it with AddJsonFile).
write_commands() {
  local n=$dir/nginx f=$dir/php-fpm p=$dir/pdns
  DIR=$dir REPO=$repo ROOT=$root NGINX=$n FPM=$f PDNS=$p HAS_NGINX=$has_nginx HAS_FPM=$has_fpm HAS_PDNS=$has_pdns python3 - >"$dir/commands.json" <<'PY'
import json, os
e = os.environ
n, f, p = e["NGINX"], e["FPM"], e["PDNS"]
c = {
    "Postmap": ["postmap", "hash:{root}/etc/postfix/vmailbox"],
    "UserAdd": ["useradd", "-R", "{root}", "-M", "-d", "/home/{username}", "-s", "/bin/bash", "-U", "-u", "{uid}", "{username}"],
    "UserDel": ["userdel", "-R", "{root}", "{username}"],
    "UserMod": ["usermod", "-R", "{root}", "-s", "{shell}", "{username}"],
    "UserLock": ["usermod", "-R", "{root}", "-L", "-e", "1", "-s", "/usr/sbin/nologin", "{username}"],
    "GroupDel": ["groupdel", "-R", "{root}", "{username}"],
    "KillProcesses": ["kill", "-s", "KILL", "{pid}"],
    # Final backups: the credentials come in a 0600 defaults file the agent writes, never on this command line.
    "MariaDbDump": ["mariadb-dump", "--defaults-file={defaults_file}", "--single-transaction", "--routines", "--triggers",
                    "--events", "--result-file={result_file}", "--databases", "{database}"],
    # Restores: the dump of {database} arrives on its standard input.
    "MariaDbClient": ["mariadb", "--defaults-file={defaults_file}", "--batch", "--binary-mode"],
}
if e["HAS_NGINX"] == "1":
    base = ["nginx", "-p", n, "-c", "nginx.conf", "-e", n + "/logs/error.log"]
    c["NginxTest"] = base + ["-t", "-q"]
    c["NginxReload"] = ["bash", e["REPO"] + "/scripts/nginx-reload.sh", n + "/nginx.pid"]
if e["HAS_FPM"] == "1":
    c["PhpFpmTest"] = ["php-fpm8.2", "-t", "-y", f + "/php-fpm.conf"]
    c["PhpFpmReload"] = ["bash", e["REPO"] + "/scripts/fpm-reload.sh", f + "/php-fpm.pid"]
if e["HAS_PDNS"] == "1":
    c["PdnsPurge"] = ["pdns_control", "--config-dir=" + p, "--socket-dir=" + p, "purge"]
# Pools of a private php-fpm run as a host user (it resolves names from the host's passwd); sandbox
# uids start at 200000 (scripts/sandbox.sh). Zones point at 127.0.0.1, where the private daemons answer, and
# accounts get the demo's sample databases, mailboxes and cron job (StarterContent; off in production).
provisioning = {"Addresses": ["127.0.0.1"], "Nameservers": ["ns1.opterius.test", "ns2.opterius.test"],
                "SoaContact": "hostmaster@opterius.test", "StarterContent": True}
print(json.dumps({"Opterius": {"Root": e["ROOT"], "MinUid": 200000, "PoolUser": "nobody", "PoolGroup": "nogroup",
                               "Commands": c, "Provisioning": provisioning,
                               "Deletion": {"BackupPath": e["DIR"] + "/backups/final"}}}, indent=2))
PY
}

stop_pidfile() {
  local pidfile=$1
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then kill -9 "$pid"; fi
  rm -f "$pidfile"
}

case $cmd in
  start)
    command -v mariadbd >/dev/null || { echo "mariadb-server is not installed (scripts/install.sh)" >&2; exit 1; }
    root=${3:-${OPTERIUS_ROOT:-$(cat "$dir/root.path" 2>/dev/null || echo "$dir/root")}}
    root=$(mkdir -p "$root" && cd "$root" && pwd)
    if [ -f "$dir/root.path" ] && [ "$(cat "$dir/root.path")" != "$root" ] \
       && { alive "$dir/nginx/nginx.pid" || alive "$dir/php-fpm/php-fpm.pid"; }; then
      echo "services in $dir already serve $(cat "$dir/root.path"); stop them first" >&2; exit 1
    fi
    echo "$root" >"$dir/root.path"
    bash "$repo/scripts/sandbox.sh" "$root"
    pdns_db=${OPTERIUS_PDNS_DATABASE:-powerdns}
    [[ $pdns_db =~ ^[A-Za-z0-9_]+$ ]] || { echo "bad OPTERIUS_PDNS_DATABASE" >&2; exit 2; }
    has_nginx=0 has_fpm=0 has_pdns=0
    start_mariadb
    if command -v pdns_server >/dev/null && compgen -G '/usr/lib/*/pdns/libgmysqlbackend.so' >/dev/null; then
      start_pdns "$pdns_db"; has_pdns=1
    fi
    if command -v nginx >/dev/null; then start_nginx; has_nginx=1; fi
    if command -v php-fpm8.2 >/dev/null; then start_fpm; has_fpm=1; fi
    write_commands
    {
      echo "MARIADB_SOCKET=$dir/mariadb/mysqld.sock"
      echo "MARIADB_PORT=$(cat "$dir/mariadb/port")"
      echo "OPTERIUS_ROOT=$root"
      echo "COMMANDS_JSON=$dir/commands.json"
      if [ $has_pdns = 1 ]; then
        echo "PDNS_PORT=$(cat "$dir/pdns/port")"
        echo "PDNS_SOCKET_DIR=$dir/pdns"
        echo "PDNS_DATABASE=$pdns_db"
        echo "PDNS_PID=$(cat "$dir/pdns/pdns.pid")"
      fi
      if [ $has_nginx = 1 ]; then
        echo "NGINX_PORT=$(cat "$dir/nginx/port")"
        echo "NGINX_PREFIX=$dir/nginx"
        echo "NGINX_PID=$(cat "$dir/nginx/nginx.pid")"
      fi
      if [ $has_fpm = 1 ]; then
        echo "FPM_CONF=$dir/php-fpm/php-fpm.conf"
        echo "FPM_PID_FILE=$dir/php-fpm/php-fpm.pid"
        echo "FPM_PID=$(cat "$dir/php-fpm/php-fpm.pid")"
      fi
    } >"$dir/services.env"
    ;;
  stop)
    # MariaDB last: PowerDNS reads from it.
    stop_pidfile "$dir/php-fpm/php-fpm.pid"
    stop_pidfile "$dir/nginx/nginx.pid"
    stop_pidfile "$dir/pdns/pdns.pid"
    stop_pidfile "$dir/mariadb/mysqld.pid"
    ;;
  *) echo "usage: services.sh start|stop DIR [ROOT]" >&2; exit 2 ;;
esac
