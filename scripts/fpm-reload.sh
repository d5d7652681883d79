#!/usr/bin/env bash
# Gracefully reloads a php-fpm master (USR2) named by its pid file, like `systemctl reload`, and returns
# only when the master has re-read its configuration: its pid file is rewritten once the new
# configuration is loaded. Fails (exit 1) if the master is gone or dies re-reading it.
# A USR2 is sent only while the master handles USR2: during a reload it re-executes itself, and a USR2
# arriving before its handler is back would terminate it (SIGUSR2's default action).
# The waits start no process (builtins only: read, test, kill): on a busy machine each `sleep`, `stat` or
# `awk` started in a polling loop waits for a core, and cost more than the reload itself.
#   scripts/fpm-reload.sh PIDFILE
set -euo pipefail
pidfile=${1:?usage: fpm-reload.sh PIDFILE}
exec {tick}<> <(:) # a pipe nobody writes to: `read -t` on it is a sleep without a process
nap() { read -r -t "$1" -u "$tick" _ || true; }
handles_usr2() { # SigCgt is a hex mask of caught signals; USR2 is signal 12, bit 11
  local key value mask=""
  { while read -r key value; do [[ $key == SigCgt: ]] && { mask=$value; break; }; done < "/proc/$1/status"; } 2>/dev/null || return 1
  [ -n "$mask" ] && (( (16#$mask >> 11) & 1 ))
}
mark=$(mktemp)
trap 'rm -f "$mark"' EXIT

pid=""
for ((i = 0; i < 200; i++)); do
  pid=""
  { read -r pid < "$pidfile"; } 2>/dev/null || true
  # The mark takes the pid file's time: the master has re-read its configuration once the file is newer.
  if [ -n "$pid" ] && handles_usr2 "$pid"; then touch -r "$pidfile" "$mark"; kill -USR2 "$pid"; break; fi
  pid=""
  nap 0.05
done
[ -n "$pid" ] || { echo "php-fpm ($pidfile) is not running or not ready for a reload" >&2; exit 1; }

for ((i = 0; i < 400; i++)); do
  if ! kill -0 "$pid" 2>/dev/null; then echo "php-fpm exited while reloading its configuration" >&2; exit 1; fi
  if [[ $pidfile -nt $mark ]] && handles_usr2 "$pid"; then exit 0; fi
  nap 0.025
done
echo "php-fpm did not finish reloading within 10 s" >&2
exit 1
