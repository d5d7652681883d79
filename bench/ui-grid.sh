#!/usr/bin/env bash
# Benchmark "The accounts grid in a browser" (docs/benchmarks.md): the list benchmark's stack (bench/list-stack.sh:
# 100,000 accounts by SQL, the published panel), then Debian's Chromium driven by Playwright: typing a search until its
# rows show, clicking the next page until its rows show, TRIES times each, and the same list requests through the API.
#   bench/ui-grid.sh [ACCOUNTS=100000] [TRIES=50]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
accounts=${1:-100000}; tries=${2:-50}
# shellcheck source=bench/list-stack.sh
source bench/list-stack.sh

dotnet build bench/Opterius.Bench.Ui -c Release --nologo -v quiet >"$work/bench-build.log" 2>&1 || { cat "$work/bench-build.log"; exit 1; }
echo
echo "accounts: $total, $tries tries each, $(nproc) cores"
dotnet "bench/Opterius.Bench.Ui/bin/Release/net10.0/Opterius.Bench.Ui.dll" "$base" admin bench-password-1 "$token" "$tries"
