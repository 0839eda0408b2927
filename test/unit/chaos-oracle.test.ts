// The chaos harness's oracle (chaos/oracle.ts) is a second implementation of the velocity rule, sharing no code with
// the detector. Here the two meet: on random streams they must raise the same alerts, with the same ids, and the
// oracle's own reading of hostile messages must hold.
import { describe, expect, it } from '@jest/globals';
import { expectedOutcome, type LogMessage } from '../../chaos/oracle.ts';
import { rng, between, pick } from '../../chaos/workload.ts';
import { PartitionVelocityState } from '../../detector/velocity.ts';

const RULE = { threshold: 3, windowMs: 60_000 };

function randomLog(seed: number): LogMessage[] {
  const r = rng(seed);
  const senders = Array.from({ length: between(r, 1, 6) }, (_, i) => `S${i}`);
  let t = 1_780_000_000_000;
  const log: LogMessage[] = [];
  for (let i = 0; i < between(r, 1, 80); i++) {
    t += pick(r, [0, 1, 500, 5_000, 20_000, 59_999, 60_000, 61_000]);
    const sender = pick(r, senders);
    log.push({ partition: 0, offset: String(i), key: sender, value: JSON.stringify({ transaction_id: `x${i}`, sender_account_id: sender, timestamp: t }) });
  }
  return log;
}

function detectorAlerts(log: LogMessage[]): Map<string, string[]> {
  const state = new PartitionVelocityState(RULE, 'payments', 0);
  const out = new Map<string, string[]>();
  for (const m of log) {
    const p = JSON.parse(m.value) as { transaction_id: string; sender_account_id: string; timestamp: number };
    const o = state.apply({ ...p, receiver_account_id: 'M', amount: 1, currency: 'USD', region: 'r' }, m.offset);
    if (o.kind === 'alert') out.set(p.sender_account_id, [...(out.get(p.sender_account_id) ?? []), o.alert.alert_id]);
  }
  return out;
}

describe('the chaos oracle', () => {
  it('when random in-order streams are replayed, then the oracle and the detector raise the same alerts with the same ids', () => {
    let alerts = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const log = randomLog(seed);
      const mine = expectedOutcome(log, new Set()).alerts;
      expect({ seed, alerts: mine }).toStrictEqual({ seed, alerts: detectorAlerts(log) });
      alerts += [...mine.values()].flat().length;
    }
    expect(alerts).toBeGreaterThan(100); // the streams do raise alerts
  });

  it('when a message carries a hostile marker, then it is expected in the DLQ and takes no part in the rule', () => {
    const log: LogMessage[] = [
      { partition: 0, offset: '0', key: 'A', value: JSON.stringify({ transaction_id: 't0', sender_account_id: 'A', timestamp: 1 }) },
      { partition: 0, offset: '1', key: 'A', value: JSON.stringify({ transaction_id: 'bad1', sender_account_id: 'A', timestamp: 2 }) },
      { partition: 0, offset: '2', key: null, value: '{"transaction_id": "bad2",' },
      { partition: 0, offset: '3', key: 'A', value: JSON.stringify({ transaction_id: 't3', sender_account_id: 'A', timestamp: 3 }) },
    ];
    const out = expectedOutcome(log, new Set(['bad1', 'bad2']));
    expect([...out.hostile].sort()).toStrictEqual(['bad1', 'bad2']);
    expect(out.payments).toBe(2);
    expect(out.alerts.size).toBe(0);
  });
});
