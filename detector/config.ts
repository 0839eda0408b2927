import { z } from 'zod';
import { intVar, listVar, logLevelVar, portVar, redisSchema, strVar } from '../common/env.ts';
import { policySchema, temporalSchema } from '../workers/config.ts';

/** Every variable the detector reads. Names follow the reference guide where it has them. */
export const detectorConfigSchema = z.object({
  KAFKA_BOOTSTRAP_SERVERS: listVar('127.0.0.1:9092'),
  PAYMENTS_TOPIC: strVar('payments'),
  DLQ_TOPIC: strVar('payments.dlq'),
  DETECTOR_GROUP_ID: strVar('fraud-detector'),
  DETECTOR_INSTANCE_ID: strVar(`detector-${process.pid}`),
  ...redisSchema,
  VELOCITY_FRAUD_THRESHOLD: intVar({ min: 2, max: 10_000, default: 3 }),
  VELOCITY_WINDOW_SECONDS: intVar({ min: 1, max: 86_400, default: 60 }),
  MAX_CLOCK_SKEW_SECONDS: intVar({ min: 0, max: 86_400, default: 300 }),
  ALERT_DEDUPE_TTL_SECONDS: intVar({ min: 3600, default: 7 * 86_400 }),
  ALERT_STREAM_MAXLEN: intVar({ min: 1000, default: 1_000_000 }),
  CHECKPOINT_INTERVAL_MS: intVar({ min: 50, max: 60_000, default: 1000 }),
  KAFKA_PARTITIONS_CONCURRENCY: intVar({ min: 1, max: 64, default: 1 }),
  KAFKA_SESSION_TIMEOUT_MS: intVar({ min: 6000, max: 300_000, default: 10_000 }),
  /** Bytes fetched per partition per request: larger batches raise throughput and latency alike. */
  KAFKA_MAX_BYTES_PER_PARTITION: intVar({ min: 64 * 1024, max: 64 * 1024 * 1024, default: 4 * 1024 * 1024 }),
  DETECTOR_METRICS_HOST: strVar('127.0.0.1'),
  DETECTOR_METRICS_PORT: portVar(9464),
  LOG_LEVEL: logLevelVar(),
  /** Deliver alerts to the per-account Temporal case workflows (off: detection only). */
  CASE_SIGNALLER: z.preprocess((v) => (v === '' ? undefined : v), z.enum(['on', 'off']).default('on')),
  CASE_SIGNALLER_CONCURRENCY: intVar({ min: 1, max: 512, default: 32 }),
  CASE_SIGNALLER_CLAIM_IDLE_MS: intVar({ min: 1000, default: 30_000 }),
  ...temporalSchema,
  ...policySchema,
});

export type DetectorConfig = z.output<typeof detectorConfigSchema>;
