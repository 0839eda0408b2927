// Helpers for integration tests and benchmarks against the real local stack (Kafka, Redis, Temporal started by
// stack/stack.sh): clients, topics, isolated Redis databases, and the platform's processes as children.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs, { Kafka, Partitioners, logLevel, type Admin, type ITopicConfig, type Message } from 'kafkajs';
import { Redis } from 'ioredis';
import { harnessConfigSchema } from '../common/config.ts';
import { loadConfig, repoRoot } from '../common/env.ts';
import { kafkaLogin, kafkajsSasl } from '../common/kafka-login.ts';
import { redisOptions } from '../common/redis.ts';

export const config = loadConfig(harnessConfigSchema, 'harness');

export const uniqueId = (prefix: string) => `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

/**
 * The users of a credentials file the stack scripts wrote ("user password" lines, 0600), named by `variable`: the
 * cluster profile's Kafka (FRAUD_KAFKA_CREDENTIALS, stack/kafka-cluster.sh) and Redis (FRAUD_REDIS_CREDENTIALS,
 * stack/redis-ha.sh) have one per service. Unset (the embedded profile): no users, nothing to override.
 */
function credentials(variable: string) {
  const path = process.env[variable];
  const users = new Map(path ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ', 2) as [string, string]) : []);
  return {
    present: users.size > 0,
    /** The user's password where the profile has users (undefined where it has none); a user missing from the file throws. */
    password(user: string): string | undefined {
      if (users.size === 0) return undefined;
      const password = users.get(user);
      if (!password) throw new Error(`no password for the user ${user} in ${path} (${variable})`);
      return password;
    },
  };
}

const kafkaUsers = credentials('FRAUD_KAFKA_CREDENTIALS');
const redisUsers = credentials('FRAUD_REDIS_CREDENTIALS');

/** KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD of a Kafka user, where the profile has users (the harness is admin). */
export function kafkaUserLogin(user: 'admin' | 'detector' | 'producer'): { KAFKA_SASL_USERNAME?: string; KAFKA_SASL_PASSWORD?: string } {
  const password = kafkaUsers.password(user);
  return password ? { KAFKA_SASL_USERNAME: user, KAFKA_SASL_PASSWORD: password } : {};
}

/** REDIS_USERNAME and REDIS_PASSWORD of a Redis ACL user, where the profile has users (else REDIS_PASSWORD for all). */
export function redisLogin(user: 'admin' | 'operator' | 'detector' | 'worker' | 'console'): { REDIS_USERNAME?: string; REDIS_PASSWORD?: string } {
  const password = redisUsers.password(user);
  return password ? { REDIS_USERNAME: user, REDIS_PASSWORD: password } : {};
}

export const kafka = new Kafka({
  clientId: 'tests', brokers: config.KAFKA_BOOTSTRAP_SERVERS, ...kafkajsSasl(kafkaLogin({ ...config, ...kafkaUserLogin('admin') })), logLevel: logLevel.ERROR,
});

/** A connection as the stack's admin user (tests flush their databases), or with REDIS_PASSWORD where there are no users. */
export function redisClient(db = 0): Redis {
  const redis = new Redis({ ...redisOptions({ ...config, ...redisLogin('admin'), REDIS_DB: db }, 'tests'), maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined); // reconnects on its own; outage tests restart Redis on purpose
  return redis;
}

/** The service a platform entry point runs as, for its Redis user. */
const serviceUser = (entry: string) =>
  entry.startsWith('detector/') ? 'detector' : entry.startsWith('workers/') ? 'worker' : entry.startsWith('console/') ? 'console' : 'operator';

/** Its Kafka login where the profile has users: the detector's own, the payments producer's for the rest. */
const serviceKafkaLogin = (entry: string) => kafkaUserLogin(entry.startsWith('detector/') ? 'detector' : 'producer');

/**
 * Where Kafka has ACLs, a detector started on a test's own topics and group gets what the stack gives it on the
 * configured ones (stack/kafka-cluster.sh): read the payments topic and its group, write the dead-letter topic.
 */
async function grantDetector(env: Record<string, string | undefined>): Promise<void> {
  if (!kafkaUsers.present) return;
  // Enums kafkajs (CommonJS) exports only on its default export under Node's ESM loader.
  const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;
  const allow = (resourceType: kafkajs.AclResourceTypes, resourceName: string | undefined, operation: kafkajs.AclOperationTypes) =>
    resourceName === undefined ? [] : [{
      resourceType, resourceName, resourcePatternType: ResourcePatternTypes.LITERAL, principal: 'User:detector', host: '*', operation,
      permissionType: AclPermissionTypes.ALLOW,
    }];
  const acl = [
    ...allow(AclResourceTypes.TOPIC, env.PAYMENTS_TOPIC, AclOperationTypes.READ),
    ...allow(AclResourceTypes.TOPIC, env.PAYMENTS_TOPIC, AclOperationTypes.DESCRIBE),
    ...allow(AclResourceTypes.TOPIC, env.DLQ_TOPIC, AclOperationTypes.WRITE),
    ...allow(AclResourceTypes.TOPIC, env.DLQ_TOPIC, AclOperationTypes.DESCRIBE),
    ...allow(AclResourceTypes.GROUP, env.DETECTOR_GROUP_ID, AclOperationTypes.READ),
  ];
  if (acl.length === 0) return;
  await withAdmin((a) => a.createAcls({ acl }));
  // Brokers apply new ACLs a second or two apart: wait until each answers the detector as its start-up checks ask
  // (kafkaPreflight), so that a detector started next is not refused on a broker that has not caught up.
  const topics = [env.PAYMENTS_TOPIC, env.DLQ_TOPIC].filter((t): t is string => t !== undefined);
  const sasl = kafkajsSasl(kafkaLogin({ ...config, ...kafkaUserLogin('detector') }));
  for (const broker of config.KAFKA_BOOTSTRAP_SERVERS) {
    const admin = new Kafka({ clientId: 'tests-grants', brokers: [broker], ...sasl, logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } }).admin();
    await admin.connect();
    try {
      await waitFor(`the detector's grants on ${topics.join(', ')} to take effect on ${broker}`, async () => {
        try {
          if (topics.length > 0) await admin.fetchTopicMetadata({ topics });
          if (env.DETECTOR_GROUP_ID && env.PAYMENTS_TOPIC) await admin.fetchOffsets({ groupId: env.DETECTOR_GROUP_ID, topics: [env.PAYMENTS_TOPIC] });
          return true;
        } catch (err) {
          // A topic the test means to be missing: the broker let the detector ask (else it would be refused).
          return (err as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION';
        }
      }, 30_000, 200);
    } finally {
      await admin.disconnect();
    }
  }
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

/**
 * Create topics at the brokers' default replication (3 on the cluster profile) and wait until every partition has a
 * leader and its full ISR. Not kafkajs's own wait for leaders (on by default): on three brokers, one that has not
 * applied the new topic's metadata yet answers "does not host this topic-partition", which that wait does not retry.
 */
export async function createReadyTopics(admin: Admin, topics: ITopicConfig[]): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics });
  const names = topics.map((t) => t.topic);
  let readyInARow = 0;
  await waitFor(`topics ${names.join(', ')} ready`, async () => {
    const meta = await admin.fetchTopicMetadata({ topics: names }).catch(() => undefined);
    const ready = meta?.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length));
    readyInARow = ready ? readyInARow + 1 : 0;
    // A metadata request goes to one broker: as many answers in a row as there are brokers, plus one, before trusting it.
    return readyInARow > config.KAFKA_BOOTSTRAP_SERVERS.length;
  }, 30_000, 50);
}

/** A fresh topic pair (payments + DLQ) for one test. */
export async function createTopics(partitions = 3): Promise<{ topic: string; dlq: string }> {
  const topic = uniqueId('it-payments-');
  const dlq = `${topic}.dlq`;
  await withAdmin((a) => createReadyTopics(a, [{ topic, numPartitions: partitions }, { topic: dlq, numPartitions: 1 }]));
  return { topic, dlq };
}

/**
 * Idempotent, so that a batch retried across a broker restart (its first attempt written, the answer lost) is not
 * written twice: a duplicated payment would be counted twice by the rule, and the test would blame the detector.
 */
export async function produce(topic: string, messages: Message[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
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

/** On failure, the error carries the end of what the process printed, so that a CI log shows why it failed. */
export async function withOutput<T>(p: RunningProcess, pending: Promise<T>, tailChars = 40_000): Promise<T> {
  try {
    return await pending;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- end of the process's output ---\n${p.output().slice(-tailChars)}`, { cause: e });
  }
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

type StackService = 'redis' | 'redis-ha' | 'kafka' | 'kafka-cluster' | 'postgres' | 'temporal' | 'temporal-cluster' | 'twilio-mock';

/** The profile the tests run on (`./dev test --cluster` sets FRAUD_STACK_PROFILE=cluster with the cluster's settings). */
export const stackProfile: 'embedded' | 'cluster' = process.env.FRAUD_STACK_PROFILE === 'cluster' ? 'cluster' : 'embedded';

/** The Kafka service in use: the cluster's three brokers where their users are set (FRAUD_KAFKA_CREDENTIALS). */
export const kafkaService: StackService = kafkaUsers.present ? 'kafka-cluster' : 'kafka';

/** The Temporal service of that profile, for outage tests. */
export const temporalService: StackService = stackProfile === 'cluster' ? 'temporal-cluster' : 'temporal';

/** `bash stack/stack.sh up|down NAME`: for outage tests. */
export async function stack(cmd: 'up' | 'down', name: StackService): Promise<void> {
  await promisify(execFile)('bash', [`${repoRoot}stack/stack.sh`, cmd, name]);
}

export const nodeBin = `${repoRoot}node_modules/.bin/node`;
/** kafkajs (maintenance mode) schedules a negative timeout on every response; Node 24 warns each time. */
export const nodeFlags = ['--disable-warning=TimeoutNegativeWarning'];

export interface RunningProcess {
  proc: ChildProcess;
  pid: number;
  port: number;
  /** performance.now() just before the spawn. */
  spawnedAt: number;
  output: () => string;
  exited: () => boolean;
  /** How it ended ('exit 0', 'signal SIGKILL'), null while it runs. */
  exitStatus: () => string | null;
  /** SIGTERM and wait for exit (SIGKILL after `graceMs` if given). Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** The variable the service reads its HTTP port (/healthz) from. */
  portVar: string;
  /** Reuse a port (a restart at the same address); by default a free one is picked. */
  port?: number;
  /** Node.js flags before the entry point (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Also append everything the process prints to this file. */
  logFile?: string;
  /** Keep only about the last this many characters of output in memory (default: all). */
  outputCap?: number;
}

/**
 * Spawn a service entry point (e.g. detector/main.ts) with env overrides (an `undefined` value unsets a variable)
 * without waiting for it: see `waitHealthy`, or `startService` for both.
 */
export async function spawnService(entry: string, env: Record<string, string | undefined>, opts: SpawnOptions): Promise<RunningProcess> {
  const port = opts.port ?? (await freePort());
  if (entry.startsWith('detector/')) await grantDetector({ ...process.env, ...env });
  const spawnedAt = performance.now();
  const proc = spawn(nodeBin, [...nodeFlags, ...(opts.nodeArgs ?? []), `${repoRoot}${entry}`], {
    // EXPORT_SCHEDULE=off: a test's worker must not take over the dev server's export Schedule (tests of the
    // Schedule turn it on with their own EXPORT_SCHEDULE_ID).
    // Each service logs in to Redis as its own user where the profile has users; a test's env may still override.
    env: {
      ...process.env, ...redisLogin(serviceUser(entry)), ...serviceKafkaLogin(entry), FRAUD_REDIS_CREDENTIALS: undefined, FRAUD_KAFKA_CREDENTIALS: undefined,
      LOG_LEVEL: 'info', EXPORT_SCHEDULE: 'off', ...env, [opts.portVar]: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not spawn ${entry}`);
  const pid = proc.pid;
  let out = '';
  const file = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
  const append = (d: Buffer) => {
    file?.write(d);
    out += d.toString();
    if (opts.outputCap && out.length > opts.outputCap) out = out.slice(-opts.outputCap / 2);
  };
  proc.stdout!.on('data', append);
  proc.stderr!.on('data', append);
  const exited = () => proc.exitCode !== null || proc.signalCode !== null;
  proc.once('close', () => file?.end());
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    pid,
    port,
    spawnedAt,
    output: () => out,
    exited,
    exitStatus: () => (proc.signalCode ? `signal ${proc.signalCode}` : proc.exitCode !== null ? `exit ${proc.exitCode}` : null),
    async stop(graceMs?: number) {
      if (exited()) return exit;
      proc.kill('SIGTERM');
      const timer = graceMs === undefined ? undefined : setTimeout(() => {
        if (!exited()) proc.kill('SIGKILL');
      }, graceMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
    async kill() {
      if (!exited()) proc.kill('SIGKILL');
      await exit;
    },
  };
}

/** Poll the service's /healthz until it answers 200; fail if it exits first or after `timeoutMs`. */
export async function waitHealthy(p: RunningProcess, what: string, timeoutMs = 60_000, everyMs = 200): Promise<void> {
  await waitFor(`${what} to become healthy`, async () => {
    if (p.exited()) throw new Error(`exited with ${p.proc.exitCode}:\n${p.output()}`);
    const res = await fetch(`http://127.0.0.1:${p.port}/healthz`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  }, timeoutMs, everyMs);
}

/** Spawn a service entry point with env overrides and wait until /healthz answers 200 (else kill it and throw). */
export async function startService(
  entry: string, env: Record<string, string | undefined>, opts: SpawnOptions & { healthTimeoutMs?: number },
): Promise<RunningProcess> {
  const running = await spawnService(entry, env, opts);
  try {
    await waitHealthy(running, entry, opts.healthTimeoutMs);
  } catch (err) {
    await running.kill();
    throw new Error(`${(err as Error).message}\n--- output ---\n${running.output()}`);
  }
  return running;
}
