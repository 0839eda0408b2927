// Detector benchmark: produce a synthetic payment stream to a fresh topic on the local stack, then measure
//   (a) the raw consume ceiling of kafkajs and @platformatic/kafka on it,
//   (b) the real detector's sustained throughput (child process, /metrics) and its alerts against the expected count,
//   (c) produce -> alert-in-Redis latency on a paced live stream (PSUBSCRIBE fraud:alerts:*),
//   (d) the detector's RSS with 1M distinct senders in the window.
// Writes bench/results/detector-<timestamp>.json and rewrites bench/README.md. Bounded in time; stops by itself;
// talks to 127.0.0.1 only; removes its topics, consumer groups and Redis database (14) at the end.
//
//   npm run bench                        # defaults: --events 2000000 --senders 100000 --burst-share 0.01
//   npm run bench -- --events 200000     # a quick try
//   npm run bench -- --phases produce,detector --cpu-prof /tmp/detector-prof --no-readme --results-dir /tmp
import { mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { Redis } from 'ioredis';
import type { Admin, Producer } from 'kafkajs';
import { harnessConfigSchema } from '../common/config.ts';
import { loadConfig, repoRoot } from '../common/env.ts';
import { rawKafkajs, rawPlatformatic, type RawConsumeResult } from './consume.ts';
import {
  byLabel, cpuMeter, log, mb, now, readPidFile, round, sleep, spawnDetector, summarise, total, trackEvents, waitDetectorHealthy, withTimeout,
  type CpuReport, type DetectorProcess, type ProgressSample,
} from './lib.ts';
import { codeVersion, machineInfo } from './machine.ts';
import { benchKafka, connectProducer, produceBulk, produceLive, type LiveTrigger } from './produce.ts';
import { formatProfile, summariseProfile } from './profile.ts';
import { writeReadme } from './readme.ts';

// ---------------------------------------------------------------------------------------------------------------
// Options

const num = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a number between ${min} and ${max}`);
  return n;
};
const PHASES = ['produce', 'raw', 'detector', 'latency', 'memory'] as const;
type Phase = (typeof PHASES)[number];

const program = new Command('bench')
  .description('Benchmark the velocity detector on the local Kafka + Redis stack (127.0.0.1 only)')
  .option('--events <n>', 'events in the main stream', num('--events', 1000), 2_000_000)
  .option('--senders <n>', 'distinct normal senders in the main stream', num('--senders', 1), 100_000)
  .option('--burst-share <f>', 'fraction of main-stream events in velocity bursts', num('--burst-share', 0, 1), 0.01)
  .option('--burst-size <n>', 'payments per burst', num('--burst-size', 1), 5)
  .option('--malformed-share <f>', 'fraction of malformed events (dead-lettered)', num('--malformed-share', 0, 1), 0)
  .option('--partitions <n>', 'partitions of the bench topics', num('--partitions', 1, 256), 6)
  .option('--seed <n>', 'generator seed', num('--seed', 0), 42)
  .option('--produce-batch <n>', 'messages per producer.send in bulk produce', num('--produce-batch', 1), 4000)
  .option('--produce-concurrency <n>', 'producer.send calls in flight in bulk produce (>1 may reorder batches)', num('--produce-concurrency', 1, 64), 1)
  .option('--live-seconds <s>', 'duration of the live latency stream', num('--live-seconds', 1, 600), 30)
  .option('--live-rate <eps>', 'live stream rate; default: half the measured sustained detector throughput', num('--live-rate', 1))
  .option('--live-burst-share <f>', 'fraction of live events in bursts (each burst = one latency sample)', num('--live-burst-share', 0, 1), 0.05)
  .option('--extra-rates <list>', 'further latency runs at these fixed rates, comma-separated (empty = none)', (v: string) => v.split(',').filter(Boolean).map((x) => num('--extra-rates', 1)(x)), [10_000, 1000])
  .option('--extra-seconds <s>', 'duration of each extra-rate latency run', num('--extra-seconds', 1, 600), 15)
  .option('--extra-burst-share <f>', 'fraction of events in bursts in the extra-rate runs', num('--extra-burst-share', 0, 1), 0.1)
  .option('--raw-repeats <n>', 'runs of each raw consumer; the best counts as the ceiling', num('--raw-repeats', 1, 5), 2)
  .option('--memory-senders <n>', 'distinct senders (one event each) for the RSS phase', num('--memory-senders', 1), 1_000_000)
  .option('--phases <list>', `comma-separated subset of ${PHASES.join(',')}`, (v: string) => {
    const list = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const p of list) if (!PHASES.includes(p as Phase)) throw new InvalidArgumentError(`unknown phase ${p}`);
    return list as Phase[];
  }, [...PHASES])
  .option('--detector-env <KEY=VALUE>', 'extra environment for the detector (repeatable), e.g. KAFKA_PARTITIONS_CONCURRENCY=6', (v: string, prev: string[]) => {
    if (!/^[A-Z0-9_]+=/.test(v)) throw new InvalidArgumentError('expected KEY=VALUE');
    return [...prev, v];
  }, [] as string[])
  .option('--detector-node-args <flags>', 'extra Node.js flags for the detector, space-separated (e.g. "--trace-gc --max-semi-space-size=32")', (v: string) => v.split(/\s+/).filter(Boolean), [] as string[])
  .option('--detector-log <file>', 'append everything the detectors print to this file')
  .option('--cpu-prof <dir>', 'run the throughput-phase detector with --cpu-prof into this directory and summarise it')
  .option('--redis-db <n>', 'Redis database used (flushed before and after)', num('--redis-db', 1, 15), 14)
  .option('--max-minutes <m>', 'hard bound on the whole run', num('--max-minutes', 1, 240), 40)
  .option('--profile-report <json>', 'embed the CPU profile summary of an earlier --cpu-prof run report in bench/README.md')
  .option('--results-dir <dir>', 'where the JSON report goes', `${repoRoot}bench/results`)
  .option('--no-readme', 'do not rewrite bench/README.md')
  .parse();

const opts = program.opts<{
  events: number; senders: number; burstShare: number; burstSize: number; malformedShare: number; partitions: number; seed: number;
  produceBatch: number; produceConcurrency: number; liveSeconds: number; liveRate?: number; liveBurstShare: number; extraRates: number[]; extraSeconds: number; extraBurstShare: number; rawRepeats: number;
  memorySenders: number; phases: Phase[]; detectorEnv: string[]; detectorNodeArgs: string[]; detectorLog?: string; cpuProf?: string; profileReport?: string; redisDb: number; maxMinutes: number;
  resultsDir: string; readme: boolean;
}>();
const phases = new Set(opts.phases);
if (phases.has('latency')) phases.add('detector');
if (phases.has('raw') || phases.has('detector')) phases.add('produce');

const config = loadConfig(harnessConfigSchema, 'bench');
const LOOPBACK = new Set(['127.0.0.1', 'localhost']);
for (const b of config.KAFKA_BOOTSTRAP_SERVERS) {
  if (!LOOPBACK.has(b.slice(0, b.lastIndexOf(':')))) throw new Error(`bench targets 127.0.0.1 only; KAFKA_BOOTSTRAP_SERVERS has ${b}`);
}
if (!LOOPBACK.has(config.REDIS_HOST)) throw new Error(`bench targets 127.0.0.1 only; REDIS_HOST is ${config.REDIS_HOST}`);
const brokers = config.KAFKA_BOOTSTRAP_SERVERS.map((b) => b.replace(/^localhost:/, '127.0.0.1:'));

// Rule settings handed to the detector explicitly (its defaults), so the expected alert count is known. The Temporal
// case signaller is off: it is off the detection path, the bench stack has no Temporal, and with Temporal unreachable
// it delays the detector's shutdown to its 20 s forced exit. --detector-env CASE_SIGNALLER=on turns it back on.
const detectorEnvExtra: Record<string, string> = Object.fromEntries(opts.detectorEnv.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const ruleEnv = { VELOCITY_FRAUD_THRESHOLD: '3', VELOCITY_WINDOW_SECONDS: '60', CASE_SIGNALLER: 'off', ...detectorEnvExtra };
const threshold = Number(ruleEnv.VELOCITY_FRAUD_THRESHOLD);

// ---------------------------------------------------------------------------------------------------------------
// Run state and cleanup

const id = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
const resultsDir = resolve(opts.resultsDir);
mkdirSync(resultsDir, { recursive: true });
const reportPath = `${resultsDir}/detector-${stamp}${opts.cpuProf ? '-cpuprof' : ''}.json`;

// One benchmark at a time on this machine: two runs would share Redis db 14 (each flushes it) and the CPUs.
const lockPath = `${tmpdir()}/fraudwatch-bench.lock`;
function takeLock(): void {
  try {
    writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
    return;
  } catch {
    const holder = Number(readFileSync(lockPath, 'utf8').trim());
    let alive = false;
    try {
      process.kill(holder, 0);
      alive = holder !== process.pid;
    } catch {
      alive = false;
    }
    if (alive) {
      process.stderr.write(`bench: another benchmark (pid ${holder}) is running (${lockPath}); try again when it is done\n`);
      process.exit(75); // EX_TEMPFAIL
    }
    writeFileSync(lockPath, String(process.pid)); // stale lock
  }
}
takeLock();
process.on('exit', () => {
  try {
    if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
  } catch {
    // already gone
  }
});

const kafka = benchKafka(brokers, `bench-${id}`);
const redis = new Redis({ host: config.REDIS_HOST, port: config.REDIS_PORT, password: config.REDIS_PASSWORD, db: opts.redisDb, maxRetriesPerRequest: 3, lazyConnect: true });
const subscriber = redis.duplicate();
// Connection errors surface through the failing commands; log each client's first one instead of ioredis' default spam.
for (const [name, client] of [['redis', redis], ['subscriber', subscriber]] as const) {
  let logged = false;
  client.on('error', (err: Error) => {
    if (!logged) log(`${name}: ${err.message}`);
    logged = true;
  });
}
const detectors = new Set<DetectorProcess>();
const topics: string[] = [];
const groups: string[] = [];
let admin: Admin | null = null;
let producer: Producer | null = null;

// The broker and Redis as started by stack/stack.sh (pid files re-read each time: the stack may be restarted).
let currentDetector: DetectorProcess | null = null;
const watched = () => ({
  detector: currentDetector?.pid,
  kafka: readPidFile(`${repoRoot}.stack/run/kafka.pid`),
  redis: readPidFile(`${repoRoot}.stack/run/redis.pid`),
  bench: process.pid,
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const report: Record<string, any> = {
  benchmark: 'detector',
  id,
  startedAt: startedAt.toISOString(),
  command: `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
  status: 'running',
  options: { ...opts, phases: [...phases] },
  detectorEnv: { ...ruleEnv, REDIS_DB: String(opts.redisDb), LOG_LEVEL: 'warn' },
  detectorNodeArgs: opts.detectorNodeArgs,
  phases: {} as Record<string, unknown>,
  observations: [] as string[],
  loadNotes: [] as Array<Record<string, unknown>>,
};

function saveProgress(): void {
  writeFileSync(`${reportPath}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
}

let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const d of detectors) {
      const how = await d.stop(10_000).then(() => d.exitStatus(), (e: Error) => e.message);
      log(`detector pid ${d.pid} stopped (${how})`);
    }
    await subscriber.quit().catch(() => subscriber.disconnect());
    await producer?.disconnect().catch(() => undefined);
    try {
      if (topics.length > 0 || groups.length > 0) {
        if (!admin) {
          admin = kafka.admin();
          await withTimeout(admin.connect(), 15_000, 'admin connect');
        }
        if (groups.length > 0) {
          await withTimeout(admin.deleteGroups(groups), 15_000, 'delete groups').catch((e: Error & { groups?: Array<{ groupId: string; error?: Error }> }) => {
            // Groups that never committed an offset are gone once empty: "not found" is fine.
            const failed = (e.groups ?? []).filter((g) => g.error && !/not found/i.test(g.error.message)).map((g) => `${g.groupId}: ${g.error!.message}`);
            if (failed.length > 0 || !e.groups) log(`could not delete consumer groups: ${e.message}${failed.length ? ` (${failed.join('; ')})` : ''}`);
          });
        }
        if (topics.length > 0) {
          await withTimeout(admin.deleteTopics({ topics, timeout: 15_000 }), 20_000, 'delete topics');
          log(`deleted topics ${topics.join(', ')}`);
        }
      }
    } catch (err) {
      log(`cleanup: ${(err as Error).message}`);
    } finally {
      await admin?.disconnect().catch(() => undefined);
    }
    try {
      if (redis.status === 'ready') {
        await redis.flushdb();
        log(`flushed Redis db ${opts.redisDb}`);
      }
    } catch (err) {
      log(`cleanup: could not flush Redis db ${opts.redisDb}: ${(err as Error).message}`);
    }
    await redis.quit().catch(() => redis.disconnect());
  })();
  return cleaning;
}

// Hard bound on the whole run, and signals: clean up and exit; a second bound in case cleanup hangs.
const hardStop = (why: string, code: number) => {
  log(`${why}: cleaning up and exiting`);
  report.status = 'aborted';
  report.error = why;
  try {
    saveProgress();
  } catch {
    // best effort
  }
  setTimeout(() => {
    for (const d of detectors) d.proc.kill('SIGKILL');
    process.exit(code);
  }, 60_000).unref();
  void cleanup().finally(() => process.exit(code));
};
const watchdog = setTimeout(() => hardStop(`run exceeded --max-minutes ${opts.maxMinutes}`, 3), opts.maxMinutes * 60_000);
watchdog.unref();
process.once('SIGINT', () => hardStop('SIGINT', 130));
process.once('SIGTERM', () => hardStop('SIGTERM', 143));

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** Phase time bound: generous for the machine (2 cores), proportional to the work. */
const phaseTimeoutMs = (events: number, minPerSecond = 1500) => Math.max(120_000, (events / minPerSecond) * 1000);

async function createTopicPair(name: string): Promise<{ topic: string; dlq: string }> {
  const dlq = `${name}.dlq`;
  topics.push(name, dlq);
  await admin!.createTopics({
    waitForLeaders: true,
    topics: [{ topic: name, numPartitions: opts.partitions, replicationFactor: 1 }, { topic: dlq, numPartitions: 1, replicationFactor: 1 }],
  });
  return { topic: name, dlq };
}

async function startDetector(label: string, topic: string, dlq: string, cpuProfDir?: string): Promise<DetectorProcess> {
  const group = `bench-${label}-${id}`;
  groups.push(group);
  const d = await spawnDetector(
    {
      KAFKA_BOOTSTRAP_SERVERS: brokers.join(','),
      PAYMENTS_TOPIC: topic,
      DLQ_TOPIC: dlq,
      DETECTOR_GROUP_ID: group,
      DETECTOR_INSTANCE_ID: `bench-${label}-${id}`,
      REDIS_HOST: config.REDIS_HOST,
      REDIS_PORT: String(config.REDIS_PORT),
      REDIS_DB: String(opts.redisDb),
      LOG_LEVEL: 'warn',
      ...ruleEnv,
    },
    { ...(cpuProfDir ? { cpuProfDir } : {}), nodeArgs: opts.detectorNodeArgs, ...(opts.detectorLog ? { logFile: opts.detectorLog } : {}) },
  );
  detectors.add(d);
  currentDetector = d;
  return d;
}

/** Warnings and errors the detector logged (pino JSON lines at level >= 40), for the report. */
function detectorProblems(d: DetectorProcess): { count: number; last: string[] } {
  const lines = d.output().split('\n').filter((l) => /"level":(4|5|6)0/.test(l) || /^(Error|TypeError|node:)/.test(l));
  return { count: lines.length, last: lines.slice(-10).map((l) => l.slice(0, 600)) };
}

async function stopDetector(d: DetectorProcess, phase: string): Promise<string> {
  await d.stop(20_000);
  const how = d.exitStatus()!;
  detectors.delete(d);
  if (currentDetector === d) currentDetector = null;
  const problems = detectorProblems(d);
  report.detectorLogs ??= {};
  report.detectorLogs[phase] = { exit: how, ...problems };
  if (problems.count > 0) note(`${phase}: the detector logged ${problems.count} warning/error line(s); see detectorLogs in the report`);
  if (how !== 'exit 0') note(`${phase}: the detector did not exit cleanly on SIGTERM (${how})`);
  return how;
}

/** A key this run writes to its Redis db first: if it disappears, something else flushed the db during the run. */
const sentinel = `bench:run:${id}`;
async function checkSentinel(phase: string): Promise<void> {
  if ((await redis.exists(sentinel)) === 0) {
    note(`${phase}: Redis db ${opts.redisDb} was flushed by another process during this phase; the detector then loses its checkpoints (it treats the missing epoch as fencing) and its results are suspect`);
    await redis.set(sentinel, '1');
  }
}

function note(msg: string): void {
  report.observations.push(msg);
  log(`note: ${msg}`);
}

/** Record phases during which other work on the machine used a noticeable share of the CPUs. */
function checkLoad(phase: string, cpu: CpuReport): void {
  if (cpu.otherCores >= 0.3) {
    report.loadNotes.push({ phase, otherCores: cpu.otherCores, machineCores: cpu.machineCores, loadavg1: [cpu.loadavgBefore[0], cpu.loadavgAfter[0]] });
    log(`note: ${phase}: other work on the machine used ${cpu.otherCores} cores on average (load average ${cpu.loadavgBefore[0]} -> ${cpu.loadavgAfter[0]})`);
  }
}

/** Events/s over sliding windows of `windowMs`, from the progress samples (only while events were flowing). */
function windowRates(samples: ProgressSample[], windowMs = 5000): { min: number; median: number; max: number } | null {
  const rates: number[] = [];
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    while (j < i && samples[i]!.t - samples[j]!.t > windowMs) j++;
    const a = samples[j]!;
    const b = samples[i]!;
    if (b.t - a.t >= windowMs * 0.8 && a.events > 0 && b.events > a.events) rates.push(((b.events - a.events) / (b.t - a.t)) * 1000);
  }
  if (rates.length === 0) return null;
  rates.sort((x, y) => x - y);
  return { min: Math.round(rates[0]!), median: Math.round(rates[Math.floor(rates.length / 2)]!), max: Math.round(rates[rates.length - 1]!) };
}

/** Count, mean and cumulative buckets (le -> count) of a prom-client histogram. */
function histogramMean(m: Map<string, number>, name: string): { count: number; meanMs: number; sumSeconds: number; buckets: Record<string, number> } {
  const sum = total(m, `${name}_sum`);
  const count = total(m, `${name}_count`);
  return { count, meanMs: round((sum / Math.max(1, count)) * 1000, 2), sumSeconds: round(sum, 2), buckets: byLabel(m, `${name}_bucket`, 'le') };
}

/** GC time of the detector between two scrapes, by kind (prom-client's nodejs_gc_duration_seconds histogram). */
function gcDelta(before: Map<string, number>, after: Map<string, number>): Record<string, { count: number; seconds: number; over100ms: number }> {
  const name = 'detector_nodejs_gc_duration_seconds';
  const out: Record<string, { count: number; seconds: number; over100ms: number }> = {};
  const kindOf = (series: string) => /kind="([^"]+)"/.exec(series)?.[1] ?? '?';
  for (const [series, v] of after) {
    if (!series.startsWith(name)) continue;
    const kind = kindOf(series);
    const e = (out[kind] ??= { count: 0, seconds: 0, over100ms: 0 });
    const d = v - (before.get(series) ?? 0);
    if (series.startsWith(`${name}_count`)) {
      e.count += d;
      e.over100ms += d;
    } else if (series.startsWith(`${name}_sum`)) e.seconds = round(e.seconds + d, 3);
    else if (series.startsWith(`${name}_bucket`) && series.includes('le="0.1"')) e.over100ms -= d;
  }
  return out;
}

async function checkpointSenders(group: string, topic: string): Promise<number> {
  let n = 0;
  for (let p = 0; p < opts.partitions; p++) n += await redis.hlen(`fraud:detector:${group}:${topic}:${p}:state`);
  return n;
}

async function measureLatency(detector: DetectorProcess, topic: string, label: string, rate: number, seconds: number, burstShare: number, index: number): Promise<Record<string, unknown>> {
  const events = Math.round(rate * seconds);
  log(`phase c (${label}): live stream ${rate}/s for ${seconds}s (${events} events, ${burstShare} in bursts)`);
  const prefix = `LIVE${index}_${id}_`;
  const triggers = new Map<string, LiveTrigger>(); // by triggering transaction id
  const latencies: number[] = [];
  const sentAts: number[] = [];
  let unmatched = 0;
  let foreign = 0;
  let wrongTrigger = 0;
  const onMessage = (_pattern: string, channel: string, message: string) => {
    const at = now();
    if (!channel.startsWith(`fraud:alerts:sender:${prefix}`)) {
      foreign++; // another process publishing on the shared (database-independent) channel space
      return;
    }
    const alert = JSON.parse(message) as { sender_account_id: string; transaction_ids: string[] };
    const trigger = triggers.get(alert.transaction_ids[alert.transaction_ids.length - 1]!);
    if (!trigger) {
      unmatched++;
      return;
    }
    if (trigger.sender !== alert.sender_account_id) wrongTrigger++;
    latencies.push(at - trigger.sentAt);
    sentAts.push(trigger.sentAt);
    triggers.delete(trigger.transactionId);
  };
  subscriber.on('pmessage', onMessage);
  await subscriber.psubscribe('fraud:alerts:*');
  try {
    const before = await detector.metrics();
    const eventsBefore = total(before, 'detector_events_total');
    const alertsBefore = total(before, 'detector_alerts_written_total');
    let expected = 0;
    const cpu = cpuMeter(watched);
    const live = await withTimeout(
      produceLive(producer!, topic, {
        events, senders: events, burstShare, burstSize: opts.burstSize, malformedShare: 0,
        startTime: Date.now(), spanMs: seconds * 1000, seed: opts.seed + 1 + index, accountPrefix: prefix,
      }, {
        rate, tickMs: 10, maxBatch: 4000, threshold,
        onTrigger: (t) => {
          expected++;
          triggers.set(t.transactionId, t);
        },
      }),
      seconds * 1000 * 3 + 30_000, 'live produce',
    );
    // Wait (bounded) for the remaining alerts and for the detector to process the whole live stream.
    const waitUntil = now() + 20_000;
    while (now() < waitUntil && triggers.size > 0) await sleep(50);
    const c = cpu.end();
    checkLoad(label, c);
    let after = await detector.metrics();
    while (now() < waitUntil && total(after, 'detector_events_total') < eventsBefore + live.events) {
      await sleep(200);
      after = await detector.metrics();
    }
    const lat = summarise(latencies);
    // Where the slow alerts were: seconds into the run (clustered at the start = catching up; periodic = a stall).
    const p99 = lat.p99Ms;
    const phaseStart = sentAts.length > 0 ? sentAts.reduce((a, b) => Math.min(a, b)) : 0;
    const wallStart = new Date(Date.now() - (now() - phaseStart)).toISOString();
    const tail = latencies
      .map((l, i) => [round((sentAts[i]! - phaseStart) / 1000, 2), round(l, 1)] as [number, number])
      .filter(([, l]) => l >= p99)
      .sort((a, b) => a[0] - b[0])
      .slice(0, 60);
    const delta = (name: string) => {
      const b = histogramMean(before, name);
      const a = histogramMean(after, name);
      const count = a.count - b.count;
      const buckets: Record<string, number> = {};
      for (const [le, n] of Object.entries(a.buckets)) buckets[le] = n - (b.buckets[le] ?? 0);
      return { count, meanMs: round(((a.sumSeconds - b.sumSeconds) / Math.max(1, count)) * 1000, 2), buckets };
    };
    const processed = total(after, 'detector_events_total') - eventsBefore;
    log(`  produced ${live.events} at ${live.achievedRate}/s (target ${rate}); ${latencies.length}/${expected} alerts: p50 ${lat.p50Ms} ms, p99 ${lat.p99Ms} ms, p999 ${lat.p999Ms} ms, max ${lat.maxMs} ms`);
    if (triggers.size > 0) note(`${label}: ${triggers.size} of ${expected} expected alerts did not arrive within 20 s after the stream`);
    if (live.achievedRate < rate * 0.95) note(`${label}: the producer reached ${live.achievedRate}/s of the ${rate}/s target`);
    return {
      ...live,
      burstShare,
      eventTimestamps: 'Date.now() at send time',
      expectedAlerts: expected,
      received: latencies.length,
      missing: triggers.size,
      unmatchedAlerts: unmatched,
      alertsWithUnexpectedSender: wrongTrigger,
      foreignPublications: foreign,
      detectorEventsProcessed: processed,
      detectorAlertsWritten: total(after, 'detector_alerts_written_total') - alertsBefore,
      latency: lat,
      /** Wall-clock time of the first alert-triggering send; slowestAtSeconds are offsets from it. */
      firstTriggerAt: wallStart,
      slowestAtSeconds: tail,
      detectorBatches: delta('detector_batch_seconds'),
      detectorCheckpoints: delta('detector_checkpoint_seconds'),
      detectorCpuMicrosPerEvent: round(((c.processCores.detector ?? 0) * c.wallSeconds * 1e6) / Math.max(1, processed), 2),
      detectorGc: gcDelta(before, after),
      cpu: c,
    };
  } finally {
    await subscriber.punsubscribe('fraud:alerts:*');
    subscriber.off('pmessage', onMessage);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Phases

async function main(): Promise<void> {
  const t0 = now();
  await redis.connect();
  await subscriber.connect();
  report.machine = await machineInfo(redis);
  report.code = codeVersion();
  log(`machine: ${report.machine.nproc} cpus (${report.machine.cpuModel}), ${report.machine.memoryGiB} GiB, node ${report.machine.node}, kafka ${report.machine.kafka}, redis ${report.machine.redis}; load ${report.machine.loadavgAtStart.join(' ')}`);
  await redis.flushdb();
  await redis.set(sentinel, '1');
  admin = kafka.admin();
  await admin.connect();
  producer = await connectProducer(kafka);

  const mainTopic = `bench-payments-${id}`;
  let pair: { topic: string; dlq: string } | null = null;
  let produced: Awaited<ReturnType<typeof produceBulk>> | null = null;

  // 0. Produce the main stream.
  if (phases.has('produce')) {
    pair = await createTopicPair(mainTopic);
    log(`phase 0: producing ${opts.events} events to ${mainTopic} (${opts.partitions} partitions)`);
    const cpu = cpuMeter(watched);
    const spanMs = 3_600_000;
    produced = await withTimeout(
      produceBulk(producer, pair.topic, {
        events: opts.events, senders: opts.senders, burstShare: opts.burstShare, burstSize: opts.burstSize, malformedShare: opts.malformedShare,
        startTime: Date.now() - spanMs, spanMs, seed: opts.seed, accountPrefix: `ACC_${id}_`,
      }, { batchSize: opts.produceBatch, concurrency: opts.produceConcurrency, threshold }),
      phaseTimeoutMs(opts.events, 2000), 'bulk produce',
    );
    const c = cpu.end();
    report.phases.produce = { topic: pair.topic, ...produced, meanEventBytes: round(produced.bytes / produced.events), cpu: c };
    checkLoad('produce', c);
    log(`  ${produced.events} events in ${produced.seconds}s = ${produced.eventsPerSecond}/s (${produced.mbPerSecond} MB/s); ${produced.bursts} bursts, ${produced.expectedAlerts} alerts expected`);
    saveProgress();
  }

  // (a) Raw consume ceilings.
  if (phases.has('raw') && pair && produced) {
    const raw: RawConsumeResult[] = [];
    const runs: Array<{ name: string; run: () => Promise<RawConsumeResult> }> = [
      {
        name: 'kafkajs',
        run: () => {
          const g = `bench-raw-kafkajs-${id}-${groups.length}`;
          groups.push(g);
          // The detector's fetch settings (detector/kafkajs-client.ts) and kafkajs' default maxBytes.
          return rawKafkajs(kafka, pair!.topic, g, produced!.events, phaseTimeoutMs(produced!.events), {
            maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 10 * 1024 * 1024, maxWaitTimeInMs: 100, partitionsConsumedConcurrently: 1,
          });
        },
      },
      {
        name: '@platformatic/kafka (defaults)',
        run: () => {
          const g = `bench-raw-plt-${id}-${groups.length}`;
          groups.push(g);
          // Library defaults (maxBytes 50 MB per fetch and per partition, highWaterMark 1024), short maxWaitTime.
          return rawPlatformatic(brokers, pair!.topic, g, produced!.events, phaseTimeoutMs(produced!.events), { maxBytes: 50 * 1024 * 1024, maxWaitTime: 100, highWaterMark: 1024 });
        },
      },
      {
        name: '@platformatic/kafka (kafkajs-like fetch sizes)',
        run: () => {
          const g = `bench-raw-plt2-${id}-${groups.length}`;
          groups.push(g);
          return rawPlatformatic(brokers, pair!.topic, g, produced!.events, phaseTimeoutMs(produced!.events), {
            maxBytes: 10 * 1024 * 1024, maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTime: 100, highWaterMark: 4096,
          });
        },
      },
    ];
    // Each client `rawRepeats` times (fresh group each); other work on the machine only ever lowers a ceiling, so the
    // best run counts and all runs are kept.
    for (const r of runs) {
      const attempts: Array<RawConsumeResult & { cpu: CpuReport }> = [];
      for (let i = 0; i < opts.rawRepeats; i++) {
        log(`phase a: raw consume with ${r.name} (run ${i + 1}/${opts.rawRepeats})`);
        const cpu = cpuMeter(watched);
        const res = await r.run();
        const c = cpu.end();
        checkLoad(`raw ${r.name} run ${i + 1}`, c);
        attempts.push({ ...res, cpu: c });
        log(`  ${res.messages} messages in ${res.seconds}s = ${res.eventsPerSecond}/s; from group join (${res.joinSeconds}s): ${res.eventsPerSecondFromJoin}/s; first message at ${res.firstMessageSeconds}s`);
      }
      const best = attempts.reduce((a, b) => (b.eventsPerSecondFromJoin > a.eventsPerSecondFromJoin ? b : a));
      raw.push({ ...best, client: r.name, runs: attempts.map((a) => ({ eventsPerSecondFromJoin: a.eventsPerSecondFromJoin, eventsPerSecond: a.eventsPerSecond, otherCores: a.cpu.otherCores })) } as RawConsumeResult);
      report.phases.raw = raw;
      saveProgress();
    }
  }

  // (b) Detector sustained throughput.
  let detector: DetectorProcess | null = null;
  let sustained = 0;
  if (phases.has('detector') && pair && produced) {
    log(`phase b: detector on ${produced.events} events`);
    const cpu = cpuMeter(watched);
    detector = await startDetector('detector', pair.topic, pair.dlq, opts.cpuProf);
    const progress = await trackEvents(detector, produced.events, phaseTimeoutMs(produced.events, 1000));
    const c = cpu.end();
    checkLoad('detector', c);
    const m = progress.final;
    // Let the last alert writes land (they precede the events counter increment) and read Redis.
    const flagged = await redis.scard('fraud:alerts:accounts');
    const streamLen = await redis.xlen('fraud:alerts:stream');
    const first = progress.first!;
    const seconds = progress.reachedAt / 1000;
    const exclSeconds = (progress.reachedAt - first.t) / 1000;
    const rateExcl = (produced.events - first.events) / exclSeconds;
    sustained = rateExcl;
    const rateFromHealthy = progress.healthyAt === null ? null : produced.events / ((progress.reachedAt - progress.healthyAt) / 1000);
    const kafkajsRaw = (report.phases.raw as Array<RawConsumeResult & { cpu?: CpuReport }> | undefined)?.find((r) => r.client === 'kafkajs');
    const outcomes = byLabel(m, 'detector_events_total', 'outcome');
    const alertsWritten = total(m, 'detector_alerts_written_total');
    const batches = histogramMean(m, 'detector_batch_seconds');
    const checkpoints = histogramMean(m, 'detector_checkpoint_seconds');
    report.phases.detector = {
      events: produced.events,
      secondsFromSpawn: round(seconds, 2),
      eventsPerSecond: Math.round(produced.events / seconds),
      startupSeconds: round(first.t / 1000, 2),
      eventsAtFirstSample: first.events,
      secondsFromFirstSample: round(exclSeconds, 2),
      eventsPerSecondExclStartup: Math.round(rateExcl),
      rate5sWindows: windowRates(progress.samples),
      healthySeconds: progress.healthyAt === null ? null : round(progress.healthyAt / 1000, 2),
      eventsPerSecondFromHealthy: rateFromHealthy === null ? null : Math.round(rateFromHealthy),
      ratioToKafkajsRaw: kafkajsRaw ? round(rateExcl / kafkajsRaw.eventsPerSecondFromJoin, 3) : null,
      ratioToKafkajsRawFromJoin: kafkajsRaw && rateFromHealthy !== null ? round(rateFromHealthy / kafkajsRaw.eventsPerSecondFromJoin, 3) : null,
      ratioToKafkajsRawInclStartup: kafkajsRaw ? round(produced.events / seconds / kafkajsRaw.eventsPerSecond, 3) : null,
      outcomes,
      alerts: {
        expected: produced.expectedAlerts,
        writtenMetric: alertsWritten,
        duplicatesMetric: total(m, 'detector_alerts_duplicate_total'),
        flaggedAccountsInRedis: flagged,
        alertStreamLength: streamLen,
        ok: alertsWritten === produced.expectedAlerts && flagged === produced.expectedAlerts && streamLen === produced.expectedAlerts,
      },
      batches: { ...batches, meanEvents: round(produced.events / Math.max(1, batches.count), 1), busyShareOfWall: round(batches.sumSeconds / exclSeconds, 3) },
      // CPU time per event, from /proc: comparable across runs even when other work competes for the CPUs.
      cpuMicrosPerEvent: round(((c.processCores.detector ?? 0) * c.wallSeconds * 1e6) / produced.events, 2),
      kafkajsRawCpuMicrosPerMessage: kafkajsRaw?.cpu ? round(((kafkajsRaw.cpu.processCores.bench ?? 0) * kafkajsRaw.cpu.wallSeconds * 1e6) / kafkajsRaw.messages, 2) : null,
      // The detector's rate would be (kafkajs CPU per message / detector CPU per event) of the ceiling with equal CPU.
      ratioByCpuTime: kafkajsRaw?.cpu && c.processCores.detector
        ? round(((kafkajsRaw.cpu.processCores.bench ?? 0) * kafkajsRaw.cpu.wallSeconds / kafkajsRaw.messages) / ((c.processCores.detector * c.wallSeconds) / produced.events), 3)
        : null,
      checkpoints,
      gc: gcDelta(new Map(), m),
      rssBytesAtEnd: total(m, 'detector_process_resident_memory_bytes'),
      heapUsedBytesAtEnd: total(m, 'detector_nodejs_heap_size_used_bytes'),
      pollIntervalMs: 200,
      samples: progress.samples.filter((_, i) => i % 5 === 0).map((s) => [Math.round(s.t), s.events]),
      cpu: c,
    };
    const d = report.phases.detector;
    log(`  ${produced.events} events in ${d.secondsFromSpawn}s from spawn = ${d.eventsPerSecond}/s; excl. startup (${d.startupSeconds}s): ${d.eventsPerSecondExclStartup}/s; ratio to kafkajs raw ${d.ratioToKafkajsRaw}`);
    log(`  alerts: ${alertsWritten} written, ${flagged} flagged accounts, ${streamLen} in stream, ${produced.expectedAlerts} expected; outcomes ${JSON.stringify(outcomes)}`);
    if (!d.alerts.ok) note(`alert count mismatch: expected ${produced.expectedAlerts}, metric ${alertsWritten}, Redis accounts ${flagged}, stream ${streamLen}`);
    if (d.ratioToKafkajsRaw !== null && d.ratioToKafkajsRaw < 0.8) note(`detector reaches ${d.ratioToKafkajsRaw} of the kafkajs raw consume ceiling (target >= 0.8)`);
    await checkSentinel('detector');
    saveProgress();
  }

  // (c) Latency produce -> alert in Redis, with the same detector, caught up: at half the sustained rate (the
  // benchmark's definition), then at fixed lower rates (on 2 shared cores the half-rate run can saturate the machine).
  if (phases.has('latency') && detector && pair) {
    const runs: Array<{ key: string; rate: number; seconds: number; burstShare: number }> = [
      { key: 'latency', rate: Math.max(100, Math.round(opts.liveRate ?? sustained / 2)), seconds: opts.liveSeconds, burstShare: opts.liveBurstShare },
    ];
    for (const rate of opts.extraRates) runs.push({ key: `latencyAt${rate}`, rate, seconds: opts.extraSeconds, burstShare: opts.extraBurstShare });
    for (const [i, run] of runs.entries()) {
      report.phases[run.key] = await measureLatency(detector, pair.topic, run.key, run.rate, run.seconds, run.burstShare, i);
      await checkSentinel(run.key);
      saveProgress();
    }
  }

  // Stop the throughput detector (its CPU profile is written on exit).
  if (detector) {
    const how = await stopDetector(detector, 'detector');
    log(`  detector stopped (${how})`);
    if (opts.cpuProf) {
      const files = readdirSync(opts.cpuProf).filter((f) => f.endsWith('.cpuprofile')).map((f) => `${opts.cpuProf}/${f}`).sort();
      const file = files.filter((f) => f.includes(`.${detector!.pid}.`)).at(-1) ?? files.at(-1);
      if (file) {
        const summary = summariseProfile(file, 25);
        report.cpuProfile = summary;
        log(`\n${formatProfile(summary)}\n`);
      } else {
        note(`no .cpuprofile found in ${opts.cpuProf}`);
      }
    }
    saveProgress();
  }

  // (d) RSS with many distinct senders in the window.
  if (phases.has('memory')) {
    const n = opts.memorySenders;
    const memPair = await createTopicPair(`bench-senders-${id}`);
    log(`phase d: detector RSS with ${n} distinct senders`);
    await redis.flushdb();
    await redis.set(sentinel, '1');
    const usedBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
    const cpu = cpuMeter(watched);
    const d = await startDetector('memory', memPair.topic, memPair.dlq);
    await waitDetectorHealthy(d);
    await sleep(2000);
    const m0 = await d.metrics();
    const baseline = { rssBytes: total(m0, 'detector_process_resident_memory_bytes'), heapUsedBytes: total(m0, 'detector_nodejs_heap_size_used_bytes'), proc: d.vmRss() };
    // Event times within the last ~50 s: every sender stays in the window (state is dropped after two idle windows).
    const spanMs = 45_000;
    const producing = produceBulk(producer, memPair.topic, {
      events: n, senders: n, burstShare: 0, malformedShare: 0, startTime: Date.now() - 50_000, spanMs, seed: opts.seed + 2, accountPrefix: `MEM_${id}_`,
    }, { batchSize: opts.produceBatch, concurrency: opts.produceConcurrency, threshold });
    producing.catch(() => undefined);
    const progress = await trackEvents(d, n, phaseTimeoutMs(n, 1000), 500);
    const prod = await producing;
    await sleep(3000);
    const m1 = await d.metrics();
    const procMem = d.vmRss();
    const c = cpu.end();
    checkLoad('memory', c);
    const rss = total(m1, 'detector_process_resident_memory_bytes');
    const heapUsed = total(m1, 'detector_nodejs_heap_size_used_bytes');
    const outcomes = byLabel(m1, 'detector_events_total', 'outcome');
    const group = `bench-memory-${id}`;
    const how = await stopDetector(d, 'memory'); // the final checkpoint holds every sender still in the window
    const inCheckpoint = await checkpointSenders(group, memPair.topic);
    const usedAfter = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
    report.phases.memory = {
      senders: n,
      eventTimeSpanMs: spanMs,
      produce: { seconds: prod.seconds, eventsPerSecond: prod.eventsPerSecond, concurrentWithConsume: true },
      detectorSecondsFromFirstEvent: round((progress.reachedAt - (progress.first?.t ?? 0)) / 1000, 2),
      outcomes,
      baseline: { rssMB: mb(baseline.rssBytes), heapUsedMB: mb(baseline.heapUsedBytes), vmRssMB: baseline.proc ? mb(baseline.proc.rssBytes) : null },
      after: { rssMB: mb(rss), heapUsedMB: mb(heapUsed), vmRssMB: procMem ? mb(procMem.rssBytes) : null, vmHwmMB: procMem ? mb(procMem.hwmBytes) : null },
      rssBytesPerSender: Math.round(rss / n),
      rssDeltaBytesPerSender: Math.round((rss - baseline.rssBytes) / n),
      heapDeltaBytesPerSender: Math.round((heapUsed - baseline.heapUsedBytes) / n),
      sendersInFinalCheckpoint: inCheckpoint,
      redisUsedMemoryDeltaMB: mb(usedAfter - usedBefore),
      checkpoints: histogramMean(m1, 'detector_checkpoint_seconds'),
      batches: histogramMean(m1, 'detector_batch_seconds'),
      detectorStopped: how,
      cpu: c,
    };
    const r = report.phases.memory;
    log(`  RSS ${r.after.rssMB} MB (baseline ${r.baseline.rssMB} MB, peak ${r.after.vmHwmMB} MB): ${r.rssBytesPerSender} B/sender total, ${r.rssDeltaBytesPerSender} B/sender above baseline; heap +${r.heapDeltaBytesPerSender} B/sender; ${inCheckpoint} senders in the final checkpoint`);
    if ((outcomes.late ?? 0) > 0 || (outcomes.alert ?? 0) > 0) note(`memory phase: unexpected outcomes ${JSON.stringify(outcomes)}`);
    if (inCheckpoint !== n) note(`memory phase: the final checkpoint holds ${inCheckpoint} senders, expected ${n}`);
    await checkSentinel('memory');
    saveProgress();
  }
  report.durationSeconds = round((now() - t0) / 1000, 1);
}

let exitCode = 0;
try {
  await main();
  report.status = 'ok';
} catch (err) {
  exitCode = 1;
  report.status = 'failed';
  report.error = (err as Error).stack ?? String(err);
  log(`failed: ${(err as Error).message}`);
} finally {
  await withTimeout(cleanup(), 90_000, 'cleanup').catch((e: Error) => log(e.message));
  clearTimeout(watchdog);
}
report.finishedAt = new Date().toISOString();
report.totalSeconds = round((Date.now() - startedAt.getTime()) / 1000, 1);
saveProgress();
if (report.status === 'ok') {
  renameSync(`${reportPath}.tmp`, reportPath);
  log(`report: ${reportPath}`);
  if (opts.readme) {
    const profiled = opts.profileReport
      ? { report: JSON.parse(readFileSync(opts.profileReport, 'utf8')) as Record<string, unknown>, file: resolve(opts.profileReport).replace(repoRoot, '') }
      : undefined;
    writeReadme(`${repoRoot}bench/README.md`, report, reportPath.replace(repoRoot, ''), profiled);
    log('rewrote bench/README.md');
  }
} else {
  log(`report of the failed run: ${reportPath}.tmp`);
}
process.exit(exitCode);
