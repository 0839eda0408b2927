// Reads jest's --json results and prints "N passed, N failed". A test file that failed to run (a syntax error, a
// failing beforeAll, a crash) counts as one failure on top of its failed tests, so a broken file can never pass
// silently; a run with no results at all is a failure.
import { readFileSync } from 'node:fs';

interface JestResults {
  numPassedTests: number;
  numFailedTests: number;
  numRuntimeErrorTestSuites: number;
  testResults: Array<{ name: string; status: string; message: string; assertionResults: Array<{ status: string }> }>;
}

const path = process.argv[2];
if (!path) throw new Error('usage: node scripts/jest-summary.ts RESULTS.json');
let results: JestResults;
try {
  results = JSON.parse(readFileSync(path, 'utf8')) as JestResults;
} catch (err) {
  process.stderr.write(`no jest results in ${path}: ${(err as Error).message}\n`);
  process.exit(1);
}
// Suites that failed without any failed test of their own (load errors, hooks) add one failure each.
const brokenSuites = results.testResults.filter((s) => s.status === 'failed' && !s.assertionResults.some((a) => a.status === 'failed')).length;
const failed = results.numFailedTests + brokenSuites;
const passed = results.numPassedTests;
process.stdout.write(`${passed} passed, ${passed + failed === 0 ? 1 : failed} failed\n`);
