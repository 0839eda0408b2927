// The detector against the real broker and Redis: alert keys, replay, dead letters, crashes, scaling out. The core
// cases run once per Kafka client (KAFKA_CLIENT): kafkajs, the default, and @platformatic/kafka.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { paymentStream } from '../../common/payment-traffic.ts';
import {
  createTopics, isolatedRedis, kafka, produce, redisClient, restartService, startService, uniqueId, waitFor, withOutput, type RunningProcess,
} from '../../harness/stack.ts';

const CLIENTS = ['kafkajs', 'platformatic'] as const;

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

  describe.each(CLIENTS)('with the %s client', (client) => {
    const startWith = (env: Record<string, string>) => start({ KAFKA_CLIENT: client, ...env });

    it('when a sender bursts, then the guide keys are written once, published and streamed', async () => {
      const { topic, dlq } = await createTopics(3);
      const { db, redis } = await isolatedRedis();
      const sender = uniqueId('ACC_');
      const sub = redisClient(db);
      const published: string[] = [];
      await sub.psubscribe('fraud:alerts:*');
      sub.on('pmessage', (_p, _channel, message) => published.push(message));

      const det = await startWith({ PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('g-') });
      const health = (await (await fetch(`http://127.0.0.1:${det.port}/healthz`)).json()) as { details: { kafkaClient: string } };
      expect(health.details.kafkaClient).toBe(client);
      await produce(topic, [payment(sender, 't1', T), payment(sender, 't2', T + 5000), payment(sender, 't3', T + 9000, { amount: 99.99, region: 'us-east' })]);

      const raw = await waitFor('the alert key', () => redis.get(`fraud:alerts:sender:${sender}`).then((v) => v ?? undefined));
      const alert = JSON.parse(raw) as Record<string, unknown>;
      expect(alert.sender_account_id).toBe(sender);
      expect(alert.velocity_count).toBe(3);
      expect(alert.amount).toBe(99.99);
      expect(alert.region).toBe('us-east');
      expect(alert.alert_timestamp).toBe(new Date(T + 9000).toISOString());
      expect(alert.transaction_ids).toStrictEqual(['t1', 't2', 't3']);
      expect(String(alert.alert_id)).toMatch(/^va_[0-9a-f]{24}$/);
      expect(await redis.smembers('fraud:alerts:accounts')).toStrictEqual([sender]);
      expect(await redis.get(`fraud:count:sender:${sender}`)).toBe('1');
      expect(await redis.type(`fraud:alerts:sender:${sender}`)).toBe('string');
      await waitFor('the published alert', async () => published.length === 1);
      expect((JSON.parse(published[0]!) as { alert_id: string }).alert_id).toBe(alert.alert_id);
      expect(await streamAlertIds(redis)).toStrictEqual([alert.alert_id]);

      // Two more below threshold: no new alert.
      await produce(topic, [payment(sender, 't4', T + 10_000), payment(sender, 't5', T + 11_000)]);
      await waitFor('both events processed', async () => (await metric(det.port, 'detector_events_total{outcome="counted"}')) >= 4);
      expect(await redis.get(`fraud:count:sender:${sender}`)).toBe('1');
      const code = await det.stop();
      // The end of the detector's output goes with a failure: it says why the stop was not clean.
      expect({ code, output: code === 0 ? '' : det.output().slice(-4000) }).toStrictEqual({ code: 0, output: '' });
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

      const first = await startWith({ ...env, DETECTOR_GROUP_ID: uniqueId('g-') });
      await waitFor('all alerts', async () => (await redis.xlen('fraud:alerts:stream')) >= bursts);
      await first.stop();
      const countsBefore = await countsBySender(redis);
      expect(Object.keys(countsBefore).length).toBe(bursts);

      const replay = await startWith({ ...env, DETECTOR_GROUP_ID: uniqueId('g-') });
      await waitFor('the replay to recompute every alert', async () => (await metric(replay.port, 'detector_alerts_duplicate_total')) >= bursts);
      expect(await metric(replay.port, 'detector_alerts_written_total')).toBe(0);
      await replay.stop();
      expect(await countsBySender(redis)).toStrictEqual(countsBefore);
      expect(await redis.xlen('fraud:alerts:stream')).toBe(bursts);
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
      // After the good ones: a payment two windows older than them (late), and one without a key.
      const after = [payment(sender, 'late', T - 120_000), { key: null, value: payment(sender, 'nokey', T + 3).value }];
      await produce(topic, [...bad, payment(sender, 'g1', T), payment(sender, 'g2', T + 1), payment(sender, 'g3', T + 2), ...after]);
      const det = await startWith({ PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('g-') });

      const consumer = kafka.consumer({ groupId: uniqueId('dlq-reader-') });
      await consumer.connect();
      await consumer.subscribe({ topic: dlq, fromBeginning: true });
      const dead: Array<{ value: string; reason: string; offset: string }> = [];
      await consumer.run({
        eachMessage: async ({ message }) => {
          dead.push({ value: message.value!.toString(), reason: message.headers!['dlq-reason']!.toString(), offset: message.headers!['dlq-source-offset']!.toString() });
        },
      });
      await waitFor('seven dead letters', async () => dead.length >= 7);
      await consumer.disconnect();
      expect(dead.map((d) => d.value)).toStrictEqual([...bad, ...after].map((b) => b.value));
      expect(dead.map((d) => d.offset)).toStrictEqual(['0', '1', '2', '3', '4', '8', '9']);
      const reasons = dead.map((d) => d.reason);
      expect(reasons[0]!).toMatch(/malformed JSON/);
      expect(reasons[1]!).toMatch(/amount must be greater than 0/);
      expect(reasons[2]!).toMatch(/currency is not an ISO 4217 code/);
      expect(reasons[3]!).toMatch(/before 2000-01-01/);
      expect(reasons[4]!).toMatch(/missing field receiver_account_id/);
      expect(reasons[5]!).toMatch(/^late: event time .* is a window or more behind the partition's newest event time/);
      expect(reasons[6]!).toMatch(/^message has no key/);

      const alert = await waitFor('the alert after the bad events', () => redis.get(`fraud:alerts:sender:${sender}`).then((v) => v ?? undefined));
      expect((JSON.parse(alert) as { transaction_ids: string[] }).transaction_ids).toStrictEqual(['g1', 'g2', 'g3']);
      expect(await metric(det.port, 'detector_events_total{outcome="dead_letter"}')).toBe(6);
      expect(await metric(det.port, 'detector_events_total{outcome="late"}')).toBe(1);
      await det.stop();
      redis.disconnect();
    });
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
      expect(reference.ids.length).toBe(expected);
    });

    async function settle(redis: Redis): Promise<void> {
      await waitFor('every alert', async () => (await redis.xlen('fraud:alerts:stream')) >= expected, 180_000, 250);
    }

    /** The alert stream and the guide's counters hold exactly what the uninterrupted reference run wrote. */
    async function expectReferenceAlerts(redis: Redis, { keepOpen = false } = {}): Promise<void> {
      expect((await streamAlertIds(redis)).sort()).toStrictEqual(reference.ids);
      expect(await countsBySender(redis)).toStrictEqual(reference.counts);
      if (!keepOpen) redis.disconnect();
    }

    // The reference comes from kafkajs: the other client must give the very same alerts.
    describe.each(CLIENTS)('with the %s client', (client) => {
      it('when the detector is SIGKILLed mid-stream and restarted, then the alert set is unchanged', async () => {
        const { db, redis } = await isolatedRedis();
        const env = { KAFKA_CLIENT: client, PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('crash-') };
        for (const atAlerts of [Math.floor(expected * 0.2), Math.floor(expected * 0.55)]) {
          const victim = await start(env);
          await withOutput(victim, waitFor(`${atAlerts} alerts`, async () => (await redis.xlen('fraud:alerts:stream')) >= atAlerts, 120_000, 20));
          await victim.kill();
          expect((await redis.xlen('fraud:alerts:stream')) < expected).toBeTruthy(); // the kill must land mid-stream
        }
        const survivor = await start(env);
        await withOutput(survivor, settle(redis));
        await survivor.stop();
        await expectReferenceAlerts(redis);
      });

      it('when two detectors share the group and one is killed, then its partitions move and the alert set is unchanged', async () => {
        // Same events on a topic of their own, the second half produced only after one detector is dead.
        const own = await createTopics(6);
        const half = Math.floor(events.length / 2);
        await produce(own.topic, events.slice(0, half));
        const { db, redis } = await isolatedRedis();
        const env = { KAFKA_CLIENT: client, PAYMENTS_TOPIC: own.topic, DLQ_TOPIC: own.dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('pair-') };
        const [a, b] = await Promise.all([start({ ...env, DETECTOR_INSTANCE_ID: 'det-a' }), start({ ...env, DETECTOR_INSTANCE_ID: 'det-b' })]);
        await waitFor('both detectors to consume', async () =>
          (await metric(a!.port, 'detector_events_total')) > 0 && (await metric(b!.port, 'detector_events_total')) > 0, 60_000, 50);
        await a!.kill();
        await produce(own.topic, events.slice(half));
        await withOutput(b!, settle(redis));
        await b!.stop();
        await expectReferenceAlerts(redis);
      });

      it('when Redis and then Kafka restart mid-stream, then the detector waits, resumes and the alert set is unchanged', async () => {
        const own = await createTopics(6);
        const third = Math.floor(events.length / 3);
        await produce(own.topic, events.slice(0, third));
        const { db, redis } = await isolatedRedis();
        const det = await start({ KAFKA_CLIENT: client, PAYMENTS_TOPIC: own.topic, DLQ_TOPIC: own.dlq, REDIS_DB: String(db), DETECTOR_GROUP_ID: uniqueId('outage-'), LOG_LEVEL: 'info' });
        // Whatever fails (a stall, a wrong alert set), the error carries what the detector said.
        const redis2 = await withOutput(det, (async () => {
          await waitFor('the first third', async () => (await metric(det.port, 'detector_events_total')) >= third, 60_000, 50);

          await restartService('redis');
          redis.disconnect();
          const again = redisClient(db);
          await produce(own.topic, events.slice(third, 2 * third));
          await waitFor('Redis to be seen again', async () => {
            const health = await fetch(`http://127.0.0.1:${det.port}/healthz`);
            return health.ok;
          }, 60_000, 200);

          await restartService('kafka');
          await produce(own.topic, events.slice(2 * third));
          await waitFor('every alert after both restarts', async () => (await again.xlen('fraud:alerts:stream')) >= expected, 180_000, 250);
          expect(det.proc.exitCode).toBe(null); // the detector kept running through both outages
          await expectReferenceAlerts(again, { keepOpen: true });
          return again;
        })());
        await det.stop();
        redis2.disconnect();
      });
    });
  });
});
