// The card issuer, behind an adapter. The platform ships a local issuer that records blocks and notices in Redis
// (`fraud:issuer:blocks`, `fraud:issuer:notifications`); a real issuer API implements the same interface.
// Both operations are idempotent per key, as a real issuer integration must be.
import type { Redis } from 'ioredis';
import { DEFAULT_RETENTION_DAYS, minStreamId } from '../common/audit-log.ts';
import { caseKeys } from '../contracts/redis-keys.ts';

export interface IssuerAdapter {
  blockCard(input: { idempotencyKey: string; accountId: string; cardId: string; reason: string }): Promise<{ blockId: string; repeated: boolean }>;
  notify(input: { idempotencyKey: string; accountId: string; message: string }): Promise<{ noticeId: string; repeated: boolean }>;
}


// KEYS: dedupe key, stream. ARGV: oldest stream id to keep, dedupe ttl, then field/value pairs. Returns the stream
// id, new or recorded. Flagged: refused whole when Redis is out of memory, never half done.
const NOTIFY_ONCE = `#!lua
local prior = redis.call('GET', KEYS[1])
if prior then return {prior, 1} end
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[1], id, 'EX', ARGV[2])
return {id, 0}`;

export class LocalIssuer implements IssuerAdapter {
  private readonly redis: Redis;
  private readonly retentionDays: number;

  constructor(redis: Redis, opts: { retentionDays?: number } = {}) {
    this.redis = redis;
    this.retentionDays = opts.retentionDays ?? DEFAULT_RETENTION_DAYS;
    redis.defineCommand('fraudNotifyOnce', { numberOfKeys: 2, lua: NOTIFY_ONCE });
  }

  async blockCard(input: { idempotencyKey: string; accountId: string; cardId: string; reason: string }) {
    const record = JSON.stringify({ ...input, blockedAt: new Date().toISOString() });
    const created = await this.redis.hsetnx(caseKeys.issuerBlocks, input.accountId, record);
    const stored = JSON.parse((await this.redis.hget(caseKeys.issuerBlocks, input.accountId))!) as { idempotencyKey: string };
    return { blockId: `${input.cardId}@${stored.idempotencyKey}`, repeated: created === 0 };
  }

  async notify(input: { idempotencyKey: string; accountId: string; message: string }) {
    const [noticeId, repeated] = (await (this.redis as unknown as {
      fraudNotifyOnce(k1: string, k2: string, ...args: string[]): Promise<[string, number]>;
    }).fraudNotifyOnce(
      caseKeys.issuerNoticeSent(input.idempotencyKey), caseKeys.issuerNotifications, minStreamId(this.retentionDays), String(this.retentionDays * 86_400),
      'account', input.accountId, 'message', input.message, 'key', input.idempotencyKey, 'at', new Date().toISOString(),
    ));
    return { noticeId, repeated: repeated === 1 };
  }
}
