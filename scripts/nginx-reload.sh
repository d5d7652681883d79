#!/usr/bin/env bash
# Reloads an nginx master (HUP) named by its pid file and returns only when the new configuration is in
# service: `nginx -s reload` returns at once, and a master that cannot load the new configuration just
# keeps the old one (a deleted site would go on being served while the panel said it was gone). The
# new configuration is in service when a worker the master did not have before has started.
#   scripts/nginx-reload.sh PIDFILE
set -euo pipefail
pidfile=${1:?usage: nginx-reload.sh PIDFILE}
pid=$(cat "$pidfile" 2>/dev/null) && kill -0 "$pid" 2>/dev/null || { echo "nginx ($pidfile) is not running" >&2; exit 1; }
workers() { ps -o pid= --ppid "$pid" | sort || true; }
before=$(workers)
kill -HUP "$pid"
for _ in $(seq 1 200); do
  if [ -n "$(comm -13 <(echo "$before") <(workers))" ]; then exit 0; fi
  sleep 0.025
done
echo "nginx kept its old configuration (see its error log): the reload was not applied" >&2
exit 1
