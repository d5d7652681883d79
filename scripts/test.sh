#!/usr/bin/env bash
# README command 2: installs what is missing, builds, runs every test against private services the
# test run starts itself, and ends with the line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
results=$(mktemp -d)
status=0
dotnet test Opterius.Web.Tests --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@" || status=$?
python3 - "$results/results.trx" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    c = ET.parse(sys.argv[1]).getroot().find('.//{*}Counters')
    passed, failed = int(c.get('passed')), int(c.get('failed')) + int(c.get('error', 0)) + int(c.get('timeout', 0))
    skipped = int(c.get('notExecuted', 0))
except Exception:
    passed, failed, skipped = 0, 1, 0
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
