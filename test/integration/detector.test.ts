// The detector against the real broker and Redis: alert keys, replay, dead letters, crashes, scaling out.
import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { paymentStream } from '../../traffic/generator.ts';
import {
  createTopics, isolatedRedis, kafka, produce, redisClient, restartService, startService, uniqueId, waitFor, type RunningProcess,
} from '../support/stack.ts';

const startDetector = (env: Record<string, string>) =>
  startService('detector/main.ts', { CHECKPOINT_INTERVAL_MS: '100', LOG_LEVEL: 'warn', ...env }, { portVar: 'DETECTOR_METRICS_PORT' });

const T = Date.now() - 30 * 60_000;
const payment = (sender: string, tx: string, atMs: number, extra: Record<string, unknown> = {}) => ({
  key: sender,
  value: JSON.stringify({ transaction_id: tx, sender_account_id: sender, receiver_account_id: 'ACC_R', amount: 42.5, currency: 'EUR', region: 'eu-west', timestamp: atMs, ...extra }),
});

/** Alert ids in the durable alert stream, in order. */
async function streamAlertIds(redis: Redis): Promise<string[]> {
  const entries = await redis.xrange('fraud:alerts:stream', '-', '+');
  return entries.map(([, fields]) => (JSON.parse(fields[1]!) as { alert_id: string }).alert_id);
}

async function countsBySender(redis: Redis): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await redis.keys('fraud:count:sender:*')) out[key] = (await redis.get(key))!;
  return out;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('detector on Kafka and Redis', () => {
  const running: RunningProcess[] = [];
  afterAll(async () => {
    for (const p of running) await p.kill();
  });
  const start = async (env: Record<string, string>) => {
    const p = await startDetector(env);
    running.push(p);
    return p;
  };

  it('when a sender bursts, then the guide keys are written once, published and streamed', async () => {
    const { topic, dlq } = await createTopics(3);
    const { db, redis } = await isolatedRedis();
    const sender = uniqueId('ACC_');
    const sub = redisClient(db);
    const published: string[] = [];
    await sub.psubscribe('fraud:alerts:*');
    sub.on('pmessage', (_p, _channel, message) => published.push(message));

    const det = await start({ PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('g-') });
    await produce(topic, [payment(sender, 't1', T), payment(sender, 't2', T + 5000), payment(sender, 't3', T + 9000, { amount: 99.99, region: 'us-east' })]);

    const raw = await waitFor('the alert key', () => redis.get(`fraud:alerts:sender:${sender}`).then((v) => v ?? undefined));
    const alert = JSON.parse(raw) as Record<string, unknown>;
    assert.equal(alert.sender_account_id, sender);
    assert.equal(alert.velocity_count, 3);
    assert.equal(alert.amount, 99.99);
    assert.equal(alert.region, 'us-east');
    assert.equal(alert.alert_timestamp, new Date(T + 9000).toISOString());
    assert.deepEqual(alert.transaction_ids, ['t1', 't2', 't3']);
    assert.match(String(alert.alert_id), /^va_[0-9a-f]{24}$/);
    assert.deepEqual(await redis.smembers('fraud:alerts:accounts'), [sender]);
    assert.equal(await redis.get(`fraud:count:sender:${sender}`), '1');
    assert.equal(await redis.type(`fraud:alerts:sender:${sender}`), 'string');
    await waitFor('the published alert', async () => published.length === 1);
    assert.equal((JSON.parse(published[0]!) as { alert_id: string }).alert_id, alert.alert_id);
    assert.deepEqual(await streamAlertIds(redis), [alert.alert_id]);

    // Two more below threshold: no new alert.
    await produce(topic, [payment(sender, 't4', T + 10_000), payment(sender, 't5', T + 11_000)]);
    await waitFor('both events processed', async () => (await metric(det.port, 'detector_events_total{outcome="counted"}')) >= 4);
    assert.equal(await redis.get(`fraud:count:sender:${sender}`), '1');
    assert.equal(await det.stop(), 0);
    sub.disconnect();
    redis.disconnect();
  });

  it('when the same events are replayed by a fresh consumer group, then no alert is counted twice', async () => {
    const { topic, dlq } = await createTopics(3);
    const { db, redis } = await isolatedRedis();
    const events = [...paymentStream({ events: 3000, senders: 300, burstShare: 0.05, accountPrefix: uniqueId('R'), seed: 7, startTime: T, spanMs: 20 * 60_000 })];
    const bursts = new Set(events.filter((e) => e.kind === 'burst').map((e) => e.key)).size;
    await produce(topic, events);
    const env = { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db) };

    const first = await start({ ...env, DETECTOR_GROUP_ID: uniqueId('g-') });
    await waitFor('all alerts', async () => (await redis.xlen('fraud:alerts:stream')) >= bursts);
    await first.stop();
    const countsBefore = await countsBySender(redis);
    assert.equal(Object.keys(countsBefore).length, bursts);

    const replay = await start({ ...env, DETECTOR_GROUP_ID: uniqueId('g-') });
    await waitFor('the replay to recompute every alert', async () => (await metric(replay.port, 'detector_alerts_duplicate_total')) >= bursts);
    assert.equal(await metric(replay.port, 'detector_alerts_written_total'), 0);
    await replay.stop();
    assert.deepEqual(await countsBySender(redis), countsBefore);
    assert.equal(await redis.xlen('fraud:alerts:stream'), bursts);
    redis.disconnect();
  });

  it('when events are malformed, then each goes to the DLQ with its bytes and a reason, and good events after them still alert', async () => {
    const { topic, dlq } = await createTopics(1);
    const { db, redis } = await isolatedRedis();
    const sender = uniqueId('ACC_');
    const bad = [
      { key: sender, value: '{"transaction_id": "x"' },
      payment(sender, 'neg', T, { amount: -1 }),
      payment(sender, 'cur', T, { currency: 'ABC' }),
      payment(sender, 'old', T, { timestamp: '1999-12-31T23:59:59Z' }),
      { key: sender, value: JSON.stringify({ transaction_id: 'miss', sender_account_id: sender }) },
    ];
    await produce(topic, [...bad, payment(sender, 'g1', T), payment(sender, 'g2', T + 1), payment(sender, 'g3', T + 2)]);
    const det = await start({ PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('g-') });

    const consumer = kafka.consumer({ groupId: uniqueId('dlq-reader-') });
    await consumer.connect();
    await consumer.subscribe({ topic: dlq, fromBeginning: true });
    const dead: Array<{ value: string; reason: string; offset: string }> = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        dead.push({ value: message.value!.toString(), reason: message.headers!['dlq-reason']!.toString(), offset: message.headers!['dlq-source-offset']!.toString() });
      },
    });
    await waitFor('five dead letters', async () => dead.length >= 5);
    await consumer.disconnect();
    assert.deepEqual(dead.map((d) => d.value), bad.map((b) => b.value));
    assert.deepEqual(dead.map((d) => d.offset), ['0', '1', '2', '3', '4']);
    const reasons = dead.map((d) => d.reason);
    assert.match(reasons[0]!, /malformed JSON/);
    assert.match(reasons[1]!, /amount must be greater than 0/);
    assert.match(reasons[2]!, /currency is not an ISO 4217 code/);
    assert.match(reasons[3]!, /before 2000-01-01/);
    assert.match(reasons[4]!, /missing field receiver_account_id/);

    const alert = await waitFor('the alert after the bad events', () => redis.get(`fraud:alerts:sender:${sender}`).then((v) => v ?? undefined));
    assert.deepEqual((JSON.parse(alert) as { transaction_ids: string[] }).transaction_ids, ['g1', 'g2', 'g3']);
    assert.equal(await metric(det.port, 'detector_events_total{outcome="dead_letter"}'), 5);
    await det.stop();
    redis.disconnect();
  });

  describe('crashes and scaling out give the same alerts as one uninterrupted detector', () => {
    let topic: string;
    let dlq: string;
    let expected: number;
    let reference: { ids: string[]; counts: Record<string, string> };
    const prefix = uniqueId('K');
    const events = [...paymentStream({ events: 60_000, senders: 5_000, burstShare: 0.03, burstSize: 5, accountPrefix: prefix, seed: 11, startTime: T, spanMs: 25 * 60_000 })];

    beforeAll(async () => {
      ({ topic, dlq } = await createTopics(6));
      await produce(topic, events);
      // Each burst is 5 payments of a fresh sender within seconds: with threshold 3 that is exactly one alert.
      expected = new Set(events.filter((e) => e.kind === 'burst').map((e) => e.key)).size;
      const { db, redis } = await isolatedRedis();
      const det = await start({ PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('ref-') });
      await waitFor('the reference run', async () => (await redis.xlen('fraud:alerts:stream')) >= expected, 120_000);
      await det.stop();
      reference = { ids: (await streamAlertIds(redis)).sort(), counts: await countsBySender(redis) };
      redis.disconnect();
      assert.equal(reference.ids.length, expected);
    });

    async function settle(redis: Redis): Promise<void> {
      await waitFor('every alert', async () => (await redis.xlen('fraud:alerts:stream')) >= expected, 180_000, 250);
    }

    it('when the detector is SIGKILLed mid-stream and restarted, then the alert set is unchanged', async () => {
      const { db, redis } = await isolatedRedis();
      const env = { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('crash-') };
      for (const atAlerts of [Math.floor(expected * 0.2), Math.floor(expected * 0.55)]) {
        const victim = await start(env);
        await waitFor(`${atAlerts} alerts`, async () => (await redis.xlen('fraud:alerts:stream')) >= atAlerts, 120_000, 20);
        await victim.kill();
        assert.ok((await redis.xlen('fraud:alerts:stream')) < expected, 'the kill must land mid-stream');
      }
      const survivor = await start(env);
      await settle(redis);
      await survivor.stop();
      assert.deepEqual((await streamAlertIds(redis)).sort(), reference.ids);
      assert.deepEqual(await countsBySender(redis), reference.counts);
      redis.disconnect();
    });

    it('when two detectors share the group and one is killed, then its partitions move and the alert set is unchanged', async () => {
      // Same events on a topic of their own, the second half produced only after one detector is dead.
      const own = await createTopics(6);
      const half = Math.floor(events.length / 2);
      await produce(own.topic, events.slice(0, half));
      const { db, redis } = await isolatedRedis();
      const env = { PAYMENTS_TOPIC: own.topic, DLQ_TOPIC: own.dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('pair-') };
      const [a, b] = await Promise.all([start({ ...env, DETECTOR_INSTANCE_ID: 'det-a' }), start({ ...env, DETECTOR_INSTANCE_ID: 'det-b' })]);
      await waitFor('both detectors to consume', async () =>
        (await metric(a!.port, 'detector_events_total')) > 0 && (await metric(b!.port, 'detector_events_total')) > 0, 60_000, 50);
      await a!.kill();
      await produce(own.topic, events.slice(half));
      await settle(redis);
      await b!.stop();
      assert.deepEqual((await streamAlertIds(redis)).sort(), reference.ids);
      assert.deepEqual(await countsBySender(redis), reference.counts);
      redis.disconnect();
    });

    it('when Redis and then Kafka restart mid-stream, then the detector waits, resumes and the alert set is unchanged', async () => {
      const own = await createTopics(6);
      const third = Math.floor(events.length / 3);
      await produce(own.topic, events.slice(0, third));
      const { db, redis } = await isolatedRedis();
      const det = await start({ PAYMENTS_TOPIC: own.topic, DLQ_TOPIC: own.dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('outage-') });
      await waitFor('the first third', async () => (await metric(det.port, 'detector_events_total')) >= third, 60_000, 50);

      await restartService('redis');
      redis.disconnect();
      const redis2 = redisClient(db);
      await produce(own.topic, events.slice(third, 2 * third));
      await waitFor('Redis to be seen again', async () => {
        const health = await fetch(`http://127.0.0.1:${det.port}/healthz`);
        return health.ok;
      }, 60_000, 200);

      await restartService('kafka');
      await produce(own.topic, events.slice(2 * third));
      await waitFor('every alert after both restarts', async () => (await redis2.xlen('fraud:alerts:stream')) >= expected, 180_000, 250);
      assert.equal(det.proc.exitCode, null, 'the detector kept running through both outages');
      await det.stop();
      assert.deepEqual((await streamAlertIds(redis2)).sort(), reference.ids);
      assert.deepEqual(await countsBySender(redis2), reference.counts);
      redis2.disconnect();
    });
  });
});
