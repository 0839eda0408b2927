import { describe, expect, it } from '@jest/globals';
import type { PaymentEvent } from '../../detector/event.ts';
import { PartitionVelocityState, alertIdFor, type Outcome } from '../../detector/velocity.ts';

const rule = { threshold: 3, windowMs: 60_000 };
const T0 = Date.parse('2026-06-01T12:00:00Z');
let seq = 0;
const ev = (sender: string, atSeconds: number, extra: Partial<PaymentEvent> = {}): PaymentEvent => ({
  transaction_id: `tx-${++seq}`,
  sender_account_id: sender,
  receiver_account_id: 'R',
  amount: 10,
  currency: 'EUR',
  region: 'eu',
  timestamp: T0 + atSeconds * 1000,
  ...extra,
});
const run = (state: PartitionVelocityState, events: PaymentEvent[]): Outcome[] => events.map((e, i) => state.apply(e, String(i)));
const alertsOf = (outcomes: Outcome[]) => outcomes.flatMap((o) => (o.kind === 'alert' ? [o.alert] : []));

describe('velocity rule', () => {
  it('when a sender reaches the threshold within the window, then exactly one alert carries the guide fields', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    const outcomes = run(s, [ev('A', 0), ev('A', 10), ev('A', 20, { amount: 99.5, region: 'us' })]);
    expect(outcomes.map((o) => o.kind)).toStrictEqual(['counted', 'counted', 'alert']);
    const [a] = alertsOf(outcomes);
    expect(a!.sender_account_id).toBe('A');
    expect(a!.velocity_count).toBe(3);
    expect(a!.amount).toBe(99.5);
    expect(a!.region).toBe('us');
    expect(a!.alert_timestamp).toBe(new Date(T0 + 20_000).toISOString());
    expect(a!.transaction_ids.length).toBe(3);
    expect(a!.alert_id).toBe(alertIdFor('A', a!.transaction_ids));
  });

  it('when transactions are spread wider than the window, then no alert', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    expect(alertsOf(run(s, [ev('A', 0), ev('A', 40), ev('A', 100), ev('A', 150)])).length).toBe(0);
  });

  it('when an entry is exactly one window old, then it no longer counts', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    expect(alertsOf(run(s, [ev('A', 0), ev('A', 30), ev('A', 60)])).length).toBe(0);
    expect(alertsOf(run(s, [ev('A', 61)])).length).toBe(1);
  });

  it('when a sender keeps bursting, then each further alert needs threshold fresh transactions', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    const outcomes = run(s, Array.from({ length: 9 }, (_, i) => ev('A', i)));
    expect(alertsOf(outcomes).length).toBe(3);
    expect(outcomes.map((o) => o.kind === 'alert')).toStrictEqual([false, false, true, false, false, true, false, false, true]);
  });

  it('when senders interleave, then each is counted on its own', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    const alerts = alertsOf(run(s, [ev('A', 0), ev('B', 1), ev('A', 2), ev('B', 3), ev('A', 4)]));
    expect(alerts.map((a) => a.sender_account_id)).toStrictEqual(['A']);
  });

  it('when an event is more than a window behind the partition watermark, then it is late and does not count', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    run(s, [ev('B', 200)]);
    const outcomes = run(s, [ev('A', 100), ev('A', 101), ev('A', 102)]);
    expect(outcomes.map((o) => o.kind)).toStrictEqual(['late', 'late', 'late']);
  });

  it('when events of one sender arrive slightly out of order, then they still count', () => {
    const s = new PartitionVelocityState(rule, 'payments', 0);
    expect(alertsOf(run(s, [ev('A', 30), ev('A', 10), ev('A', 20)])).length).toBe(1);
  });

  it('when the same events are replayed into fresh state, then the alerts and ids are identical', () => {
    const events = Array.from({ length: 500 }, (_, i) => ev(`S${i % 7}`, Math.floor(i / 3)));
    const ids = (st: PartitionVelocityState) => alertsOf(run(st, events)).map((a) => a.alert_id);
    const first = ids(new PartitionVelocityState(rule, 'payments', 0));
    expect(first.length > 10).toBeTruthy();
    expect(ids(new PartitionVelocityState(rule, 'payments', 0))).toStrictEqual(first);
  });

  it('when state is checkpointed and restored midway, then the rest yields the same alerts as an uninterrupted run', () => {
    const events = Array.from({ length: 2000 }, (_, i) => ev(`S${(i * 13) % 41}`, i * 0.7));
    const straight = alertsOf(run(new PartitionVelocityState(rule, 'p', 0), events)).map((a) => a.alert_id);

    const a = new PartitionVelocityState(rule, 'p', 0);
    const before = alertsOf(events.slice(0, 777).map((e, i) => a.apply(e, String(i))));
    const { upserts } = a.takeDirty();
    const b = new PartitionVelocityState(rule, 'p', 0);
    b.restore(a.watermark, upserts.map(([s, w]) => [s, PartitionVelocityState.encode(w)]));
    const after = alertsOf(events.slice(777).map((e, i) => b.apply(e, String(777 + i))));
    expect([...before, ...after].map((x) => x.alert_id)).toStrictEqual(straight);
  });

  it('when senders go idle for two windows, then their state is dropped and reported as deleted', () => {
    const s = new PartitionVelocityState(rule, 'p', 0);
    run(s, [ev('A', 0), ev('B', 1)]);
    s.takeDirty();
    run(s, [ev('C', 200)]);
    expect(s.senders.has('A')).toBe(false);
    const { deletes, upserts } = s.takeDirty();
    expect(deletes.sort()).toStrictEqual(['A', 'B']);
    expect(upserts.map(([k]) => k)).toStrictEqual(['C']);
  });
});
