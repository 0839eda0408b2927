// The faults of the chaos harness: each takes the run's context and a seeded random source, does its harm, and
// heals before it returns (a kill is followed by a restart, a stop by a SIGCONT, a refusal by its undoing). Every
// process is signalled by the pid this harness or the stack scripts started, never by a name.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { Redis } from 'ioredis';
import { repoRoot } from '../common/env.ts';
import { caseWorkflowId } from '../contracts/case.ts';
import type { Platform } from '../harness/platform.ts';
import { config, createReadyTopics, redisClient, stack, waitFor, withAdmin } from '../harness/stack.ts';
import type { TwilioRecorder } from '../harness/twilio-recorder.ts';
import { between } from './workload.ts';
import { temporalCliFlags } from '../common/temporal-connection.ts';

export interface FaultContext {
  platform: Platform;
  redis: Redis;
  temporal: Client;
  twilio: TwilioRecorder;
  accounts: string[];
  log: (msg: string) => void;
  /** Hostile signals and updates sent, per account (the oracle expects each recorded as rejected). */
  hostileSent: Map<string, number>;
}

export interface Fault {
  name: string;
  what: string;
  /**
   * Redis comes back without writes it had acknowledged. The detector's part (alerts, counters, the flagged set) must
   * still be exact; what the worker wrote in the lost moment (audit entries, issuer records) cannot be, and is
   * counted as lost with Redis where Temporal's record of the case shows it was done, instead of failing the run.
   */
  losesRedisWrites?: boolean;
  /** The one profile the fault applies to (its service exists only there); unset: both. */
  profile?: 'embedded' | 'cluster';
  inject: (ctx: FaultContext, r: () => number) => Promise<void>;
}

/** The detector's Kafka session timeout in chaos runs (a stop longer than this makes the group drop it). */
export const CHAOS_SESSION_TIMEOUT_MS = 6_000;

/** The pid in a pid file the stack scripts wrote (.stack/run/NAME.pid); throws when there is none. */
const stackPid = (name: string) => {
  const pid = readPid(name);
  if (pid === undefined) throw new Error(`no pid file .stack/run/${name}.pid`);
  return pid;
};

const readPid = (name: string) => {
  try {
    return Number(readFileSync(`${repoRoot}.stack/run/${name}.pid`, 'utf8').trim());
  } catch {
    return undefined;
  }
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The stack service runs (its pid file names a live process). */
export function stackServiceAlive(name: 'redis' | 'kafka' | 'temporal'): boolean {
  try {
    return alive(stackPid(name));
  } catch {
    return false;
  }
}

/** SIGKILL the process of a pid file the stack scripts wrote, then start its service again `downMs` later. */
async function killByPidFile(ctx: FaultContext, pidName: string, service: Parameters<typeof stack>[1], downMs: number) {
  const pid = stackPid(pidName);
  if (!alive(pid)) throw new Error(`${pidName} is not running (pid ${pid} of .stack/run/${pidName}.pid)`);
  process.kill(pid, 'SIGKILL');
  await waitFor(`${pidName} (pid ${pid}) to die`, async () => !alive(pid), 10_000, 50);
  ctx.log(`${pidName} SIGKILLed (pid ${pid}); down for ${downMs} ms`);
  await sleep(downMs);
  await stack('up', service);
  ctx.log(`${pidName} restarted (pid ${readPid(pidName)})`);
}

/**
 * Redis loses its last `lostMs` of acknowledged writes: its append-only files are copied, writes go on, then it is
 * SIGKILLed and started again from the copy. What a machine crash under appendfsync everysec, or a failover to a
 * replica that lagged, does.
 */
async function rollBackRedis(ctx: FaultContext, lostMs: number) {
  const dir = `${repoRoot}.stack/data/redis/appendonlydir`;
  const kept = mkdtempSync(join(tmpdir(), 'chaos-redis-'));
  try {
    cpSync(dir, join(kept, 'appendonlydir'), { recursive: true });
    ctx.log(`redis append-only files copied; the next ${lostMs} ms of writes will be lost`);
    await sleep(lostMs);
    const pid = stackPid('redis');
    process.kill(pid, 'SIGKILL');
    await waitFor(`redis (pid ${pid}) to die`, async () => !alive(pid), 10_000, 50);
    rmSync(dir, { recursive: true, force: true });
    cpSync(join(kept, 'appendonlydir'), dir, { recursive: true });
    await stack('up', 'redis');
    ctx.log(`redis SIGKILLed (pid ${pid}) and restarted from the copy (pid ${stackPid('redis')})`);
  } finally {
    rmSync(kept, { recursive: true, force: true });
  }
}

/**
 * The cluster profile's Redis primary dies (SIGKILL) and the Sentinels promote its replica; `downMs` later the dead
 * node is started again and rejoins as the new primary's replica. Replication is asynchronous: writes the primary had
 * acknowledged and not yet sent on are lost with it. The primary's pid comes from INFO, and must be one the stack
 * scripts started.
 */
async function failOverRedis(ctx: FaultContext, downMs: number) {
  if (config.REDIS_SENTINELS.length === 0) throw new Error('redis-failover needs the cluster profile\'s Redis (REDIS_SENTINELS is unset)');
  const sentinel = new Redis({
    ...config.REDIS_SENTINELS[0]!, ...(config.REDIS_SENTINEL_PASSWORD ? { password: config.REDIS_SENTINEL_PASSWORD } : {}), maxRetriesPerRequest: 3,
  });
  const primaryAddr = async () => ((await sentinel.call('SENTINEL', 'get-master-addr-by-name', config.REDIS_MASTER_NAME)) as string[]).join(':');
  try {
    const before = await primaryAddr();
    const pid = await withRedis(async (c) => Number(/^process_id:(\d+)/m.exec(await c.info('server'))?.[1]));
    const ours = ['redis-ha-a', 'redis-ha-b'].filter((n) => readPid(n) === pid);
    if (ours.length !== 1) throw new Error(`the Redis primary's pid ${pid} is not one the stack scripts started (.stack/run/redis-ha-*.pid)`);
    process.kill(pid, 'SIGKILL');
    await waitFor(`redis primary (pid ${pid}) to die`, async () => !alive(pid), 10_000, 50);
    const t0 = Date.now();
    ctx.log(`redis primary ${before} SIGKILLed (${ours[0]}, pid ${pid})`);
    const after = await waitFor('the Sentinels to promote the replica', async () => {
      const addr = await primaryAddr();
      return addr !== before && addr;
    }, 30_000, 100);
    ctx.log(`Sentinels promoted ${after} in ${Date.now() - t0} ms`);
    await sleep(downMs);
    await stack('up', 'redis-ha');
    ctx.log(`${ours[0]} restarted (pid ${readPid(ours[0]!)}) as the replica of ${after}`);
  } finally {
    sentinel.disconnect();
  }
}

async function stopStackService(ctx: FaultContext, name: 'kafka', stoppedMs: number) {
  const pid = stackPid(name);
  process.kill(pid, 'SIGSTOP');
  ctx.log(`${name} SIGSTOPped (pid ${pid}) for ${stoppedMs} ms`);
  try {
    await sleep(stoppedMs);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

async function stopProcess(ctx: FaultContext, which: 'detector' | 'worker', stoppedMs: number) {
  const p = ctx.platform[which].current!;
  p.proc.kill('SIGSTOP');
  ctx.log(`${which} SIGSTOPped (pid ${p.pid}) for ${stoppedMs} ms`);
  try {
    await sleep(stoppedMs);
  } finally {
    p.proc.kill('SIGCONT');
  }
}

async function killProcess(ctx: FaultContext, which: 'detector' | 'worker', r: () => number) {
  const p = ctx.platform[which];
  const pid = p.current!.pid;
  await p.kill();
  const downMs = between(r, 200, 3000);
  ctx.log(`${which} SIGKILLed (pid ${pid}); restart in ${downMs} ms`);
  await sleep(downMs);
  await p.start({ port: p.current!.port });
}

/** A connection of its own: the faults below change server state, or block a connection on purpose. */
async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = redisClient(0);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

const temporalCli = `${repoRoot}.stack/venv/bin/temporal`;
const run = promisify(execFile);

/** Hostile inputs as an operator could send them from the Web UI or the stock CLI. */
const HOSTILE_SIGNALS: Array<[string, string]> = [
  ['clearAccount', '{"by":{"toString":1}}'],
  ['clearAccount', '[1,2,3]'],
  ['clearAccount', JSON.stringify({ by: 'x'.repeat(5000) })],
  ['alert', 'null'],
  ['alert', '{"alert_id":{"toString":1},"sender_account_id":7}'],
  ['alerts', '[null,{"alert_id":1}]'],
];
const HOSTILE_UPDATES = ['{"decision":{"toString":1}}', 'null', '{"decision":"APPROVE_MAYBE","by":[]}'];

async function hostileInputs(ctx: FaultContext, r: () => number) {
  // The cases open by now; a few of them get every hostile payload.
  const open: string[] = [];
  await waitFor('a case to be open', async () => {
    for (const acc of ctx.accounts) {
      if (open.includes(acc)) continue;
      const d = await ctx.temporal.workflow.getHandle(caseWorkflowId(acc)).describe().catch(() => undefined);
      if (d?.status.name === 'RUNNING') open.push(acc);
    }
    return open.length > 0;
  }, 30_000, 500);
  const targets = open.sort(() => r() - 0.5).slice(0, 3);
  const base = [...temporalCliFlags(config), '--namespace', config.TEMPORAL_NAMESPACE];
  for (const acc of targets) {
    let sent = 0;
    for (const [name, input] of HOSTILE_SIGNALS) {
      await run(temporalCli, ['workflow', 'signal', ...base, '--workflow-id', caseWorkflowId(acc), '--name', name, '--input', input]);
      sent++;
    }
    for (const input of HOSTILE_UPDATES) {
      // Refused by the update's validator: the CLI exits non-zero, and that is the expected answer.
      const res = await run(temporalCli, ['workflow', 'update', 'execute', ...base, '--workflow-id', caseWorkflowId(acc), '--name', 'completeReview', '--input', input])
        .then(() => 'accepted', (err: Error) => err.message);
      if (res === 'accepted') throw new Error(`a hostile completeReview update was accepted: ${input}`);
    }
    ctx.hostileSent.set(acc, sent);
    ctx.log(`hostile payloads sent to ${acc}: ${sent} signals, ${HOSTILE_UPDATES.length} updates (refused)`);
  }
}

export const FAULTS: Fault[] = [
  { name: 'none', what: 'no fault: the baseline of the workload', inject: async () => undefined },
  {
    name: 'hostile-events', what: '40 hostile events instead of 10: malformed JSON, missing fields, no key, a day ahead, an hour late',
    inject: async () => undefined, // the runner makes the workload more hostile
  },
  { name: 'detector-kill', what: 'SIGKILL the detector, restart it 0.2-3 s later', inject: (ctx, r) => killProcess(ctx, 'detector', r) },
  {
    name: 'detector-stop', what: 'SIGSTOP the detector past its Kafka session timeout, then SIGCONT',
    inject: (ctx, r) => stopProcess(ctx, 'detector', CHAOS_SESSION_TIMEOUT_MS + between(r, 1000, 4000)),
  },
  { name: 'worker-kill', what: 'SIGKILL the Temporal worker, restart it 0.2-3 s later', inject: (ctx, r) => killProcess(ctx, 'worker', r) },
  {
    name: 'worker-stop', what: 'SIGSTOP the worker past the activities\' 10 s start-to-close timeout, then SIGCONT',
    inject: (ctx, r) => stopProcess(ctx, 'worker', between(r, 11_000, 15_000)),
  },
  { name: 'redis-kill', profile: 'embedded', what: 'SIGKILL redis-server (appendfsync everysec), restart it', inject: (ctx, r) => killByPidFile(ctx, 'redis', 'redis', between(r, 500, 3000)) },
  {
    name: 'redis-rollback', profile: 'embedded', losesRedisWrites: true,
    what: 'Redis restarts without its last 1-3 s of acknowledged writes (from a copy of its append-only files): a machine crash, a failover to a lagging replica',
    inject: (ctx, r) => rollBackRedis(ctx, between(r, 1000, 3000)),
  },
  {
    name: 'redis-oom', what: 'Redis refuses writes (maxmemory 1 under noeviction) for 3-8 s',
    inject: (ctx, r) => withRedis(async (c) => {
      const before = ((await c.config('GET', 'maxmemory')) as string[])[1]!;
      await c.config('SET', 'maxmemory', '1');
      ctx.log('redis maxmemory 1');
      try {
        await sleep(between(r, 3000, 8000));
      } finally {
        await c.config('SET', 'maxmemory', before);
      }
    }),
  },
  {
    name: 'redis-busy', what: 'a Lua script keeps Redis busy for 6-9 s (BUSY replies after busy-reply-threshold, 5 s)',
    inject: (ctx, r) => withRedis(async (c) => {
      const secs = between(r, 6, 9);
      ctx.log(`redis busy script for ${secs} s`);
      await c.eval("local e = tonumber(redis.call('TIME')[1]) + tonumber(ARGV[1]) while tonumber(redis.call('TIME')[1]) < e do end return 1", 0, String(secs));
    }),
  },
  {
    name: 'redis-pause', what: 'CLIENT PAUSE WRITE for 3-8 s',
    inject: (ctx, r) => withRedis(async (c) => {
      const ms = between(r, 3000, 8000);
      await c.call('CLIENT', 'PAUSE', String(ms), 'WRITE');
      ctx.log(`redis writes paused for ${ms} ms`);
      await sleep(ms);
    }),
  },
  {
    name: 'redis-failover', profile: 'cluster', losesRedisWrites: true,
    what: 'SIGKILL the Redis primary (cluster profile): the Sentinels promote its replica; the dead node rejoins 1-3 s later as a replica',
    inject: (ctx, r) => failOverRedis(ctx, between(r, 1000, 3000)),
  },
  {
    name: 'kafka-broker-kill', profile: 'cluster', what: 'SIGKILL one of the three Kafka brokers (cluster profile), restart it 1-3 s later',
    inject: (ctx, r) => killByPidFile(ctx, `kafka-cluster-${1 + Math.floor(r() * 3)}`, 'kafka-cluster', between(r, 1000, 3000)),
  },
  {
    name: 'temporal-cluster-kill', profile: 'cluster', what: 'SIGKILL the Temporal server (cluster profile, on PostgreSQL), restart it',
    inject: (ctx, r) => killByPidFile(ctx, 'temporal-cluster', 'temporal-cluster', between(r, 500, 2000)),
  },
  {
    name: 'postgres-restart', profile: 'cluster', what: 'restart PostgreSQL under the Temporal server (cluster profile), down 1-3 s',
    inject: async (ctx, r) => {
      await stack('down', 'postgres');
      const downMs = between(r, 1000, 3000);
      ctx.log(`postgres stopped; down for ${downMs} ms`);
      await sleep(downMs);
      await stack('up', 'postgres');
      ctx.log('postgres started');
    },
  },
  { name: 'kafka-kill', profile: 'embedded', what: 'SIGKILL the Kafka broker, restart it', inject: (ctx, r) => killByPidFile(ctx, 'kafka', 'kafka', between(r, 500, 2000)) },
  { name: 'kafka-stop', profile: 'embedded', what: 'SIGSTOP the Kafka broker for 5-10 s, then SIGCONT', inject: (ctx, r) => stopStackService(ctx, 'kafka', between(r, 5000, 10_000)) },
  {
    name: 'dlq-missing', what: 'the dead-letter topic deleted, recreated 5-10 s later',
    inject: (ctx, r) => withAdmin(async (a) => {
      await a.deleteTopics({ topics: [ctx.platform.dlq] });
      ctx.log(`DLQ topic ${ctx.platform.dlq} deleted`);
      await sleep(between(r, 5000, 10_000));
      await createReadyTopics(a, [{ topic: ctx.platform.dlq, numPartitions: 1 }]);
      ctx.log('DLQ topic recreated');
    }),
  },
  { name: 'temporal-kill', profile: 'embedded', what: 'SIGKILL the Temporal server, restart it', inject: (ctx, r) => killByPidFile(ctx, 'temporal', 'temporal', between(r, 500, 2000)) },
  {
    name: 'twilio-slow', what: 'Twilio replies after 12 s (past the 8 s request and 10 s activity timeouts), for 15 s',
    inject: async (ctx) => {
      ctx.twilio.faults.delayReplyMs = 12_000;
      ctx.log('twilio replies delayed by 12 s');
      await sleep(15_000);
      ctx.twilio.faults.delayReplyMs = 0;
    },
  },
  {
    name: 'twilio-fail', what: 'Twilio answers 500: first without sending, then after sending, 5 s each',
    inject: async (ctx) => {
      ctx.twilio.faults.failCreates = true;
      await sleep(5000);
      ctx.twilio.faults.failCreates = false;
      ctx.twilio.faults.failAfterCreate = true;
      await sleep(5000);
      ctx.twilio.faults.failAfterCreate = false;
    },
  },
  { name: 'hostile-inputs', what: 'hostile signal and update payloads from the stock temporal CLI', inject: hostileInputs },
];

export const faultByName = new Map(FAULTS.map((f) => [f.name, f]));
