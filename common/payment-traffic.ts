// Synthetic payment streams for the demo, the tests and the benchmark. Pure and seeded: the same options give the
// same events.
//
// Normal traffic visits the senders in a fixed pseudo-random permutation, so each sender's payments are spaced
// `spanMs * senders / events` apart and never trip the velocity rule by chance. Bursts send `burstSize` payments
// from one sender within `burstSpreadMs`; `burstShare` is the fraction of all events that belong to bursts.
// Malformed events (a configurable share) cycle through the kinds of bad input the detector must dead-letter.

export interface TrafficOptions {
  events: number;
  senders: number;
  /** Fraction (0..1) of events that belong to velocity bursts. */
  burstShare: number;
  burstSize: number;
  burstSpreadMs: number;
  /** Fraction (0..1) of events that are malformed. */
  malformedShare: number;
  /** Event time of the first event, epoch ms, and the event-time span the stream covers. */
  startTime: number;
  spanMs: number;
  seed: number;
  /** Prefix of account ids (tests use a unique one per run). */
  accountPrefix: string;
  /** When > 0, bursts come round-robin from this many repeat offenders (ids <prefix>F<k>), who climb the ladder. */
  offenders: number;
}

export interface GeneratedMessage {
  key: string;
  value: string;
  kind: 'normal' | 'burst' | 'malformed';
}

export const defaultTraffic: TrafficOptions = {
  events: 10_000,
  senders: 1_000,
  burstShare: 0.01,
  burstSize: 5,
  burstSpreadMs: 4_000,
  malformedShare: 0,
  startTime: Date.now() - 3_600_000,
  spanMs: 3_600_000,
  seed: 42,
  accountPrefix: 'ACC_',
  offenders: 0,
};

/** mulberry32: a tiny seeded PRNG, good enough for traffic shapes. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGIONS = ['eu-west', 'eu-central', 'us-east', 'us-west', 'apac-south', 'latam'];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'BRL', 'INR', 'JPY'];

function malformed(i: number, key: string, ts: number): string {
  const base = { transaction_id: `bad-${i}`, sender_account_id: key, receiver_account_id: 'ACC_X', amount: 10, currency: 'EUR', region: 'eu-west', timestamp: ts };
  switch (i % 6) {
    case 0: return '{"transaction_id": "broken';
    case 1: return JSON.stringify({ ...base, amount: -3 });
    case 2: return JSON.stringify({ ...base, currency: 'ZZZ' });
    case 3: { const { region: _r, ...rest } = base; return JSON.stringify(rest); }
    case 4: return JSON.stringify({ ...base, timestamp: '1970-01-01T00:00:00Z' });
    default: return JSON.stringify({ ...base, amount: 'ten' });
  }
}

export function* paymentStream(options: Partial<TrafficOptions> = {}): Generator<GeneratedMessage> {
  const o = { ...defaultTraffic, ...options };
  const rand = rng(o.seed);
  const step = o.spanMs / Math.max(1, o.events);
  // A multiplier coprime with `senders` makes i -> (i * mult) % senders a permutation.
  let mult = Math.floor(o.senders * 0.618) | 1;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  while (gcd(mult, o.senders) !== 1) mult += 2;

  let normalIndex = 0;
  let burstCount = 0;
  let pendingBurst: { sender: string; left: number; t: number } | null = null;
  for (let i = 0; i < o.events; i++) {
    const now = Math.round(o.startTime + i * step);
    const r = rand();
    if (r < o.malformedShare) {
      const key = `${o.accountPrefix}${Math.floor(rand() * o.senders)}`;
      yield { key, value: malformed(i, key, now), kind: 'malformed' };
      continue;
    }
    let sender: string;
    let ts = now;
    let kind: GeneratedMessage['kind'] = 'normal';
    if (pendingBurst || r < o.malformedShare + o.burstShare / o.burstSize) {
      pendingBurst ??= {
        sender: o.offenders > 0 ? `${o.accountPrefix}F${burstCount++ % o.offenders}` : `${o.accountPrefix}B${burstCount++}`,
        left: o.burstSize,
        t: now,
      };
      sender = pendingBurst.sender;
      ts = pendingBurst.t + Math.round(((o.burstSize - pendingBurst.left) * o.burstSpreadMs) / o.burstSize);
      kind = 'burst';
      if (--pendingBurst.left === 0) pendingBurst = null;
    } else {
      sender = `${o.accountPrefix}${(normalIndex++ * mult) % o.senders}`;
    }
    const event = {
      transaction_id: `${o.seed}-${i}`,
      sender_account_id: sender,
      receiver_account_id: `${o.accountPrefix}${Math.floor(rand() * o.senders)}`,
      amount: Math.round((5 + rand() * 495) * 100) / 100,
      currency: CURRENCIES[Math.floor(rand() * CURRENCIES.length)]!,
      region: REGIONS[Math.floor(rand() * REGIONS.length)]!,
      timestamp: ts,
    };
    yield { key: sender, value: JSON.stringify(event), kind };
  }
}
