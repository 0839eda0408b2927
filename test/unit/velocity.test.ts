import { describe, expect, it } from '@jest/globals';
import type { PaymentEvent } from '../../detector/event.ts';
import fc from 'fast-check';
import { SegmentWriter, readSegment } from '../../contracts/checkpoint-segment.ts';
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
    const out = new SegmentWriter();
    a.takeDelta(out);
    const b = rebuild(a.watermark, out.finish());
    const after = alertsOf(events.slice(777).map((e, i) => b.apply(e, String(777 + i))));
    expect([...before, ...after].map((x) => x.alert_id)).toStrictEqual(straight);
  });

  it('when senders go idle for two windows, then their state is dropped and written as removed', () => {
    const s = new PartitionVelocityState(rule, 'p', 0);
    run(s, [ev('A', 0), ev('B', 1)]);
    s.takeDelta(new SegmentWriter());
    run(s, [ev('C', 200)]);
    expect(s.window('A')).toBeUndefined();
    expect(s.size).toBe(1);
    const out = new SegmentWriter();
    s.takeDelta(out);
    const records: Array<[string, number]> = [];
    for (const segment of out.finish()) readSegment(segment, (sender, times) => records.push([sender, times.length]));
    expect(records.sort()).toStrictEqual([['A', 0], ['B', 0], ['C', 1]]);
  });

  // The checkpoint log the detector keeps: deltas after every few events, and now and then a full snapshot written a
  // slice at a time beside them, after which everything before the snapshot's first slice is dropped. Rebuilding
  // from the log at any point must give the very state the detector holds, whatever the thresholds, windows, slice
  // sizes and order of events (out of order, late, senders reappearing after going idle).
  it('when the log is deltas and sliced snapshots, then rebuilding from it at any checkpoint gives the same state', () => {
    fc.assert(
      fc.property(
        fc.record({
          threshold: fc.integer({ min: 2, max: 8 }),
          senders: fc.integer({ min: 1, max: 60 }),
          // Mostly small steps forward; now and then back (out of order or late) or far ahead (senders go idle).
          steps: fc.array(
            fc.tuple(fc.nat(1000), fc.oneof(
              { weight: 16, arbitrary: fc.integer({ min: 0, max: 3_000 }) },
              { weight: 2, arbitrary: fc.integer({ min: -90_000, max: 0 }) },
              { weight: 1, arbitrary: fc.integer({ min: 0, max: 200_000 }) },
            )),
            { minLength: 1, maxLength: 400 },
          ),
          every: fc.integer({ min: 1, max: 40 }),
          slice: fc.integer({ min: 1, max: 50 }),
          snapshotEvery: fc.integer({ min: 1, max: 6 }),
        }),
        ({ threshold, senders, steps, every, slice, snapshotEvery }) => {
          const r = { threshold, windowMs: 60_000 };
          const live = new PartitionVelocityState(r, 'p', 0);
          let log: Buffer[] = [];
          let snapshot: { start: number; cursor: number } | undefined;
          let checkpoints = 0;
          let t = 0;
          steps.forEach(([who, dt], i) => {
            t = Math.max(0, t + dt);
            live.apply(ev(`S${who % senders}`, t / 1000), String(i));
            if ((i + 1) % every !== 0) return;
            const out = new SegmentWriter(64);
            live.takeDelta(out);
            if (!snapshot && ++checkpoints % snapshotEvery === 0) snapshot = { start: log.length, cursor: 0 };
            if (snapshot) snapshot.cursor = live.snapshotSlice(out, snapshot.cursor, slice);
            log.push(...out.finish());
            if (snapshot && snapshot.cursor < 0) {
              log = log.slice(snapshot.start);
              snapshot = undefined;
            }
            const rebuilt = rebuild(live.watermark, log);
            expect(stateOf(rebuilt)).toStrictEqual(stateOf(live));
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('when the threshold allows long windows, then they spill out of the flat arrays and back without changing a result', () => {
    const r = { threshold: 9, windowMs: 60_000 };
    const events = Array.from({ length: 3000 }, (_, i) => ev(`S${(i * 7) % 5}`, i * 0.9));
    const a = new PartitionVelocityState(r, 'p', 0);
    const alerts = alertsOf(run(a, events));
    expect(alerts.length).toBeGreaterThan(20);
    for (const alert of alerts) expect(alert.transaction_ids).toHaveLength(9);
    // The same stream, one checkpoint and restore every 50 events.
    let b = new PartitionVelocityState(r, 'p', 0);
    const again: string[] = [];
    events.forEach((e, i) => {
      const o = b.apply(e, String(i));
      if (o.kind === 'alert') again.push(o.alert.alert_id);
      if (i % 50 === 49) {
        const out = new SegmentWriter();
        b.snapshotSlice(out, 0, Number.MAX_SAFE_INTEGER);
        b = rebuild(b.watermark, out.finish(), r);
      }
    });
    expect(again).toStrictEqual(alerts.map((x) => x.alert_id));
  });
});

// The rule as its documentation states it, written plainly over a Map of arrays: an oracle that shares no code with
// the state's hash table, string arena and flat arrays. Many senders (growing the table past its first size), names
// and ids of every length and script, and churn (alerts, idle senders swept) exercise inserts and deletions.
describe('velocity state against a plain model of the rule', () => {
  class Model {
    watermark = 0;
    private nextSweepAt = 0;
    readonly windows = new Map<string, Array<{ t: number; id: string }>>();
    private readonly r: { threshold: number; windowMs: number };
    constructor(r: { threshold: number; windowMs: number }) {
      this.r = r;
    }
    apply(e: PaymentEvent): string {
      const { threshold, windowMs } = this.r;
      if (this.watermark > 0 && e.timestamp <= this.watermark - windowMs) return 'late';
      if (e.timestamp > this.watermark) {
        this.watermark = e.timestamp;
        if (e.timestamp >= this.nextSweepAt) {
          for (const [k, w] of this.windows) if (w.at(-1)!.t <= this.watermark - 2 * windowMs) this.windows.delete(k);
          this.nextSweepAt = (Math.floor(this.watermark / windowMs) + 1) * windowMs;
        }
      }
      const w = [...(this.windows.get(e.sender_account_id) ?? []), { t: e.timestamp, id: e.transaction_id }];
      w.sort((a, b) => a.t - b.t); // stable: an equal time goes after the entries already there
      const kept = w.filter((x) => x.t > w.at(-1)!.t - windowMs);
      if (kept.length >= threshold) {
        this.windows.delete(e.sender_account_id);
        return `alert ${alertIdFor(e.sender_account_id, kept.map((x) => x.id))}`;
      }
      this.windows.set(e.sender_account_id, kept);
      return 'counted';
    }
  }
  const text = fc.oneof(
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 128 }),
    fc.constant('x'.repeat(128)),
  );

  it('when random payments from thousands of senders are applied, then outcomes and every window match the model', () => {
    // Time moves mostly forward by small steps; now and then back (out of order, late) or far ahead (idle senders
    // swept). Sizes are explicit: fast-check's defaults would keep arrays to a few elements.
    const step = fc.tuple(
      fc.nat(),
      fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 100 }) }, { weight: 2, arbitrary: fc.integer({ min: -70_000, max: 0 }) }, { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }) }),
      text,
    );
    let totalAlerts = 0;
    fc.assert(
      fc.property(
        fc.record({
          threshold: fc.integer({ min: 2, max: 7 }),
          senders: fc.uniqueArray(text, { minLength: 1, maxLength: 3000, size: 'max' }),
          steps: fc.array(step, { minLength: 1, maxLength: 6000, size: 'max' }),
        }),
        ({ threshold, senders, steps }) => {
          const r = { threshold, windowMs: 60_000 };
          const state = new PartitionVelocityState(r, 'p', 0);
          const model = new Model(r);
          let clock = T0;
          let alerts = 0;
          steps.forEach(([pick, dt, id], i) => {
            clock = Math.max(T0, clock + dt);
            // Small sender populations repeat often enough to alert; large ones fill the table.
            const e = ev(senders[pick % Math.min(senders.length, 1 + (i % 2 === 0 ? 40 : senders.length))]!, (clock - T0) / 1000, { transaction_id: id });
            const o = state.apply(e, String(i));
            if (o.kind === 'alert') alerts++;
            expect(o.kind === 'alert' ? `alert ${o.alert.alert_id}` : o.kind).toBe(model.apply(e));
          });
          expect(state.size).toBe(model.windows.size);
          for (const name of senders) {
            const w = model.windows.get(name);
            expect(state.window(name)).toStrictEqual(w && { times: w.map((x) => x.t), ids: w.map((x) => x.id) });
          }
          totalAlerts += alerts;
        },
      ),
      { numRuns: 25 },
    );
    expect(totalAlerts).toBeGreaterThan(100); // the generator does reach the rule, not only the table
  });
});

function rebuild(watermark: number, segments: readonly Buffer[], r = rule): PartitionVelocityState {
  const s = new PartitionVelocityState(r, 'p', 0);
  s.restoreWatermark(watermark);
  for (const segment of segments) readSegment(segment, (sender, times, ids) => s.restoreRecord(sender, times, ids));
  return s;
}

/** Every sender's window, by sender (senders 0..999 as the property test names them). */
function stateOf(s: PartitionVelocityState): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < 1000; i++) {
    const w = s.window(`S${i}`);
    if (w) out[`S${i}`] = w;
  }
  return { size: s.size, out };
}
