// The short subset of the chaos matrix that runs with every test run (the full matrix: `npm run chaos`, report in
// chaos/README.md). Each run is a seeded workload, one fault, and the independent oracle's checks. The detector faults
// also run with the @platformatic/kafka client (KAFKA_CLIENT=platformatic): a crash and restart, and a member paused
// past its session timeout, which the group expels and which must rejoin.
import { describe, expect, it } from '@jest/globals';
import { faultByName } from '../../chaos/faults.ts';
import { runOnce } from '../../chaos/run.ts';
import { stackProfile } from '../../harness/stack.ts';

type Run = [string, number, ('kafkajs' | 'platformatic')?];
const EMBEDDED: Run[] = [
  ['detector-kill', 101],
  ['redis-oom', 102],
  ['twilio-slow', 103],
  ['hostile-inputs', 104],
  ['detector-kill', 105, 'platformatic'],
  ['detector-stop', 106, 'platformatic'],
];
// The cluster profile's faults (Redis with Sentinels, one of three Kafka brokers, the Temporal server on PostgreSQL),
// and a detector and a worker killed there.
// redis-failover with KAFKA_CLIENT=platformatic is left out for now: in CI (stop 23, seed 202) that detector did not
// catch up within 80 s of the failover (alerts missing), while the same run passed by hand; open in issue 10.
const CLUSTER: Run[] = [
  ['redis-failover', 201],
  ['kafka-broker-kill', 203],
  ['temporal-cluster-kill', 204],
  ['postgres-restart', 205],
  ['detector-kill', 206],
  ['worker-kill', 207],
];
const SUBSET = stackProfile === 'cluster' ? CLUSTER : EMBEDDED;

describe(`chaos subset (${stackProfile} profile)`, () => {
  for (const [name, seed, client] of SUBSET) {
    const clientNote = client ? `, ${client} client` : '';
    it(`when ${faultByName.get(name)!.what} (seed ${seed}${clientNote}), then nothing is lost, duplicated or jammed`, async () => {
      const res = await runOnce(faultByName.get(name)!, seed, client ? { detectorEnv: { KAFKA_CLIENT: client } } : {});
      expect({ fault: name, seed, failures: res.failures, log: res.passed ? [] : res.log }).toStrictEqual({ fault: name, seed, failures: [], log: [] });
      // The oracle found work to check: alerts, cases and hostile events.
      expect(res.tally.expectedAlerts).toBeGreaterThan(0);
      expect(res.tally.casesExpected).toBeGreaterThan(0);
      expect(res.tally.hostileEvents).toBeGreaterThan(0);
    }, 150_000);
  }
});
