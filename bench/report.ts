// The detector benchmark's report: what bench/run.ts writes to bench/results/detector-<time>.json and what
// bench/readme.ts renders into bench/README.md. Reports of earlier runs may lack fields added since.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from '../common/env.ts';
import type { RawConsumeResult } from './consume.ts';
import type { CpuReport, GcByKind, HistogramDelta, HistogramSummary, LatencySummary, RuntimeStats } from './lib.ts';
import type { CodeVersion, MachineInfo } from './machine.ts';
import type { BenchOptions } from './options.ts';
import type { BulkProduceResult, LiveProduceResult } from './produce.ts';
import type { ClientComparison, SoakVerdict } from './compare.ts';
import type { ProfileSummary } from './profile.ts';
import type { RedisPhaseStats } from './redis-watch.ts';
import { writeReadme } from './readme.ts';

export interface DetectorReport {
  benchmark: 'detector';
  id: string;
  startedAt: string;
  command: string;
  status: 'running' | 'ok' | 'failed' | 'aborted';
  /** The command-line options, `phases` with the phases they depend on. */
  options: BenchOptions;
  /** What the detectors got on top of the stack's settings. */
  detectorEnv: Record<string, string>;
  detectorNodeArgs: string[];
  phases: PhaseResults;
  /** Shortfalls noticed during the run, in words. */
  observations: string[];
  /** Phases during which other work used a noticeable share of the CPUs. */
  loadNotes: LoadNote[];
  machine?: MachineInfo;
  code?: CodeVersion;
  /** How each detector ended and what it warned about, by phase. */
  detectorLogs?: Record<string, DetectorLog>;
  /** Redis SLOWLOG / LATENCY by phase label (null: monitoring unavailable). */
  redis?: Record<string, RedisPhaseStats | null>;
  /** With --cpu-prof: where the throughput-phase detector spent its time. */
  cpuProfile?: ProfileSummary;
  durationSeconds?: number;
  error?: string;
  finishedAt?: string;
  totalSeconds?: number;
}

/** The latency run at half the sustained rate is `latency`; the runs at fixed rates are `latencyAt<rate>`. */
export type ExtraLatencyKey = `latencyAt${number}`;

export interface PhaseResults {
  produce?: ProducePhase;
  raw?: RawPhase[];
  /** detector, latency and latencyAt<rate>: the first client's runs (kafkajs by default), also in clients[0]. */
  detector?: ThroughputPhase;
  latency?: LatencyPhase;
  [key: ExtraLatencyKey]: LatencyPhase | undefined;
  /** Every --detector-clients client's throughput and latency runs, in the order they ran. */
  clients?: ClientRuns[];
  /** Computed from `clients` (two or more). */
  clientComparison?: ClientComparison | null;
  scaleout?: ScaleoutPhase;
  memory?: MemoryPhase;
  /** --soak: minutes at half the sustained rate. */
  soak?: LatencyPhase;
  soakVerdict?: SoakVerdict | null;
}

/** One detector client (KAFKA_CLIENT) of --detector-clients: its throughput run and its latency runs. */
export interface ClientRuns {
  client: string;
  detector?: ThroughputPhase;
  latency: LatencyPhase[];
}

/** One configuration of the scale-out phase: `detectors` detectors in one consumer group. */
export interface ScaleoutRun {
  detectors: number;
  client: string;
  group: string;
  /** The backlog's topic: the stream, produced in one transaction committed once the group was Stable. */
  topic: string;
  /** The backlog, from the first event processed (any detector) to the last. */
  throughput: {
    events: number;
    /** Sum of detector_events_total at the end: above `events` when a rebalance made a detector reprocess records after the last checkpoint. */
    processed: number;
    eventsPerSecond: number;
    secondsFirstToLast: number;
    /** All events ÷ the time from the transaction's commit to the last event. */
    eventsPerSecondFromCommit: number;
    /** Per detector: seconds after the commit of its first event (as read by the 200 ms scrapes), and the events it processed. */
    firstEventAtSeconds: Array<number | null>;
    eventsByDetector: number[];
    /** Once every detector was processing: from the last of them starting to the end (null: one never started). */
    eventsPerSecondAllActive: number | null;
    detectorCpuMicrosPerEvent: number;
    /** GC and event loop of the detectors together (pauses summed, peaks the largest). */
    runtime: RuntimeStats | null;
    cpu: CpuReport;
  };
  alerts: { expected: number; inStream: number; distinctIds: number; ok: boolean };
  latency: LatencyPhase;
}

export interface ScaleoutPhase {
  partitions: number;
  events: number;
  /** The first configuration's stream (each is produced alike to a topic of its own). */
  produced?: BulkProduceResult;
  runs: ScaleoutRun[];
  /** Combined throughput of the last run ÷ the first (several detectors ÷ one). */
  speedup: number | null;
  /** The same with the rates from the transaction's commit (less sensitive to the 200 ms scrape interval on short runs). */
  speedupFromCommit: number | null;
  /** The alert ids of every run are the same set (the phase fails otherwise). */
  alertIdsIdentical: boolean;
  /** Up to 20 ids found in one run and not the other, when they differ. */
  alertIdDifference: { onlyInFirst: string[]; onlyInLast: string[] };
}

export interface SoakMinute {
  minute: number;
  alerts: number;
  p99Ms: number | null;
  rssMB: number;
  heapUsedMB: number;
  /** Sum over partitions of detector_consumer_lag at the minute's end, and the largest sum read during it (every 5 s). */
  lag: number;
  maxLag?: number;
  /** The group's lag as Kafka has it (high watermarks less committed offsets; the detector commits at each checkpoint), at the end and the largest. */
  committedLag?: number;
  maxCommittedLag?: number;
  /** RSS at the minute's end ÷ RSS when the soak began. */
  rssGrowthFromStart: number;
}

export interface LoadNote {
  phase: string;
  otherCores: number;
  machineCores: number;
  /** 1-minute load average before and after the phase. */
  loadavg1: number[];
}

export interface DetectorLog {
  exit: string;
  /** Warning and error lines it printed, and the last ten of them. */
  count: number;
  last: string[];
}

export interface ProducePhase extends BulkProduceResult {
  topic: string;
  meanEventBytes: number;
  cpu: CpuReport;
}

/** The best of `--raw-repeats` runs of one client, and all runs. */
export interface RawPhase extends RawConsumeResult {
  cpu: CpuReport;
  runs: Array<{ eventsPerSecondFromJoin: number; eventsPerSecond: number; otherCores: number }>;
}

export interface ThroughputPhase {
  /** KAFKA_CLIENT of the detector. */
  client?: string;
  events: number;
  secondsFromSpawn: number;
  eventsPerSecond: number;
  startupSeconds: number;
  eventsAtFirstSample: number;
  secondsFromFirstSample: number;
  eventsPerSecondExclStartup: number;
  rate5sWindows: { min: number; median: number; max: number } | null;
  healthySeconds: number | null;
  eventsPerSecondFromHealthy: number | null;
  ratioToKafkajsRaw: number | null;
  ratioToKafkajsRawFromJoin: number | null;
  ratioToKafkajsRawInclStartup: number | null;
  /**
   * Against the kafkajs consume + JSON.parse ceiling of this run (raw phase; kafkajs is the detector's client): ratio =
   * rate excluding startup / that ceiling from group join; ratioFromJoin = both from group join.
   */
  parseCeiling: { client: string; eventsPerSecondFromJoin: number; ratio: number; ratioFromJoin: number | null; cpuMicrosPerMessage: number } | null;
  outcomes: Record<string, number>;
  alerts: {
    expected: number;
    writtenMetric: number;
    duplicatesMetric: number;
    flaggedAccountsInRedis: number;
    alertStreamLength: number;
    ok: boolean;
  };
  batches: HistogramSummary & { meanEvents: number; busyShareOfWall: number };
  cpuMicrosPerEvent: number;
  kafkajsRawCpuMicrosPerMessage: number | null;
  ratioByCpuTime: number | null;
  checkpoints: HistogramSummary;
  gc: GcByKind;
  runtime: RuntimeStats | null;
  rssBytesAtEnd: number;
  heapUsedBytesAtEnd: number;
  pollIntervalMs: number;
  /** [ms since spawn, events], every fifth sample. */
  samples: Array<[number, number]>;
  cpu: CpuReport;
}

/** A histogram delta with p50/p99/p999 as the upper bounds of the buckets holding them (null: past the last bound). */
export type BucketSummary = HistogramDelta & { p50MsAtMost: number | null; p99MsAtMost: number | null; p999MsAtMost: number | null };

export interface LatencyPhase extends LiveProduceResult {
  /** The detector client (KAFKA_CLIENT) and which run: half / high (share of that client's sustained rate) / fixed rate. */
  client?: string;
  role?: 'half' | 'high' | 'fixed';
  /** Soak only: the sender population, and the figures per minute. */
  senders?: number;
  minutes?: SoakMinute[];
  burstShare: number;
  eventTimestamps: string;
  expectedAlerts: number;
  received: number;
  missing: number;
  unmatchedAlerts: number;
  alertsWithUnexpectedSender: number;
  foreignPublications: number;
  detectorEventsProcessed: number;
  detectorAlertsWritten: number;
  latency: LatencySummary;
  /** Wall-clock time of the first alert-triggering send; slowestAtSeconds are offsets from it. */
  firstTriggerAt: string;
  /** [seconds into the run, latency ms] of the alerts at or above p99. */
  slowestAtSeconds: Array<[number, number]>;
  detectorBatches: HistogramDelta;
  detectorCheckpoints: HistogramDelta;
  /** The detector's split: age of a batch's newest record when it starts on it, and Kafka timestamp to alert written (bucket bounds). */
  detectorRecordAge: BucketSummary;
  detectorAlertLatency: BucketSummary;
  detectorCpuMicrosPerEvent: number;
  detectorGc: GcByKind;
  runtime: RuntimeStats | null;
  cpu: CpuReport;
}

/** One --memory-senders size: a fresh detector, its idle baseline, then that many senders in its window. */
export interface MemoryRun {
  senders: number;
  eventTimeSpanMs: number;
  produce: { seconds: number; eventsPerSecond: number; concurrentWithConsume: boolean };
  detectorSecondsFromFirstEvent: number;
  outcomes: Record<string, number>;
  baseline: { rssMB: number; heapUsedMB: number; vmRssMB: number | null };
  after: { rssMB: number; heapUsedMB: number; heapTotalMB?: number; externalMB?: number; vmRssMB: number | null; vmHwmMB: number | null };
  rssBytesPerSender: number;
  rssDeltaBytesPerSender: number;
  heapDeltaBytesPerSender: number;
  sendersInFinalCheckpoint: number;
  redisUsedMemoryDeltaMB: number;
  checkpoints: HistogramSummary;
  batches: HistogramSummary;
  detectorStopped: string;
  runtime: RuntimeStats | null;
  cpu: CpuReport;
}

/** The largest size (the headline, as before there were several), and every size, smallest first. */
export interface MemoryPhase extends MemoryRun {
  bySenders: MemoryRun[];
}

export const readReport = (file: string): DetectorReport => JSON.parse(readFileSync(file, 'utf8')) as DetectorReport;

/** The report so far, next to where it will go (`<path>.tmp`): a failed or aborted run leaves that. */
export function saveProgress(path: string, report: DetectorReport): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
}

/** The finished report (saved with saveProgress): move it to `path` and, unless told not to, render bench/README.md from it. */
export function publishReport(path: string, report: DetectorReport, opts: { readme: boolean; profileReport?: string }, log: (msg: string) => void): void {
  renameSync(`${path}.tmp`, path);
  log(`report: ${path}`);
  if (!opts.readme) return;
  const profiled = opts.profileReport ? { report: readReport(opts.profileReport), file: resolve(opts.profileReport).replace(repoRoot, '') } : undefined;
  writeReadme(`${repoRoot}bench/README.md`, report, path.replace(repoRoot, ''), profiled);
  log('rewrote bench/README.md');
}
