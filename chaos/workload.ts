// A seeded workload for one chaos run: accounts with a chosen number of velocity bursts, quiet accounts, and hostile
// events (malformed JSON, missing fields, no key, far in the future, far too late), produced in time order over a
// few seconds with event times of the moment they are made. Every hostile event carries a marker that must show up
// in the dead-letter topic.

/** A seeded PRNG (mulberry32), so that a seed names one run exactly. */
export { rng } from '../common/payment-traffic.ts';
import { rng } from '../common/payment-traffic.ts';

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
export const between = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

export type HostileKind = 'malformed' | 'missing-field' | 'keyless' | 'future' | 'late';

export interface PlannedMessage {
  /** When to produce it, ms after the workload starts. */
  atMs: number;
  key: string | null;
  /** Builds the value at send time (event time = now). */
  value: (now: number) => string;
  hostile?: { kind: HostileKind; marker: string };
}

export interface Workload {
  accounts: string[];
  /** Cardholder directory entries to write before the run. */
  phones: Map<string, string>;
  messages: PlannedMessage[];
  markers: string[];
}

export interface WorkloadOptions {
  seed: number;
  /** Prefix of every account id (unique per run: cases outlive runs on the Temporal server). */
  prefix: string;
  durationMs: number;
  /** Hostile events: the share of all messages (default a few of each kind). */
  hostileCount?: number;
}

// Bursts per account: most accounts raise none or a few alerts; some reach the SMS step (> 5) and one or two the
// block (> 10), with the default escalation policy.
const BURSTS = [0, 0, 1, 1, 2, 3, 4, 6, 7, 11, 12];

export function makeWorkload(opts: WorkloadOptions): Workload {
  const r = rng(opts.seed);
  const accounts: string[] = [];
  const phones = new Map<string, string>();
  const messages: PlannedMessage[] = [];
  let txn = 0;
  const payment = (sender: string) => {
    const id = `${opts.prefix}t${txn++}`;
    const amount = between(r, 100, 99_999) / 100;
    const region = pick(r, ['us-east', 'eu-west', 'ap-south']);
    const currency = pick(r, ['USD', 'EUR', 'GBP']);
    return (now: number) => JSON.stringify({
      transaction_id: id, sender_account_id: sender, receiver_account_id: `M${between(r, 1, 50)}`, amount, currency, region, timestamp: now,
    });
  };
  const n = between(r, 24, 32);
  for (let i = 0; i < n; i++) {
    const acc = `${opts.prefix}A${i}`;
    accounts.push(acc);
    phones.set(acc, `+1415${String(between(r, 2_000_000, 9_999_999))}`);
    const bursts = pick(r, BURSTS);
    // Bursts of 3 payments a few ms apart, spread over the duration; after an alert the sender's window starts over.
    const starts = Array.from({ length: bursts }, () => between(r, 0, opts.durationMs)).sort((a, b) => a - b);
    for (const s of starts) for (let k = 0; k < 3; k++) messages.push({ atMs: s + k * 5, key: acc, value: payment(acc) });
    // Quiet traffic too: one or two payments that alone raise nothing.
    for (let k = between(r, 0, 2); k > 0; k--) messages.push({ atMs: between(r, 0, opts.durationMs), key: acc, value: payment(acc) });
  }
  const markers: string[] = [];
  const hostile = opts.hostileCount ?? 10;
  const kinds: HostileKind[] = ['malformed', 'missing-field', 'keyless', 'future', 'late'];
  for (let i = 0; i < hostile; i++) {
    const kind = kinds[i % kinds.length]!;
    const marker = `${opts.prefix}bad${i}`;
    markers.push(marker);
    // After the first quarter, so that every partition has a watermark before a late event arrives.
    const atMs = between(r, Math.floor(opts.durationMs / 4), opts.durationMs);
    const acc = pick(r, accounts);
    const valid = (now: number, over: Record<string, unknown> = {}) => JSON.stringify({
      transaction_id: marker, sender_account_id: acc, receiver_account_id: 'M1', amount: 10, currency: 'USD', region: 'us-east', timestamp: now, ...over,
    });
    const value: Record<HostileKind, (now: number) => string> = {
      malformed: () => `{"transaction_id": "${marker}", "amount": 12.5,`,
      'missing-field': (now) => valid(now, { amount: undefined, currency: 'NOT-A-CURRENCY' }),
      keyless: (now) => valid(now),
      future: (now) => valid(now + 86_400_000),
      late: (now) => valid(now - 3_600_000),
    };
    messages.push({ atMs, key: kind === 'keyless' ? null : acc, value: value[kind], hostile: { kind, marker } });
  }
  messages.sort((a, b) => a.atMs - b.atMs);
  return { accounts, phones, messages, markers };
}
