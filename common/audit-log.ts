// The append-only audit log outside Temporal: who did what, when and why, for every alert, decision and action.
// Redis streams (AOF-persisted): one per account and one for everything, so it reads per account and per time
// range. Appends are idempotent by entry id, so an activity retry never writes an entry twice. Entries older than
// the retention are trimmed as new ones are appended (a stream's oldest entries go when that stream is appended
// to): the exports to BigQuery or NDJSON files are the long-term store.
import type { Redis, Result } from 'ioredis';
import type { AuditEntry } from '../contracts/audit.ts';
import { auditKeys } from '../contracts/redis-keys.ts';

// KEYS: seen, account stream, global stream. ARGV: entry JSON, dedupe ttl, oldest stream id to keep.
// All or nothing, as the detector's alert script: flagged (refused whole when Redis is out of memory), the streams'
// types checked before any write, and the entry marked as seen only once it is in both streams.
const APPEND = `#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, 3 do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'none' and t ~= 'stream' then return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. t .. ', not a stream') end
end
redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', 'entry', ARGV[1])
redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[3], '*', 'entry', ARGV[1])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
return 1`;

/** How long audit entries (and the other platform streams) stay in Redis by default. */
export const DEFAULT_RETENTION_DAYS = 90;

/** The oldest stream id to keep for a retention (ids are append times in ms). */
export const minStreamId = (retentionDays: number, now = Date.now()) => `${Math.max(0, now - retentionDays * 86_400_000)}-0`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fraudAuditAppend(seen: string, account: string, all: string, json: string, ttl: number, minId: string): Result<number, Context>;
  }
}

const DEDUPE_TTL_SECONDS = 30 * 86_400;

export class AuditLog {
  private readonly redis: Redis;
  private readonly retentionDays: number;

  constructor(redis: Redis, opts: { retentionDays?: number } = {}) {
    this.redis = redis;
    this.retentionDays = opts.retentionDays ?? DEFAULT_RETENTION_DAYS;
    redis.defineCommand('fraudAuditAppend', { numberOfKeys: 3, lua: APPEND });
  }

  /** Append entries in order; returns how many were new. */
  async append(entries: readonly AuditEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const p = this.redis.pipeline();
    const minId = minStreamId(this.retentionDays);
    for (const e of entries) {
      p.fraudAuditAppend(auditKeys.seen(e.id), auditKeys.account(e.accountId), auditKeys.all, JSON.stringify(e), DEDUPE_TTL_SECONDS, minId);
    }
    let added = 0;
    for (const [err, n] of (await p.exec()) ?? []) {
      if (err) throw err;
      added += n as number;
    }
    return added;
  }

  /** Every entry of one account, oldest first. */
  async forAccount(accountId: string, count = 10_000): Promise<AuditEntry[]> {
    const rows = await this.redis.xrange(auditKeys.account(accountId), '-', '+', 'COUNT', count);
    return rows.map(([, f]) => JSON.parse(f[1]!) as AuditEntry);
  }

  /**
   * Entries whose `at` lies in [from, to). Stream ids are append times, which trail `at` by the activity's delay;
   * the scan reaches `slackMs` past both ends and filters on `at`.
   */
  async inRange(from: Date, to: Date, slackMs = 15 * 60_000): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    let start = String(Math.max(0, from.getTime() - slackMs));
    const end = String(to.getTime() + slackMs);
    for (;;) {
      const rows = await this.redis.xrange(auditKeys.all, start, end, 'COUNT', 5000);
      for (const [, f] of rows) {
        const e = JSON.parse(f[1]!) as AuditEntry;
        const at = Date.parse(e.at);
        if (at >= from.getTime() && at < to.getTime()) out.push(e);
      }
      if (rows.length < 5000) break;
      start = `(${rows[rows.length - 1]![0]}`;
    }
    return out;
  }
}
