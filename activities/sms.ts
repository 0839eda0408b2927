// SMS for 3DS verification: Twilio when credentials are configured, otherwise a durable local outbox.
//
// At most once per idempotency key (one case, one step), across activity timeouts, retries and worker crashes:
// 1. a recorded result (`fraud:sms:sent:KEY`) is returned without sending;
// 2. before sending, a "sending" marker (`fraud:sms:sending:KEY`) is written with the time of the attempt;
// 3. a later attempt that finds the marker without a result does not send at once: it waits until the earlier
//    attempt can no longer be in flight (`settleMs` after it started; the Twilio request itself times out sooner),
//    then looks the message up in Twilio's Messages list for that recipient since the first attempt (each body
//    carries a reference derived from the key, so the match is exact), and records what it finds. Only when nothing
//    was sent does it send.
// What this cannot cover: Twilio's list not yet showing a message it accepted `settleMs` earlier.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import twilio from 'twilio';
import { DEFAULT_RETENTION_DAYS, minStreamId } from '../common/audit-log.ts';
import { caseKeys } from '../contracts/redis-keys.ts';

export interface SmsResult {
  channel: 'twilio' | 'outbox';
  id: string;
}

export interface SmsTransport {
  readonly channel: SmsResult['channel'];
  send(to: string, body: string, idempotencyKey: string): Promise<string>;
  /** The id of a message to `to` with this body (or key) created at or after `since`, if one was sent. */
  findSent(to: string, body: string, idempotencyKey: string, since: Date): Promise<string | undefined>;
}

/** A short reference in the message body, the same for every attempt of one key: how a sent message is found again. */
export const smsReference = (idempotencyKey: string) => createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 8);

/** An earlier attempt of this key may still be in flight: retry later (the activity's retry policy does). */
export class SmsAttemptInFlightError extends Error {
  readonly retryInMs: number;
  constructor(retryInMs: number) {
    super(`an earlier attempt of this SMS may still be in flight; looking it up in ${Math.ceil(retryInMs / 1000)} s before any resend`);
    this.name = 'SmsAttemptInFlightError';
    this.retryInMs = retryInMs;
  }
}

/** +14155552345 -> +1415•••2345: enough to recognise, never the full number. */
export function maskPhone(phone: string): string {
  // Below 12 characters the first five and last four would leave three digits or fewer hidden: show only the end.
  if (phone.length < 12) return phone.length <= 6 ? '•••' : `•••${phone.slice(-2)}`;
  return `${phone.slice(0, 5)}•••${phone.slice(-4)}`;
}

type RequestOptions = Parameters<twilio.RequestClient['request']>[0];

/**
 * The twilio library's own HTTP client, with api.twilio.com replaced by another base URL (a local mock of
 * Twilio's OpenAPI description in tests and the local stack). Validation failures from the mock come back as
 * problem+json; they are mapped to Twilio's error shape so the library raises a RestException with the reason.
 */
export class RebasedTwilioHttpClient extends twilio.RequestClient {
  private readonly base: string;

  constructor(base: string, timeoutMs?: number) {
    super({ keepAlive: true, ...(timeoutMs ? { timeout: timeoutMs } : {}) });
    this.base = base.replace(/\/$/, '');
  }

  override async request<TData>(opts: RequestOptions) {
    const u = new URL(opts.uri);
    if (u.origin !== 'https://api.twilio.com') throw new Error(`no local endpoint for ${u.origin}`);
    const res = await super.request<TData>({ ...opts, uri: `${this.base}${u.pathname}${u.search}` } as RequestOptions & { data?: TData });
    const body = res.body as unknown as { title?: string; message?: string; validation?: Array<{ location?: string[]; message?: string }> } | undefined;
    if (res.statusCode >= 400 && body && typeof body === 'object' && body.title && !body.message) {
      const why = (body.validation ?? []).map((v) => `${(v.location ?? []).join('.')}: ${v.message}`).join('; ');
      (res as { body: unknown }).body = { status: res.statusCode, code: null, message: `${body.title}${why ? ` (${why})` : ''}`, more_info: '', details: body };
    }
    return res;
  }
}

export class TwilioTransport implements SmsTransport {
  readonly channel = 'twilio' as const;
  private readonly client: twilio.Twilio;
  private readonly from: string;

  /** `timeoutMs`: each request to Twilio gives up after this (keep it below the activity's start-to-close timeout). */
  constructor(opts: { accountSid: string; authToken: string; from: string; apiBase?: string | undefined; timeoutMs?: number }) {
    const timeout = opts.timeoutMs ?? SMS_REQUEST_TIMEOUT_MS;
    this.client = twilio(opts.accountSid, opts.authToken, opts.apiBase ? { httpClient: new RebasedTwilioHttpClient(opts.apiBase, timeout) } : { timeout });
    this.from = opts.from;
  }

  async send(to: string, body: string): Promise<string> {
    const msg = await this.client.messages.create({ to, from: this.from, body });
    return msg.sid;
  }

  async findSent(to: string, body: string, _key: string, since: Date): Promise<string | undefined> {
    // Newest first; a message still queued has no date_sent yet, so the filter is on date_created, here.
    const recent = await this.client.messages.list({ to, from: this.from, pageSize: 100, limit: 500 });
    return recent.find((m) => m.body === body && m.dateCreated instanceof Date && m.dateCreated.getTime() >= since.getTime())?.sid;
  }
}

/**
 * No Twilio credentials: messages wait in a Redis stream (`fraud:sms:outbox`) for another sender or a person.
 * Entries older than the retention are trimmed as new ones arrive.
 */
export class OutboxTransport implements SmsTransport {
  readonly channel = 'outbox' as const;
  private readonly redis: Redis;
  private readonly retentionDays: number;

  constructor(redis: Redis, opts: { retentionDays?: number } = {}) {
    this.redis = redis;
    this.retentionDays = opts.retentionDays ?? DEFAULT_RETENTION_DAYS;
  }

  async send(to: string, body: string, idempotencyKey: string): Promise<string> {
    return (await this.redis.xadd(caseKeys.smsOutbox, 'MINID', '~', minStreamId(this.retentionDays), '*', 'to', to, 'body', body, 'key', idempotencyKey))!;
  }

  async findSent(_to: string, _body: string, idempotencyKey: string, since: Date): Promise<string | undefined> {
    const entries = await this.redis.xrange(caseKeys.smsOutbox, String(since.getTime()), '+');
    for (const [id, fields] of entries) {
      for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'key' && fields[i + 1] === idempotencyKey) return id;
    }
    return undefined;
  }
}

/** Each request to Twilio gives up after this; well below the activity's 10 s start-to-close timeout. */
export const SMS_REQUEST_TIMEOUT_MS = 8_000;
/** How long after an attempt started a later one waits before looking it up (longer than any request can take). */
export const SMS_SETTLE_MS = 30_000;
/** How far Twilio's clock (date_created) may be behind ours when looking a message up. */
const CLOCK_SLACK_MS = 5 * 60_000;

interface SendingMarker {
  firstAt: number;
  lastAt: number;
  attempts: number;
}

export interface SendOnceOptions {
  /** See SMS_SETTLE_MS. */
  settleMs?: number;
  /** How long the sent record and the marker are kept (default: the streams' retention). */
  retentionDays?: number;
  now?: () => number;
}

/**
 * Send at most once per idempotency key (see the top of this file). `repeated`: nothing was sent by this call, the
 * result is the recorded one; `recovered`: an earlier attempt's message was found at the provider and recorded.
 * Throws SmsAttemptInFlightError while an earlier unrecorded attempt may still be in flight.
 */
export async function sendOnce(
  redis: Redis, transport: SmsTransport, to: string, body: string, idempotencyKey: string, opts: SendOnceOptions = {},
): Promise<SmsResult & { repeated: boolean; recovered: boolean }> {
  const now = opts.now ?? Date.now;
  const settleMs = opts.settleMs ?? SMS_SETTLE_MS;
  const ttl = (opts.retentionDays ?? DEFAULT_RETENTION_DAYS) * 86_400;
  const sentKey = caseKeys.smsSent(idempotencyKey);
  const sendingKey = caseKeys.smsSending(idempotencyKey);
  const record = async (result: SmsResult) => {
    await redis.multi().set(sentKey, JSON.stringify(result), 'EX', ttl).del(sendingKey).exec();
  };

  const [recorded, marker] = await redis.mget(sentKey, sendingKey);
  if (recorded) return { ...(JSON.parse(recorded) as SmsResult), repeated: true, recovered: false };
  const prev = marker ? (JSON.parse(marker) as SendingMarker) : undefined;
  if (prev) {
    const waited = now() - prev.lastAt;
    if (waited < settleMs) throw new SmsAttemptInFlightError(settleMs - waited);
    const found = await transport.findSent(to, body, idempotencyKey, new Date(prev.firstAt - CLOCK_SLACK_MS));
    if (found) {
      const result: SmsResult = { channel: transport.channel, id: found };
      await record(result);
      return { ...result, repeated: true, recovered: true };
    }
  }
  const attempt: SendingMarker = { firstAt: prev?.firstAt ?? now(), lastAt: now(), attempts: (prev?.attempts ?? 0) + 1 };
  if (prev) await redis.set(sendingKey, JSON.stringify(attempt), 'EX', ttl);
  // The first attempt: only if no other attempt wrote its marker since we looked.
  else if ((await redis.set(sendingKey, JSON.stringify(attempt), 'EX', ttl, 'NX')) !== 'OK') throw new SmsAttemptInFlightError(settleMs);
  const id = await transport.send(to, body, idempotencyKey);
  const result: SmsResult = { channel: transport.channel, id };
  await record(result);
  return { ...result, repeated: false, recovered: false };
}
