// Small helpers of the benchmark: the detector as a child process (through harness/), /metrics scraping, CPU
// accounting from /proc, statistics.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnService, waitHealthy, type RunningProcess } from '../harness/stack.ts';

export { sleep };

export const now = (): number => performance.now();
export const round = (n: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};
export const mb = (bytes: number): number => round(bytes / 1024 / 1024, 1);

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Reject with a clear message when `p` does not settle within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${round(ms / 1000)}s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  // Nearest-rank: the smallest value with at least p of the samples at or below it.
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LatencySummary {
  count: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export function summarise(samples: readonly number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    count: s.length,
    minMs: round(s[0] ?? Number.NaN, 2),
    p50Ms: round(percentile(s, 0.5), 2),
    p90Ms: round(percentile(s, 0.9), 2),
    p99Ms: round(percentile(s, 0.99), 2),
    p999Ms: round(percentile(s, 0.999), 2),
    maxMs: round(s[s.length - 1] ?? Number.NaN, 2),
    meanMs: round(mean, 2),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting: per-process CPU time from /proc/<pid>/stat, whole-machine busy time from /proc/stat.

const CLK_TCK = 100; // USER_HZ on Linux

function procCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // without guest (already in user)
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

export function readPidFile(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export interface CpuReport {
  wallSeconds: number;
  loadavgBefore: number[];
  loadavgAfter: number[];
  /** Whole machine: busy CPU-seconds per wall second (2.0 = both cores busy). */
  machineCores: number;
  /** CPU-seconds per wall second of each watched process (1.0 = one core). */
  processCores: Record<string, number | null>;
  /** Machine busy time not accounted for by the watched processes (other work on the box), in cores. */
  otherCores: number;
}

/** Snapshot CPU counters now; `end()` returns the per-process and machine CPU use since. */
export function cpuMeter(pids: () => Record<string, number | null | undefined>): { end(): CpuReport } {
  const t0 = now();
  const la0 = loadavg();
  const m0 = machineCpu();
  const p0 = new Map<string, { pid: number; cpu: number }>();
  for (const [name, pid] of Object.entries(pids())) {
    if (!pid) continue;
    const c = procCpuSeconds(pid);
    if (c !== null) p0.set(name, { pid, cpu: c });
  }
  return {
    end(): CpuReport {
      const wall = (now() - t0) / 1000;
      const m1 = machineCpu();
      const processCores: Record<string, number | null> = {};
      let accounted = 0;
      // Processes that started during the interval count from zero.
      for (const [name, pid] of Object.entries(pids())) {
        if (!pid) continue;
        const before = p0.get(name)?.pid === pid ? p0.get(name)!.cpu : 0;
        const c = procCpuSeconds(pid);
        if (c === null) {
          processCores[name] = null;
          continue;
        }
        processCores[name] = round((c - before) / wall, 2);
        accounted += c - before;
      }
      const busy = m1.busy - m0.busy;
      return {
        wallSeconds: round(wall, 2),
        loadavgBefore: la0.map((x) => round(x, 2)),
        loadavgAfter: loadavg().map((x) => round(x, 2)),
        machineCores: round(busy / wall, 2),
        processCores,
        otherCores: round(Math.max(0, busy - accounted) / wall, 2),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Prometheus text scraping

export type Samples = Map<string, number>;

export async function scrape(port: number): Promise<Samples> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const out: Samples = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of every series of a metric (all label combinations). */
export function total(samples: Samples, name: string): number {
  let sum = 0;
  for (const [series, v] of samples) {
    if (series === name || series.startsWith(`${name}{`)) sum += v;
  }
  return sum;
}

export function byLabel(samples: Samples, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const [series, v] of samples) {
    if (!series.startsWith(`${name}{`)) continue;
    const m = re.exec(series);
    if (m) out[m[1]!] = v;
  }
  return out;
}

export interface HistogramSummary {
  count: number;
  meanMs: number;
  sumSeconds: number;
  /** Cumulative counts by upper bound (le). */
  buckets: Record<string, number>;
}

/** Count, mean and cumulative buckets (le -> count) of a prom-client histogram. */
export function histogramMean(m: Samples, name: string): HistogramSummary {
  const sum = total(m, `${name}_sum`);
  const count = total(m, `${name}_count`);
  return { count, meanMs: round((sum / Math.max(1, count)) * 1000, 2), sumSeconds: round(sum, 2), buckets: byLabel(m, `${name}_bucket`, 'le') };
}

/** A histogram's observations between two scrapes. */
export type HistogramDelta = Omit<HistogramSummary, 'sumSeconds'>;

export function histogramDelta(before: Samples, after: Samples, name: string): HistogramDelta {
  const b = histogramMean(before, name);
  const a = histogramMean(after, name);
  const count = a.count - b.count;
  const buckets: Record<string, number> = {};
  for (const [le, n] of Object.entries(a.buckets)) buckets[le] = n - (b.buckets[le] ?? 0);
  return { count, meanMs: round(((a.sumSeconds - b.sumSeconds) / Math.max(1, count)) * 1000, 2), buckets };
}

export type GcByKind = Record<string, { count: number; seconds: number; over100ms: number }>;

/** GC time of the detector between two scrapes, by kind (prom-client's nodejs_gc_duration_seconds histogram). */
export function gcDelta(before: Samples, after: Samples): GcByKind {
  const name = 'detector_nodejs_gc_duration_seconds';
  const out: GcByKind = {};
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

/**
 * The detector's GC pauses and event-loop delay over a phase. GC: detector_gc_pause_seconds (every pause) and
 * detector_gc_pause_max_seconds; event loop: the cumulative detector_eventloop_delay_seconds histogram for the p99 and
 * prom-client's detector_nodejs_eventloop_lag_max_seconds (monitorEventLoopDelay, reset by each scrape) for the max.
 */
export interface RuntimeStats {
  /** By GC kind: pauses, their total and the longest. */
  gc: Record<string, { count: number; totalMs: number; maxMs: number }>;
  gcTotalMs: number;
  gcMaxMs: number;
  /**
   * How much later than due the loop's timers fired (ms): p99 as the upper bound of its histogram bucket (capped by
   * the max), and the longest (prom-client's figure, less its 10 ms sampling interval).
   */
  eventLoop: { samples: number; p99MsAtMost: number; maxMs: number } | null;
}

/** The longest GC pause by kind and event-loop delay seen by the scrapes since the last `takePeaks()`. */
export interface RuntimePeaks {
  eventLoopSeconds: number;
  gcSeconds: Record<string, number>;
}

const emptyPeaks = (): RuntimePeaks => ({ eventLoopSeconds: 0, gcSeconds: {} });

/** monitorEventLoopDelay's resolution in prom-client's collector (its default): an idle loop reads this much. */
const ELD_RESOLUTION_SECONDS = 0.01;

function notePeaks(peaks: RuntimePeaks, m: Samples): void {
  const loop = total(m, 'detector_nodejs_eventloop_lag_max_seconds') - ELD_RESOLUTION_SECONDS;
  peaks.eventLoopSeconds = Math.max(peaks.eventLoopSeconds, loop);
  for (const [kind, s] of Object.entries(byLabel(m, 'detector_gc_pause_max_seconds', 'kind'))) peaks.gcSeconds[kind] = Math.max(peaks.gcSeconds[kind] ?? 0, s);
}

/** Upper bound (ms) of the histogram bucket holding the p-th observation, at most `maxMs` (when known). */
/** Upper bound (ms) of the histogram bucket holding the p-th observation; null when past the last finite bound. */
export function bucketBoundMs(buckets: Record<string, number>, count: number, p: number): number | null {
  const bounds = Object.entries(buckets).filter(([le]) => le !== '+Inf').map(([le, n]) => [Number(le) * 1000, n] as const).sort((x, y) => x[0] - y[0]);
  return bounds.find(([, n]) => n >= p * count)?.[0] ?? null;
}

/** The same, capped by the largest observation when it is known (> 0). */
function bucketPercentileMs(buckets: Record<string, number>, count: number, p: number, maxMs: number): number {
  const le = bucketBoundMs(buckets, count, p) ?? Number.POSITIVE_INFINITY;
  return round(maxMs > 0 ? Math.min(le, maxMs) : le, 2);
}

/** GC and event-loop figures between two scrapes of one detector; `peaks` from its `takePeaks()` at the end. */
export function runtimeStats(before: Samples, after: Samples, peaks: RuntimePeaks): RuntimeStats | null {
  if (!after.has('detector_eventloop_delay_seconds_count')) return null; // a detector without these metrics
  const name = 'detector_gc_pause_seconds';
  const gc: RuntimeStats['gc'] = {};
  const countsAfter = byLabel(after, `${name}_count`, 'kind');
  const countsBefore = byLabel(before, `${name}_count`, 'kind');
  const sumsAfter = byLabel(after, `${name}_sum`, 'kind');
  const sumsBefore = byLabel(before, `${name}_sum`, 'kind');
  for (const [kind, n] of Object.entries(countsAfter)) {
    const count = n - (countsBefore[kind] ?? 0);
    if (count <= 0) continue;
    gc[kind] = { count, totalMs: round(((sumsAfter[kind] ?? 0) - (sumsBefore[kind] ?? 0)) * 1000, 1), maxMs: round((peaks.gcSeconds[kind] ?? 0) * 1000, 2) };
  }
  const loop = histogramDelta(before, after, 'detector_eventloop_delay_seconds');
  const loopMax = round(Math.max(0, peaks.eventLoopSeconds) * 1000, 2);
  return {
    gc,
    gcTotalMs: round(Object.values(gc).reduce((x, g) => x + g.totalMs, 0), 1),
    gcMaxMs: Math.max(0, ...Object.values(gc).map((g) => g.maxMs)),
    eventLoop: loop.count > 0 ? { samples: loop.count, p99MsAtMost: bucketPercentileMs(loop.buckets, loop.count, 0.99, loopMax), maxMs: loopMax } : null,
  };
}

export function formatRuntime(r: RuntimeStats | null): string {
  if (!r) return 'detector GC / event loop: n/a';
  const loop = r.eventLoop ? `event-loop delay p99 <= ${r.eventLoop.p99MsAtMost} ms, max ${r.eventLoop.maxMs} ms` : 'event-loop delay n/a';
  return `detector GC ${r.gcTotalMs} ms in total, longest pause ${r.gcMaxMs} ms; ${loop}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The detector as a child process (spawned by the harness, like the tests' services)

/** What the phases read from a detector, or from several in one group read as one (`detectorSet`). */
export interface DetectorView {
  /** performance.now() just before the (first) spawn. */
  spawnedAt: number;
  exited(): boolean;
  output(): string;
  /** /healthz answers 200 (every detector of a set). */
  healthy(): Promise<boolean>;
  /** Scrape /metrics (and note the runtime peaks it reports). */
  metrics(): Promise<Samples>;
  /** The longest GC pause and event-loop delay seen since the previous call, and start again. */
  takePeaks(): RuntimePeaks;
}

export interface DetectorProcess extends RunningProcess, DetectorView {
  vmRss(): { rssBytes: number; hwmBytes: number } | null;
}

/**
 * The V8 flags the detector runs with wherever it is started (package.json, ./dev, Dockerfile, docker-compose.yml):
 * a young generation of 8 MB semi-spaces, not the default 16-32 MB. Measured on 1M senders: RSS 316 MB instead of
 * 415 MB, longest GC pause 18-24 ms instead of 56-69 ms, for ~50% more (short) scavenges.
 */
export const DETECTOR_NODE_FLAGS = ['--max-semi-space-size=8'];

const healthz = (port: number): Promise<boolean> => fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);

/** Several detectors as one: every series summed over them (counters, histogram buckets, gauges such as RSS and lag), peaks the largest. */
export interface DetectorSet extends DetectorView {
  detectors: DetectorProcess[];
  /** Each detector's last scrape. */
  last: Samples[];
  /** ms since the set's spawnedAt when each detector's detector_events_total was first seen above 0 (null: not yet). */
  firstEventAt: Array<number | null>;
}

export function detectorSet(detectors: DetectorProcess[]): DetectorSet {
  const spawnedAt = Math.min(...detectors.map((d) => d.spawnedAt));
  const set: DetectorSet = {
    detectors,
    spawnedAt,
    last: detectors.map(() => new Map()),
    firstEventAt: detectors.map(() => null),
    exited: () => detectors.some((d) => d.exited()),
    output: () => detectors.map((d, i) => `--- detector ${i + 1} (pid ${d.pid}) ---\n${d.output()}`).join('\n'),
    healthy: async () => (await Promise.all(detectors.map((d) => d.healthy()))).every(Boolean),
    async metrics() {
      const each = await Promise.all(detectors.map((d) => d.metrics()));
      const sum: Samples = new Map();
      each.forEach((m, i) => {
        set.last[i] = m;
        if (set.firstEventAt[i] === null && total(m, 'detector_events_total') > 0) set.firstEventAt[i] = now() - spawnedAt;
        for (const [k, v] of m) sum.set(k, (sum.get(k) ?? 0) + v);
      });
      return sum;
    },
    takePeaks() {
      const all = detectors.map((d) => d.takePeaks());
      const gcSeconds: Record<string, number> = {};
      for (const p of all) for (const [k, v] of Object.entries(p.gcSeconds)) gcSeconds[k] = Math.max(gcSeconds[k] ?? 0, v);
      return { eventLoopSeconds: Math.max(...all.map((p) => p.eventLoopSeconds)), gcSeconds };
    },
  };
  return set;
}

/** Cores used by all detectors of a CPU report (`detector`, `detector-2`, …). */
export const detectorCores = (cpu: CpuReport): number => round(Object.entries(cpu.processCores).reduce((a, [k, v]) => a + (k.startsWith('detector') ? (v ?? 0) : 0), 0), 2);

/** Spawn the detector without waiting for it (trackEvents sees when it becomes healthy; waitHealthy waits). */
export async function spawnDetector(env: Record<string, string>, opts: { cpuProfDir?: string; nodeArgs?: string[]; logFile?: string } = {}): Promise<DetectorProcess> {
  const nodeArgs = [...DETECTOR_NODE_FLAGS, ...(opts.nodeArgs ?? []), ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : [])];
  // NODE_OPTIONS unset: flags given to the benchmark (e.g. a profiler) are not the detector's.
  const p = await spawnService('detector/main.ts', { NODE_OPTIONS: undefined, ...env, DETECTOR_METRICS_HOST: '127.0.0.1' }, {
    portVar: 'DETECTOR_METRICS_PORT', nodeArgs, outputCap: 64 * 1024, ...(opts.logFile ? { logFile: opts.logFile } : {}),
  });
  let peaks = emptyPeaks();
  return {
    ...p,
    healthy: () => healthz(p.port),
    async metrics() {
      const m = await scrape(p.port);
      notePeaks(peaks, m);
      return m;
    },
    takePeaks() {
      const r = peaks;
      peaks = emptyPeaks();
      return r;
    },
    vmRss() {
      try {
        const status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
        const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
        return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
      } catch {
        return null;
      }
    },
  };
}

/** Poll /healthz until 200 (the detector has joined its group and runs), or fail with its output. */
export async function waitDetectorHealthy(d: DetectorProcess, timeoutMs = 60_000): Promise<void> {
  await waitHealthy(d, 'the detector', timeoutMs, 50).catch((err: Error) => {
    throw new Error(`${err.message}\n--- detector output ---\n${d.output()}`);
  });
}

export interface ProgressSample {
  /** ms since the detector was spawned */
  t: number;
  events: number;
}

export interface Progress {
  samples: ProgressSample[];
  /** ms since spawn of the first sample with events > 0, and the count it saw. */
  first: ProgressSample | null;
  /** ms since spawn when `target` was reached, interpolated between the two samples around it. */
  reachedAt: number;
  /** ms since spawn when /healthz first answered 200 (consumer group joined, consuming), if seen before the first events. */
  healthyAt: number | null;
  final: Samples;
}

/**
 * Poll the detector's detector_events_total (all outcomes) every `everyMs` until it reaches `target`.
 * Scrape errors are tolerated (the process is busy); the process exiting or the timeout is an error.
 */
export async function trackEvents(d: DetectorView, target: number, timeoutMs: number, everyMs = 200, onSample?: (s: ProgressSample) => void): Promise<Progress> {
  const samples: ProgressSample[] = [];
  let first: ProgressSample | null = null;
  let healthyAt: number | null = null;
  const deadline = now() + timeoutMs;
  let lastLog = now();
  for (;;) {
    if (d.exited()) throw new Error(`detector exited while consuming:\n${d.output()}`);
    if (now() > deadline) throw new Error(`detector processed ${samples.at(-1)?.events ?? 0} of ${target} events before the ${timeoutMs / 1000}s timeout`);
    if (healthyAt === null && !first) {
      if (await d.healthy()) healthyAt = now() - d.spawnedAt;
    }
    let m: Samples | null = null;
    try {
      m = await d.metrics();
    } catch {
      // busy or not listening yet
    }
    if (m) {
      const s = { t: now() - d.spawnedAt, events: total(m, 'detector_events_total') };
      samples.push(s);
      onSample?.(s);
      if (!first && s.events > 0) first = s;
      if (now() - lastLog > 10_000) {
        lastLog = now();
        log(`  detector: ${s.events} / ${target} events`);
      }
      if (s.events >= target) {
        const prev = samples.length > 1 ? samples[samples.length - 2]! : s;
        const reachedAt = s.events === prev.events ? s.t : prev.t + ((target - prev.events) / (s.events - prev.events)) * (s.t - prev.t);
        return { samples, first, reachedAt, healthyAt, final: m };
      }
    }
    await sleep(everyMs);
  }
}
