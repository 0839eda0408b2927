// The small Kafka surface the detector needs. kafkajs implements it (kafkajs-client.ts), @platformatic/kafka too
// (platformatic-client.ts).
import type { KafkaLogin } from '../common/kafka-login.ts';
import type { Logger } from '../common/logger.ts';

/** What either consumer is built from. */
export interface ConsumerOptions {
  brokers: string[];
  /** SASL login (KAFKA_SASL_*); none: the broker takes unauthenticated clients. */
  login?: KafkaLogin | undefined;
  clientId: string;
  groupId: string;
  topic: string;
  logger: Logger;
  /** Upper bound on bytes fetched per partition per request. */
  maxBytesPerPartition?: number;
  partitionsConsumedConcurrently?: number;
  sessionTimeoutMs?: number;
}
export interface InboundMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | Array<Buffer | string> | undefined>;
  /** The record's Kafka timestamp, ms since the epoch as a decimal string (the producer's create time by default). */
  timestamp?: string;
}

export interface InboundBatch {
  topic: string;
  partition: number;
  messages: InboundMessage[];
  /** Offset of the next message the broker will write (for lag). */
  highWatermark: string;
}

export interface BatchControl {
  /** Mark everything up to and including `offset` consumed, so the client fetches past it. */
  markConsumed(offset: string): void;
  /** Move the fetch position; the rest of the current batch is discarded. */
  seek(offset: string): void;
  /** Tell the group this member is alive; rejects with GroupRebalancingError when the group is rebalancing. */
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export interface OutboundMessage {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: Record<string, string>;
}

export interface PaymentsConsumer {
  /** Start consuming; resolves once running. `onBatch` is called with one partition's batch at a time. */
  start(onBatch: (batch: InboundBatch, control: BatchControl) => Promise<void>): Promise<void>;
  /** Called whenever the group's assignment may have changed (join/rejoin). */
  onRebalance(listener: () => void): void;
  /** Called when the client gives up for good; the process should exit. */
  onFatal(listener: (err: Error) => void): void;
  commit(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
  /** Move a partition's fetch position outside a batch (no effect if the partition is not assigned here). */
  seek(topic: string, partition: number, offset: string): void;
  /** The partition's first offset still in the log (earlier records were deleted by retention). */
  logStartOffset(topic: string, partition: number): Promise<string>;
  /** Stop fetching after the batch in flight; then disconnect. */
  stop(): Promise<void>;
}

export interface DeadLetterProducer {
  send(topic: string, messages: OutboundMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** The group is rebalancing (or no longer knows this member): a batch held up by retries should give way. */
export class GroupRebalancingError extends Error {
  override name = 'GroupRebalancingError';
}
