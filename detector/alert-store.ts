// Redis adapter of the detector: alert writes in the reference guide's key layout, and the detector's checkpoints.
//
// Per alert, one Lua script does atomically what the guide's clients read, deduplicated by alert id:
//   SET  fraud:alert:seen:<alert_id> NX EX <ttl>        (dedupe: a replayed alert stops here)
//   SADD fraud:alerts:accounts <sender>
//   SET  fraud:alerts:sender:<sender> <alert JSON>
//   INCR fraud:count:sender:<sender>
//   XADD fraud:alerts:stream * alert <JSON>              (durable outbox read by the case signaller and the console)
//   PUBLISH fraud:alerts:sender:<sender> <alert JSON>    (matches the pattern fraud:alerts:*)
//
// Checkpoints: per partition, a hash of sender -> window entries plus a meta hash {offset, watermark, epoch}.
// A new owner of a partition bumps the epoch; a checkpoint carrying an older epoch is refused (fencing), so a
// detector that lost its partition in a rebalance can never overwrite the new owner's state.
import type { Redis, Result } from 'ioredis';
import type { Alert, AlertRecord } from '../contracts/alert.ts';
import { RedisErrorCode, isRedisError } from '../contracts/failures.ts';
import { alertKeys as keys, checkpointKeys } from '../contracts/redis-keys.ts';

// All or nothing. A flagged script (the shebang) is refused as a whole when Redis is out of memory (noeviction), and
// once it runs it completes; the keys' types and the counter's syntax are checked before any write; and the alert id
// is marked as seen only after everything else is written. Otherwise a claim of the seen key followed by a failed
// write would make every retry a "duplicate" and lose the alert.
const WRITE_ALERT = `#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local want = {[2] = 'set', [3] = 'string', [4] = 'string', [5] = 'stream'}
for i, t in pairs(want) do
  local got = redis.call('TYPE', KEYS[i])['ok']
  if got ~= 'none' and got ~= t then return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. got .. ', not a ' .. t) end
end
local c = redis.call('GET', KEYS[4]) or '0'
if not string.match(c, '^-?%d+$') then return redis.error_reply('WRONGTYPE ' .. KEYS[4] .. ' is not a counter') end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
local n = redis.call('INCR', KEYS[4])
redis.call('XADD', KEYS[5], '*', 'alert', ARGV[2], 'count', n)
redis.call('SET', KEYS[1], '1', 'EX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return n`;

// KEYS: meta, state. ARGV: epoch, offset, watermark, upsertCount, run id, then sender/value pairs, then senders to
// delete. A checkpoint is a delta on top of the one before: it is refused unless Redis is the very server (run_id)
// the partition was claimed on. A restarted Redis may have come back without its last acknowledged writes (a crash
// under appendfsync everysec, a failover to a replica that lagged), and a delta on top of an older state would make
// the checkpoint claim what is not there.
const CHECKPOINT = `#!lua
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[1] then return redis.error_reply('${RedisErrorCode.Fenced} partition owned by epoch ' .. tostring(epoch)) end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if run ~= ARGV[5] then return redis.error_reply('${RedisErrorCode.Restarted} redis run_id is ' .. tostring(run) .. ', not ' .. ARGV[5]) end
local last = 5 + 2 * tonumber(ARGV[4])
-- Many fields per call (unpack stays well below Lua's stack limit): far cheaper than one call per field.
for i = 6, last, 2000 do
  redis.call('HSET', KEYS[2], unpack(ARGV, i, math.min(i + 1999, last)))
end
for i = last + 1, #ARGV, 2000 do
  redis.call('HDEL', KEYS[2], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'watermark', ARGV[3])
return 1`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fraudWriteAlert(
      seen: string, accounts: string, sender: string, count: string, stream: string,
      senderId: string, json: string, ttl: number, channel: string,
    ): Result<number, Context>;
    fraudCheckpoint(meta: string, state: string, ...args: Array<string | number>): Result<number, Context>;
  }
}

export interface Checkpoint {
  epoch: number;
  /** The Redis server (its run_id) the checkpoint was read from: later checkpoints are only written there. */
  runId: string;
  /** Next offset to process, or null when the partition was never checkpointed. */
  offset: string | null;
  watermark: number;
  entries: Array<[string, string]>;
}

export interface AlertWriteResult {
  written: number;
  duplicates: number;
}

export interface AlertStoreOptions {
  dedupeTtlSeconds: number;
  /** Consumer group of the detectors: checkpoints are kept per group. */
  group: string;
}

/** What the detector needs of its store: alert writes, and per-partition ownership and checkpoints. */
export interface DetectorStore {
  writeAlerts(alerts: readonly Alert[]): Promise<AlertWriteResult>;
  claim(topic: string, partition: number): Promise<Checkpoint>;
  checkpoint(
    topic: string, partition: number, epoch: number, runId: string, offset: string, watermark: number,
    upserts: ReadonlyArray<[string, string]>, deletes: readonly string[],
  ): Promise<void>;
  /** The Redis server's run_id: it changes whenever Redis restarts. */
  serverRunId(): Promise<string>;
  /** A partition's checkpointed offset, read without claiming it (null: never checkpointed). */
  checkpointOffset(topic: string, partition: number): Promise<string | null>;
}

export class AlertStore implements DetectorStore {
  private readonly redis: Redis;
  private readonly opts: AlertStoreOptions;

  constructor(redis: Redis, opts: AlertStoreOptions) {
    this.redis = redis;
    this.opts = opts;
    redis.defineCommand('fraudWriteAlert', { numberOfKeys: 5, lua: WRITE_ALERT });
    redis.defineCommand('fraudCheckpoint', { numberOfKeys: 2, lua: CHECKPOINT });
  }

  /** Write a batch of alerts in one round trip; each alert is atomic and idempotent on its own. */
  async writeAlerts(alerts: readonly Alert[]): Promise<AlertWriteResult> {
    if (alerts.length === 0) return { written: 0, duplicates: 0 };
    const p = this.redis.pipeline();
    for (const a of alerts) {
      const record: AlertRecord = { ...a, detected_at: new Date().toISOString() };
      const json = JSON.stringify(record);
      const id = a.sender_account_id;
      p.fraudWriteAlert(
        keys.seen(a.alert_id), keys.accounts, keys.sender(id), keys.count(id), keys.stream,
        id, json, this.opts.dedupeTtlSeconds, keys.channel(id),
      );
    }
    const results = (await p.exec()) ?? [];
    let written = 0;
    for (const [err, n] of results) {
      if (err) throw err;
      if ((n as number) >= 0) written++;
    }
    return { written, duplicates: alerts.length - written };
  }

  async serverRunId(): Promise<string> {
    const runId = /^run_id:(\w+)/m.exec(await this.redis.info('server'))?.[1];
    if (!runId) throw new Error('INFO server has no run_id');
    return runId;
  }

  async checkpointOffset(topic: string, partition: number): Promise<string | null> {
    return this.redis.hget(checkpointKeys.meta(this.opts.group, topic, partition), 'offset');
  }

  /**
   * Take ownership of a partition (bumping its epoch) and read its last checkpoint. The server's run_id is read
   * first: if Redis restarts during the claim, the claim names the server before, and its first checkpoint is refused.
   */
  async claim(topic: string, partition: number): Promise<Checkpoint> {
    const runId = await this.serverRunId();
    const metaKey = checkpointKeys.meta(this.opts.group, topic, partition);
    const epoch = await this.redis.hincrby(metaKey, 'epoch', 1);
    const meta = await this.redis.hgetall(metaKey);
    const entries: Array<[string, string]> = [];
    const stateKey = checkpointKeys.state(this.opts.group, topic, partition);
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(stateKey, cursor, 'COUNT', 5000);
      for (let i = 0; i < flat.length; i += 2) entries.push([flat[i]!, flat[i + 1]!]);
      cursor = next;
    } while (cursor !== '0');
    return { epoch, runId, offset: meta.offset ?? null, watermark: Number(meta.watermark ?? 0), entries };
  }

  /** Persist a partition's changed senders and position, if this detector still owns the partition. */
  async checkpoint(
    topic: string, partition: number, epoch: number, runId: string, offset: string, watermark: number,
    upserts: ReadonlyArray<[string, string]>, deletes: readonly string[],
  ): Promise<void> {
    const args: Array<string | number> = [epoch, offset, watermark, upserts.length, runId];
    for (const [sender, value] of upserts) args.push(sender, value);
    for (const sender of deletes) args.push(sender);
    await this.redis.fraudCheckpoint(
      checkpointKeys.meta(this.opts.group, topic, partition), checkpointKeys.state(this.opts.group, topic, partition), ...args,
    );
  }
}

/** A checkpoint refused because a newer owner holds the partition. */
export const isFencedError = (err: unknown): boolean => isRedisError(err, RedisErrorCode.Fenced);

/** A checkpoint refused because Redis restarted since the partition was claimed. */
export const isRestartedError = (err: unknown): boolean => isRedisError(err, RedisErrorCode.Restarted);
