// Prometheus metrics and the health endpoint of the detector.
import type { Server } from 'node:http';
import { PerformanceObserver, constants as perfConstants, performance, type PerformanceEntry } from 'node:perf_hooks';
import { serveStatus } from '../common/http-status.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency histogram bounds (s): fine below 100 ms, where the alert-latency objective is. */
const latencyBuckets = [0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10];

export class DetectorMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({
    name: 'detector_events_total',
    help: 'Payment events processed, by outcome (counted, alert, late, dead_letter)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly alerts = new Counter({ name: 'detector_alerts_written_total', help: 'New alerts written to Redis', registers: [this.registry] });
  readonly duplicateAlerts = new Counter({
    name: 'detector_alerts_duplicate_total',
    help: 'Alerts recomputed during reprocessing and recognised by id as already written',
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: 'detector_consumer_lag',
    help: 'Messages between the last processed offset and the partition high watermark',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  readonly writeFailures = new Counter({
    name: 'detector_write_failures_total',
    help: 'Failed attempts of a batch\'s writes (alert writes, dead-letter sends); each is retried until it lands',
    labelNames: ['write'] as const,
    registers: [this.registry],
  });
  readonly partitionResets = new Counter({
    name: 'detector_partition_resets_total',
    help: 'Partitions resumed from somewhere other than where the detector was: redis_restarted (Redis restarted, and may have lost acknowledged writes: back to its last durable checkpoint), log_behind_checkpoint (the log ends before the checkpoint: topic recreated or records lost), checkpoint_below_log_start (records between the checkpoint and the log start are gone)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly replicationWaits = new Counter({
    name: 'detector_replication_waits_total',
    help: 'Waits for Redis replicas (REDIS_WAIT_REPLICAS) before a Kafka offset commit: acknowledged (committed), short (too few replicas in REDIS_WAIT_TIMEOUT: not committed, the next checkpoint tries again), failed (the WAIT itself failed: not committed)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly recordsSkipped = new Counter({
    name: 'detector_records_skipped_total',
    help: 'Payment records the detector could never read: between its checkpoint and the log start when they were deleted first (retention)',
    registers: [this.registry],
  });
  /** When the longest-failing batch write started failing (ms), if one is: set by the composition root. */
  stalledSince: () => number | undefined = () => undefined;
  readonly writeStalledSeconds = new Gauge({
    name: 'detector_write_stalled_seconds',
    help: 'How long the longest-failing batch write (alerts, dead letters) has been failing, retried without skipping; 0 when none is',
    registers: [this.registry],
    collect: () => {
      const since = this.stalledSince();
      this.writeStalledSeconds.set(since === undefined ? 0 : (Date.now() - since) / 1000);
    },
  });
  /** Senders in the window and the bytes of buffers their state holds, over the partitions owned: set by the detector. */
  windowState: () => { senders: number; bytes: number } = () => ({ senders: 0, bytes: 0 });
  readonly windowSenders = this.sampledGauge('detector_window_senders', 'Senders with payments in the velocity window, over the partitions this detector owns',
    () => this.windowState().senders);
  readonly windowStateBytes = this.sampledGauge('detector_window_state_bytes',
    'Bytes of the off-heap buffers holding the window state (slot arrays, hash table, id arena), over the partitions owned',
    () => this.windowState().bytes);
  readonly redisUp = new Gauge({ name: 'detector_redis_up', help: '1 when the Redis connection is ready', registers: [this.registry] });
  readonly batchSeconds = new Histogram({
    name: 'detector_batch_seconds',
    help: 'Time to process one partition batch, writes included',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly checkpointSeconds = new Histogram({
    name: 'detector_checkpoint_seconds',
    help: 'Time to write one partition checkpoint',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  /** Where alert latency goes: in front of the detector (record age) and to the alert landing in Redis. */
  readonly recordAgeSeconds = new Histogram({
    name: 'detector_record_age_seconds',
    help: "Age of a batch's newest record when the detector starts on it (its Kafka timestamp to now): producer, broker and fetch time",
    buckets: latencyBuckets,
    registers: [this.registry],
  });
  readonly alertLatencySeconds = new Histogram({
    name: 'detector_alert_latency_seconds',
    help: "From the triggering payment's Kafka timestamp to its alert written in Redis",
    buckets: latencyBuckets,
    registers: [this.registry],
  });

  /**
   * GC pauses and event-loop delay, for the benchmark's per-phase figures. prom-client's default collectors (above,
   * `detector_nodejs_*`) do not give them: nodejs_gc_duration_seconds records only the first GC entry of each
   * PerformanceObserver callback (measured: 35 of 80 pauses, half the GC time, under load) and has no maximum; the
   * nodejs_eventloop_lag_* gauges are reset by every scrape, so no percentile over several scrapes can be formed from
   * them (their per-scrape max is used as it is). Here every GC entry is observed, the longest per kind is held until
   * the next scrape, and the event-loop delay is a cumulative histogram.
   */
  readonly gcPauseSeconds = new Histogram({
    name: 'detector_gc_pause_seconds',
    help: 'GC pauses by kind (major, minor, incremental, weakcb), every one',
    labelNames: ['kind'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  private readonly gcMax = new Map<string, number>();
  readonly gcPauseMaxSeconds = new Gauge({
    name: 'detector_gc_pause_max_seconds',
    help: 'Longest GC pause by kind since the previous scrape',
    labelNames: ['kind'] as const,
    registers: [this.registry],
    collect: () => {
      this.gcPauseMaxSeconds.reset();
      for (const [kind, s] of this.gcMax) this.gcPauseMaxSeconds.set({ kind }, s);
      this.gcMax.clear();
    },
  });
  readonly eventLoopDelaySeconds = new Histogram({
    name: 'detector_eventloop_delay_seconds',
    help: 'How much later than due a 10 ms timer fired: the event loop was blocked for about this long',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });

  private readonly gcObserver: PerformanceObserver;
  private readonly loopTimer: NodeJS.Timeout;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'detector_' });
    const kinds: Record<number, string> = {
      [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
      [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
      [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
      [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
    };
    this.gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = kinds[((e as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind ?? -1] ?? 'other';
        const s = e.duration / 1000;
        this.gcPauseSeconds.observe({ kind }, s);
        if (s > (this.gcMax.get(kind) ?? 0)) this.gcMax.set(kind, s);
      }
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    let last = performance.now();
    this.loopTimer = setInterval(() => {
      const t = performance.now();
      this.eventLoopDelaySeconds.observe(Math.max(0, t - last - 10) / 1000);
      last = t;
    }, 10).unref();
  }

  /** Stop the GC observer and the event-loop timer (the registry keeps what it has). */
  /** A gauge read from `read` at each scrape. */
  private sampledGauge(name: string, help: string, read: () => number): Gauge {
    const gauge: Gauge = new Gauge({ name, help, registers: [this.registry], collect: () => gauge.set(read()) });
    return gauge;
  }

  close(): void {
    this.gcObserver.disconnect();
    clearInterval(this.loopTimer);
  }

  setLag(partition: number, lag: number): void {
    this.lag.set({ partition: String(partition) }, Math.max(0, lag));
  }
}

/**
 * GET /metrics (Prometheus text) and GET /healthz (200 when `healthy()` says so, else 503, with details and
 * `warnings`: what needs an operator soon without being down now, such as Redis memory close to its limit).
 */
export function serveMetrics(
  metrics: DetectorMetrics,
  healthy: () => { ok: boolean; details: Record<string, unknown>; warnings: string[] },
  host: string,
  port: number,
): Promise<Server> {
  return serveStatus(metrics.registry, healthy, host, port);
}
