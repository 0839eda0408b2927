import { z } from 'zod';
import { intVar, logLevelVar, optionalStr, portVar, redisSchema, strVar } from '../common/env.ts';

export const temporalSchema = {
  TEMPORAL_ADDRESS: strVar('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: strVar('default'),
  TEMPORAL_TASK_QUEUE: strVar('fraud-cases'),
};

/** Every variable the worker reads. */
export const workerConfigSchema = z
  .object({
    ...temporalSchema,
    ...redisSchema,
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
