// Redis answering with errors rather than going away: writes refused because memory is full (what `noeviction` does
// at maxmemory; here `CONFIG SET maxmemory 1`), then accepted again. The alerts of a burst produced meanwhile must
// all arrive, once, with the guide's counters. Checked against the burst itself, not against the detector's code.
import { afterAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { createTopics, isolatedRedis, produce, redisClient, startService, uniqueId, waitFor, type RunningProcess } from '../../harness/stack.ts';

const T = Date.now() - 20 * 60_000;
const payment = (sender: string, tx: string, atMs: number) => ({
  key: sender,
  value: JSON.stringify({ transaction_id: tx, sender_account_id: sender, receiver_account_id: 'ACC_R', amount: 9.5, currency: 'EUR', region: 'eu', timestamp: atMs }),
});

describe('detector while Redis refuses writes', () => {
  const running: RunningProcess[] = [];
  let admin: Redis | undefined;
  let maxmemory: string | undefined;
  afterAll(async () => {
    // Whatever happened, Redis accepts writes again for the tests after this one.
    if (admin && maxmemory !== undefined) await admin.config('SET', 'maxmemory', maxmemory);
    admin?.disconnect();
    for (const p of running) await p.kill();
  });

  it('when Redis refuses writes (out of memory) while a burst arrives, then every alert is written once Redis accepts them again', async () => {
    const { topic, dlq } = await createTopics(1);
    const { db, redis } = await isolatedRedis();
    admin = redisClient(0);
    maxmemory = ((await admin.config('GET', 'maxmemory')) as string[])[1]!;
    const det = await startService(
      'detector/main.ts',
      { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('g-'), CASE_SIGNALLER: 'off', CHECKPOINT_INTERVAL_MS: '100', LOG_LEVEL: 'warn' },
      { portVar: 'DETECTOR_METRICS_PORT' },
    );
    running.push(det);
    // A first alert, so the detector owns its partition and has checkpointed before the refusals start.
    const warm = uniqueId('ACC_WARM_');
    await produce(topic, [0, 1, 2].map((i) => payment(warm, `${warm}-${i}`, T + i * 1000)));
    await waitFor('the first alert', async () => (await redis.sismember('fraud:alerts:accounts', warm)) === 1, 30_000, 100);

    await admin.config('SET', 'maxmemory', '1');
    expect(await redis.set('probe', '1').then(() => 'accepted', (e: Error) => e.message)).toMatch(/^OOM /);
    // Three senders, three alerts each (nine payments apiece), produced while Redis refuses.
    const senders = [1, 2, 3].map((n) => uniqueId(`ACC_OOM${n}_`));
    await produce(topic, senders.flatMap((s, n) => Array.from({ length: 9 }, (_, i) => payment(s, `${s}-${i}`, T + 10_000 + n * 100 + i * 1000))));
    await new Promise((r) => setTimeout(r, 3_000)); // the detector reads them and its writes are refused
    await admin.config('SET', 'maxmemory', maxmemory);

    await waitFor('every alert of the burst', async () => (await redis.xlen('fraud:alerts:stream')) >= 10, 30_000, 200);
    await new Promise((r) => setTimeout(r, 1_000)); // and nothing more after them
    const stream = (await redis.xrange('fraud:alerts:stream', '-', '+')).map(([, f]) => JSON.parse(f[1]!) as { sender_account_id: string; transaction_ids: string[] });
    expect(stream).toHaveLength(10);
    for (const s of senders) {
      const mine = stream.filter((a) => a.sender_account_id === s).map((a) => a.transaction_ids);
      expect(mine).toStrictEqual([0, 3, 6].map((k) => [k, k + 1, k + 2].map((i) => `${s}-${i}`)));
      expect(await redis.get(`fraud:count:sender:${s}`)).toBe('3');
      expect(await redis.sismember('fraud:alerts:accounts', s)).toBe(1);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${det.port}/metrics`)).text();
    expect(metrics).toMatch(/^detector_write_failures_total\{write="alert write"\} [1-9]/m);
    redis.disconnect();
  });
});
