// The payment event wire format and its validation. Pure: no I/O, so it is unit-tested and benchmarked directly.
//
// One JSON object per Kafka message, key = sender_account_id:
//   transaction_id       unique string
//   sender_account_id    string (must equal the message key; a message without a key is refused)
//   receiver_account_id  string
//   amount               number, finite and > 0
//   currency             ISO 4217 code known to this runtime's ICU data (e.g. "EUR")
//   region               string
//   timestamp            event time: ISO-8601 string with a zone, or epoch milliseconds
import { z } from 'zod';

const currencies = new Set(Intl.supportedValuesOf('currency'));

/** Events before this instant are rejected as absurd (clock reset, seconds-instead-of-milliseconds, …). */
export const EARLIEST_EVENT_TIME = Date.UTC(2000, 0, 1);
const ID_FIELDS = ['transaction_id', 'sender_account_id', 'receiver_account_id', 'region'] as const;
/** The largest time a Date holds, in ms either side of 1970. */
const MAX_DATE_MS = 8_640_000_000_000_000;

// Well-formed: a lone surrogate would not survive the UTF-8 of checkpoints and alerts (it reads back as U+FFFD), so a
// replay after a restore would count it as another account.
const id = (what: string) =>
  z.string({ error: `${what} must be a string` }).trim().min(1, `${what} is empty`).max(128, `${what} is longer than 128 characters`)
    .refine((s) => s.isWellFormed(), `${what} is not well-formed Unicode (it holds a lone surrogate)`);

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

const eventTime = z.union(
  [
    z.number().int('timestamp in epoch milliseconds must be a whole number'),
    z.string().regex(ISO_WITH_ZONE, 'timestamp must be ISO-8601 with a time zone, e.g. 2026-01-01T12:00:00Z').transform((s) => Date.parse(s)),
  ],
  { error: 'timestamp must be an ISO-8601 string or epoch milliseconds' },
);

const paymentEventSchema = z.object({
  transaction_id: id('transaction_id'),
  sender_account_id: id('sender_account_id'),
  receiver_account_id: id('receiver_account_id'),
  amount: z
    .number({ error: (iss) => (typeof iss.input === 'number' ? 'amount must be finite' : 'amount must be a number') })
    .refine((n) => n > 0, 'amount must be greater than 0'),
  currency: z.string({ error: 'currency must be a string' }).refine((c) => currencies.has(c), 'currency is not an ISO 4217 code'),
  region: id('region'),
  timestamp: eventTime,
});

export interface PaymentEvent {
  transaction_id: string;
  sender_account_id: string;
  receiver_account_id: string;
  amount: number;
  currency: string;
  region: string;
  /** Event time, epoch milliseconds. */
  timestamp: number;
}

export type ParseResult = { ok: true; event: PaymentEvent } | { ok: false; reason: string };

/** A trimmed id of 1 to 128 characters, or undefined for anything the schema would refuse (or might). */
function fastId(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s.length >= 1 && s.length <= 128 && s.isWellFormed() ? s : undefined;
}

/**
 * The hot path: plain checks that accept only what the schema accepts, and build the very event it would. Anything
 * else (a bad event, or one it is not sure of) goes to the schema, which decides and words the reason. So the fast
 * path can only make a good event cheaper; it can never change a result (a property test holds it to the schema).
 */
function fastEvent(raw: Record<string, unknown>): PaymentEvent | undefined {
  const transaction_id = fastId(raw.transaction_id);
  const sender_account_id = fastId(raw.sender_account_id);
  const receiver_account_id = fastId(raw.receiver_account_id);
  const region = fastId(raw.region);
  const { amount, currency, timestamp: ts } = raw;
  if (transaction_id === undefined || sender_account_id === undefined || receiver_account_id === undefined || region === undefined) return undefined;
  if (typeof amount !== 'number' || !(amount > 0) || amount === Infinity) return undefined;
  if (typeof currency !== 'string' || !currencies.has(currency)) return undefined;
  let timestamp: number;
  if (typeof ts === 'number' && Number.isSafeInteger(ts)) timestamp = ts;
  else if (typeof ts === 'string' && ISO_WITH_ZONE.test(ts)) timestamp = Date.parse(ts);
  else return undefined;
  return { transaction_id, sender_account_id, receiver_account_id, amount, currency, region, timestamp };
}

export interface ParseOptions {
  /** Wall-clock now in ms; events further than maxClockSkewMs in its future are rejected. */
  now: number;
  maxClockSkewMs: number;
}

/** Decode and validate one message. Never throws: a bad event comes back with a reason for the dead-letter topic. */
export function parsePaymentEvent(value: Buffer | string | null, key: string | null, opts: ParseOptions): ParseResult {
  return parse(value, key, opts, true);
}

/** The same, with the schema deciding every event: the reference the hot path is held to (tests, benchmarks). */
export function parsePaymentEventBySchema(value: Buffer | string | null, key: string | null, opts: ParseOptions): ParseResult {
  return parse(value, key, opts, false);
}

function parse(value: Buffer | string | null, key: string | null, opts: ParseOptions, fast: boolean): ParseResult {
  if (value === null || value.length === 0) return { ok: false, reason: 'empty message' };
  let raw: unknown;
  try {
    raw = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `malformed JSON: ${(err as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'event must be a JSON object' };
  const event = (fast ? fastEvent(raw as Record<string, unknown>) : undefined) ?? schemaEvent(raw);
  if ('reason' in event) return event;
  return checkEvent(event, key, opts);
}

/** The schema's verdict on an object: the event, or the reason (worded from its first issue). */
function schemaEvent(raw: object): PaymentEvent | { ok: false; reason: string } {
  let parsed: ReturnType<typeof paymentEventSchema.safeParse>;
  try {
    parsed = paymentEventSchema.safeParse(raw);
  } catch (err) {
    // zod itself can throw on hostile values (an id field {"length": {"toString": 1}} reaching its length checks).
    const bad = ID_FIELDS.find((f) => f in raw && typeof (raw as Record<string, unknown>)[f] !== 'string');
    return { ok: false, reason: bad ? `${bad}: ${bad} must be a string` : `event could not be checked: ${(err as Error).message}` };
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    const missing = issue.code === 'invalid_type' && field && !(field in raw);
    return { ok: false, reason: missing ? `missing field ${field}` : `${field ? `${field}: ` : ''}${issue.message}` };
  }
  return parsed.data;
}

/** What no schema says: a time a Date can hold, not absurdly early or in the future, and a key that is the sender. */
function checkEvent(event: PaymentEvent, key: string | null, opts: ParseOptions): ParseResult {
  // Beyond ±8.64e15 ms a Date cannot hold the time (toISOString would throw): refused, shown as the number it is.
  if (!Number.isFinite(event.timestamp) || Math.abs(event.timestamp) > MAX_DATE_MS) return { ok: false, reason: `timestamp: ${String(event.timestamp)} is not a valid date` };
  if (event.timestamp < EARLIEST_EVENT_TIME) return { ok: false, reason: `timestamp: ${new Date(event.timestamp).toISOString()} is before 2000-01-01` };
  if (event.timestamp > opts.now + opts.maxClockSkewMs) {
    return { ok: false, reason: `timestamp: ${new Date(event.timestamp).toISOString()} is more than ${opts.maxClockSkewMs / 1000}s in the future` };
  }
  // The key decides the partition, and the rule needs each sender's payments on one partition, in order.
  if (key === null) return { ok: false, reason: `message has no key (it must be sender_account_id ${JSON.stringify(event.sender_account_id)})` };
  if (key !== event.sender_account_id) {
    return { ok: false, reason: `message key ${JSON.stringify(key)} does not match sender_account_id ${JSON.stringify(event.sender_account_id)}` };
  }
  return { ok: true, event };
}
