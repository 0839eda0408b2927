// Every variable the console reads. The session secret has no default: `./dev up` writes one into .env, anything
// else (Compose, a real deployment) must set it, and the console refuses to start without it.
import { z } from 'zod';
import { intVar, logLevelVar, optionalStr, portVar, redisSchema, strVar } from '../common/env.ts';
import { temporalSchema } from '../workers/config.ts';

const onOff = (fallback: 'on' | 'off') => z.preprocess((v) => (v === '' ? undefined : v), z.enum(['on', 'off']).default(fallback));

export const consoleConfigSchema = z
  .object({
    ...redisSchema,
    TEMPORAL_ADDRESS: temporalSchema.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: temporalSchema.TEMPORAL_NAMESPACE,
    TEMPORAL_UI_PORT: portVar(8233),
    /** Base URL of the Temporal Web UI for the links on case pages; default http://127.0.0.1:$TEMPORAL_UI_PORT. */
    TEMPORAL_UI_URL: optionalStr(),
    CONSOLE_HOST: strVar('127.0.0.1'),
    CONSOLE_PORT: portVar(8080),
    CONSOLE_SESSION_SECRET: z.preprocess(
      (v) => (v === '' ? undefined : v),
      z.string({ error: 'is required: a random secret of 32+ characters that signs session cookies (./dev up writes one into .env)' })
        .min(32, 'must be at least 32 characters'),
    ),
    /** Idle sessions end after this many minutes. */
    CONSOLE_SESSION_IDLE_MINUTES: intVar({ min: 1, max: 7 * 24 * 60, default: 8 * 60 }),
    /** `on` behind HTTPS (a TLS-terminating proxy): cookies get the Secure flag, HSTS is sent, the proxy is trusted. */
    CONSOLE_HTTPS: onOff('off'),
    /** How many recent alerts a page gets from fraud:alerts:stream when it (re)connects. */
    CONSOLE_BACKFILL_ALERTS: intVar({ min: 1, max: 1000, default: 100 }),
    LOG_LEVEL: logLevelVar(),
  })
  .transform((c) => ({ ...c, TEMPORAL_UI_URL: (c.TEMPORAL_UI_URL ?? `http://127.0.0.1:${c.TEMPORAL_UI_PORT}`).replace(/\/+$/, '') }));

export type ConsoleConfig = z.output<typeof consoleConfigSchema>;

/** What the user-management commands need: Redis only. */
export const userAdminSchema = z.object({ ...redisSchema, LOG_LEVEL: logLevelVar() });
