#!/usr/bin/env bash
# README command 2: installs what is missing, builds, runs every test against private services the
# test run starts itself, and ends with the line "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
results=$(mktemp -d)
status=0
dotnet test Opterius.Web.Tests --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@" || status=$?
# Only a run that executed tests and had none go wrong passes: a missing or unreadable results file, a run that
# executed nothing, and tests that aborted, timed out or could not run count as failed.
counted=0
python3 - "$results/results.trx" <<'PY' || counted=$?
import sys, xml.etree.ElementTree as ET
try:
    summary = ET.parse(sys.argv[1]).getroot().find('.//{*}ResultSummary')
    c = {k: int(v) for k, v in summary.find('{*}Counters').attrib.items()}
    bad = ('failed', 'error', 'timeout', 'aborted', 'notRunnable', 'passedButRunAborted', 'disconnected', 'inconclusive')
    passed, failed, skipped = c.get('passed', 0), sum(c.get(k, 0) for k in bad), c.get('notExecuted', 0)
    if c.get('executed', 0) == 0 or summary.get('outcome') in ('Aborted', 'Error', 'Timeout'):
        failed = max(failed, 1)
except Exception:
    passed, failed, skipped = 0, 1, 0
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
[ "$status" -ne 0 ] && exit "$status"
exit "$counted"
