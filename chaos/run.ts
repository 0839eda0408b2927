// One chaos run: a seeded workload through a fresh platform (detector + worker on their own topics, Redis database
// and task queue, SMS through the Twilio recorder), one fault at a seeded moment, then the oracle's checks, polled
// until they all hold or the run's time is up. Bounded: at most `budgetMs` (90 s) from the first event.
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { Partitioners, type Consumer, type Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { AuditEntry } from '../contracts/audit.ts';
import { caseStateQuery, caseWorkflowId } from '../contracts/case.ts';
import { auditKeys, caseKeys } from '../contracts/redis-keys.ts';
import { startPlatform, twilioMockUrl, type Platform } from '../harness/platform.ts';
import { config, isolatedRedis, kafka, kafkaService, stack, stackProfile, uniqueId, withAdmin } from '../harness/stack.ts';
import { twilioRecorder } from '../harness/twilio-recorder.ts';
import { CHAOS_SESSION_TIMEOUT_MS, stackServiceAlive, type Fault, type FaultContext } from './faults.ts';
import { expectedOutcome, guideKeys, LADDER, type LogMessage } from './oracle.ts';
import { between, makeWorkload, rng } from './workload.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';

export const CHAOS_REDIS_DB = 13;

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** How long every check must keep holding once they all hold. */
const STABLE_MS = 5_000;

export interface RunOptions {
  /** The workload's production time (default 12 s). */
  durationMs?: number;
  /** Everything, from the first event to the last check (default 90 s). */
  budgetMs?: number;
  /** More hostile events than the default 10. */
  hostileCount?: number;
  log?: (line: string) => void;
  /** A prebuilt workflow bundle for the worker (see workflowBundle()); by default the worker bundles at start. */
  workflowBundle?: string;
  /** More environment for the detector, e.g. KAFKA_CLIENT. */
  detectorEnv?: Record<string, string>;
}

/** Build the worker's workflow bundle once for many runs (a worker then starts in about a second). */
export async function workflowBundle(path: string): Promise<string> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)), logger: quietLogger });
  writeFileSync(path, code);
  return path;
}

export interface Tally {
  accounts: number;
  payments: number;
  expectedAlerts: number;
  alertsLost: number;
  alertsDuplicated: number;
  alertsUnexpected: number;
  countersWrong: number;
  casesExpected: number;
  casesMissingAlerts: number;
  casesJammed: number;
  actionsExpected: number;
  actionsMissing: number;
  actionsRepeated: number;
  smsExpected: number;
  smsSent: number;
  hostileEvents: number;
  deadLettersMissing: number;
  deadLetterCopies: number;
  auditIdsRepeated: number;
  hostileSignals: number;
  hostileSignalsUnrecorded: number;
  /** Only where the fault loses Redis writes: records of done actions that were lost with them (audit, issuer). */
  lostWithRedis?: number;
}

export interface RunResult {
  fault: string;
  seed: number;
  passed: boolean;
  /** From the first event to the moment every check held (or the end of the budget). */
  elapsedMs: number;
  faultAtMs: number;
  tally: Tally;
  failures: string[];
  log: string[];
}

type Check = { ok: boolean; tally: Tally; failures: string[]; lostWithRedis?: string[] };

export async function runOnce(fault: Fault, seed: number, opts: RunOptions = {}): Promise<RunResult> {
  const durationMs = opts.durationMs ?? 12_000;
  const budgetMs = opts.budgetMs ?? 90_000;
  const lines: string[] = [];
  const t0 = { at: 0 };
  const log = (msg: string) => {
    const line = `[${((performance.now() - t0.at) / 1000).toFixed(1)}s] ${msg}`;
    lines.push(line);
    opts.log?.(line);
  };
  const prefix = `${uniqueId(`c${seed}`)}_`;
  const r = rng(seed);
  const workload = makeWorkload({ seed, prefix, durationMs, hostileCount: opts.hostileCount });
  const { redis } = await isolatedRedis(CHAOS_REDIS_DB);
  const twilio = await twilioRecorder(twilioMockUrl);
  const connection = await Connection.connect(temporalConnectionOptions(config));
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  let platform: Platform | undefined;
  let producer: Producer | undefined;
  let reader: Consumer | undefined;
  try {
    for (const [acc, phone] of workload.phones) await redis.hset(caseKeys.cardholder(acc), { phone, card_id: `card-${acc}` });
    platform = await startPlatform({
      redisDb: CHAOS_REDIS_DB,
      taskQueuePrefix: 'chaos-',
      detectorEnv: { CHECKPOINT_INTERVAL_MS: '200', KAFKA_SESSION_TIMEOUT_MS: String(CHAOS_SESSION_TIMEOUT_MS), ...opts.detectorEnv },
      workerEnv: { SMS_SETTLE_SECONDS: '10', ...(opts.workflowBundle ? { WORKER_WORKFLOW_BUNDLE: opts.workflowBundle } : {}) },
      twilio: { apiBase: twilio.url },
    });
    const { topic, dlq } = platform;

    // What Kafka really holds, read back as it comes: the payments (the oracle's input) and the dead letters.
    // Dead letters by offset and value: a fresh read (below) and the running reader see the same ones.
    // Payments by partition and offset: after a broker restart the reader's group may hand it messages again.
    const got = { payments: new Map<string, LogMessage>(), deadLetters: new Map<string, string>() };
    reader = kafka.consumer({ groupId: uniqueId('chaos-oracle-'), sessionTimeout: 30_000 });
    await reader.connect();
    await reader.subscribe({ topics: [topic, dlq], fromBeginning: true });
    await reader.run({
      eachMessage: async ({ topic: t, partition, message }) => {
        const value = message.value?.toString() ?? '';
        if (t === topic) got.payments.set(`${partition}:${message.offset}`, { partition, offset: message.offset, key: message.key?.toString() ?? null, value });
        else got.deadLetters.set(`${message.offset}|${value}`, value);
      },
    });

    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const ctx: FaultContext = { platform, redis, temporal, twilio, accounts: workload.accounts, log, hostileSent: new Map() };
    const faultAtMs = between(r, 1500, Math.max(1500, durationMs - 3000));
    t0.at = performance.now();
    log(`seed ${seed}: ${workload.accounts.length} accounts, ${workload.messages.length} messages over ${durationMs} ms; ${fault.name} at ${faultAtMs} ms`);

    const produced = (async () => {
      for (let i = 0; i < workload.messages.length;) {
        const now = performance.now() - t0.at;
        const due = [];
        while (i < workload.messages.length && workload.messages[i]!.atMs <= now) due.push(workload.messages[i++]!);
        if (due.length === 0) {
          await sleep(Math.min(50, workload.messages[i]!.atMs - now));
          continue;
        }
        const batch = due.map((m) => ({ key: m.key, value: m.value(Date.now()) }));
        // Until Kafka takes it: a broker fault stalls the workload, it does not drop any of it.
        for (let attempt = 1; ; attempt++) {
          try {
            await producer!.send({ topic, acks: -1, messages: batch });
            break;
          } catch (err) {
            if (attempt === 1 || attempt % 10 === 0) log(`produce failed (attempt ${attempt}, retrying): ${(err as Error).message}`);
            await sleep(500);
          }
        }
      }
      log('workload produced');
    })();
    const faulted = (async () => {
      await sleep(faultAtMs);
      log(`fault ${fault.name}`);
      await fault.inject(ctx, r);
      log(`fault ${fault.name} over`);
    })();
    await Promise.all([produced, faulted]);

    // The payments log is complete once the reader has every offset up to the high watermarks.
    const ends = await withAdmin((a) => a.fetchTopicOffsets(topic));
    const total = ends.reduce((n, p) => n + Number(p.high), 0);
    const deadline = t0.at + budgetMs;
    let last: Check | undefined;
    let elapsedMs = 0;
    const checkNow = () => check(ctx, workload.markers, workload.phones, got, temporal, redis, fault.losesRedisWrites === true)
      .catch((err: Error) => ({ ok: false, tally: last?.tally ?? emptyTally(), failures: [`check failed: ${err.message}`] }));
    while (performance.now() < deadline) {
      if (got.payments.size >= total) {
        last = await checkNow();
        // A running consumer does not follow a topic deleted and created again: read the DLQ afresh before failing.
        if (!last.ok && last.tally.deadLettersMissing > 0) {
          for (const [k, v] of await readAll(dlq)) got.deadLetters.set(k, v);
          last = await checkNow();
        }
        elapsedMs = Math.round(performance.now() - t0.at);
        if (last.ok) {
          // Still true a while later: a late duplicate (a replay, a resend) would show now.
          await sleep(STABLE_MS);
          last = await checkNow();
          if (last.ok) break;
        }
      }
      await sleep(1000);
    }
    if (!last?.ok) elapsedMs = Math.round(performance.now() - t0.at);
    last ??= { ok: false, tally: emptyTally(), failures: [`the payments topic was not read back (${got.payments.size} of ${total})`] };
    log(last.ok ? `all checks hold after ${elapsedMs} ms` : `checks still failing after ${elapsedMs} ms: ${last.failures.slice(0, 5).join('; ')}`);
    if (last.lostWithRedis?.length) log(`lost with Redis: ${last.lostWithRedis.join('; ')}`);
    return { fault: fault.name, seed, passed: last.ok, elapsedMs, faultAtMs, tally: last.tally, failures: last.failures, log: lines };
  } finally {
    await producer?.disconnect().catch(() => undefined);
    await reader?.disconnect().catch(() => undefined);
    // Leave no case of this run open on the server.
    await Promise.all(workload.accounts.map((acc) => temporal.workflow.getHandle(caseWorkflowId(acc)).terminate('chaos run over').catch(() => undefined)));
    await platform?.stop({ deleteTopics: true });
    await twilio.close();
    await connection.close();
    redis.disconnect();
    // Whatever a fault left down comes back before the next run.
    if (stackProfile === 'cluster') {
      // Idempotent, and quick when all is up: brings back a Redis node, Kafka or the Temporal server a fault left down.
      for (const s of ['redis-ha', kafkaService, 'postgres', 'temporal-cluster'] as const) await stack('up', s);
    } else for (const s of ['redis', 'kafka', 'temporal'] as const) if (!stackServiceAlive(s)) await stack('up', s);
  }
}

/** Every message of a topic, from a consumer of its own, up to the high watermarks as they are now. */
async function readAll(topic: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ends = await withAdmin((a) => a.fetchTopicOffsets(topic)).catch(() => []);
  const want = new Map(ends.map((p) => [p.partition, Number(p.high)]));
  if ([...want.values()].every((h) => h === 0)) return out;
  const c = kafka.consumer({ groupId: uniqueId('chaos-dlq-read-') });
  const seen = new Map<number, number>();
  try {
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    await c.run({
      eachMessage: async ({ partition, message }) => {
        out.set(`${message.offset}|${message.value?.toString() ?? ''}`, message.value?.toString() ?? '');
        seen.set(partition, Number(message.offset) + 1);
      },
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && [...want].some(([p, h]) => (seen.get(p) ?? 0) < h)) await sleep(100);
  } finally {
    await c.disconnect().catch(() => undefined);
  }
  return out;
}

const emptyTally = (): Tally => ({
  accounts: 0, payments: 0, expectedAlerts: 0, alertsLost: 0, alertsDuplicated: 0, alertsUnexpected: 0, countersWrong: 0, casesExpected: 0,
  casesMissingAlerts: 0, casesJammed: 0, actionsExpected: 0, actionsMissing: 0, actionsRepeated: 0, smsExpected: 0, smsSent: 0,
  hostileEvents: 0, deadLettersMissing: 0, deadLetterCopies: 0, auditIdsRepeated: 0, hostileSignals: 0, hostileSignalsUnrecorded: 0,
});

async function check(
  ctx: FaultContext, markers: string[], phones: Map<string, string>, got: { payments: Map<string, LogMessage>; deadLetters: Map<string, string> }, temporal: Client, redis: Redis,
  redisLosesWrites = false,
): Promise<Check> {
  const failures: string[] = [];
  const t = emptyTally();
  // A record missing from Redis of something the case's own state (Temporal) shows done: lost with Redis when the
  // fault loses Redis writes, a failure otherwise.
  const lostWithRedis: string[] = [];
  /** Returns whether it counts as a failure. */
  const missing = (doneInTemporal: boolean, what: string): boolean => {
    if (redisLosesWrites && doneInTemporal) {
      lostWithRedis.push(what);
      t.lostWithRedis = (t.lostWithRedis ?? 0) + 1;
      return false;
    }
    failures.push(what);
    return true;
  };
  const expected = expectedOutcome([...got.payments.values()], new Set(markers));
  t.accounts = ctx.accounts.length;
  t.payments = expected.payments;

  // Alerts: each exactly once in the stream; the guide's keys agree.
  const inStream = new Map<string, number>();
  for (const [, f] of await redis.xrange(guideKeys.stream, '-', '+')) {
    const a = JSON.parse(f[f.indexOf('alert') + 1]!) as { alert_id: string };
    inStream.set(a.alert_id, (inStream.get(a.alert_id) ?? 0) + 1);
  }
  const flagged = new Set(await redis.smembers(guideKeys.accounts));
  const allExpected = new Set([...expected.alerts.values()].flat());
  for (const [id, n] of inStream) {
    if (!allExpected.has(id)) { t.alertsUnexpected++; failures.push(`alert ${id} in the stream, not expected by the oracle`); }
    if (n > 1) { t.alertsDuplicated += n - 1; failures.push(`alert ${id} ${n} times in the stream`); }
  }
  for (const acc of ctx.accounts) {
    const ids = expected.alerts.get(acc) ?? [];
    const n = ids.length;
    t.expectedAlerts += n;
    for (const id of ids) if (!inStream.has(id)) { t.alertsLost++; failures.push(`${acc}: alert ${id} not in the stream`); }
    const counter = Number((await redis.get(guideKeys.count(acc))) ?? 0);
    if (counter !== n || flagged.has(acc) !== n > 0) { t.countersWrong++; failures.push(`${acc}: fraud:count ${counter}, flagged ${flagged.has(acc)}; the oracle says ${n}`); }

    // The case: every alert counted, no failed workflow task, each action once.
    const audit = (await redis.xrange(auditKeys.account(acc), '-', '+')).map(([, f]) => JSON.parse(f[1]!) as AuditEntry);
    const ids2 = new Set(audit.map((e) => e.id));
    if (ids2.size !== audit.length) { t.auditIdsRepeated += audit.length - ids2.size; failures.push(`${acc}: audit ids repeated`); }
    const sms = ctx.twilio.messages.filter((m) => m.to === phones.get(acc)).length;
    if (n === 0) continue;
    t.casesExpected++;
    const h = temporal.workflow.getHandle(caseWorkflowId(acc));
    const state = await h.query(caseStateQuery).catch(() => undefined);
    if (!state || state.alertCount !== n) { t.casesMissingAlerts++; failures.push(`${acc}: case counts ${state?.alertCount ?? 'no case'} alerts, the oracle ${n}`); }
    const history = await h.fetchHistory().catch(() => undefined);
    if (history?.events?.some((e) => String(e.eventType) === 'EVENT_TYPE_WORKFLOW_TASK_FAILED' || e.workflowTaskFailedEventAttributes)) {
      t.casesJammed++; failures.push(`${acc}: a workflow task failed`);
    }
    const actions = audit.filter((e) => e.type === 'action').map((e) => String((e.data as { action?: string }).action));
    const want: Array<[string, boolean]> = [['REQUIRE_3DS', n > LADDER.smsAfter], ['BLOCK_CARD', n > LADDER.blockAfter], ['NOTIFY_ISSUER', n > LADDER.blockAfter]];
    for (const [action, due] of want) {
      const done = actions.filter((a) => a === action).length;
      if (due) t.actionsExpected++;
      if (done > 1) { t.actionsRepeated += done - 1; failures.push(`${acc}: ${action} recorded ${done} times`); }
      const doneInTemporal = state?.actions.some((a) => a.action === action && a.status === 'done') === true;
      if (due && done === 0 && missing(doneInTemporal, `${acc}: ${action} not done${doneInTemporal ? ' in the audit trail (done in the case)' : ''}`)) {
        t.actionsMissing++;
      }
    }
    if (n > LADDER.smsAfter) t.smsExpected++;
    t.smsSent += sms;
    if (sms > (n > LADDER.smsAfter ? 1 : 0)) { t.actionsRepeated += sms - 1; failures.push(`${acc}: ${sms} SMS at Twilio`); }
    if (n > LADDER.smsAfter && sms === 0) failures.push(`${acc}: no SMS at Twilio`);
    const notices = (await redis.xrange(caseKeys.issuerNotifications, '-', '+')).filter(([, f]) => f.includes(acc)).length;
    const blocked = (await redis.hexists(caseKeys.issuerBlocks, acc)) === 1;
    if (notices > 1) { t.actionsRepeated += notices - 1; failures.push(`${acc}: ${notices} issuer notices`); }
    if (n > LADDER.blockAfter && (notices === 0 || !blocked)) {
      const issuerDone = ['BLOCK_CARD', 'NOTIFY_ISSUER'].every((action) => state?.actions.some((a) => a.action === action && a.status === 'done'));
      missing(issuerDone, `${acc}: blocked ${blocked}, ${notices} issuer notices`);
    }
    if (n <= LADDER.blockAfter && (notices > 0 || blocked)) failures.push(`${acc}: blocked or noticed with ${n} alerts`);
    const sent = ctx.hostileSent.get(acc) ?? 0;
    t.hostileSignals += sent;
    const rejected = audit.filter((e) => e.type === 'rejected').length;
    if (rejected < sent) {
      t.hostileSignalsUnrecorded += sent - rejected;
      failures.push(`${acc}: ${sent} hostile signals, ${rejected} recorded as rejected`);
    }
  }

  // Dead letters: every hostile event, with its marker.
  t.hostileEvents = expected.hostile.size;
  for (const marker of expected.hostile) {
    const copies = [...got.deadLetters.values()].filter((v) => v.includes(`"${marker}"`)).length;
    if (copies === 0) { t.deadLettersMissing++; failures.push(`hostile event ${marker} not in the DLQ`); }
    else t.deadLetterCopies += copies - 1;
  }
  return { ok: failures.length === 0, tally: t, failures, lostWithRedis };
}
