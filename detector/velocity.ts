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
// Memory: senders are interned to slot numbers through an open-addressing hash table, and a slot's entries live in
// flat typed arrays (struct of arrays). Account and transaction ids are bytes in a StringArena, not V8 strings. So a
// million senders in the window are a few dozen buffers, not millions of objects for the garbage collector to trace.
// Windows longer than a few entries (a high threshold) spill into a small per-sender object.
import { createHash } from 'node:crypto';
import type { Alert } from '../contracts/alert.ts';
import type { SegmentWriter } from '../contracts/checkpoint-segment.ts';
import type { PaymentEvent } from './event.ts';
import { hashString, StringArena } from './string-arena.ts';

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
  private readonly arena = new StringArena();

  // Slots: a sender's number while it has entries. Slot s holds counts[s] entries, at times/idHandles[s * inline + k]
  // when counts[s] <= inline, else in spill.get(s). A count of 0 is a free slot.
  private counts: Uint16Array;
  private times: Float64Array;
  /** Arena handles of the entries' transaction ids. */
  private idHandles: Int32Array;
  /** Arena handle of each slot's sender, and the sender's hash. */
  private nameHandles: Int32Array;
  private hashes: Int32Array;
  private readonly spill = new Map<number, SpilledWindow>();
  private free: Int32Array;
  private freeCount = 0;
  /** Slots [0, high) have been used. */
  private high = 0;
  private senders = 0;

  // Sender → slot: linear probing over a power-of-two table of slot + 1 (0 is empty), at most half full.
  private table: Int32Array;
  private mask: number;

  // What changed since the last takeDelta(): dirty slots, and senders whose window was emptied (alert or idle), as
  // arena handles freed once written.
  private dirtyMark: Uint8Array;
  private dirty: number[] = [];
  private removed: number[] = [];

  // One window being worked on, oldest first (a window holds at most threshold entries while an event is applied).
  private scratchTimes: Float64Array;
  private scratchIds: Int32Array;
  private readonly scratchStrings: string[] = [];

  constructor(rule: VelocityRule, topic: string, partition: number) {
    this.rule = rule;
    this.topic = topic;
    this.partition = partition;
    this.inline = Math.min(rule.threshold - 1, INLINE_ENTRIES);
    this.scratchTimes = new Float64Array(rule.threshold + 1);
    this.scratchIds = new Int32Array(rule.threshold + 1);
    const capacity = 1024;
    this.counts = new Uint16Array(capacity);
    this.dirtyMark = new Uint8Array(capacity);
    this.times = new Float64Array(capacity * this.inline);
    this.idHandles = new Int32Array(capacity * this.inline);
    this.nameHandles = new Int32Array(capacity);
    this.hashes = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    this.table = new Int32Array(2 * capacity);
    this.mask = this.table.length - 1;
  }

  /** Senders with entries in the window. */
  get size(): number {
    return this.senders;
  }

  /** Bytes of off-heap buffers the state holds (slot arrays, hash table, string arena). */
  get bufferBytes(): number {
    return this.counts.byteLength + this.dirtyMark.byteLength + this.times.byteLength + this.idHandles.byteLength
      + this.nameHandles.byteLength + this.hashes.byteLength + this.free.byteLength + this.table.byteLength + this.arena.bytes;
  }

  /** One sender's entries, oldest first (a copy), or undefined if it has none. */
  window(sender: string): SenderWindow | undefined {
    const slot = this.find(sender, hashString(sender));
    if (slot < 0) return undefined;
    const n = this.load(slot);
    const ids: string[] = [];
    for (let k = 0; k < n; k++) ids.push(this.arena.get(this.scratchIds[k]!));
    return { times: Array.from(this.scratchTimes.subarray(0, n)), ids };
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
    const hash = hashString(sender);
    const slot = this.find(sender, hash);
    const st = this.scratchTimes;
    const sid = this.scratchIds;
    let n = slot < 0 ? 0 : this.load(slot);
    // Insert keeping time order (usually an append).
    let i = n;
    while (i > 0 && st[i - 1]! > t) {
      st[i] = st[i - 1]!;
      sid[i] = sid[i - 1]!;
      i--;
    }
    st[i] = t;
    sid[i] = this.arena.put(event.transaction_id);
    n++;
    // Drop entries that fell out of the window ending at the sender's newest event.
    const cutoff = st[n - 1]! - windowMs;
    let from = 0;
    while (from < n && st[from]! <= cutoff) from++;

    if (n - from < this.rule.threshold) {
      for (let k = 0; k < from; k++) this.arena.free(sid[k]!);
      this.store(slot < 0 ? this.allocate(sender, hash) : slot, from, n);
      return COUNTED;
    }
    const transactionIds: string[] = [];
    for (let k = from; k < n; k++) transactionIds.push(this.arena.get(sid[k]!));
    for (let k = 0; k < n; k++) this.arena.free(sid[k]!);
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
    if (slot >= 0) {
      this.counts[slot] = 0; // its entries' ids were freed above
      this.release(slot);
    }
    return { kind: 'alert', alert };
  }

  /** The sender's slot, or -1. */
  private find(sender: string, hash: number): number {
    const table = this.table;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const e = table[i]!;
      if (e === 0) return -1;
      const slot = e - 1;
      if (this.hashes[slot] === hash && this.arena.equals(this.nameHandles[slot]!, sender)) return slot;
    }
  }

  private tableInsert(slot: number): void {
    const table = this.table;
    const mask = this.mask;
    let i = this.hashes[slot]! & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = slot + 1;
  }

  /** Remove a slot from the table, shifting later entries of its probe run back (no tombstones). */
  private tableDelete(slot: number): void {
    const table = this.table;
    const mask = this.mask;
    let i = this.hashes[slot]! & mask;
    while (table[i] !== slot + 1) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashes[table[j]! - 1]! & mask;
      // Entry j may move into the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      table[i] = table[j]!;
      i = j;
    }
    table[i] = 0;
  }

  /** Copy a slot's entries into the scratch window; returns their count. */
  private load(slot: number): number {
    const n = this.counts[slot]!;
    if (n <= this.inline) {
      const base = slot * this.inline;
      for (let k = 0; k < n; k++) {
        this.scratchTimes[k] = this.times[base + k]!;
        this.scratchIds[k] = this.idHandles[base + k]!;
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

  /** Make scratch entries [from, to) the slot's window (to > from); the ids' handles pass to the slot. */
  private store(slot: number, from: number, to: number, markDirty = true): void {
    const n = to - from;
    if (n <= this.inline) {
      const base = slot * this.inline;
      for (let k = 0; k < n; k++) {
        this.times[base + k] = this.scratchTimes[from + k]!;
        this.idHandles[base + k] = this.scratchIds[from + k]!;
      }
      if (this.counts[slot]! > this.inline) this.spill.delete(slot);
    } else {
      this.spill.set(slot, { times: Array.from(this.scratchTimes.subarray(from, to)), ids: Array.from(this.scratchIds.subarray(from, to)) });
    }
    this.counts[slot] = n;
    if (markDirty && this.dirtyMark[slot] === 0) {
      this.dirtyMark[slot] = 1;
      this.dirty.push(slot);
    }
  }

  private allocate(sender: string, hash: number): number {
    let slot: number;
    if (this.freeCount > 0) slot = this.free[--this.freeCount]!;
    else {
      slot = this.high++;
      if (slot >= this.counts.length) this.grow();
    }
    this.nameHandles[slot] = this.arena.put(sender);
    this.hashes[slot] = hash;
    if (2 * (this.senders + 1) > this.table.length) this.rehash(2 * this.table.length);
    this.tableInsert(slot);
    this.senders++;
    return slot;
  }

  private grow(): void {
    const capacity = this.counts.length * 2;
    const widen = <T extends Uint8Array | Uint16Array | Int32Array | Float64Array>(a: T, make: (n: number) => T, per = 1): T => {
      const b = make(capacity * per);
      b.set(a);
      return b;
    };
    this.counts = widen(this.counts, (n) => new Uint16Array(n));
    this.dirtyMark = widen(this.dirtyMark, (n) => new Uint8Array(n));
    this.times = widen(this.times, (n) => new Float64Array(n), this.inline);
    this.idHandles = widen(this.idHandles, (n) => new Int32Array(n), this.inline);
    this.nameHandles = widen(this.nameHandles, (n) => new Int32Array(n));
    this.hashes = widen(this.hashes, (n) => new Int32Array(n));
    this.free = widen(this.free, (n) => new Int32Array(n));
  }

  /** A table of `size` entries holding every slot in use (those with entries). */
  private rehash(size: number): void {
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let slot = 0; slot < this.high; slot++) if (this.counts[slot]! > 0) this.tableInsert(slot);
  }

  /** The sender's window is empty (an alert, or idle): free its slot (and its entries' ids, if it still has any). */
  private release(slot: number, record = true): void {
    const n = this.counts[slot]!;
    if (n > this.inline) {
      for (const h of this.spill.get(slot)!.ids) this.arena.free(h);
      this.spill.delete(slot);
    } else {
      const base = slot * this.inline;
      for (let k = 0; k < n; k++) this.arena.free(this.idHandles[base + k]!);
    }
    this.tableDelete(slot);
    this.senders--;
    this.counts[slot] = 0;
    this.free[this.freeCount++] = slot;
    if (record) this.removed.push(this.nameHandles[slot]!);
    else this.arena.free(this.nameHandles[slot]!);
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
    const names = this.scratchStrings;
    let times: ArrayLike<number>;
    if (n <= this.inline) {
      const base = slot * this.inline;
      for (let k = 0; k < n; k++) names[k] = this.arena.get(this.idHandles[base + k]!);
      times = this.times.subarray(base, base + n);
    } else {
      const w = this.spill.get(slot)!;
      for (let k = 0; k < n; k++) names[k] = this.arena.get(w.ids[k]!);
      times = w.times;
    }
    out.record(this.arena.get(this.nameHandles[slot]!), n, times, names, 0);
  }

  /**
   * Write the changes since the last call: a removal for each sender whose window emptied, then the current window
   * of each sender that changed. (A sender emptied and then seen again has both, in that order.)
   */
  takeDelta(out: SegmentWriter): void {
    for (const h of this.removed) {
      out.record(this.arena.get(h), 0, this.times, this.scratchStrings, 0);
      this.arena.free(h);
    }
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
    const hash = hashString(sender);
    const existing = this.find(sender, hash);
    if (existing >= 0) this.release(existing, false);
    if (times.length === 0) return;
    // More entries than the threshold allows (it was lowered since): kept, and the sender's next event alerts.
    if (times.length + 1 >= this.scratchTimes.length) {
      this.scratchTimes = new Float64Array(times.length + 2);
      this.scratchIds = new Int32Array(times.length + 2);
    }
    for (let k = 0; k < times.length; k++) {
      this.scratchTimes[k] = times[k]!;
      this.scratchIds[k] = this.arena.put(ids[k]!);
    }
    this.store(this.allocate(sender, hash), 0, times.length, false);
  }
}

/** A window longer than the inline entries: times and arena handles of ids, oldest first. */
interface SpilledWindow {
  times: number[];
  ids: number[];
}
