import { z } from 'zod';
import { intVar, logLevelVar, optionalStr, portVar, redisSchema, strVar } from '../common/env.ts';

export const temporalSchema = {
  TEMPORAL_ADDRESS: strVar('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: strVar('default'),
  TEMPORAL_TASK_QUEUE: strVar('fraud-cases'),
};

/** Scheduled exports (workers/export-schedule.ts, activities/export*.ts); read by the worker and the CLI. */
export const exportSchema = {
  /** Set to export to BigQuery; unset: NDJSON files under EXPORT_DIR. */
  BIGQUERY_PROJECT: optionalStr(),
  BIGQUERY_DATASET: strVar('fraud_analytics').refine((s) => /^[A-Za-z0-9_]{1,1024}$/.test(s), 'letters, digits and underscores only'),
  /** REST endpoint of a BigQuery emulator (requests then carry no Google credentials). */
  BIGQUERY_API_ENDPOINT: optionalStr(),
  /** Location of a new dataset and of the jobs, e.g. US or EU. */
  BIGQUERY_LOCATION: optionalStr(),
  /** Folder of the NDJSON sink; relative paths are taken from the repository root. */
  EXPORT_DIR: strVar('.stack/exports'),
  EXPORT_INTERVAL_MINUTES: intVar({ min: 1, max: 1440, default: 60 }),
  /** How long after a window closes its scheduled run starts, so that late audit appends are in. */
  EXPORT_DELAY_MINUTES: intVar({ min: 0, max: 1439, default: 5 }),
  EXPORT_SCHEDULE_ID: strVar('fraud-export-hourly'),
  /** on: the worker creates or updates the Schedule at start; off: it leaves the Schedule alone. */
  EXPORT_SCHEDULE: z.preprocess((v) => (v === '' ? undefined : v), z.enum(['on', 'off']).default('on')),
};

/** Cross-checks of the export variables, for every schema that spreads exportSchema. */
export function checkExportConfig(c: { EXPORT_INTERVAL_MINUTES: number; EXPORT_DELAY_MINUTES: number }, ctx: z.RefinementCtx): void {
  if (c.EXPORT_DELAY_MINUTES >= c.EXPORT_INTERVAL_MINUTES) {
    ctx.addIssue({ code: 'custom', path: ['EXPORT_DELAY_MINUTES'], message: `must be less than EXPORT_INTERVAL_MINUTES (${c.EXPORT_INTERVAL_MINUTES})` });
  }
}

/** Every variable the worker reads. */
export const workerConfigSchema = z
  .object({
    ...temporalSchema,
    ...redisSchema,
    ...exportSchema,
    WORKER_MAX_CONCURRENT_ACTIVITIES: intVar({ min: 1, max: 1000, default: 100 }),
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: intVar({ min: 2, max: 1000, default: 40 }),
    WORKER_MAX_CACHED_WORKFLOWS: intVar({ min: 0, max: 100_000, default: 2000 }),
    WORKER_HEALTH_PORT: portVar(9465),
    WORKER_HEALTH_HOST: strVar('127.0.0.1'),
    TWILIO_ACCOUNT_SID: optionalStr(),
    TWILIO_AUTH_TOKEN: optionalStr(),
    TWILIO_FROM_NUMBER: optionalStr(),
    /** Send Twilio API calls to another base URL (a local mock of Twilio's OpenAPI description). */
    TWILIO_API_BASE: optionalStr(),
    LOG_LEVEL: logLevelVar(),
  })
  .superRefine((c, ctx) => {
    checkExportConfig(c, ctx);
    const set = [c.TWILIO_ACCOUNT_SID, c.TWILIO_AUTH_TOKEN, c.TWILIO_FROM_NUMBER].filter(Boolean).length;
    if (set > 0 && set < 3) {
      for (const name of ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM_NUMBER'] as const) {
        if (!c[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'set all three Twilio variables, or none for the local SMS outbox' });
      }
    }
    if (c.TWILIO_ACCOUNT_SID && !/^AC[0-9a-fA-F]{32}$/.test(c.TWILIO_ACCOUNT_SID)) {
      ctx.addIssue({ code: 'custom', path: ['TWILIO_ACCOUNT_SID'], message: 'must look like AC followed by 32 hex digits' });
    }
    if (c.TWILIO_FROM_NUMBER && !/^\+[1-9]\d{6,14}$/.test(c.TWILIO_FROM_NUMBER)) {
      ctx.addIssue({ code: 'custom', path: ['TWILIO_FROM_NUMBER'], message: 'must be an E.164 number such as +14155550100' });
    }
  });

export type WorkerConfig = z.output<typeof workerConfigSchema>;

/** Escalation policy for new cases; read by whoever starts cases (the detector's signaller). */
const durationMs = (name: string, fallback: string) =>
  strVar(fallback).transform((s, ctx) => {
    const m = /^(\d+)(ms|s|m|h|d)$/.exec(s.trim());
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `${name} must be a duration like 90s, 30m, 4h or 2d` });
      return z.NEVER;
    }
    return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  });

export const policySchema = {
  ESCALATION_REVIEW_AFTER: intVar({ min: 0, default: 3 }),
  ESCALATION_3DS_AFTER: intVar({ min: 0, default: 5 }),
  ESCALATION_BLOCK_AFTER: intVar({ min: 0, default: 10 }),
  REVIEW_SLA: durationMs('REVIEW_SLA', '4h'),
};
