#!/usr/bin/env bash
# Run every test with jest (projects in jest.config.js: unit in parallel, then workflows, integration and browser one
# file at a time) and end with the line "N passed, N failed", counted from jest's JSON results. Arguments go to jest:
# test files or patterns to run a subset (`./dev test test/unit/velocity.test.ts`), `--coverage`, `--selectProjects
# unit`, ... Expects node_modules/.bin (Node 24) on PATH.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .stack/run
# Each run its own results file: two runs at once never read each other's.
results="$(mktemp "${TMPDIR:-/tmp}/jest-results.XXXXXX.json")"
trap 'rm -f "$results"' EXIT
rm -f "$results"
# ESM TypeScript as it is: Node's VM modules for jest's ESM support; kafkajs schedules negative timeouts (Node warns).
export NODE_OPTIONS="${NODE_OPTIONS:-} --experimental-vm-modules --disable-warning=ExperimentalWarning --disable-warning=TimeoutNegativeWarning"
node node_modules/jest/bin/jest.js --forceExit --json --outputFile="$results" "$@"
status=$?
summary="$(node scripts/jest-summary.ts "$results")" || { summary="0 passed, 1 failed"; status=1; }
case "$summary" in
  *", 0 failed") # jest failed for a reason outside the test results (a config error, a crash): not a pass
    [ "$status" -eq 0 ] || summary="${summary%, 0 failed}, 1 failed" ;;
  *) [ "$status" -ne 0 ] || status=1 ;;
esac
echo "$summary" > .stack/run/test-summary
echo "$summary"
exit "$status"
