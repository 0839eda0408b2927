// One benchmark run: its options, clients, the report being written, and what it created (detectors, topics,
// consumer groups) so that `cleanup` removes it all. Handed to every phase.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { repoRoot } from '../common/env.ts';
import { redisOptions as sharedRedisOptions } from '../common/redis.ts';
import { config } from '../harness/stack.ts';
import { log, readPidFile, spawnDetector, withTimeout, type CpuReport, type DetectorProcess } from './lib.ts';
import type { BenchOptions, Phase } from './options.ts';
import { benchKafka } from './produce.ts';
import { RedisWatch } from './redis-watch.ts';
import { AlertListener } from './alert-listener.ts';
import { saveProgress, type DetectorReport } from './report.ts';

/** Phase time bound: generous for the machine (2 cores), proportional to the work. */
export const phaseTimeoutMs = (events: number, minPerSecond = 1500): number => Math.max(120_000, (events / minPerSecond) * 1000);

export type BenchDetector = DetectorProcess & { group: string };

const LOOPBACK = new Set(['127.0.0.1', 'localhost']);

export class BenchContext {
  readonly opts: BenchOptions;
  readonly phases: Set<Phase>;
  readonly id = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  readonly startedAt = new Date();
  readonly reportPath: string;
  readonly brokers: string[];
  /**
   * Rule settings handed to the detector explicitly (its defaults), so the expected alert count is known. The
   * Temporal case signaller is off: it is off the detection path, the bench stack has no Temporal, and with Temporal
   * unreachable it delays the detector's shutdown to its 20 s forced exit. --detector-env CASE_SIGNALLER=on turns it
   * back on.
   */
  readonly ruleEnv: Record<string, string>;
  readonly threshold: number;
  readonly kafka: Kafka;
  readonly redis: Redis;
  /** Alert publications, received and timestamped on a thread of their own. */
  readonly alerts: AlertListener;
  readonly report: DetectorReport;
  /** A key this run writes to its Redis db first: if it disappears, something else flushed the db during the run. */
  readonly sentinel: string;
  /** SLOWLOG / LATENCY per phase (server-wide settings, restored in cleanup). */
  readonly redisWatch: RedisWatch;
  admin: Admin | null = null;
  producer: Producer | null = null;
  private readonly detectors = new Set<DetectorProcess>();
  private readonly topics: string[] = [];
  private readonly groups: string[] = [];
  /** Running detectors by their name in the CPU accounting. */
  private readonly running = new Map<string, DetectorProcess>();
  private cleaning: Promise<void> | null = null;

  constructor(opts: BenchOptions, phases: Set<Phase>) {
    this.opts = opts;
    this.phases = phases;
    for (const b of config.KAFKA_BOOTSTRAP_SERVERS) {
      if (!LOOPBACK.has(b.slice(0, b.lastIndexOf(':')))) throw new Error(`bench targets 127.0.0.1 only; KAFKA_BOOTSTRAP_SERVERS has ${b}`);
    }
    if (!LOOPBACK.has(config.REDIS_HOST)) throw new Error(`bench targets 127.0.0.1 only; REDIS_HOST is ${config.REDIS_HOST}`);
    for (const s of config.REDIS_SENTINELS) {
      if (!LOOPBACK.has(s.host)) throw new Error(`bench targets 127.0.0.1 only; REDIS_SENTINELS has ${s.host}`);
    }
    this.brokers = config.KAFKA_BOOTSTRAP_SERVERS.map((b) => b.replace(/^localhost:/, '127.0.0.1:'));
    const extra = Object.fromEntries(opts.detectorEnv.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    this.ruleEnv = { VELOCITY_FRAUD_THRESHOLD: '3', VELOCITY_WINDOW_SECONDS: '60', CASE_SIGNALLER: 'off', ...extra };
    this.threshold = Number(this.ruleEnv.VELOCITY_FRAUD_THRESHOLD);

    const stamp = this.startedAt.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
    const resultsDir = resolve(opts.resultsDir);
    mkdirSync(resultsDir, { recursive: true });
    this.reportPath = `${resultsDir}/detector-${stamp}${opts.cpuProf ? '-cpuprof' : ''}.json`;
    this.sentinel = `bench:run:${this.id}`;

    this.kafka = benchKafka(this.brokers, `bench-${this.id}`);
    const redisOptions = { ...sharedRedisOptions({ ...config, REDIS_DB: opts.redisDb }, `bench-${this.id}`), maxRetriesPerRequest: 3 };
    this.redis = new Redis({ ...redisOptions, lazyConnect: true });
    this.alerts = new AlertListener(redisOptions);
    this.redisWatch = new RedisWatch(this.redis);
    // Connection errors surface through the failing commands; log each client's first one instead of ioredis' default spam.
    for (const [name, client] of [['redis', this.redis]] as const) {
      let logged = false;
      client.on('error', (err: Error) => {
        if (!logged) log(`${name}: ${err.message}`);
        logged = true;
      });
    }
    this.report = {
      benchmark: 'detector',
      id: this.id,
      startedAt: this.startedAt.toISOString(),
      command: `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
      status: 'running',
      options: { ...opts, phases: [...phases] },
      detectorEnv: { ...this.ruleEnv, REDIS_DB: String(opts.redisDb), LOG_LEVEL: 'warn' },
      detectorNodeArgs: opts.detectorNodeArgs,
      phases: {},
      observations: [],
      loadNotes: [],
    };
  }

  /**
   * The processes whose CPU time is accounted: the running detectors (`detector`, and `detector-2`… when several run
   * at once), the broker and Redis (pid files re-read each time: the stack may be restarted) and this one, which is
   * the load generator (`bench`).
   */
  readonly watched = () => ({
    ...Object.fromEntries([...this.running].map(([name, d]) => [name, d.pid])),
    kafka: readPidFile(`${repoRoot}.stack/run/kafka.pid`),
    redis: readPidFile(`${repoRoot}.stack/run/redis.pid`),
    bench: process.pid,
  });

  saveProgress(): void {
    saveProgress(this.reportPath, this.report);
  }

  note(msg: string): void {
    this.report.observations.push(msg);
    log(`note: ${msg}`);
  }

  /** Record phases during which other work on the machine used a noticeable share of the CPUs. */
  checkLoad(phase: string, cpu: CpuReport): void {
    if (cpu.otherCores >= 0.3) {
      this.report.loadNotes.push({ phase, otherCores: cpu.otherCores, machineCores: cpu.machineCores, loadavg1: [cpu.loadavgBefore[0]!, cpu.loadavgAfter[0]!] });
      log(`note: ${phase}: other work on the machine used ${cpu.otherCores} cores on average (load average ${cpu.loadavgBefore[0]} -> ${cpu.loadavgAfter[0]})`);
    }
  }

  async checkSentinel(phase: string): Promise<void> {
    if ((await this.redis.exists(this.sentinel)) === 0) {
      this.note(`${phase}: Redis db ${this.opts.redisDb} was flushed by another process during this phase; the detector then loses its checkpoints (it treats the missing epoch as fencing) and its results are suspect`);
      await this.redis.set(this.sentinel, '1');
    }
  }

  /** Run one phase with Redis's SLOWLOG and LATENCY reset before it and read after it (report.redis[label]). */
  async redisPhase<T>(label: string, fn: () => Promise<T>): Promise<T> {
    await this.redisWatch.begin();
    try {
      return await fn();
    } finally {
      const stats = await this.redisWatch.end();
      (this.report.redis ??= {})[label] = stats;
      const top = stats?.slowest[0];
      if (stats) log(`  redis during ${label}: ${stats.slowCommands} command(s) of 1 ms or more${top ? `, the slowest ${top.durationUs} µs ${top.command}` : ''}`);
    }
  }

  /** A consumer group name, removed at the end: `<prefix>-<run id>-<n>`. */
  consumerGroup(prefix: string): string {
    const group = `${prefix}-${this.id}-${this.groups.length}`;
    this.groups.push(group);
    return group;
  }

  async createTopicPair(name: string, partitions = this.opts.partitions): Promise<{ topic: string; dlq: string }> {
    const dlq = `${name}.dlq`;
    this.topics.push(name, dlq);
    await this.admin!.createTopics({
      waitForLeaders: true,
      topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }, { topic: dlq, numPartitions: 1, replicationFactor: 1 }],
    });
    return { topic: name, dlq };
  }

  /** Empty the Redis db (alert dedupe keys, checkpoints) so the next detector run starts from nothing, and re-arm the sentinel. */
  async freshRedis(): Promise<void> {
    await this.redis.flushdb();
    await this.redis.set(this.sentinel, '1');
  }

  /**
   * Spawn a detector on `topic` (group `bench-<label>-<run id>` unless `group` is given: detectors sharing a group
   * share its partitions). `client` sets KAFKA_CLIENT (default: the first --detector-clients); `cpuName` is its name in
   * the CPU accounting (`detector` unless several run at once).
   */
  async startDetector(label: string, topic: string, dlq: string, o: { cpuProfDir?: string; client?: string; group?: string; cpuName?: string } = {}): Promise<BenchDetector> {
    const group = o.group ?? `bench-${label}-${this.id}`;
    if (!this.groups.includes(group)) this.groups.push(group);
    const d = await spawnDetector(
      {
        KAFKA_BOOTSTRAP_SERVERS: this.brokers.join(','),
        PAYMENTS_TOPIC: topic,
        DLQ_TOPIC: dlq,
        DETECTOR_GROUP_ID: group,
        DETECTOR_INSTANCE_ID: `bench-${label}-${this.id}`,
        REDIS_HOST: config.REDIS_HOST,
        REDIS_PORT: String(config.REDIS_PORT),
        REDIS_DB: String(this.opts.redisDb),
        LOG_LEVEL: 'warn',
        ...this.ruleEnv,
        KAFKA_CLIENT: o.client ?? this.opts.detectorClients[0]!,
      },
      { ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}), nodeArgs: this.opts.detectorNodeArgs, ...(this.opts.detectorLog ? { logFile: this.opts.detectorLog } : {}) },
    );
    const detector = { ...d, group };
    this.detectors.add(detector);
    this.running.set(o.cpuName ?? 'detector', detector);
    return detector;
  }

  /** Until the group has `members` members and is Stable (each has its share of the partitions), bounded. */
  async waitGroupStable(group: string, members: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = '';
    while (Date.now() < deadline) {
      const { groups } = await this.admin!.describeGroups([group]);
      const g = groups[0];
      seen = `${g?.state ?? '?'} with ${g?.members.length ?? 0} member(s)`;
      if (g?.state === 'Stable' && g.members.length === members) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`consumer group ${group}: not Stable with ${members} members after ${timeoutMs / 1000}s (${seen})`);
  }

  /** SIGTERM (SIGKILL after 20 s); records how it ended and what it warned about. */
  async stopDetector(d: DetectorProcess, phase: string): Promise<string> {
    await d.stop(20_000);
    const how = d.exitStatus()!;
    this.detectors.delete(d);
    for (const [name, r] of this.running) if (r === d) this.running.delete(name);
    const problems = detectorProblems(d);
    this.report.detectorLogs ??= {};
    this.report.detectorLogs[phase] = { exit: how, ...problems };
    if (problems.count > 0) this.note(`${phase}: the detector logged ${problems.count} warning/error line(s); see detectorLogs in the report`);
    if (how !== 'exit 0') this.note(`${phase}: the detector did not exit cleanly on SIGTERM (${how})`);
    return how;
  }

  /** SIGKILL every detector still running (the last resort when cleanup hangs). */
  killDetectors(): void {
    for (const d of this.detectors) d.proc.kill('SIGKILL');
  }

  /** Stop the detectors, delete the topics and consumer groups, flush the Redis db; once, however often called. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.removeAll();
    return this.cleaning;
  }

  private async removeAll(): Promise<void> {
    for (const d of this.detectors) {
      const how = await d.stop(10_000).then(() => d.exitStatus(), (e: Error) => e.message);
      log(`detector pid ${d.pid} stopped (${how})`);
    }
    await this.alerts.close().catch((e: Error) => log(`cleanup: ${e.message}`));
    await this.redisWatch.restore().catch((e: Error) => log(`cleanup: ${e.message}`));
    await this.producer?.disconnect().catch(() => undefined);
    const { topics, groups } = this;
    try {
      if (topics.length > 0 || groups.length > 0) {
        if (!this.admin) {
          this.admin = this.kafka.admin();
          await withTimeout(this.admin.connect(), 15_000, 'admin connect');
        }
        const admin = this.admin;
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
      await this.admin?.disconnect().catch(() => undefined);
    }
    try {
      if (this.redis.status === 'ready') {
        await this.redis.flushdb();
        log(`flushed Redis db ${this.opts.redisDb}`);
      }
    } catch (err) {
      log(`cleanup: could not flush Redis db ${this.opts.redisDb}: ${(err as Error).message}`);
    }
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** Warnings and errors the detector logged (pino JSON lines at level >= 40), for the report. */
function detectorProblems(d: DetectorProcess): { count: number; last: string[] } {
  const lines = d.output().split('\n').filter((l) => /"level":(4|5|6)0/.test(l) || /^(Error|TypeError|node:)/.test(l));
  return { count: lines.length, last: lines.slice(-10).map((l) => l.slice(0, 600)) };
}
