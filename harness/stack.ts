// Helpers for integration tests against the real local stack (Kafka, Redis, Temporal started by stack/stack.sh).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, Partitioners, logLevel, type Admin, type Message } from 'kafkajs';
import { Redis } from 'ioredis';
import { harnessConfigSchema } from '../common/config.ts';
import { loadConfig, repoRoot } from '../common/env.ts';

export const config = loadConfig(harnessConfigSchema, 'harness');

export const uniqueId = (prefix: string) => `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

export const kafka = new Kafka({ clientId: 'tests', brokers: config.KAFKA_BOOTSTRAP_SERVERS, logLevel: logLevel.ERROR });

export function redisClient(db = 0): Redis {
  const redis = new Redis({ host: config.REDIS_HOST, port: config.REDIS_PORT, password: config.REDIS_PASSWORD, db, maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined); // reconnects on its own; outage tests restart Redis on purpose
  return redis;
}

/**
 * Redis databases 1..15 are handed out to tests that need an isolated key space (each is flushed first). `db` picks
 * one explicitly, e.g. a high number for a suite that may run next to others on one machine.
 */
let nextDb = 1;
export async function isolatedRedis(pick?: number): Promise<{ db: number; redis: Redis }> {
  if (pick === undefined && nextDb > 15) throw new Error('out of isolated Redis databases');
  const db = pick ?? nextDb++;
  const redis = redisClient(db);
  await redis.flushdb();
  return { db, redis };
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** A fresh topic pair (payments + DLQ) for one test. */
export async function createTopics(partitions = 3): Promise<{ topic: string; dlq: string }> {
  const topic = uniqueId('it-payments-');
  const dlq = `${topic}.dlq`;
  await withAdmin((a) =>
    a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }, { topic: dlq, numPartitions: 1 }] }),
  );
  return { topic, dlq };
}

export async function produce(topic: string, messages: Message[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 1000) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000) });
    }
  } finally {
    await producer.disconnect();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Stop and start one service of the local stack (stack/stack.sh), as an outage would. */
export async function restartService(name: StackService): Promise<void> {
  await stack('down', name);
  await stack('up', name);
}

type StackService = 'redis' | 'kafka' | 'temporal';

/** `bash stack/stack.sh up|down NAME`: for outage tests. */
export async function stack(cmd: 'up' | 'down', name: StackService): Promise<void> {
  await promisify(execFile)('bash', [`${repoRoot}stack/stack.sh`, cmd, name]);
}

export const nodeBin = `${repoRoot}node_modules/.bin/node`;
/** kafkajs (maintenance mode) schedules a negative timeout on every response; Node 24 warns each time. */
export const nodeFlags = ['--disable-warning=TimeoutNegativeWarning'];

export interface RunningProcess {
  proc: ChildProcess;
  port: number;
  output: () => string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/**
 * Spawn a service entry point (e.g. detector/main.ts) with env overrides and wait until /healthz answers 200.
 * `port` reuses a port (a restart at the same address); by default a free one is picked.
 */
export async function startService(
  entry: string, env: Record<string, string>, opts: { portVar: string; healthTimeoutMs?: number; port?: number },
): Promise<RunningProcess> {
  const port = opts.port ?? (await freePort());
  const proc = spawn(nodeBin, [...nodeFlags, `${repoRoot}${entry}`], {
    // EXPORT_SCHEDULE=off: a test's worker must not take over the dev server's export Schedule (tests of the
    // Schedule turn it on with their own EXPORT_SCHEDULE_ID).
    env: { ...process.env, LOG_LEVEL: 'info', EXPORT_SCHEDULE: 'off', ...env, [opts.portVar]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const running: RunningProcess = {
    proc,
    port,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  try {
    await waitFor(`${entry} to become healthy`, async () => {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}:\n${out}`);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      return res.ok;
    }, opts.healthTimeoutMs ?? 60_000, 200);
  } catch (err) {
    await running.kill();
    throw new Error(`${(err as Error).message}\n--- output ---\n${out}`);
  }
  return running;
}
