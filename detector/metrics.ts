// Prometheus metrics and the health endpoint of the detector.
import type { Server } from 'node:http';
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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'detector_' });
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
