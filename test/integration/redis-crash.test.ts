// Redis coming back from a crash without its last acknowledged writes: what a crash under `appendfsync everysec`, or
// a failover to a replica that lagged, does. Simulated exactly: a private redis-server (appendfsync always, so its
// append-only files on disk are everything it acknowledged) is copied after a first burst's alert and checkpoint,
// a second burst is detected, and Redis is SIGKILLed and started again from the copy. The second burst's alerts and
// the checkpoint that counted them are gone. The detector must notice (Redis's run_id changed), go back to the
// checkpoint Redis still has, and write the lost alerts again: the guide's keys end as the bursts call for, once.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { checkpointKeys } from '../../contracts/redis-keys.ts';
import { config, createTopics, freePort, produce, startService, uniqueId, waitFor, withAdmin, type RunningProcess } from '../../harness/stack.ts';

const T = Date.now() - 20 * 60_000;
const payment = (sender: string, tx: string, atMs: number) => ({
  key: sender,
  value: JSON.stringify({ transaction_id: tx, sender_account_id: sender, receiver_account_id: 'ACC_R', amount: 9.5, currency: 'EUR', region: 'eu', timestamp: atMs }),
});

/** A redis-server of this test's own, on a free loopback port, its data in a temporary directory. */
class PrivateRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'redis-crash-'));
  port = 0;
  private proc?: ChildProcess;

  async start(): Promise<void> {
    this.port ||= await freePort();
    const proc = spawn('redis-server', [
      '--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always',
      '--save', '', '--requirepass', config.REDIS_PASSWORD ?? '', '--daemonize', 'no', '--logfile', '',
    ], { stdio: 'ignore' });
    this.proc = proc;
    await waitFor('the private redis-server', async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
      const c = this.client();
      try {
        return (await c.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        c.disconnect();
      }
    }, 20_000, 100);
  }

  client(): Redis {
    const c = new Redis({ host: '127.0.0.1', port: this.port, password: config.REDIS_PASSWORD, maxRetriesPerRequest: 1, lazyConnect: false });
    c.on('error', () => undefined);
    return c;
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL'); // by the pid this test started
    await exited;
  }

  /** What is on disk now (the append-only files), kept aside. */
  copyData(): string {
    const to = join(this.dir, 'kept');
    cpSync(join(this.dir, 'appendonlydir'), to, { recursive: true });
    return to;
  }

  /** Put a copy back in place of the data (the server must be down). */
  restoreData(from: string): void {
    rmSync(join(this.dir, 'appendonlydir'), { recursive: true, force: true });
    cpSync(from, join(this.dir, 'appendonlydir'), { recursive: true });
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('detector when Redis comes back without its last writes', () => {
  const server = new PrivateRedis();
  const running: RunningProcess[] = [];
  let redis: Redis | undefined;
  afterAll(async () => {
    if (process.env.DEBUG_OUT) for (const p of running) console.log(p.output().slice(-5000));
    for (const p of running) await p.kill();
    redis?.disconnect();
    await server.remove();
  });

  it('when Redis restarts from data older than its last alerts and checkpoint, then the detector writes the lost alerts again, each once', async () => {
    await server.start();
    redis = server.client();
    const { topic, dlq } = await createTopics(1);
    const group = uniqueId('g-');
    const det = await startService(
      'detector/main.ts',
      { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_PORT: String(server.port), REDIS_DB: '0', DETECTOR_GROUP_ID: group, CASE_SIGNALLER: 'off', CHECKPOINT_INTERVAL_MS: '100', LOG_LEVEL: process.env.DEBUG_OUT ? 'info' : 'warn' },
      { portVar: 'DETECTOR_METRICS_PORT' },
    );
    running.push(det);
    const meta = checkpointKeys.meta(group, topic, 0);
    const checkpointed = (offset: number) => async () => Number((await redis!.hget(meta, 'offset')) ?? -1) >= offset;
    // The detector checkpoints as batches arrive (CHECKPOINT_INTERVAL_MS after the last one): one-payment senders
    // that never alert keep batches coming until the checkpoint has passed `offset`.
    let quiet = 0;
    const untilCheckpointed = async (offset: number, what: string) => {
      for (let i = 0; !(await checkpointed(offset)()); i++) {
        if (i > 100) throw new Error(`no checkpoint past ${offset}: ${what}`);
        await produce(topic, [payment(uniqueId('ACC_QUIET_'), `quiet-${++quiet}`, T + 30_000)]);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    // Burst 1: one alert (offsets 0-2), checkpointed. This is what Redis will come back with.
    const first = uniqueId('ACC_KEPT_');
    await produce(topic, [0, 1, 2].map((i) => payment(first, `${first}-${i}`, T + i * 1000)));
    await waitFor('the first alert', async () => (await redis!.get(`fraud:count:sender:${first}`)) === '1', 30_000, 50);
    await untilCheckpointed(3, 'the first burst');
    expect(await redis.get(`fraud:count:sender:${first}`)).toBe('1');
    const kept = server.copyData();

    // Burst 2: two alerts (offsets 3-8), written and checkpointed, then lost.
    const second = uniqueId('ACC_LOST_');
    await produce(topic, Array.from({ length: 6 }, (_, i) => payment(second, `${second}-${i}`, T + 10_000 + i * 1000)));
    await waitFor('the second burst', async () => (await redis!.get(`fraud:count:sender:${second}`)) === '2', 30_000, 50);
    const end = Number((await withAdmin((a) => a.fetchTopicOffsets(topic)))[0]!.high); // burst 2 ends before it
    await untilCheckpointed(end, 'the second burst');
    const lostCheckpoint = Number(await redis.hget(meta, 'offset'));
    expect(await redis.get(`fraud:count:sender:${second}`)).toBe('2');

    await server.kill();
    server.restoreData(kept);
    await server.start();
    expect(await redis.get(`fraud:count:sender:${second}`)).toBe(null); // lost, as a crash would lose it
    expect(await redis.xlen('fraud:alerts:stream')).toBe(1);
    expect(Number(await redis.hget(meta, 'offset'))).toBeLessThan(lostCheckpoint); // the checkpoint went back too

    await waitFor('the lost alerts written again', async () => (await redis!.xlen('fraud:alerts:stream')) >= 3, 30_000, 100);
    await untilCheckpointed(lostCheckpoint, 'after the restart');
    await new Promise((r) => setTimeout(r, 1_000)); // and nothing more after them
    const stream = (await redis.xrange('fraud:alerts:stream', '-', '+')).map(([, f]) => JSON.parse(f[1]!) as { sender_account_id: string; transaction_ids: string[] });
    expect(stream.map((a) => a.transaction_ids).sort()).toStrictEqual(
      [[0, 1, 2].map((i) => `${first}-${i}`), [0, 1, 2].map((i) => `${second}-${i}`), [3, 4, 5].map((i) => `${second}-${i}`)].sort(),
    );
    expect(await redis.get(`fraud:count:sender:${first}`)).toBe('1');
    expect(await redis.get(`fraud:count:sender:${second}`)).toBe('2');
    expect((await redis.smembers('fraud:alerts:accounts')).sort()).toStrictEqual([first, second].sort());
    const metrics = await (await fetch(`http://127.0.0.1:${det.port}/metrics`)).text();
    expect(metrics).toMatch(/^detector_partition_resets_total\{reason="redis_restarted"\} 1$/m);
  });
});
