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
// Checkpoints: per partition, a meta hash {offset, watermark, epoch} and a log of segments (a list of segment keys,
// each segment a string of at most ~256 KiB of sender records, contracts/checkpoint-segment.ts). A checkpoint appends the
// records of the senders that changed since the one before; now and then the detector writes a full snapshot a slice
// at a time and then drops the segments before it, so the log stays within a few times the state's size. No command
// touches more than one segment's worth of data, so none holds Redis up for long, whatever the number of senders.
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

// The commit of a checkpoint, after its segments were stored (each a small SET, on a connection of its own, so alert
// writes interleave with them). KEYS: meta, segment list, legacy state hash, garbage list, then the new segments.
// ARGV: epoch, offset, watermark, run id, drop. It is refused unless the epoch is this owner's (fencing) and Redis is
// the very server (run_id) the partition was claimed on: a restarted Redis may have come back without its last
// acknowledged writes (a crash under appendfsync everysec, a failover to a replica that lagged), and a delta on top
// of an older state would make the checkpoint claim what is not there. Every new segment must still be there (they
// are stored with an expiry, so those of an owner that crashed or was fenced before committing do not stay).
// drop >= 0 ends a full snapshot: the first `drop` segments of the list are no longer needed, nor is a legacy state
// hash. Their names move to the garbage list (one RPUSH per thousand) and DELETE_GARBAGE deletes them afterwards, a
// few per command: the commit stays a few commands per new segment however long the log was.
const COMMIT_CHECKPOINT = `#!lua
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[1] then return redis.error_reply('${RedisErrorCode.Fenced} partition owned by epoch ' .. tostring(epoch)) end
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
if run ~= ARGV[4] then return redis.error_reply('${RedisErrorCode.Restarted} redis run_id is ' .. tostring(run) .. ', not ' .. ARGV[4]) end
for i = 5, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return redis.error_reply('ERR checkpoint segment ' .. KEYS[i] .. ' was not stored') end
end
local drop = tonumber(ARGV[5])
if drop > 0 then
  local old = redis.call('LRANGE', KEYS[2], 0, drop - 1)
  for i = 1, #old, 1000 do redis.call('RPUSH', KEYS[4], unpack(old, i, math.min(i + 999, #old))) end
  redis.call('LTRIM', KEYS[2], drop, -1)
end
if drop >= 0 then redis.call('UNLINK', KEYS[3]) end
for i = 5, #KEYS do
  redis.call('PERSIST', KEYS[i])
  redis.call('RPUSH', KEYS[2], KEYS[i])
end
redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'watermark', ARGV[3])
return 1`;

// Delete up to ARGV[1] segments named in the garbage list (KEYS[1]); returns how many names are left.
const DELETE_GARBAGE = `
local names = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if names then for _, key in ipairs(names) do redis.call('UNLINK', key) end end
return redis.call('LLEN', KEYS[1])`;

/** Segments deleted per DELETE_GARBAGE command (each about a microsecond of Redis time). */
const GARBAGE_CHUNK = 32;

/** How long a stored segment waits for its commit before Redis drops it. */
const SEGMENT_TTL_MS = 10 * 60_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fraudWriteAlert(
      seen: string, accounts: string, sender: string, count: string, stream: string,
      senderId: string, json: string, ttl: number, channel: string,
    ): Result<number, Context>;
    /** numkeys, keys, then ARGV (see COMMIT_CHECKPOINT). */
    fraudCommitCheckpoint(numKeys: number, ...keysAndArgs: Array<string | number>): Result<number, Context>;
    fraudDeleteGarbage(garbage: string, max: number): Result<number, Context>;
  }
}

export interface Checkpoint {
  epoch: number;
  /** The Redis server (its run_id) the checkpoint was read from: later checkpoints are only written there. */
  runId: string;
  /** Next offset to process, or null when the partition was never checkpointed. */
  offset: string | null;
  watermark: number;
  /** The segments of the checkpoint log, in order (see contracts/checkpoint-segment.ts). */
  segments: Buffer[];
  /** Sender -> window entries (JSON) of a checkpoint written before segments existed; replaced by the first snapshot. */
  legacy: Array<[string, string]>;
}

/** One checkpoint: the segments it adds to the partition's log, and the position they bring it to. */
export interface CheckpointWrite {
  topic: string;
  partition: number;
  epoch: number;
  runId: string;
  offset: string;
  watermark: number;
  /** Segment numbers are this owner's (epoch's) own: `seq` is the number of the first. */
  seq: number;
  segments: readonly Buffer[];
  /** A full snapshot ends with these segments: drop the first `drop` segments of the log (and any legacy state). */
  drop?: number;
}

export interface AlertWriteResult {
  written: number;
  duplicates: number;
}

export interface AlertStoreOptions {
  dedupeTtlSeconds: number;
  /** Consumer group of the detectors: checkpoints are kept per group. */
  group: string;
  /** Told when deleting obsolete segments failed (they stay listed, and are deleted later): for a log line. */
  onGarbageError?: (err: unknown, topic: string, partition: number) => void;
  /** Replicas that must acknowledge the writes before `replicated()` says yes (Redis WAIT); default 0: no wait. */
  waitReplicas?: number;
  /** How long one WAIT may block (ms, default 2000). */
  waitTimeoutMs?: number;
}

/** What the detector needs of its store: alert writes, and per-partition ownership and checkpoints. */
export interface DetectorStore {
  writeAlerts(alerts: readonly Alert[]): Promise<AlertWriteResult>;
  claim(topic: string, partition: number): Promise<Checkpoint>;
  checkpoint(write: CheckpointWrite): Promise<void>;
  /** The Redis server's run_id: it changes whenever Redis restarts. */
  serverRunId(): Promise<string>;
  /** A partition's checkpointed offset, read without claiming it (null: never checkpointed). */
  checkpointOffset(topic: string, partition: number): Promise<string | null>;
  /**
   * Whether every checkpoint written so far, and every alert written before it, is held by as many replicas as
   * required (null: none are required, nothing was asked). Asked before Kafka offsets are committed, so a failover
   * to a replica never loses what the offsets say is done.
   */
  replicated(): Promise<{ required: number; acknowledged: number } | null>;
}

export class AlertStore implements DetectorStore {
  private readonly redis: Redis;
  private readonly checkpoints: Redis;
  private readonly opts: AlertStoreOptions;

  /**
   * `checkpointRedis`: a second connection for checkpoint segments, so alert writes never queue behind them on one
   * socket (defaults to the same connection).
   */
  constructor(redis: Redis, opts: AlertStoreOptions, checkpointRedis: Redis = redis) {
    this.redis = redis;
    this.checkpoints = checkpointRedis;
    this.opts = opts;
    redis.defineCommand('fraudWriteAlert', { numberOfKeys: 5, lua: WRITE_ALERT });
    checkpointRedis.defineCommand('fraudCommitCheckpoint', { lua: COMMIT_CHECKPOINT });
    checkpointRedis.defineCommand('fraudDeleteGarbage', { numberOfKeys: 1, lua: DELETE_GARBAGE });
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

  // WAIT covers the writes of the connection it is sent on, up to the replication offset of its last write. The
  // checkpoint connection's last write is a checkpoint sent after its batch's alerts were acknowledged, so that
  // offset also covers those alerts (the replication stream is one ordered log).
  async replicated(): Promise<{ required: number; acknowledged: number } | null> {
    const required = this.opts.waitReplicas ?? 0;
    if (required === 0) return null;
    const acknowledged = await this.checkpoints.wait(required, this.opts.waitTimeoutMs ?? 2000);
    return { required, acknowledged };
  }

  /**
   * Take ownership of a partition (bumping its epoch) and read its last checkpoint. The server's run_id is read
   * first: if Redis restarts during the claim, the claim names the server before, and its first checkpoint is refused.
   */
  async claim(topic: string, partition: number): Promise<Checkpoint> {
    const runId = await this.serverRunId();
    const { group } = this.opts;
    const metaKey = checkpointKeys.meta(group, topic, partition);
    const epoch = await this.redis.hincrby(metaKey, 'epoch', 1);
    const meta = await this.redis.hgetall(metaKey);
    const names = await this.redis.lrange(checkpointKeys.segments(group, topic, partition), 0, -1);
    const segments: Buffer[] = [];
    for (let i = 0; i < names.length; i += 64) {
      const batch = names.slice(i, i + 64);
      const got = await this.redis.mgetBuffer(...batch);
      got.forEach((segment, k) => {
        if (segment === null) throw new Error(`checkpoint segment ${batch[k]} is listed in ${checkpointKeys.segments(group, topic, partition)} but missing from Redis: this partition's state is lost`);
        segments.push(segment);
      });
    }
    const legacy: Array<[string, string]> = [];
    const stateKey = checkpointKeys.legacyState(group, topic, partition);
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(stateKey, cursor, 'COUNT', 5000);
      for (let i = 0; i < flat.length; i += 2) legacy.push([flat[i]!, flat[i + 1]!]);
      cursor = next;
    } while (cursor !== '0');
    await this.deleteGarbage(topic, partition);
    return { epoch, runId, offset: meta.offset ?? null, watermark: Number(meta.watermark ?? 0), segments, legacy };
  }

  /**
   * Persist a checkpoint if this detector still owns the partition: its segments first (each a small command that
   * expires unless committed), then the commit, all in one round trip on the checkpoint connection.
   */
  async checkpoint(w: CheckpointWrite): Promise<void> {
    const { group } = this.opts;
    const segmentKeys = w.segments.map((_, i) => checkpointKeys.segment(group, w.topic, w.partition, w.epoch, w.seq + i));
    const p = this.checkpoints.pipeline();
    w.segments.forEach((segment, i) => p.set(segmentKeys[i]!, segment, 'PX', SEGMENT_TTL_MS));
    const garbage = checkpointKeys.garbage(group, w.topic, w.partition);
    const keys = [
      checkpointKeys.meta(group, w.topic, w.partition), checkpointKeys.segments(group, w.topic, w.partition),
      checkpointKeys.legacyState(group, w.topic, w.partition), garbage, ...segmentKeys,
    ];
    p.fraudCommitCheckpoint(keys.length, ...keys, w.epoch, w.offset, w.watermark, w.runId, w.drop ?? -1);
    const results = (await p.exec()) ?? [];
    // The commit's answer decides (a refused SET shows there as a segment not stored).
    const [err] = results[results.length - 1] ?? [new Error('checkpoint pipeline returned nothing')];
    if (err) throw err;
    if (w.drop !== undefined && w.drop > 0) await this.deleteGarbage(w.topic, w.partition);
  }

  /**
   * Delete the segments a finished snapshot made obsolete, a few per command. Best effort: the names stay listed
   * until deleted, so what a crash or an error leaves is deleted by the next snapshot's commit or the next claim.
   */
  async deleteGarbage(topic: string, partition: number): Promise<void> {
    const garbage = checkpointKeys.garbage(this.opts.group, topic, partition);
    try {
      while ((await this.checkpoints.fraudDeleteGarbage(garbage, GARBAGE_CHUNK)) > 0);
    } catch (err) {
      // Left for later (see above): a checkpoint does not fail because old segments are still there.
      this.opts.onGarbageError?.(err, topic, partition);
    }
  }
}

/** A checkpoint refused because a newer owner holds the partition. */
export const isFencedError = (err: unknown): boolean => isRedisError(err, RedisErrorCode.Fenced);

/** A checkpoint refused because Redis restarted since the partition was claimed. */
export const isRestartedError = (err: unknown): boolean => isRedisError(err, RedisErrorCode.Restarted);
