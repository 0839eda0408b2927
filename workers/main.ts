// Composition root of the Temporal worker: builds the clients once, hands them to the activities, runs the
// fraud case workflows, serves /metrics and /healthz (workers/metrics.ts), and shuts down gracefully on SIGTERM/SIGINT
// (the Temporal runtime handles both).
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { AuditLog } from '../common/audit-log.ts';
import { createExportActivities } from '../activities/export.ts';
import { exportSinkFromConfig } from '../activities/export-sinks.ts';
import { createActivities } from '../activities/index.ts';
import { LocalIssuer } from '../activities/issuer.ts';
import { OutboxTransport, TwilioTransport, type SmsTransport } from '../activities/sms.ts';
import { loadConfig, repoRoot } from '../common/env.ts';
import { createLogger } from '../common/logger.ts';
import { createRedis, exitOnRefusedLogin } from '../common/redis.ts';
import { RedisMemoryWatch } from '../common/redis-memory.ts';
import { workerConfigSchema } from '../common/config.ts';
import { ensureExportSchedule } from '../common/export-schedule.ts';
import { StuckCasesWatch, WorkerMetrics, serveWorkerHttp } from './metrics.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';

const config = loadConfig(workerConfigSchema, 'worker');
const log = createLogger('worker', config.LOG_LEVEL);

Runtime.install({
  logger: {
    log: (level, message, meta) => log[level === 'TRACE' ? 'trace' : level === 'DEBUG' ? 'debug' : level === 'INFO' ? 'info' : level === 'WARN' ? 'warn' : 'error'](meta ?? {}, message),
    trace: (m, meta) => log.trace(meta ?? {}, m),
    debug: (m, meta) => log.debug(meta ?? {}, m),
    info: (m, meta) => log.info(meta ?? {}, m),
    warn: (m, meta) => log.warn(meta ?? {}, m),
    error: (m, meta) => log.error(meta ?? {}, m),
  },
  telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
});

const redis = createRedis(config, 'fraud-worker');
exitOnRefusedLogin(redis, 'worker', config);
redis.on('error', (err: Error) => log.warn({ err }, 'redis connection error (retrying)'));

let sms: SmsTransport;
if (config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN && config.TWILIO_FROM_NUMBER) {
  sms = new TwilioTransport({
    accountSid: config.TWILIO_ACCOUNT_SID, authToken: config.TWILIO_AUTH_TOKEN, from: config.TWILIO_FROM_NUMBER, apiBase: config.TWILIO_API_BASE,
  });
  log.info({ from: config.TWILIO_FROM_NUMBER.slice(0, 5) + '…', apiBase: config.TWILIO_API_BASE ?? 'https://api.twilio.com' }, 'verification SMS go through Twilio');
} else {
  sms = new OutboxTransport(redis, { retentionDays: config.REDIS_STREAM_RETENTION_DAYS });
  log.warn('no Twilio credentials (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER): verification SMS go to the local outbox, Redis stream fraud:sms:outbox');
}

const audit = new AuditLog(redis, { retentionDays: config.REDIS_STREAM_RETENTION_DAYS });
const exportSink = exportSinkFromConfig(config, repoRoot);
log.info({ sink: exportSink.kind, destination: exportSink.destination }, exportSink.kind === 'bigquery'
  ? 'exports go to BigQuery'
  : 'exports go to NDJSON files (set BIGQUERY_PROJECT to export to BigQuery)');

const connection = await NativeConnection.connect(temporalConnectionOptions(config));
const worker = await Worker.create({
  connection,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  // A prebuilt bundle (bundleWorkflowCode) starts in a second; without one the worker bundles at start.
  ...(config.WORKER_WORKFLOW_BUNDLE
    ? { workflowBundle: { codePath: config.WORKER_WORKFLOW_BUNDLE } }
    : { workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)) }),
  activities: {
    ...createActivities({
      redis, audit, sms, issuer: new LocalIssuer(redis, { retentionDays: config.REDIS_STREAM_RETENTION_DAYS }),
      smsSettleMs: config.SMS_SETTLE_SECONDS * 1000, retentionDays: config.REDIS_STREAM_RETENTION_DAYS,
    }),
    ...createExportActivities({ audit, sink: exportSink }),
  },
  maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
  maxConcurrentWorkflowTaskExecutions: config.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
  maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
  shutdownGraceTime: '10s',
});

// A client of its own: the export Schedule and the stuck-case count (visibility).
const clientConnection = await Connection.connect(temporalConnectionOptions(config));
const client = new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE });

// The export Schedule runs on this worker's task queue; created or brought up to date at every start.
if (config.EXPORT_SCHEDULE === 'on') {
  const opts = {
    scheduleId: config.EXPORT_SCHEDULE_ID, taskQueue: config.TEMPORAL_TASK_QUEUE,
    intervalMinutes: config.EXPORT_INTERVAL_MINUTES, delayMinutes: config.EXPORT_DELAY_MINUTES,
  };
  const what = await ensureExportSchedule(client, opts);
  log.info(opts, `export schedule ${what}`);
}

const metrics = new WorkerMetrics();
const redisMemory = new RedisMemoryWatch({
  redis, log, registry: metrics.registry, ratio: config.REDIS_MEMORY_WARN_RATIO, intervalMs: config.REDIS_MEMORY_POLL_INTERVAL,
});
const stuckCases = new StuckCasesWatch({ client, metrics, log, intervalMs: config.STUCK_CASES_INTERVAL });
redisMemory.start();
stuckCases.start();

const health = await serveWorkerHttp(metrics, () => {
  const state = worker.getState();
  return {
    ok: state === 'RUNNING' && redis.status === 'ready',
    worker: state,
    redis: redis.status,
    warnings: [...redisMemory.warnings(), ...stuckCases.warnings()],
  };
}, config.WORKER_HEALTH_HOST, config.WORKER_HEALTH_PORT);

log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, temporal: config.TEMPORAL_ADDRESS, namespace: config.TEMPORAL_NAMESPACE }, 'worker running');
try {
  await worker.run();
} finally {
  redisMemory.stop();
  stuckCases.stop();
  health.close();
  await clientConnection.close();
  await connection.close();
  redis.disconnect();
  log.info('worker stopped');
}
