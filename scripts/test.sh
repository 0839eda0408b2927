#!/usr/bin/env bash
# Run every test (unit, then integration on the running stack) with Node's test runner, and end with the line
# "N passed, N failed". Pass file globs to run a subset. Expects node_modules/.bin (Node 24) on PATH.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=('test/unit/**/*.test.ts' 'test/workflows/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/browser/**/*.test.ts')
out="$(mktemp)"
node --disable-warning=TimeoutNegativeWarning --test --test-force-exit --test-concurrency=1 --test-reporter=spec "${files[@]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
pass=$(grep -E '^ℹ pass [0-9]+' "$out" | tail -1 | awk '{print $3}')
fail=$(grep -E '^ℹ fail [0-9]+' "$out" | tail -1 | awk '{print $3}')
cancelled=$(grep -E '^ℹ cancelled [0-9]+' "$out" | tail -1 | awk '{print $3}')
rm -f "$out"
fail=$(( ${fail:-0} + ${cancelled:-0} ))
if [ -z "${pass:-}" ]; then pass=0; fail=$(( fail > 0 ? fail : 1 )); status=1; fi
if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
summary="${pass} passed, ${fail} failed"
mkdir -p .stack/run && echo "$summary" > .stack/run/test-summary
echo "$summary"
exit "$status"
