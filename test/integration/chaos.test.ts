// The short subset of the chaos matrix that runs with every test run (the full matrix: `npm run chaos`, report in
// chaos/README.md). Each run is a seeded workload, one fault, and the independent oracle's checks.
import { describe, expect, it } from '@jest/globals';
import { faultByName } from '../../chaos/faults.ts';
import { runOnce } from '../../chaos/run.ts';

const SUBSET: Array<[string, number]> = [
  ['detector-kill', 101],
  ['redis-oom', 102],
  ['twilio-slow', 103],
  ['hostile-inputs', 104],
];

describe('chaos subset', () => {
  for (const [name, seed] of SUBSET) {
    it(`when ${faultByName.get(name)!.what} (seed ${seed}), then nothing is lost, duplicated or jammed`, async () => {
      const res = await runOnce(faultByName.get(name)!, seed);
      expect({ fault: name, seed, failures: res.failures, log: res.passed ? [] : res.log }).toStrictEqual({ fault: name, seed, failures: [], log: [] });
      // The oracle found work to check: alerts, cases and hostile events.
      expect(res.tally.expectedAlerts).toBeGreaterThan(0);
      expect(res.tally.casesExpected).toBeGreaterThan(0);
      expect(res.tally.hostileEvents).toBeGreaterThan(0);
    }, 150_000);
  }
});
