// The detector's checkpoint store against the real Redis scripts: a snapshot's commit retires the log before it, and
// the obsolete segments are deleted afterwards a few per command, by the owner or, if it died first, by the next one.
import { afterAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { checkpointKeys } from '../../contracts/redis-keys.ts';
import { AlertStore, isFencedError } from '../../detector/alert-store.ts';
import { isolatedRedis, uniqueId } from '../../harness/stack.ts';

const topic = 'payments';
const partition = 0;

describe('checkpoint store on Redis', () => {
  const clients: Redis[] = [];
  afterAll(() => clients.forEach((c) => c.disconnect()));

  async function store(): Promise<{ redis: Redis; store: AlertStore; group: string; garbageErrors: unknown[] }> {
    const { redis } = await isolatedRedis();
    clients.push(redis);
    const group = uniqueId('cp-');
    const garbageErrors: unknown[] = [];
    return { redis, store: new AlertStore(redis, { dedupeTtlSeconds: 60, group, onGarbageError: (err) => garbageErrors.push(err) }), group, garbageErrors };
  }

  const existing = async (redis: Redis, names: string[]) => (names.length === 0 ? 0 : redis.exists(...names));

  it('when a snapshot completes over a log of 300 segments, then only its own segments remain and the old ones are deleted from Redis', async () => {
    const { redis, store: s, group } = await store();
    const claim = await s.claim(topic, partition);
    const base = { topic, partition, epoch: claim.epoch, runId: claim.runId, watermark: 1 };
    for (let i = 0; i < 300; i++) await s.checkpoint({ ...base, offset: String(i + 1), seq: i, segments: [Buffer.from([1, i % 256])] });
    const log = checkpointKeys.segments(group, topic, partition);
    const old = await redis.lrange(log, 0, -1);
    expect(old).toHaveLength(300);
    expect(await existing(redis, old)).toBe(300);

    await s.checkpoint({ ...base, offset: '301', seq: 300, segments: [Buffer.from([1, 7]), Buffer.from([1, 8])], drop: 300 });
    const now = await redis.lrange(log, 0, -1);
    expect(now).toStrictEqual([checkpointKeys.segment(group, topic, partition, claim.epoch, 300), checkpointKeys.segment(group, topic, partition, claim.epoch, 301)]);
    expect(await existing(redis, old)).toBe(0);
    expect(await redis.llen(checkpointKeys.garbage(group, topic, partition))).toBe(0);

    const again = await s.claim(topic, partition);
    expect(again.offset).toBe('301');
    expect(again.segments).toStrictEqual([Buffer.from([1, 7]), Buffer.from([1, 8])]);
  });

  it('when an owner dies after a snapshot commit and before deleting the old segments, then the next claim deletes them', async () => {
    const { redis, store: s, group } = await store();
    const garbage = checkpointKeys.garbage(group, topic, partition);
    // What the commit leaves until the deletion runs: the old segments still stored, their names in the garbage list.
    const left = Array.from({ length: 70 }, (_, i) => checkpointKeys.segment(group, topic, partition, 1, i));
    for (const name of left) await redis.set(name, Buffer.from([1]));
    await redis.rpush(garbage, ...left);

    const claim = await s.claim(topic, partition);
    expect(await existing(redis, left)).toBe(0);
    expect(await redis.llen(garbage)).toBe(0);
    expect(claim.segments).toStrictEqual([]);
  });

  it('when deleting obsolete segments is refused, then the claim still succeeds and the refusal is reported', async () => {
    const { redis, store: s, group, garbageErrors } = await store();
    await redis.set(checkpointKeys.garbage(group, topic, partition), 'not a list'); // a key of the wrong type
    const claim = await s.claim(topic, partition);
    expect(claim.epoch).toBe(1);
    expect(garbageErrors).toHaveLength(1);
    expect(String(garbageErrors[0])).toContain('WRONGTYPE');
  });

  it('when a stale owner commits after another claimed the partition, then it is fenced and the log is unchanged', async () => {
    const { redis, store: s, group } = await store();
    const first = await s.claim(topic, partition);
    await s.checkpoint({ topic, partition, epoch: first.epoch, runId: first.runId, watermark: 1, offset: '5', seq: 0, segments: [Buffer.from([1, 1])] });
    const second = await s.claim(topic, partition);
    const log = checkpointKeys.segments(group, topic, partition);
    const before = await redis.lrange(log, 0, -1);

    const stale = s.checkpoint({ topic, partition, epoch: first.epoch, runId: first.runId, watermark: 2, offset: '9', seq: 1, segments: [Buffer.from([1, 2])], drop: 1 });
    const err = await stale.then(() => undefined, (e: unknown) => e);
    expect(isFencedError(err)).toBe(true);
    expect(await redis.lrange(log, 0, -1)).toStrictEqual(before);
    expect(await redis.hget(checkpointKeys.meta(group, topic, partition), 'offset')).toBe('5');
    expect(second.epoch).toBe(first.epoch + 1);
  });
});
