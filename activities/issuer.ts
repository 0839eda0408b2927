// The card issuer, behind an adapter. The platform ships a local issuer that records blocks and notices in Redis
// (`fraud:issuer:blocks`, `fraud:issuer:notifications`); a real issuer API implements the same interface.
// Every operation is idempotent per key, as a real issuer integration must be. The case workflow derives each key
// from its case id, so a block is per case: a case reopened later (a new case id) blocks again, and a case lifts only
// the block it made.
import type { Redis } from 'ioredis';
import { DEFAULT_RETENTION_DAYS, minStreamId } from '../common/audit-log.ts';
import { caseKeys } from '../contracts/redis-keys.ts';

export interface BlockRequest {
  idempotencyKey: string;
  caseId: string;
  accountId: string;
  cardId: string;
  reason: string;
}

export interface UnblockRequest {
  idempotencyKey: string;
  caseId: string;
  accountId: string;
  /** The block to lift, as `blockCard` returned it. */
  blockId: string;
  reason: string;
}

/** The account's block on file, as far as the issuer says whose it is. */
export interface BlockHolder {
  blockId: string;
  caseId?: string;
}

export type UnblockResult =
  /** Lifted now, or (`repeated`) by an earlier request with this key. */
  | { outcome: 'lifted'; repeated: boolean }
  /** The account has no block on file: nothing lifted. */
  | { outcome: 'not-blocked' }
  /** The account's block on file is another one (another case's): left in place. */
  | { outcome: 'held-by-other'; heldBy: BlockHolder };

export interface IssuerAdapter {
  /**
   * Block the card, once per key. `replaced`: the account's block on file before this one (an earlier case's block
   * that was never lifted), which this block now stands for.
   */
  blockCard(input: BlockRequest): Promise<{ blockId: string; repeated: boolean; replaced?: BlockHolder }>;
  /** The block made with this idempotency key, if one was. */
  blockMadeWith(idempotencyKey: string): Promise<BlockHolder | undefined>;
  /** Lift the block `blockId`, once per key, only if it is still the account's block on file. */
  unblockCard(input: UnblockRequest): Promise<UnblockResult>;
  notify(input: { idempotencyKey: string; accountId: string; message: string }): Promise<{ noticeId: string; repeated: boolean }>;
}

// The scripts below are flagged (`#!lua`): Redis refuses one whole when it is out of memory, never half done.

// KEYS: dedupe key, stream. ARGV: oldest stream id to keep, dedupe ttl, then field/value pairs. Returns the stream
// id, new or recorded.
const NOTIFY_ONCE = `#!lua
local prior = redis.call('GET', KEYS[1])
if prior then return {prior, 1} end
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[1], id, 'EX', ARGV[2])
return {id, 0}`;

// KEYS: the key's block record, the blocks hash. ARGV: account, block record (JSON), record ttl. Returns the key's
// block record (new or recorded), whether it was recorded before, and the account's block on file before (or nil).
const BLOCK_ONCE = `#!lua
local prior = redis.call('GET', KEYS[1])
if prior then return {prior, 1, false} end
local before = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return {ARGV[2], 0, before}`;

// KEYS: the key's unblock record, the blocks hash. ARGV: account, block id, unblock record (JSON), record ttl.
// Returns {outcome, record}: 'repeated' with the key's unblock record; 'none' (the account has no block on file);
// 'other' with the account's block on file (not this block: left in place); 'lifted' with the new unblock record.
// Records written before block records carried their block id name it as cardId@idempotencyKey.
const UNBLOCK_ONCE = `#!lua
local prior = redis.call('GET', KEYS[1])
if prior then return {'repeated', prior} end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current then return {'none', ''} end
local ok, rec = pcall(cjson.decode, current)
local id = nil
if ok and type(rec) == 'table' then
  if type(rec.blockId) == 'string' then id = rec.blockId
  elseif type(rec.cardId) == 'string' and type(rec.idempotencyKey) == 'string' then id = rec.cardId .. '@' .. rec.idempotencyKey end
end
if id ~= ARGV[2] then return {'other', current} end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
return {'lifted', ARGV[3]}`;

interface IssuerScripts {
  fraudNotifyOnce(k1: string, k2: string, ...args: string[]): Promise<[string, number]>;
  fraudBlockOnce(k1: string, k2: string, accountId: string, record: string, ttl: string): Promise<[string, number, string | null]>;
  fraudUnblockOnce(k1: string, k2: string, accountId: string, blockId: string, record: string, ttl: string): Promise<[string, string]>;
}

/** The block id a stored block record names (records from before `blockId` was stored: cardId@idempotencyKey). */
function holderOf(json: string): BlockHolder {
  try {
    const r = JSON.parse(json) as { blockId?: unknown; caseId?: unknown; cardId?: unknown; idempotencyKey?: unknown };
    const blockId = typeof r.blockId === 'string' ? r.blockId : `${String(r.cardId)}@${String(r.idempotencyKey)}`;
    return { blockId, ...(typeof r.caseId === 'string' ? { caseId: r.caseId } : {}) };
  } catch {
    return { blockId: '(unreadable block record)' };
  }
}

/**
 * The local issuer. `fraud:issuer:blocks` holds each account's current block (field: account), which readers of the
 * account-level view keep reading; idempotency is per key (`fraud:issuer:block:<key>`, `fraud:issuer:unblock:<key>`,
 * kept as long as the notices' dedupe keys). A block with a new key replaces an earlier case's block still on file
 * (the card stays blocked, now for the new case, which lifts it when it is cleared).
 */
export class LocalIssuer implements IssuerAdapter {
  private readonly redis: Redis;
  private readonly retentionDays: number;

  constructor(redis: Redis, opts: { retentionDays?: number } = {}) {
    this.redis = redis;
    this.retentionDays = opts.retentionDays ?? DEFAULT_RETENTION_DAYS;
    redis.defineCommand('fraudNotifyOnce', { numberOfKeys: 2, lua: NOTIFY_ONCE });
    redis.defineCommand('fraudBlockOnce', { numberOfKeys: 2, lua: BLOCK_ONCE });
    redis.defineCommand('fraudUnblockOnce', { numberOfKeys: 2, lua: UNBLOCK_ONCE });
  }

  private get scripts(): IssuerScripts {
    return this.redis as unknown as IssuerScripts;
  }

  private get ttl(): string {
    return String(this.retentionDays * 86_400);
  }

  async blockCard(input: BlockRequest) {
    const blockId = `${input.cardId}@${input.idempotencyKey}`;
    const record = JSON.stringify({ blockId, ...input, blockedAt: new Date().toISOString() });
    const [stored, repeated, before] = await this.scripts.fraudBlockOnce(caseKeys.issuerBlock(input.idempotencyKey), caseKeys.issuerBlocks, input.accountId, record, this.ttl);
    const replaced = before ? holderOf(before) : undefined;
    return { blockId: holderOf(stored).blockId, repeated: repeated === 1, ...(replaced ? { replaced } : {}) };
  }

  async blockMadeWith(idempotencyKey: string): Promise<BlockHolder | undefined> {
    const record = await this.redis.get(caseKeys.issuerBlock(idempotencyKey));
    return record === null ? undefined : holderOf(record);
  }

  async unblockCard(input: UnblockRequest): Promise<UnblockResult> {
    const record = JSON.stringify({ ...input, liftedAt: new Date().toISOString() });
    const [outcome, stored] = await this.scripts.fraudUnblockOnce(
      caseKeys.issuerUnblock(input.idempotencyKey), caseKeys.issuerBlocks, input.accountId, input.blockId, record, this.ttl,
    );
    if (outcome === 'lifted' || outcome === 'repeated') return { outcome: 'lifted', repeated: outcome === 'repeated' };
    if (outcome === 'none') return { outcome: 'not-blocked' };
    return { outcome: 'held-by-other', heldBy: holderOf(stored) };
  }

  async notify(input: { idempotencyKey: string; accountId: string; message: string }) {
    const [noticeId, repeated] = await this.scripts.fraudNotifyOnce(
      caseKeys.issuerNoticeSent(input.idempotencyKey), caseKeys.issuerNotifications, minStreamId(this.retentionDays), this.ttl,
      'account', input.accountId, 'message', input.message, 'key', input.idempotencyKey, 'at', new Date().toISOString(),
    );
    return { noticeId, repeated: repeated === 1 };
  }
}
