// The velocity rule, as a pure state machine over one partition's events in offset order.
//
// Semantics (deterministic in the partition's event order, so a replay yields the same alerts and alert ids):
// - Per sender we keep the event times and transaction ids seen since that sender's last alert.
// - The window is the `windowMs` ending at the sender's newest event time: entries at or before `newest - windowMs`
//   fall out. When `threshold` or more entries remain, the event raises an alert and the sender's entries are
//   cleared, so the next alert needs `threshold` fresh transactions (a cooldown by count, not by time).
// - Late events: the partition watermark is the highest event time seen. An event at or before
//   `watermark - windowMs` is late: it is counted (metrics) but does not take part in the rule. This bound lets
//   the state of senders idle for two windows be dropped without changing any result.
// - The alert id is a hash of the sender and the transaction ids that triggered it.
import { createHash } from 'node:crypto';
import type { Alert } from '../contracts/alert.ts';
import type { PaymentEvent } from './event.ts';

export interface VelocityRule {
  threshold: number;
  windowMs: number;
}

/** Per-sender entries since the last alert, oldest first. */
export interface SenderWindow {
  times: number[];
  ids: string[];
}

export type Outcome = { kind: 'counted' } | { kind: 'late'; watermark: number } | { kind: 'alert'; alert: Alert };

export function alertIdFor(sender: string, transactionIds: readonly string[]): string {
  const h = createHash('sha256').update(sender);
  for (const id of transactionIds) h.update('\0').update(id);
  return `va_${h.digest('hex').slice(0, 24)}`;
}

export class PartitionVelocityState {
  readonly senders = new Map<string, SenderWindow>();
  /** Senders whose entry changed since the last `takeDirty()`. */
  private dirty = new Set<string>();
  watermark = 0;
  private nextSweepAt = 0;

  private readonly rule: VelocityRule;
  readonly topic: string;
  readonly partition: number;

  constructor(rule: VelocityRule, topic: string, partition: number) {
    this.rule = rule;
    this.topic = topic;
    this.partition = partition;
  }

  apply(event: PaymentEvent, offset: string): Outcome {
    const t = event.timestamp;
    if (this.watermark > 0 && t <= this.watermark - this.rule.windowMs) return { kind: 'late', watermark: this.watermark };
    if (t > this.watermark) {
      this.watermark = t;
      if (t >= this.nextSweepAt) this.sweep();
    }

    const sender = event.sender_account_id;
    let w = this.senders.get(sender);
    if (!w) {
      w = { times: [], ids: [] };
      this.senders.set(sender, w);
    }
    // Insert keeping time order (usually an append).
    let i = w.times.length;
    while (i > 0 && w.times[i - 1]! > t) i--;
    w.times.splice(i, 0, t);
    w.ids.splice(i, 0, event.transaction_id);
    // Drop entries that fell out of the window ending at the sender's newest event.
    const cutoff = w.times[w.times.length - 1]! - this.rule.windowMs;
    let drop = 0;
    while (drop < w.times.length && w.times[drop]! <= cutoff) drop++;
    if (drop > 0) {
      w.times.splice(0, drop);
      w.ids.splice(0, drop);
    }
    this.dirty.add(sender);

    if (w.times.length < this.rule.threshold) return { kind: 'counted' };

    const alert: Alert = {
      alert_id: alertIdFor(sender, w.ids),
      sender_account_id: sender,
      velocity_count: w.times.length,
      amount: event.amount,
      currency: event.currency,
      region: event.region,
      alert_timestamp: new Date(t).toISOString(),
      window_start: new Date(w.times[0]!).toISOString(),
      transaction_ids: [...w.ids],
      receiver_account_id: event.receiver_account_id,
      source: { topic: this.topic, partition: this.partition, offset },
    };
    this.senders.delete(sender);
    return { kind: 'alert', alert };
  }

  /** Drop senders idle for two windows. Runs as the watermark crosses each window boundary. */
  private sweep(): void {
    const idleBefore = this.watermark - 2 * this.rule.windowMs;
    for (const [sender, w] of this.senders) {
      if (w.times[w.times.length - 1]! <= idleBefore) {
        this.senders.delete(sender);
        this.dirty.add(sender);
      }
    }
    this.nextSweepAt = (Math.floor(this.watermark / this.rule.windowMs) + 1) * this.rule.windowMs;
  }

  /** The changes since the last call: senders to write (with their entries) and senders to delete. */
  takeDirty(): { upserts: Array<[string, SenderWindow]>; deletes: string[] } {
    const upserts: Array<[string, SenderWindow]> = [];
    const deletes: string[] = [];
    for (const sender of this.dirty) {
      const w = this.senders.get(sender);
      if (w) upserts.push([sender, w]);
      else deletes.push(sender);
    }
    this.dirty = new Set();
    return { upserts, deletes };
  }

  /** Serialised checkpoint form of one sender's entries. */
  static encode(w: SenderWindow): string {
    return JSON.stringify([w.times, w.ids]);
  }

  /** Rebuild from a checkpoint (see AlertStore.loadCheckpoint). */
  restore(watermark: number, entries: Iterable<[string, string]>): void {
    this.senders.clear();
    this.dirty.clear();
    this.watermark = watermark;
    this.nextSweepAt = watermark > 0 ? (Math.floor(watermark / this.rule.windowMs) + 1) * this.rule.windowMs : 0;
    for (const [sender, encoded] of entries) {
      const [times, ids] = JSON.parse(encoded) as [number[], string[]];
      this.senders.set(sender, { times, ids });
    }
  }
}
