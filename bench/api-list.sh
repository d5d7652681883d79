#!/usr/bin/env bash
# Benchmark "Accounts list under load" (docs/benchmarks.md): 100,000 accounts seeded by SQL into a private
# MariaDB, the published panel (Release) on its own HTTPS port, and wrk against
#   GET /api/v1/whoami                       the trivial authenticated endpoint (token check, no query)
#   GET /api/v1/accounts?per_page=50         the list
#   GET /api/v1/accounts?per_page=50&search= the list with a prefix search
# in the same run, alternating rounds. Prints requests/s and p99 latency per endpoint (median of the rounds).
#   bench/api-list.sh [ACCOUNTS=100000] [SECONDS=10] [ROUNDS=3] [CONNECTIONS=32]
# Everything lives under a temp folder and is stopped (by pid) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
accounts=${1:-100000}; seconds=${2:-10}; rounds=${3:-3}; connections=${4:-32}
# The private stack, the published panel and the seeded accounts (shared with bench/ui-grid.sh).
# shellcheck source=bench/list-stack.sh
source bench/list-stack.sh

declare -A urls=(
  [trivial]="/api/v1/whoami"
  [list]="/api/v1/accounts?per_page=50"
  [search]="/api/v1/accounts?per_page=50&search=user0123"
)
names=(trivial list search)
# warm-up: JIT, connection pools, InnoDB buffer pool
for n in "${names[@]}"; do wrk -t2 -c"$connections" -d3s -H "Authorization: Bearer $token" "$base${urls[$n]}" >/dev/null; done

declare -A rps p99
for r in $(seq 1 "$rounds"); do
  for n in "${names[@]}"; do
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --timeout 30s --latency -H "Authorization: Bearer $token" "$base${urls[$n]}")
    if echo "$out" | grep -q "Non-2xx"; then echo "$n: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
    rps[$n]+="$(echo "$out" | awk '/Requests\/sec/ {print $2}') "
    p99[$n]+="$(echo "$out" | awk '$1 == "99%" {print $2}') "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'; }
echo
echo "accounts: $total, wrk -t2 -c$connections -d${seconds}s, $rounds rounds, medians"
printf '| endpoint | requests/s | p99 (ms) | vs trivial |\n|---|---|---|---|\n'
trivial=$(echo "${rps[trivial]}" | median)
for n in "${names[@]}"; do
  r=$(echo "${rps[$n]}" | median)
  p=$(for v in ${p99[$n]}; do echo "$v" | ms; echo; done | median)
  printf '| `GET %s` | %.0f | %s | %.0f%% |\n' "${urls[$n]}" "$r" "$p" "$(echo "$r $trivial" | awk '{print 100*$1/$2}')"
done
