// SMS for 3DS verification: Twilio when credentials are configured, otherwise a durable local outbox.
// The result of a send is recorded in Redis per key, and a retry after that returns it unsent. This is at least once,
// not exactly once: a worker that dies after Twilio accepted a message and before the record was written sends it
// again on the activity's retry.
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

  constructor(base: string) {
    super({ keepAlive: true });
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

  constructor(opts: { accountSid: string; authToken: string; from: string; apiBase?: string | undefined }) {
    this.client = twilio(opts.accountSid, opts.authToken, opts.apiBase ? { httpClient: new RebasedTwilioHttpClient(opts.apiBase) } : {});
    this.from = opts.from;
  }

  async send(to: string, body: string): Promise<string> {
    const msg = await this.client.messages.create({ to, from: this.from, body });
    return msg.sid;
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
}

/** Send once per idempotency key: a retry after success returns the recorded result without sending again. */
export async function sendOnce(redis: Redis, transport: SmsTransport, to: string, body: string, idempotencyKey: string): Promise<SmsResult & { repeated: boolean }> {
  const recorded = await redis.get(caseKeys.smsSent(idempotencyKey));
  if (recorded) return { ...(JSON.parse(recorded) as SmsResult), repeated: true };
  const id = await transport.send(to, body, idempotencyKey);
  const result: SmsResult = { channel: transport.channel, id };
  await redis.set(caseKeys.smsSent(idempotencyKey), JSON.stringify(result));
  return { ...result, repeated: false };
}
