// Every environment variable of every process, in one place: the pieces several processes share (Redis, Kafka,
// Temporal, the exports, the escalation policy) and one schema per process built from them. Each process parses
// its schema once at start with `loadConfig` (common/env.ts), which stops it naming each bad variable. Types come
// from the schemas.
import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { choiceVar, durationVar, hostPortListVar, intVar, listVar, logLevelVar, onOffVar, optionalStr, portVar, ratioVar, strVar } from './env.ts';

function isReadableFile(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

// ---- Shared pieces ---------------------------------------------------------------------------------------------

export const redisSchema = {
  REDIS_HOST: strVar('127.0.0.1'),
  REDIS_PORT: portVar(6379),
  /** An ACL user (the cluster profile has one per service); unset: the password logs in as the default user. */
  REDIS_USERNAME: optionalStr(),
  REDIS_PASSWORD: optionalStr(),
  /**
   * Sentinels to find the primary through (host:port,...). Set, REDIS_HOST and REDIS_PORT are not used: every
   * connection asks a Sentinel for the primary of REDIS_MASTER_NAME, and asks again after a failover.
   */
  REDIS_SENTINELS: hostPortListVar(),
  REDIS_MASTER_NAME: strVar('mymaster'),
  /** The Sentinels' own login (their requirepass, or an ACL user of theirs). */
  REDIS_SENTINEL_USERNAME: optionalStr(),
  REDIS_SENTINEL_PASSWORD: optionalStr(),
  /** Database index; the guide's clients use 0. Tests use others to run isolated. */
  REDIS_DB: intVar({ min: 0, max: 15, default: 0 }),
};
export type RedisConfig = z.output<z.ZodObject<typeof redisSchema>>;

/** The Redis memory watch of the detector and the worker (common/redis-memory.ts): gauges, /healthz warning. */
export const redisMemorySchema = {
  /** /healthz warns (and the log says so once) from this share of Redis maxmemory: noeviction refuses writes at 1. */
  REDIS_MEMORY_WARN_RATIO: ratioVar(0.8),
  /** How often INFO memory is read. */
  REDIS_MEMORY_POLL_INTERVAL: durationVar('15s').refine((ms) => ms >= 1000 && ms <= 3_600_000, 'must be between 1s and 1h'),
};

/**
 * The Kafka login: SASL over the client listener (the cluster profile's brokers take SCRAM-SHA-512 only). Unset: no
 * login, as the embedded profile's broker wants. common/kafka-login.ts turns it into each client's options.
 */
export const kafkaLoginSchema = {
  KAFKA_SASL_MECHANISM: z.preprocess((v) => (v === '' ? undefined : v), z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional()),
  KAFKA_SASL_USERNAME: optionalStr(),
  KAFKA_SASL_PASSWORD: optionalStr(),
};
export type KafkaLoginConfig = z.output<z.ZodObject<typeof kafkaLoginSchema>>;

/** A mechanism without its user and password, or a user without a mechanism: refused at start, naming what is missing. */
export function checkKafkaLogin(c: KafkaLoginConfig, ctx: z.RefinementCtx): void {
  const parts = [c.KAFKA_SASL_USERNAME, c.KAFKA_SASL_PASSWORD];
  if (c.KAFKA_SASL_MECHANISM) {
    if (!c.KAFKA_SASL_USERNAME) ctx.addIssue({ code: 'custom', path: ['KAFKA_SASL_USERNAME'], message: `is needed with KAFKA_SASL_MECHANISM=${c.KAFKA_SASL_MECHANISM}` });
    if (!c.KAFKA_SASL_PASSWORD) ctx.addIssue({ code: 'custom', path: ['KAFKA_SASL_PASSWORD'], message: `is needed with KAFKA_SASL_MECHANISM=${c.KAFKA_SASL_MECHANISM}` });
  } else if (parts.some(Boolean)) {
    ctx.addIssue({ code: 'custom', path: ['KAFKA_SASL_MECHANISM'], message: 'must be set (plain, scram-sha-256 or scram-sha-512) when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is' });
  }
}

export const kafkaSchema = {
  KAFKA_BOOTSTRAP_SERVERS: listVar('127.0.0.1:9092'),
  PAYMENTS_TOPIC: strVar('payments'),
  ...kafkaLoginSchema,
};
/** Where the detector writes what it cannot read (the guide's DLQ). */
const dlqTopicVar = strVar('payments.dlq');

/** A file a process must read at start: refused at start, naming the variable, when there is none at the path. */
const readableFile = () => optionalStr().refine((p) => p === undefined || isReadableFile(p), 'no readable file at this path');

/**
 * TLS to the Temporal frontend, as the stock `temporal` CLI names it: a client certificate and key for mTLS (both or
 * neither), and the CA that signed the server's certificate (unset: the system's roots, as for Temporal Cloud). Any
 * of them set turns TLS on. common/temporal-connection.ts reads them.
 */
export const temporalTlsSchema = {
  TEMPORAL_TLS_CLIENT_CERT_PATH: readableFile(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: readableFile(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: readableFile(),
  /** The name the server's certificate is checked against, when it is not the host of TEMPORAL_ADDRESS. */
  TEMPORAL_TLS_SERVER_NAME: optionalStr(),
};
export type TemporalTlsConfig = z.output<z.ZodObject<typeof temporalTlsSchema>>;

export const temporalSchema = {
  TEMPORAL_ADDRESS: strVar('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: strVar('default'),
  TEMPORAL_TASK_QUEUE: strVar('fraud-cases'),
  ...temporalTlsSchema,
};

/** Scheduled exports (common/export-schedule.ts, activities/export*.ts); read by the worker and the CLI. */
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
  EXPORT_SCHEDULE: onOffVar('on'),
};

/** Cross-checks of the export variables, for every schema that spreads exportSchema. */
export function checkExportConfig(c: { EXPORT_INTERVAL_MINUTES: number; EXPORT_DELAY_MINUTES: number }, ctx: z.RefinementCtx): void {
  if (c.EXPORT_DELAY_MINUTES >= c.EXPORT_INTERVAL_MINUTES) {
    ctx.addIssue({ code: 'custom', path: ['EXPORT_DELAY_MINUTES'], message: `must be less than EXPORT_INTERVAL_MINUTES (${c.EXPORT_INTERVAL_MINUTES})` });
  }
}

/** Escalation policy for new cases; read by whoever starts cases (the detector's signaller). */
export const policySchema = {
  ESCALATION_REVIEW_AFTER: intVar({ min: 0, default: 3 }),
  ESCALATION_3DS_AFTER: intVar({ min: 0, default: 5 }),
  ESCALATION_BLOCK_AFTER: intVar({ min: 0, default: 10 }),
  REVIEW_SLA: durationVar('4h').refine((ms) => ms >= 1000, 'must be at least 1s'),
};

// ---- Detector ----------------------------------------------------------------------------------------------------

/** Every variable the detector reads. Names follow the reference guide where it has them. */
export const detectorConfigSchema = z
  .object({
    ...kafkaSchema,
    DLQ_TOPIC: dlqTopicVar,
    DETECTOR_GROUP_ID: strVar('fraud-detector'),
    DETECTOR_INSTANCE_ID: strVar(`detector-${process.pid}`),
    ...redisSchema,
    ...redisMemorySchema,
    VELOCITY_FRAUD_THRESHOLD: intVar({ min: 2, max: 10_000, default: 3 }),
    VELOCITY_WINDOW_SECONDS: intVar({ min: 1, max: 86_400, default: 60 }),
    MAX_CLOCK_SKEW_SECONDS: intVar({ min: 0, max: 86_400, default: 30 }),
    ALERT_DEDUPE_TTL_SECONDS: intVar({ min: 3600, default: 7 * 86_400 }),
    ALERT_STREAM_MAXLEN: intVar({ min: 1000, default: 1_000_000 }),
    CHECKPOINT_INTERVAL_MS: intVar({ min: 50, max: 60_000, default: 1000 }),
    /**
     * Replicas that must hold a checkpoint (and the alerts before it) before the detector commits its Kafka offsets
     * (Redis WAIT): 1 with a primary and a replica, so a failover never loses what the offsets say is done. 0: no wait.
     */
    REDIS_WAIT_REPLICAS: intVar({ min: 0, max: 10, default: 0 }),
    /** How long one WAIT may take; fewer replicas by then: the offsets wait for the next checkpoint. */
    REDIS_WAIT_TIMEOUT: durationVar('2s').refine((ms) => ms >= 10 && ms <= 60_000, 'must be between 10ms and 60s'),
    /** The Kafka client library: kafkajs (the default) or @platformatic/kafka (detector/platformatic-client.ts). */
    KAFKA_CLIENT: choiceVar(['kafkajs', 'platformatic'], 'kafkajs'),
    KAFKA_PARTITIONS_CONCURRENCY: intVar({ min: 1, max: 64, default: 1 }),
    KAFKA_SESSION_TIMEOUT_MS: intVar({ min: 6000, max: 300_000, default: 10_000 }),
    /** Bytes fetched per partition per request: larger batches raise throughput and latency alike. */
    KAFKA_MAX_BYTES_PER_PARTITION: intVar({ min: 64 * 1024, max: 64 * 1024 * 1024, default: 4 * 1024 * 1024 }),
    DETECTOR_METRICS_HOST: strVar('127.0.0.1'),
    DETECTOR_METRICS_PORT: portVar(9464),
    LOG_LEVEL: logLevelVar(),
    /** Deliver alerts to the per-account Temporal case workflows (off: detection only). */
    CASE_SIGNALLER: onOffVar('on'),
    CASE_SIGNALLER_CONCURRENCY: intVar({ min: 1, max: 512, default: 32 }),
    CASE_SIGNALLER_CLAIM_IDLE_MS: intVar({ min: 1000, default: 30_000 }),
    ...temporalSchema,
    ...policySchema,
  })
  .superRefine((c, ctx) => {
    checkKafkaLogin(c, ctx);
    // An event up to the skew in the future moves the partition's watermark that far ahead; with a skew of a window
    // or more, every payment on time after it would be late.
    if (c.MAX_CLOCK_SKEW_SECONDS >= c.VELOCITY_WINDOW_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['MAX_CLOCK_SKEW_SECONDS'], message: `must be less than VELOCITY_WINDOW_SECONDS (${c.VELOCITY_WINDOW_SECONDS}); its default is 30, so a window of 30s or less needs a smaller skew` });
    }
  });
export type DetectorConfig = z.output<typeof detectorConfigSchema>;

// ---- Worker ------------------------------------------------------------------------------------------------------

const TWILIO_VARS = ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM_NUMBER'] as const;

/** Every variable the worker reads. */
export const workerConfigSchema = z
  .object({
    ...temporalSchema,
    ...redisSchema,
    ...redisMemorySchema,
    ...exportSchema,
    WORKER_MAX_CONCURRENT_ACTIVITIES: intVar({ min: 1, max: 1000, default: 100 }),
    WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: intVar({ min: 2, max: 1000, default: 40 }),
    WORKER_MAX_CACHED_WORKFLOWS: intVar({ min: 0, max: 100_000, default: 2000 }),
    WORKER_HEALTH_PORT: portVar(9465),
    /** A workflow bundle built ahead (bundleWorkflowCode of workflows/index.ts); unset: bundled at every start. */
    WORKER_WORKFLOW_BUNDLE: optionalStr(),
    WORKER_HEALTH_HOST: strVar('127.0.0.1'),
    /** How often the worker counts the stuck cases of the namespace for its gauge cases_stuck (common/cases.ts). */
    STUCK_CASES_INTERVAL: durationVar('60s').refine((ms) => ms >= 1000 && ms <= 86_400_000, 'must be between 1s and 1d'),
    /** Days the audit streams, the SMS outbox and the issuer's notices keep their entries in Redis (exports keep them for good). */
    REDIS_STREAM_RETENTION_DAYS: intVar({ min: 1, max: 3650, default: 90 }),
    TWILIO_ACCOUNT_SID: optionalStr(),
    TWILIO_AUTH_TOKEN: optionalStr(),
    TWILIO_FROM_NUMBER: optionalStr(),
    /** Send Twilio API calls to another base URL (a local mock of Twilio's OpenAPI description). */
    TWILIO_API_BASE: optionalStr(),
    /**
     * An SMS attempt that did not record its result is looked up at Twilio, before any resend, this long after it
     * started (at least the 8s a Twilio request may take; see activities/sms.ts).
     */
    SMS_SETTLE_SECONDS: intVar({ min: 10, max: 3600, default: 30 }),
    LOG_LEVEL: logLevelVar(),
  })
  .superRefine((c, ctx) => {
    checkExportConfig(c, ctx);
    const set = TWILIO_VARS.filter((name) => c[name]).length;
    if (set > 0 && set < TWILIO_VARS.length) {
      for (const name of TWILIO_VARS) {
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

// ---- Console -----------------------------------------------------------------------------------------------------

/**
 * Every variable the console reads. The session secret has no default: `./dev up` writes one into .env, anything
 * else (Compose, a real deployment) must set it, and the console refuses to start without it.
 */
export const consoleConfigSchema = z
  .object({
    ...redisSchema,
    TEMPORAL_ADDRESS: temporalSchema.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: temporalSchema.TEMPORAL_NAMESPACE,
    ...temporalTlsSchema,
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
    CONSOLE_HTTPS: onOffVar('off'),
    /** How many recent alerts a page gets from fraud:alerts:stream when it (re)connects. */
    CONSOLE_BACKFILL_ALERTS: intVar({ min: 1, max: 1000, default: 100 }),
    /** Sign-in limits: failed attempts per client IP and per user name tried, each within one window from its first. */
    CONSOLE_SIGNIN_WINDOW: durationVar('15m').refine((ms) => ms >= 1000 && ms <= 86_400_000, 'must be between 1s and 1d'),
    CONSOLE_SIGNIN_MAX_PER_IP: intVar({ min: 1, max: 100_000, default: 20 }),
    CONSOLE_SIGNIN_MAX_PER_USER: intVar({ min: 1, max: 100_000, default: 10 }),
    /** Password verifications (argon2id) at once, and sign-ins that may wait for one (past that: 503). */
    CONSOLE_SIGNIN_CONCURRENCY: intVar({ min: 1, max: 64, default: 1 }),
    CONSOLE_SIGNIN_QUEUE: intVar({ min: 0, max: 10_000, default: 32 }),
    LOG_LEVEL: logLevelVar(),
  })
  .transform((c) => ({ ...c, TEMPORAL_UI_URL: (c.TEMPORAL_UI_URL ?? `http://127.0.0.1:${c.TEMPORAL_UI_PORT}`).replace(/\/+$/, '') }));
export type ConsoleConfig = z.output<typeof consoleConfigSchema>;

/** What the console's user-management commands need: Redis only. */
export const userAdminSchema = z.object({ ...redisSchema, LOG_LEVEL: logLevelVar() });

// ---- CLI, traffic generator, tests and benchmarks ----------------------------------------------------------------

/** The case commands of the CLI. */
export const cliConfigSchema = z.object({ ...temporalSchema, ...redisSchema });

/** The CLI's export commands (read only when one runs). */
export const cliExportConfigSchema = z.object({ ...temporalSchema, ...exportSchema }).superRefine(checkExportConfig);

/** The traffic generator (`npm run traffic`). */
export const trafficConfigSchema = z.object({ ...kafkaSchema, ...redisSchema }).superRefine(checkKafkaLogin);

/** The test and benchmark harness (harness/). */
export const harnessConfigSchema = z.object({
  KAFKA_BOOTSTRAP_SERVERS: kafkaSchema.KAFKA_BOOTSTRAP_SERVERS,
  /** The stack's own topics (tests use topics of their own; the logins suite checks the ACLs on these). */
  PAYMENTS_TOPIC: kafkaSchema.PAYMENTS_TOPIC,
  DLQ_TOPIC: dlqTopicVar,
  ...kafkaLoginSchema,
  ...redisSchema,
  TEMPORAL_ADDRESS: temporalSchema.TEMPORAL_ADDRESS,
  TEMPORAL_NAMESPACE: temporalSchema.TEMPORAL_NAMESPACE,
  ...temporalTlsSchema,
  /** The Web UI's port, which the console links to. */
  TEMPORAL_UI_PORT: portVar(8233),
  /** REST port of the BigQuery emulator (stack/bigquery.sh). */
  BIGQUERY_PORT: portVar(9050),
  /** Port of Twilio's spec mock (stack/twilio-mock.sh). */
  TWILIO_MOCK_PORT: portVar(4010),
}).superRefine(checkKafkaLogin);
