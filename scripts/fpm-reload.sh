#!/usr/bin/env bash
# Gracefully reloads a php-fpm master (USR2) named by its pid file, like `systemctl reload`, and returns
# only when the master has re-read its configuration: its pid file is rewritten once the new
# configuration is loaded. Fails (exit 1) if the master is gone or dies re-reading it.
# A USR2 is sent only while the master handles USR2: during a reload it re-executes itself, and a USR2
# arriving before its handler is back would terminate it (SIGUSR2's default action).
#   scripts/fpm-reload.sh PIDFILE
set -euo pipefail
pidfile=${1:?usage: fpm-reload.sh PIDFILE}
handles_usr2() { # SigCgt is a hex mask of caught signals; USR2 is signal 12, bit 11
  local mask; mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$mask" ] && (( (16#$mask >> 11) & 1 ))
}
stamp() { stat -c %y "$pidfile" 2>/dev/null || true; }

pid="" before=""
for _ in $(seq 1 200); do
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && handles_usr2 "$pid"; then before=$(stamp); kill -USR2 "$pid"; break; fi
  pid=""
  sleep 0.05
done
[ -n "$pid" ] || { echo "php-fpm ($pidfile) is not running or not ready for a reload" >&2; exit 1; }

for _ in $(seq 1 400); do
  if ! kill -0 "$pid" 2>/dev/null; then echo "php-fpm exited while reloading its configuration" >&2; exit 1; fi
  if [ "$(stamp)" != "$before" ] && handles_usr2 "$pid"; then exit 0; fi
  sleep 0.025
done
echo "php-fpm did not finish reloading within 10 s" >&2
exit 1
