#!/usr/bin/env bash
# Private instances of the services the panel drives, under one folder of ours.
#   scripts/services.sh start DIR   starts what is not running yet (idempotent), writes DIR/services.env
#   scripts/services.sh stop DIR    stops what it started, by the pids it recorded
# Nothing of the machine's own services is touched: every daemon gets --no-defaults / its own config.
set -euo pipefail
cmd=${1:?usage: services.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: services.sh start|stop DIR}" && cd "$2" && pwd)

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_mariadb() {
  local d=$dir/mariadb
  mkdir -p "$d"
  if alive "$d/mysqld.pid"; then return; fi
  if [ ! -d "$d/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$d/data" --user=root --auth-root-authentication-method=normal \
      --skip-test-db --innodb-log-file-size=8M >"$d/install.log" 2>&1
  fi
  local port; port=$(cat "$d/port" 2>/dev/null || free_port); echo "$port" >"$d/port"
  mariadbd --no-defaults --datadir="$d/data" --socket="$d/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
    --user=root --pid-file="$d/mysqld.pid" --log-error="$d/error.log" --innodb-log-file-size=8M \
    --innodb-flush-log-at-trx-commit=2 --max-connections=500 >/dev/null 2>&1 &
  for _ in $(seq 1 200); do
    mariadb-admin --no-defaults -S "$d/mysqld.sock" -uroot ping >/dev/null 2>&1 && return
    sleep 0.05
  done
  echo "MariaDB did not start; see $d/error.log" >&2; exit 1
}

stop_pidfile() {
  local pidfile=$1
  alive "$pidfile" || return 0
  local pid; pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$pidfile"
}

case $cmd in
  start)
    command -v mariadbd >/dev/null || { echo "mariadb-server is not installed (scripts/install.sh)" >&2; exit 1; }
    start_mariadb
    {
      echo "MARIADB_SOCKET=$dir/mariadb/mysqld.sock"
      echo "MARIADB_PORT=$(cat "$dir/mariadb/port")"
    } >"$dir/services.env"
    ;;
  stop)
    stop_pidfile "$dir/mariadb/mysqld.pid"
    ;;
  *) echo "usage: services.sh start|stop DIR" >&2; exit 2 ;;
esac
