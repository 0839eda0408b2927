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
//
// Memory: senders are interned to slot numbers, and a slot's entries live in flat typed arrays (struct of arrays),
// so a million senders in the window are a few arrays, not a million objects for the garbage collector to trace.
// Windows longer than a few entries (a high threshold) spill into a small per-sender object.
import { createHash } from 'node:crypto';
import type { Alert } from '../contracts/alert.ts';
import type { SegmentWriter } from '../contracts/checkpoint-segment.ts';
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

/** Entries a slot holds in the flat arrays; more spill into a SenderWindow. */
const INLINE_ENTRIES = 4;
const COUNTED: Outcome = { kind: 'counted' };

export type Outcome = { kind: 'counted' } | { kind: 'late'; watermark: number } | { kind: 'alert'; alert: Alert };

export function alertIdFor(sender: string, transactionIds: readonly string[]): string {
  const h = createHash('sha256').update(sender);
  for (const id of transactionIds) h.update('\0').update(id);
  return `va_${h.digest('hex').slice(0, 24)}`;
}

export class PartitionVelocityState {
  /** The highest event time seen in the partition (ms). */
  watermark = 0;
  private nextSweepAt = 0;

  private readonly rule: VelocityRule;
  readonly topic: string;
  readonly partition: number;
  /** Entries per slot in the flat arrays. */
  private readonly inline: number;

  // Slots: a sender's number while it has entries. Slot s holds counts[s] entries, at times/ids[s * inline + k]
  // when counts[s] <= inline, else in spill.get(s). A count of 0 is a free slot.
  private readonly index = new Map<string, number>();
  private names: Array<string | undefined> = [];
  private counts: Uint16Array;
  private times: Float64Array;
  private ids: Array<string | undefined> = [];
  private readonly spill = new Map<number, SenderWindow>();
  private readonly free: number[] = [];
  /** Slots [0, high) have been used. */
  private high = 0;

  // What changed since the last takeDelta(): dirty slots, and senders whose window was emptied (alert or idle).
  private dirtyMark: Uint8Array;
  private dirty: number[] = [];
  private removed: string[] = [];

  // One window being worked on, oldest first (a window holds at most threshold entries while an event is applied).
  private scratchTimes: Float64Array;
  private readonly scratchIds: string[] = [];

  constructor(rule: VelocityRule, topic: string, partition: number) {
    this.rule = rule;
    this.topic = topic;
    this.partition = partition;
    this.inline = Math.min(rule.threshold - 1, INLINE_ENTRIES);
    this.scratchTimes = new Float64Array(rule.threshold + 1);
    const capacity = 1024;
    this.counts = new Uint16Array(capacity);
    this.dirtyMark = new Uint8Array(capacity);
    this.times = new Float64Array(capacity * this.inline);
  }

  /** Senders with entries in the window. */
  get size(): number {
    return this.index.size;
  }

  /** One sender's entries, oldest first (a copy), or undefined if it has none. */
  window(sender: string): SenderWindow | undefined {
    const slot = this.index.get(sender);
    if (slot === undefined) return undefined;
    const n = this.load(slot);
    return { times: Array.from(this.scratchTimes.subarray(0, n)), ids: this.scratchIds.slice(0, n) };
  }

  apply(event: PaymentEvent, offset: string): Outcome {
    const t = event.timestamp;
    const windowMs = this.rule.windowMs;
    if (this.watermark > 0 && t <= this.watermark - windowMs) return { kind: 'late', watermark: this.watermark };
    if (t > this.watermark) {
      this.watermark = t;
      if (t >= this.nextSweepAt) this.sweep();
    }

    const sender = event.sender_account_id;
    const slot = this.index.get(sender);
    const st = this.scratchTimes;
    const sid = this.scratchIds;
    let n = slot === undefined ? 0 : this.load(slot);
    // Insert keeping time order (usually an append).
    let i = n;
    while (i > 0 && st[i - 1]! > t) {
      st[i] = st[i - 1]!;
      sid[i] = sid[i - 1]!;
      i--;
    }
    st[i] = t;
    sid[i] = event.transaction_id;
    n++;
    // Drop entries that fell out of the window ending at the sender's newest event.
    const cutoff = st[n - 1]! - windowMs;
    let from = 0;
    while (from < n && st[from]! <= cutoff) from++;

    if (n - from < this.rule.threshold) {
      this.store(slot ?? this.allocate(sender), from, n);
      return COUNTED;
    }
    const transactionIds = sid.slice(from, n);
    const alert: Alert = {
      alert_id: alertIdFor(sender, transactionIds),
      sender_account_id: sender,
      velocity_count: n - from,
      amount: event.amount,
      currency: event.currency,
      region: event.region,
      alert_timestamp: new Date(t).toISOString(),
      window_start: new Date(st[from]!).toISOString(),
      transaction_ids: transactionIds,
      receiver_account_id: event.receiver_account_id,
      source: { topic: this.topic, partition: this.partition, offset },
    };
    if (slot !== undefined) this.release(slot);
    return { kind: 'alert', alert };
  }

  /** Copy a slot's entries into the scratch window; returns their count. */
  private load(slot: number): number {
    const n = this.counts[slot]!;
    if (n <= this.inline) {
      const base = slot * this.inline;
      for (let k = 0; k < n; k++) {
        this.scratchTimes[k] = this.times[base + k]!;
        this.scratchIds[k] = this.ids[base + k]!;
      }
    } else {
      const w = this.spill.get(slot)!;
      for (let k = 0; k < n; k++) {
        this.scratchTimes[k] = w.times[k]!;
        this.scratchIds[k] = w.ids[k]!;
      }
    }
    return n;
  }

  /** Make scratch entries [from, to) the slot's window (to > from). */
  private store(slot: number, from: number, to: number, markDirty = true): void {
    const n = to - from;
    const base = slot * this.inline;
    if (n <= this.inline) {
      for (let k = 0; k < n; k++) {
        this.times[base + k] = this.scratchTimes[from + k]!;
        this.ids[base + k] = this.scratchIds[from + k];
      }
      for (let k = n; k < this.inline; k++) this.ids[base + k] = undefined;
      if (this.counts[slot]! > this.inline) this.spill.delete(slot);
    } else {
      this.spill.set(slot, { times: Array.from(this.scratchTimes.subarray(from, to)), ids: this.scratchIds.slice(from, to) });
      for (let k = 0; k < this.inline; k++) this.ids[base + k] = undefined;
    }
    this.counts[slot] = n;
    if (markDirty && this.dirtyMark[slot] === 0) {
      this.dirtyMark[slot] = 1;
      this.dirty.push(slot);
    }
  }

  private allocate(sender: string): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.high++;
      if (slot >= this.counts.length) this.grow();
      for (let k = 0; k < this.inline; k++) this.ids.push(undefined);
      this.names.push(undefined);
    }
    this.names[slot] = sender;
    this.index.set(sender, slot);
    return slot;
  }

  private grow(): void {
    const capacity = this.counts.length * 2;
    const counts = new Uint16Array(capacity);
    counts.set(this.counts);
    this.counts = counts;
    const dirtyMark = new Uint8Array(capacity);
    dirtyMark.set(this.dirtyMark);
    this.dirtyMark = dirtyMark;
    const times = new Float64Array(capacity * this.inline);
    times.set(this.times);
    this.times = times;
  }

  /** The sender's window is empty (an alert, or idle): free its slot. */
  private release(slot: number, record = true): void {
    const sender = this.names[slot]!;
    this.index.delete(sender);
    this.names[slot] = undefined;
    if (this.counts[slot]! > this.inline) this.spill.delete(slot);
    const base = slot * this.inline;
    for (let k = 0; k < this.inline; k++) this.ids[base + k] = undefined;
    this.counts[slot] = 0;
    this.free.push(slot);
    if (record) this.removed.push(sender);
  }

  private newest(slot: number): number {
    const n = this.counts[slot]!;
    return n <= this.inline ? this.times[slot * this.inline + n - 1]! : this.spill.get(slot)!.times[n - 1]!;
  }

  /** Drop senders idle for two windows. Runs as the watermark crosses each window boundary. */
  private sweep(): void {
    const idleBefore = this.watermark - 2 * this.rule.windowMs;
    for (let slot = 0; slot < this.high; slot++) {
      if (this.counts[slot]! > 0 && this.newest(slot) <= idleBefore) this.release(slot);
    }
    this.nextSweepAt = (Math.floor(this.watermark / this.rule.windowMs) + 1) * this.rule.windowMs;
  }

  private writeSlot(out: SegmentWriter, slot: number): void {
    const n = this.counts[slot]!;
    if (n <= this.inline) out.record(this.names[slot]!, n, this.times, this.ids, slot * this.inline);
    else {
      const w = this.spill.get(slot)!;
      out.record(this.names[slot]!, n, w.times, w.ids, 0);
    }
  }

  /**
   * Write the changes since the last call: a removal for each sender whose window emptied, then the current window
   * of each sender that changed. (A sender emptied and then seen again has both, in that order.)
   */
  takeDelta(out: SegmentWriter): void {
    for (const sender of this.removed) out.record(sender, 0, this.times, this.ids, 0);
    for (const slot of this.dirty) {
      this.dirtyMark[slot] = 0;
      if (this.counts[slot]! > 0) this.writeSlot(out, slot);
    }
    this.removed = [];
    this.dirty = [];
  }

  /**
   * Write the current window of the senders in slots [from, from + slots): one slice of a full snapshot, taken
   * while events keep arriving. Returns where the next slice starts, or -1 once every slot has been written.
   * Together with the deltas written from the snapshot's first slice on, the slices rebuild the whole state: a sender
   * that changed after its slice was written has a later delta record, and one that did not is in its slice.
   */
  snapshotSlice(out: SegmentWriter, from: number, slots: number): number {
    const to = Math.min(this.high, from + slots);
    for (let slot = from; slot < to; slot++) if (this.counts[slot]! > 0) this.writeSlot(out, slot);
    return to >= this.high ? -1 : to;
  }

  /** Rebuilding from a checkpoint: the partition's newest event time. */
  restoreWatermark(watermark: number): void {
    this.watermark = watermark;
    this.nextSweepAt = watermark > 0 ? (Math.floor(watermark / this.rule.windowMs) + 1) * this.rule.windowMs : 0;
  }

  /** Rebuilding from a checkpoint: one record, which replaces whatever the sender had (no entries: removed). */
  restoreRecord(sender: string, times: readonly number[], ids: readonly string[]): void {
    if (times.length !== ids.length) throw new Error(`checkpoint record of ${sender} has ${times.length} times and ${ids.length} ids`);
    const existing = this.index.get(sender);
    if (times.length === 0) {
      if (existing !== undefined) this.release(existing, false);
      return;
    }
    // More entries than the threshold allows (it was lowered since): kept, and the sender's next event alerts.
    if (times.length + 1 >= this.scratchTimes.length) this.scratchTimes = new Float64Array(times.length + 2);
    for (let k = 0; k < times.length; k++) {
      this.scratchTimes[k] = times[k]!;
      this.scratchIds[k] = ids[k]!;
    }
    this.store(existing ?? this.allocate(sender), 0, times.length, false);
  }
}
