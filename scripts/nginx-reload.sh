#!/usr/bin/env bash
# Reloads an nginx master (HUP) named by its pid file and returns only when the new configuration is in
# service: `nginx -s reload` returns at once, and a master that cannot load the new configuration just
# keeps the old one (a deleted site would go on being served while the panel said it was gone). The
# new configuration is in service when a worker the master did not have before has started.
# The waits start no process (builtins only: read, kill; the master's children from /proc): on a busy
# machine each `ps`, `sort` or `sleep` started in a polling loop waits for a core.
#   scripts/nginx-reload.sh PIDFILE
set -euo pipefail
pidfile=${1:?usage: nginx-reload.sh PIDFILE}
pid=""
{ read -r pid < "$pidfile"; } 2>/dev/null || true
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || { echo "nginx ($pidfile) is not running" >&2; exit 1; }
exec {tick}<> <(:) # a pipe nobody writes to: `read -t` on it is a sleep without a process
nap() { read -r -t "$1" -u "$tick" _ || true; }
children=/proc/$pid/task/$pid/children
read_workers() { workers=""; { read -r workers < "$children"; } 2>/dev/null || true; }
read_workers
# Without CONFIG_PROC_CHILDREN (or with no worker running) no new worker could ever be seen, and every
# reload would wait out the loop and blame the configuration: refuse before signalling instead.
[ -n "$workers" ] || { echo "cannot see nginx's workers ($children is unreadable or lists none): cannot tell whether a reload is applied" >&2; exit 1; }
before=" $workers "
kill -HUP "$pid"
for ((i = 0; i < 200; i++)); do
  read_workers
  for w in $workers; do [[ $before == *" $w "* ]] || exit 0; done
  nap 0.025
done
echo "nginx kept its old configuration (see its error log): the reload was not applied" >&2
exit 1
