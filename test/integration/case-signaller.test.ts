// The case signaller (detector/case-signaller.ts) on the real Redis stream, with a fake delivery in place of Temporal:
// a fake that records what it is asked to deliver and refuses when told, so the test can see which alerts go out, in
// which order, and what happens to entries that are not alerts or cannot be delivered yet.
import { afterAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { AlertSignal } from '../../contracts/alert.ts';
import { defaultPolicy } from '../../contracts/case.ts';
import { CaseSignaller, TemporalCaseDelivery, type CaseDelivery } from '../../detector/case-signaller.ts';
import { freePort, isolatedRedis, waitFor } from '../../harness/stack.ts';

class FakeDelivery implements CaseDelivery {
  readonly delivered: Array<{ accountId: string; alerts: AlertSignal[] }> = [];
  refuse = 0;
  async connect() {}
  async deliver(accountId: string, alerts: AlertSignal[]) {
    if (this.refuse > 0) {
      this.refuse--;
      throw new Error('14 UNAVAILABLE: connection refused');
    }
    this.delivered.push({ accountId, alerts });
  }
  async close() {}
  ids = () => this.delivered.flatMap((d) => d.alerts.map((a) => a.alert_id));
}

const alert = (account: string, n: number) => ({
  alert_id: `va_${account}_${n}`, sender_account_id: account, velocity_count: 3, amount: 10.5, currency: 'EUR', region: 'eu',
  alert_timestamp: '2026-06-01T12:00:00.000Z', window_start: '2026-06-01T11:59:58.000Z', transaction_ids: ['t1', 't2', 't3'],
  receiver_account_id: 'SHOP', source: { topic: 'payments', partition: 0, offset: String(n) }, detected_at: new Date().toISOString(),
});

const signallers: CaseSignaller[] = [];
const connections: Redis[] = [];
afterAll(async () => {
  for (const s of signallers) await s.stop();
  for (const r of connections) r.disconnect();
});

async function start(redis: Redis, delivery: CaseDelivery, opts: Partial<ConstructorParameters<typeof CaseSignaller>[1]> = {}, registry = new Registry()) {
  const s = new CaseSignaller(
    { redis, log: pino({ level: 'silent' }), registry, delivery },
    { consumerName: 'test-signaller', concurrency: 4, claimIdleMs: 60_000, ...opts },
  );
  await s.start();
  signallers.push(s);
  return s;
}

const pending = async (redis: Redis) => ((await redis.xpending('fraud:alerts:stream', 'case-signaller')) as [number])[0];

describe('case signaller on the Redis alert stream', () => {
  it('when an entry is not an alert, then it moves to the undeliverable stream with its reason and every other account still gets its alerts', async () => {
    const { redis } = await isolatedRedis(11);
    connections.push(redis);
    const delivery = new FakeDelivery();
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('A', 1)), 'count', '1');
    await redis.xadd('fraud:alerts:stream', '*', 'alert', '{"alert_id": "va_x", "sender_account_id": ', 'count', '1');
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify({ ...alert('B', 1), amount: 'lots' }), 'count', '1');
    await redis.xadd('fraud:alerts:stream', '*', 'note', 'written by hand');
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('C', 1)), 'count', '1');
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('A', 2)), 'count', '2');
    const s = await start(redis, delivery);

    await waitFor('three alerts delivered', async () => delivery.ids().length === 3, 10_000, 20);
    expect(delivery.delivered.find((d) => d.accountId === 'A')!.alerts.map((a) => a.alert_id)).toStrictEqual(['va_A_1', 'va_A_2']);
    expect(delivery.ids().sort()).toStrictEqual(['va_A_1', 'va_A_2', 'va_C_1']);
    // Only the fields a case takes, nothing else of the stored JSON.
    expect(Object.keys(delivery.delivered[0]!.alerts[0]!).sort()).toStrictEqual(
      ['alert_id', 'alert_timestamp', 'amount', 'currency', 'detected_at', 'region', 'sender_account_id', 'velocity_count'],
    );
    await waitFor('nothing pending', async () => (await pending(redis)) === 0, 10_000, 20);
    const set = (await redis.xrange('fraud:alerts:undeliverable', '-', '+')).map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])));
    expect(set.map((e) => e.reason)).toStrictEqual([
      expect.stringMatching(/^alert is not JSON: /),
      'amount: amount must be a number',
      'entry has no alert field',
    ]);
    await s.stop();
  });

  it('when Temporal refuses for a while, then the alerts stay pending and are delivered once it accepts, each once', async () => {
    const { redis } = await isolatedRedis(10);
    connections.push(redis);
    const delivery = new FakeDelivery();
    delivery.refuse = 3;
    for (let i = 1; i <= 5; i++) await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('D', i)), 'count', String(i));
    const s = await start(redis, delivery);
    await waitFor('five alerts delivered', async () => delivery.ids().length === 5, 20_000, 20);
    expect(delivery.ids()).toStrictEqual(['va_D_1', 'va_D_2', 'va_D_3', 'va_D_4', 'va_D_5']);
    await waitFor('nothing pending', async () => (await pending(redis)) === 0, 10_000, 20);
    expect(await redis.xlen('fraud:alerts:undeliverable')).toBe(0);
    await s.stop();
  });

  it('when Temporal refuses for long, then the stream grows past its cap and no undelivered alert is trimmed; once delivered, the stream is trimmed back', async () => {
    const { redis } = await isolatedRedis(11);
    connections.push(redis);
    const delivery = new FakeDelivery();
    delivery.refuse = Number.MAX_SAFE_INTEGER;
    const p = redis.pipeline();
    for (let i = 0; i < 1000; i++) p.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert(`T${i % 50}`, i)), 'count', '1');
    await p.exec();
    const registry = new Registry();
    const s = await start(redis, delivery, { streamMaxLen: 100, maintainEveryMs: 100 }, registry);
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? -1;
    await waitFor('the backlog measured', async () => (await metric('signaller_backlog_entries')) === 1000, 10_000, 50);
    await new Promise((r) => setTimeout(r, 1000)); // several maintenance rounds while nothing is delivered
    expect(await redis.xlen('fraud:alerts:stream')).toBe(1000);
    expect(await metric('signaller_oldest_undelivered_seconds')).toBeGreaterThan(0);

    delivery.refuse = 0;
    await waitFor('every alert delivered', async () => delivery.ids().length === 1000, 30_000, 50);
    await waitFor('the stream trimmed to about its cap', async () => (await redis.xlen('fraud:alerts:stream')) <= 200, 20_000, 100);
    expect(await redis.xlen('fraud:alerts:stream')).toBeGreaterThanOrEqual(100);
    await waitFor('no backlog', async () => (await metric('signaller_backlog_entries')) === 0 && (await metric('signaller_oldest_undelivered_seconds')) === 0, 10_000, 50);
    expect(new Set(delivery.ids()).size).toBe(1000);
    await s.stop();
  });

  it('when one account\'s delivery keeps failing while others go through, then after the bound its alerts are set aside with the reason', async () => {
    const { redis } = await isolatedRedis(11);
    connections.push(redis);
    class PickyDelivery extends FakeDelivery {
      override async deliver(accountId: string, alerts: AlertSignal[]) {
        if (accountId === 'BAD') throw new Error('3 INVALID_ARGUMENT: payload too large');
        await super.deliver(accountId, alerts);
      }
    }
    const delivery = new PickyDelivery();
    const s = await start(redis, delivery, { maxDeliveryFailures: 3 });
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('BAD', 0)), 'count', '1');
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('BAD', 1)), 'count', '2');
    const undeliverable = async () => (await redis.xrange('fraud:alerts:undeliverable', '-', '+')).map(([, f]) => f[f.indexOf('reason') + 1]!);
    // Other accounts keep alerting, and their alerts keep going through next to the failing one.
    let ok = 0;
    await waitFor('BAD set aside', async () => {
      await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert(`OK${ok}`, ok++)), 'count', '1');
      return (await undeliverable()).length === 2;
    }, 30_000, 300);
    for (const reason of await undeliverable()) {
      expect(reason).toMatch(/^delivery failed 3 times while other accounts' alerts went through; last error: 3 INVALID_ARGUMENT/);
    }
    await waitFor('every OK delivered', async () => delivery.ids().filter((id) => id.startsWith('va_OK')).length === ok, 30_000, 50);
    await waitFor('nothing pending', async () => (await pending(redis)) === 0, 10_000, 50);
    await s.stop();
  });

  it('when Temporal does not answer at all, then stop() returns at once and the alert stays pending for the next signaller', async () => {
    const { redis } = await isolatedRedis(10);
    connections.push(redis);
    // Nothing listens there: the real client waits for a server that never comes.
    const delivery = new TemporalCaseDelivery({ connection: { address: `127.0.0.1:${await freePort()}` }, namespace: 'default', taskQueue: 'none', policy: defaultPolicy });
    await redis.xadd('fraud:alerts:stream', '*', 'alert', JSON.stringify(alert('HANG', 1)), 'count', '1');
    const s = new CaseSignaller({ redis, log: pino({ level: 'silent' }), registry: new Registry(), delivery }, { consumerName: 'hang-signaller', concurrency: 1, claimIdleMs: 60_000 });
    await s.start();
    await waitFor('the alert read', async () => (await pending(redis)) === 1, 10_000, 20);
    const t0 = performance.now();
    await s.stop();
    const stopMs = performance.now() - t0;
    // Not a speed claim: without the abort, stop waits for the client's own deadlines (it hung 20 s in the detector).
    expect(stopMs).toBeLessThan(5_000);
    expect(await pending(redis)).toBe(1);
    expect(await redis.xlen('fraud:alerts:undeliverable')).toBe(0);
  });
});
