// kafkajs behind the detector's Kafka interface.
import { Kafka, Partitioners, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { kafkajsSasl } from '../common/kafka-login.ts';
import { GroupRebalancingError, type BatchControl, type DeadLetterProducer, type InboundBatch, type ConsumerOptions, type InboundMessage, type PaymentsConsumer } from './kafka.ts';

export type KafkajsOptions = ConsumerOptions;

function kafkaFor(opts: Pick<KafkajsOptions, 'brokers' | 'login' | 'clientId' | 'logger'>): Kafka {
  const log = opts.logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    ...kafkajsSasl(opts.login),
    // Keep retrying through a broker restart instead of crashing the consumer after a few seconds.
    retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 30 },
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
    this.producer = kafkaFor(opts).producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
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
