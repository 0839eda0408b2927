// kafkajs behind the detector's Kafka interface.
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { kafkajsSasl } from '../common/kafka-login.ts';
import { GroupRebalancingError, type BatchControl, type DeadLetterProducer, type InboundBatch, type ConsumerOptions, type InboundMessage, type PaymentsConsumer } from './kafka.ts';

export type KafkajsOptions = ConsumerOptions;

/** `retries`: 30 by default, to keep retrying through a broker restart instead of crashing after a few seconds. */
function kafkaFor(opts: Pick<KafkajsOptions, 'brokers' | 'login' | 'clientId' | 'logger'>, retries = 30): Kafka {
  const log = opts.logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...kafkajsSasl(opts.login),
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries },
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log: entry }) => {
      const { message, ...rest } = entry;
      if (level <= logLevel.ERROR) log.error(rest, message);
      else log.warn(rest, message);
    },
  });
}

export class KafkajsPaymentsConsumer implements PaymentsConsumer {
  private readonly consumer: Consumer;
  private readonly kafka: Kafka;
  private admin?: Promise<Admin>;
  private readonly rebalanceListeners: Array<() => void> = [];
  private readonly fatalListeners: Array<(err: Error) => void> = [];

  private readonly opts: KafkajsOptions;

  constructor(opts: KafkajsOptions) {
    this.opts = opts;
    this.kafka = kafkaFor(opts);
    this.consumer = this.kafka.consumer({
      groupId: opts.groupId,
      // A crashed member holds its partitions until the session times out: keep that short.
      sessionTimeout: opts.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: Math.min(1_000, (opts.sessionTimeoutMs ?? 10_000) / 5),
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 4 * 1024 * 1024,
      maxWaitTimeInMs: 100,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => this.rebalanceListeners.forEach((l) => l()));
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      // kafkajs restarts itself after retriable errors; anything else is fatal for this process.
      if (!e.payload.restart) this.fatalListeners.forEach((l) => l(e.payload.error));
    });
  }

  onRebalance(listener: () => void): void {
    this.rebalanceListeners.push(listener);
  }

  onFatal(listener: (err: Error) => void): void {
    this.fatalListeners.push(listener);
  }

  async start(onBatch: (batch: InboundBatch, control: BatchControl) => Promise<void>): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.opts.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.partitionsConsumedConcurrently ?? 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const { topic, partition } = batch;
        await onBatch(
          {
            topic,
            partition,
            highWatermark: batch.highWatermark,
            // kafkajs' own message objects already have this shape: passed as they are, not copied per message.
            messages: batch.messages as InboundMessage[],
          },
          {
            markConsumed: (offset) => resolveOffset(offset),
            seek: (offset) => this.consumer.seek({ topic, partition, offset }),
            heartbeat: async () => {
              try {
                await heartbeat();
              } catch (err) {
                // What kafkajs answers when the group moved on: the member must rejoin, which it cannot do mid-batch.
                const type = (err as { type?: string }).type;
                if (type && ['REBALANCE_IN_PROGRESS', 'UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'FENCED_INSTANCE_ID'].includes(type)) {
                  throw new GroupRebalancingError(`consumer group: ${type}`, { cause: err });
                }
                throw err;
              }
            },
            isRunning,
            isStale,
          },
        );
      },
    });
  }

  async commit(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void> {
    if (offsets.length > 0) await this.consumer.commitOffsets(offsets);
  }

  seek(topic: string, partition: number, offset: string): void {
    this.consumer.seek({ topic, partition, offset });
  }

  async logStartOffset(topic: string, partition: number): Promise<string> {
    // One admin connection, opened the first time it is needed (rare: when the detector has to go back in a log).
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })();
    const admin = await this.admin.catch((err: unknown) => {
      this.admin = undefined;
      throw err;
    });
    const offsets = await admin.fetchTopicOffsets(topic);
    const p = offsets.find((o) => o.partition === partition);
    if (!p) throw new Error(`topic ${topic} has no partition ${partition}`);
    return p.low;
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
    await this.consumer.disconnect();
    if (this.admin) await (await this.admin.catch(() => undefined))?.disconnect();
  }
}

export class KafkajsDeadLetterProducer implements DeadLetterProducer {
  private readonly producer: Producer;
  private connected?: Promise<void>;

  constructor(opts: Pick<KafkajsOptions, 'brokers' | 'login' | 'clientId' | 'logger'>) {
    // Idempotent (with acks=all): a send retried after a lost answer does not write its dead letters twice.
    this.producer = kafkaFor(opts).producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
  }

  async send(topic: string, messages: Parameters<DeadLetterProducer['send']>[1]): Promise<void> {
    if (messages.length === 0) return;
    this.connected ??= this.producer.connect();
    await this.connected;
    await this.producer.send({ topic, acks: -1, messages });
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect();
  }
}

/** A setting Kafka refuses for good (a login, a topic, a group): the process should stop at start and name it. */
export class KafkaSettingRefused extends Error {}

type PreflightOptions = Pick<KafkajsOptions, 'brokers' | 'login' | 'clientId' | 'logger' | 'groupId' | 'topic'> & { dlqTopic: string };

/** Attempts in a row whose connections a broker closed, from a client without a login, before that is called a refusal. */
const CLOSED_WITHOUT_LOGIN_ATTEMPTS = 3;
/** How long a group without a coordinator is waited for (a fresh cluster creates __consumer_offsets in seconds). */
const NO_COORDINATOR_MS = 15_000;

/**
 * Before the consumer starts, whichever client it uses: an admin connection that logs in, reads the metadata of the
 * payments topic and the DLQ, and the group's committed offsets. What no retry mends stops the process, named: a
 * refused login (KAFKA_SASL_*), brokers that close every connection of a client without one, a topic or group the user
 * may not use (PAYMENTS_TOPIC, DLQ_TOPIC, DETECTOR_GROUP_ID, the ACLs; kafkajs reports a refused group as "no group
 * coordinator"), a payments topic that does not exist. Brokers that are down or restarting are waited for, however
 * long; a missing DLQ is only a warning, as dead letters wait for it without being skipped.
 */
export async function kafkaPreflight(opts: PreflightOptions): Promise<void> {
  const started = Date.now();
  let closedWithoutLogin = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      await preflightOnce(opts, Date.now() - started > NO_COORDINATOR_MS);
      return;
    } catch (err) {
      if (err instanceof KafkaSettingRefused) throw err;
      const e = err as { name?: string; message?: string };
      closedWithoutLogin = !opts.login && e.name === 'KafkaJSConnectionClosedError' ? closedWithoutLogin + 1 : 0;
      if (closedWithoutLogin >= CLOSED_WITHOUT_LOGIN_ATTEMPTS) {
        throw new KafkaSettingRefused(`the Kafka brokers ${opts.brokers.join(',')} closed every connection of a client without a login (KAFKA_SASL_* unset): they likely want a SASL login (set KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD)`);
      }
      opts.logger.warn({ err, attempt }, 'Kafka is not answering the detector\'s start-up checks yet (retrying)');
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * attempt)));
    }
  }
}

async function preflightOnce(opts: PreflightOptions, coordinatorWaitedFor: boolean): Promise<void> {
  const who = opts.login ? `the user ${opts.login.username} (KAFKA_SASL_USERNAME)` : 'a client without a login (KAFKA_SASL_* unset)';
  const loginHint = '(check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD)';
  // Few retries per round: kafkaPreflight's own loop waits for brokers that are down, however long.
  const admin = kafkaFor({ ...opts, clientId: `${opts.clientId}-preflight` }, 3).admin();
  const topicRefused = (topic: string, variable: 'PAYMENTS_TOPIC' | 'DLQ_TOPIC', e: { message?: string }) =>
    new KafkaSettingRefused(`Kafka does not let ${who} use the topic ${topic} (${variable}): ${e.message} (check ${variable} and the user's ACLs)`);
  try {
    await admin.connect().catch((err: unknown) => {
      const e = err as { name?: string; type?: string; message?: string };
      if (e.name === 'KafkaJSSASLAuthenticationError' || ['SASL_AUTHENTICATION_FAILED', 'ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM'].includes(e.type ?? '')) {
        throw new KafkaSettingRefused(`Kafka refused the login of ${who}: ${e.message} ${loginHint}`);
      }
      throw err;
    });
    for (const [topic, variable] of [[opts.topic, 'PAYMENTS_TOPIC'], [opts.dlqTopic, 'DLQ_TOPIC']] as const) {
      try {
        await admin.fetchTopicMetadata({ topics: [topic] });
      } catch (err) {
        const e = err as { type?: string; message?: string };
        if (e.type === 'TOPIC_AUTHORIZATION_FAILED') throw topicRefused(topic, variable, e);
        if (e.type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
        if (variable === 'PAYMENTS_TOPIC') throw new KafkaSettingRefused(`the Kafka topic ${topic} (PAYMENTS_TOPIC) does not exist on ${opts.brokers.join(',')} (create it, or check PAYMENTS_TOPIC and KAFKA_BOOTSTRAP_SERVERS)`);
        opts.logger.warn({ topic }, `the dead-letter topic ${topic} (DLQ_TOPIC) does not exist yet: dead letters wait for it`);
      }
    }
    try {
      await admin.fetchOffsets({ groupId: opts.groupId, topics: [opts.topic] });
    } catch (err) {
      const e = err as { name?: string; type?: string; message?: string };
      if (e.type === 'GROUP_AUTHORIZATION_FAILED' || (e.name === 'KafkaJSGroupCoordinatorNotFound' && coordinatorWaitedFor)) {
        throw new KafkaSettingRefused(`Kafka does not let ${who} use the consumer group ${opts.groupId} (DETECTOR_GROUP_ID): ${e.message} (check DETECTOR_GROUP_ID and the user's ACLs; a group the user may not use shows as no coordinator, as does a cluster that cannot host __consumer_offsets)`);
      }
      if (e.type === 'TOPIC_AUTHORIZATION_FAILED') throw topicRefused(opts.topic, 'PAYMENTS_TOPIC', e);
      throw err;
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
