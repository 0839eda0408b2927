// Composition root of the detector process: config, clients, pipeline, metrics, shutdown.
import { loadConfig } from '../common/env.ts';
import { kafkaLogin } from '../common/kafka-login.ts';
import { createLogger } from '../common/logger.ts';
import { createRedis, exitOnRefusedLogin } from '../common/redis.ts';
import { RedisMemoryWatch } from '../common/redis-memory.ts';
import { AlertStore } from './alert-store.ts';
import { detectorConfigSchema } from '../common/config.ts';
import { KafkaSettingRefused, KafkajsDeadLetterProducer, KafkajsPaymentsConsumer, kafkaPreflight } from './kafkajs-client.ts';
import { DetectorMetrics, serveMetrics } from './metrics.ts';
import { Detector } from './service.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';

const config = loadConfig(detectorConfigSchema, 'detector');
const log = createLogger('detector', config.LOG_LEVEL);
const redis = createRedis(config, config.DETECTOR_INSTANCE_ID);
exitOnRefusedLogin(redis, 'detector', config);
const metrics = new DetectorMetrics();
redis.on('ready', () => metrics.redisUp.set(1));
redis.on('close', () => metrics.redisUp.set(0));
redis.on('error', (err: Error) => log.warn({ err }, 'redis connection error (retrying)'));

const kafka = { brokers: config.KAFKA_BOOTSTRAP_SERVERS, login: kafkaLogin(config), clientId: config.DETECTOR_INSTANCE_ID, logger: log };
const consumerOptions = {
  ...kafka,
  groupId: config.DETECTOR_GROUP_ID,
  topic: config.PAYMENTS_TOPIC,
  partitionsConsumedConcurrently: config.KAFKA_PARTITIONS_CONCURRENCY,
  sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
  maxBytesPerPartition: config.KAFKA_MAX_BYTES_PER_PARTITION,
};
// KAFKA_CLIENT: kafkajs (the default) or @platformatic/kafka, the latter loaded only when chosen.
const { consumer, dlq } =
  config.KAFKA_CLIENT === 'platformatic'
    ? await import('./platformatic-client.ts').then(({ PlatformaticDeadLetterProducer, PlatformaticPaymentsConsumer }) => ({
        consumer: new PlatformaticPaymentsConsumer(consumerOptions),
        dlq: new PlatformaticDeadLetterProducer(kafka),
      }))
    : { consumer: new KafkajsPaymentsConsumer(consumerOptions), dlq: new KafkajsDeadLetterProducer(kafka) };
// Checkpoint segments go over a connection of their own, so alert writes never wait behind them on one socket.
const checkpointRedis = createRedis(config, `${config.DETECTOR_INSTANCE_ID}-checkpoints`);
checkpointRedis.on('error', (err: Error) => log.warn({ err }, 'redis checkpoint connection error (retrying)'));
const store = new AlertStore(
  redis,
  {
    dedupeTtlSeconds: config.ALERT_DEDUPE_TTL_SECONDS,
    group: config.DETECTOR_GROUP_ID,
    waitReplicas: config.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: config.REDIS_WAIT_TIMEOUT,
    onGarbageError: (err, topic, partition) =>
      log.warn({ err, topic, partition }, 'could not delete obsolete checkpoint segments; they stay listed and are deleted by the next snapshot or claim'),
  },
  checkpointRedis,
);
const detector = new Detector({
  consumer,
  dlq,
  store,
  metrics,
  log,
  options: {
    topic: config.PAYMENTS_TOPIC,
    dlqTopic: config.DLQ_TOPIC,
    rule: { threshold: config.VELOCITY_FRAUD_THRESHOLD, windowMs: config.VELOCITY_WINDOW_SECONDS * 1000 },
    maxClockSkewMs: config.MAX_CLOCK_SKEW_SECONDS * 1000,
    checkpointIntervalMs: config.CHECKPOINT_INTERVAL_MS,
  },
});

// Each (re)connection: a Redis that restarted may have lost acknowledged writes; the detector goes back to what it has.
redis.on('ready', () => void detector.redisReconnected().catch((err: unknown) => log.warn({ err }, 'could not check whether Redis restarted; the next checkpoint will')));

/** A batch write failing at least this long is a /healthz warning. */
const STALLED_WARN_MS = 10_000;
metrics.stalledSince = () => {
  const since = detector.stalledWrites().map((s) => s.sinceMs);
  return since.length === 0 ? undefined : Math.min(...since);
};

const redisMemory = new RedisMemoryWatch({
  redis, log, registry: metrics.registry, ratio: config.REDIS_MEMORY_WARN_RATIO, intervalMs: config.REDIS_MEMORY_POLL_INTERVAL,
});
redisMemory.start();

const server = await serveMetrics(
  metrics,
  () => {
    const redisReady = redis.status === 'ready';
    // A write refused for this long is not a blip: name it (a wrong-typed key, a missing topic) for an operator.
    const stalled = detector.stalledWrites(STALLED_WARN_MS).map(
      (s) => `partition ${s.partition}: ${s.what} failing for ${Math.round((Date.now() - s.sinceMs) / 1000)} s, retried without skipping: ${s.error}`,
    );
    // Waits that last without failing (a request the client keeps retrying): named too, unless a failing write says it.
    const failing = new Set(detector.stalledWrites(STALLED_WARN_MS).map((s) => `partition ${s.partition}`));
    const waiting = detector.stalledWaits().filter((w) => !failing.has(w.key)).map((w) => `${w.key}: waiting on ${w.what} for ${Math.round(w.forMs / 1000)} s`);
    return {
      ok: redisReady && detector.isRunning,
      details: { redis: redis.status, consuming: detector.isRunning, kafkaClient: config.KAFKA_CLIENT },
      warnings: [...redisMemory.warnings(), ...stalled, ...waiting],
    };
  },
  config.DETECTOR_METRICS_HOST,
  config.DETECTOR_METRICS_PORT,
);

// Loaded only when on: the Temporal client and its protobuf definitions cost tens of MB a detector without it never needs.
const signaller =
  config.CASE_SIGNALLER === 'on'
    ? await import('./case-signaller.ts').then(({ CaseSignaller, TemporalCaseDelivery }) => new CaseSignaller(
        {
          redis: createRedis(config, `${config.DETECTOR_INSTANCE_ID}-signaller`)
            .on('error', (err: Error) => log.warn({ err }, 'redis case signaller connection error (retrying)')),
          log,
          registry: metrics.registry,
          delivery: new TemporalCaseDelivery({
            connection: temporalConnectionOptions(config),
            namespace: config.TEMPORAL_NAMESPACE,
            taskQueue: config.TEMPORAL_TASK_QUEUE,
            policy: {
              reviewAfter: config.ESCALATION_REVIEW_AFTER,
              verifyAfter: config.ESCALATION_3DS_AFTER,
              blockAfter: config.ESCALATION_BLOCK_AFTER,
              reviewSlaMs: config.REVIEW_SLA,
            },
          }),
        },
        {
          consumerName: config.DETECTOR_INSTANCE_ID,
          concurrency: config.CASE_SIGNALLER_CONCURRENCY,
          claimIdleMs: config.CASE_SIGNALLER_CLAIM_IDLE_MS,
          streamMaxLen: config.ALERT_STREAM_MAXLEN,
        },
      ))
    : undefined;

let stopping = false;
async function shutdown(signal: string, code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(code || 1), 20_000).unref();
  try {
    await detector.stop();
    await signaller?.stop();
  } catch (err) {
    log.error({ err }, 'error while stopping');
    code ||= 1;
  }
  redisMemory.stop();
  metrics.close();
  server.close();
  redis.disconnect();
  checkpointRedis.disconnect();
  clearTimeout(force);
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
consumer.onFatal((err) => {
  log.fatal({ err }, 'kafka consumer failed for good');
  void shutdown('fatal', 1);
});

// A login, topic or group Kafka refuses stops the process here, named (EX_CONFIG, as a bad setting), before the
// consumer starts; Kafka down is waited for, with /metrics and /healthz (503, not consuming) already served.
await kafkaPreflight({ ...kafka, groupId: config.DETECTOR_GROUP_ID, topic: config.PAYMENTS_TOPIC, dlqTopic: config.DLQ_TOPIC }).catch((err: unknown) => {
  if (!(err instanceof KafkaSettingRefused)) throw err;
  process.stderr.write(`detector: ${err.message}\n`);
  process.exit(78);
});
await detector.start();
await signaller?.start();
log.info(
  { topic: config.PAYMENTS_TOPIC, group: config.DETECTOR_GROUP_ID, kafkaClient: config.KAFKA_CLIENT, threshold: config.VELOCITY_FRAUD_THRESHOLD, windowSeconds: config.VELOCITY_WINDOW_SECONDS, metrics: `http://${config.DETECTOR_METRICS_HOST}:${config.DETECTOR_METRICS_PORT}/metrics` },
  'detector running',
);
