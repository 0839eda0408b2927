// Live alerts for signed-in browsers: the detector PUBLISHes each alert on fraud:alerts:sender:<id> (the guide's
// dashboard pattern, PSUBSCRIBE fraud:alerts:*); this relays them over Socket.IO to the room of authenticated sockets.
// Pub/sub keeps nothing, so a page that (re)connects gets the most recent alerts from the durable stream
// fraud:alerts:stream first, and every page gets them again whenever the subscription to Redis is re-established
// (after a Redis restart). Pages deduplicate by alert_id.
import type { Redis } from 'ioredis';
import type { Server } from 'socket.io';
import type { Logger } from '../common/logger.ts';
import { alertKeys } from '../contracts/redis-keys.ts';

/** Socket.IO room of signed-in sockets. */
export const ALERTS_ROOM = 'alerts';

/** What a page shows of an alert (the guide's dashboard fields plus ids and times). */
export interface AlertView {
  alert_id: string;
  account: string;
  velocity: number;
  amount: number;
  currency: string;
  region: string;
  /** Event time of the triggering payment. */
  time: string;
  detected_at: string;
}

/** The alert JSON from Redis as a view, or undefined when it is not an alert. */
export function toView(json: string): AlertView | undefined {
  let a: Record<string, unknown>;
  try {
    a = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof a?.alert_id !== 'string' || typeof a.sender_account_id !== 'string') return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
  return {
    alert_id: a.alert_id,
    account: a.sender_account_id,
    velocity: Number(a.velocity_count) || 0,
    amount: Number(a.amount) || 0,
    currency: str(a.currency),
    region: str(a.region),
    time: str(a.alert_timestamp),
    detected_at: str(a.detected_at),
  };
}

export class AlertRelay {
  private readonly subscriber: Redis;
  private readonly redis: Redis;
  private readonly io: Server;
  private readonly log: Logger;
  private readonly backfillCount: number;
  private subscribed = false;

  /** `subscriber` is a dedicated connection created with autoResubscribe off: this class subscribes on every ready. */
  constructor(deps: { subscriber: Redis; redis: Redis; io: Server; log: Logger; backfillCount: number }) {
    this.subscriber = deps.subscriber;
    this.redis = deps.redis;
    this.io = deps.io;
    this.log = deps.log;
    this.backfillCount = deps.backfillCount;
  }

  get live(): boolean {
    return this.subscribed && this.subscriber.status === 'ready';
  }

  start(): void {
    this.subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
      if (!channel.startsWith(alertKeys.channelPrefix)) return;
      const view = toView(message);
      if (view) this.io.to(ALERTS_ROOM).emit('alert', view);
    });
    this.subscriber.on('close', () => {
      if (this.subscribed) this.log.warn('alert subscription lost (redis connection closed); reconnecting');
      this.subscribed = false;
    });
    // On the first connection and after every reconnect: subscribe, then (once Redis confirms the subscription)
    // send every page what it may have missed meanwhile.
    this.subscriber.on('ready', () => void this.resubscribe());
    if (this.subscriber.status === 'ready') void this.resubscribe();
  }

  private async resubscribe(): Promise<void> {
    try {
      await this.subscriber.psubscribe(alertKeys.channelPattern);
      const wasDown = !this.subscribed;
      this.subscribed = true;
      this.log.info({ pattern: alertKeys.channelPattern }, 'subscribed to alerts');
      if (wasDown) this.io.to(ALERTS_ROOM).emit('backfill', await this.recent());
    } catch (err) {
      this.log.warn({ err }, 'subscribing to alerts failed (retrying on reconnect)');
    }
  }

  /** The most recent alerts from the stream, newest first. */
  async recent(count = this.backfillCount): Promise<AlertView[]> {
    const rows = await this.redis.xrevrange(alertKeys.stream, '+', '-', 'COUNT', count);
    const out: AlertView[] = [];
    for (const [, fields] of rows) {
      const i = fields.indexOf('alert');
      const view = i >= 0 ? toView(fields[i + 1] ?? '') : undefined;
      if (view) out.push(view);
    }
    return out;
  }
}
