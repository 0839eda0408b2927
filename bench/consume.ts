// Consume ceilings: read every message of the bench topic through a consumer group and discard it. No commits.
// Raw: only counted, what is left is the client's fetch, decode and dispatch cost. With `parse`: each value also goes
// through JSON.parse (as the detector's first step does), the ceiling for a detector that does anything with events.
import { Consumer, MessagesStreamFallbackModes, MessagesStreamModes } from '@platformatic/kafka';
import type { Kafka } from 'kafkajs';
import { log, now, round } from './lib.ts';

export interface RawConsumeResult {
  client: string;
  /** Every value was JSON.parse'd (and discarded). */
  parse: boolean;
  settings: Record<string, unknown>;
  messages: number;
  valueBytes: number;
  /** Seconds from creating the consumer (connect, group join, first fetch included) until the last message. */
  seconds: number;
  eventsPerSecond: number;
  /** Seconds from connect until the consumer group join completed (startup excluded from the next rate). */
  joinSeconds: number;
  /** Seconds from the group join to the last message, and the rate over that span (first fetch included). */
  secondsFromJoin: number;
  eventsPerSecondFromJoin: number;
  /** Seconds from connect to the first message. */
  firstMessageSeconds: number;
}

/** JSON.parse a message value as the detector does; 1 when it gave an object (a count that keeps the work observable). */
const parseValue = (value: Buffer | null | undefined): number => (value && typeof JSON.parse(value.toString('utf8')) === 'object' ? 1 : 0);

function result(client: string, parse: boolean, settings: Record<string, unknown>, messages: number, valueBytes: number, t0: number, tJoin: number, tFirst: number, tEnd: number): RawConsumeResult {
  const seconds = (tEnd - t0) / 1000;
  const fromJoin = (tEnd - tJoin) / 1000;
  return {
    client,
    parse,
    settings,
    messages,
    valueBytes,
    seconds: round(seconds, 2),
    eventsPerSecond: Math.round(messages / seconds),
    joinSeconds: round((tJoin - t0) / 1000, 2),
    secondsFromJoin: round(fromJoin, 2),
    eventsPerSecondFromJoin: Math.round(messages / fromJoin),
    firstMessageSeconds: round((tFirst - t0) / 1000, 2),
  };
}

/** Wait for `done` but fail early when the count stops moving for `stallMs` or the phase exceeds `timeoutMs`. */
async function watch(what: string, count: () => number, target: number, done: Promise<void>, timeoutMs: number): Promise<void> {
  const t0 = now();
  let last = -1;
  let lastChange = now();
  let lastLog = now();
  let finished = false;
  void done.then(() => (finished = true), () => (finished = true));
  while (!finished) {
    await Promise.race([done, new Promise((r) => setTimeout(r, 250))]);
    if (finished) break;
    const c = count();
    if (c !== last) {
      last = c;
      lastChange = now();
    }
    if (now() - lastLog > 10_000) {
      lastLog = now();
      log(`  ${what}: ${c} / ${target}`);
    }
    if (now() - t0 > timeoutMs) throw new Error(`${what}: ${c} of ${target} messages after the ${timeoutMs / 1000}s timeout`);
    if (now() - lastChange > 60_000) throw new Error(`${what}: stuck at ${c} of ${target} messages for 60s`);
  }
  await done;
}

/** kafkajs consumer group, eachBatch that only counts, fetch settings as in detector/kafkajs-client.ts. */
export async function rawKafkajs(kafka: Kafka, topic: string, groupId: string, expected: number, timeoutMs: number, opts: { maxBytesPerPartition: number; maxBytes: number; maxWaitTimeInMs: number; partitionsConsumedConcurrently: number; parse: boolean }): Promise<RawConsumeResult> {
  const consumer = kafka.consumer({
    groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000,
    maxBytesPerPartition: opts.maxBytesPerPartition, maxBytes: opts.maxBytes, maxWaitTimeInMs: opts.maxWaitTimeInMs,
  });
  let count = 0;
  let parsed = 0;
  let valueBytes = 0;
  let tFirst = 0;
  let tJoin = 0;
  let tEnd = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (tJoin === 0) tJoin = now();
  });
  const t0 = now();
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently,
      eachBatch: async ({ batch }) => {
        const n = batch.messages.length;
        if (n === 0) return;
        if (tFirst === 0) tFirst = now();
        for (const m of batch.messages) {
          valueBytes += m.value?.length ?? 0;
          if (opts.parse) parsed += parseValue(m.value);
        }
        count += n;
        if (count >= expected && tEnd === 0) {
          tEnd = now();
          resolveDone();
        }
      },
    });
    await watch('kafkajs raw consume', () => count, expected, done, timeoutMs);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  if (count !== expected) throw new Error(`kafkajs consumed ${count} messages, expected ${expected}`);
  if (opts.parse && parsed !== count) throw new Error(`kafkajs: ${parsed} of ${count} values parsed to an object`);
  return result('kafkajs', opts.parse, { groupConsumer: true, eachBatch: true, autoCommit: false, ...opts }, count, valueBytes, t0, tJoin || tFirst, tFirst, tEnd);
}

/** @platformatic/kafka Consumer.consume() stream in a consumer group, from the earliest offset, no commits. */
export async function rawPlatformatic(brokers: string[], topic: string, groupId: string, expected: number, timeoutMs: number, opts: { maxBytes: number; maxBytesPerPartition?: number; maxWaitTime: number; highWaterMark: number; parse: boolean }): Promise<RawConsumeResult> {
  let count = 0;
  let parsed = 0;
  let valueBytes = 0;
  let tFirst = 0;
  let tJoin = 0;
  let tEnd = 0;
  let resolveDone!: () => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const t0 = now();
  const consumer = new Consumer({
    clientId: `bench-raw-${groupId}`,
    groupId,
    bootstrapBrokers: brokers,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    autocommit: false,
  });
  consumer.on('consumer:group:join', () => {
    if (tJoin === 0) tJoin = now();
  });
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: MessagesStreamModes.EARLIEST,
      fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
      maxBytes: opts.maxBytes,
      ...(opts.maxBytesPerPartition ? { maxBytesPerPartition: opts.maxBytesPerPartition } : {}),
      maxWaitTime: opts.maxWaitTime,
      highWaterMark: opts.highWaterMark,
    });
    stream.on('error', (err: Error) => rejectDone(err));
    stream.on('data', (m) => {
      if (tFirst === 0) tFirst = now();
      valueBytes += m.value?.length ?? 0;
      if (opts.parse) parsed += parseValue(m.value);
      if (++count >= expected && tEnd === 0) {
        tEnd = now();
        resolveDone();
      }
    });
    await watch('@platformatic/kafka raw consume', () => count, expected, done, timeoutMs);
    // Anything beyond `expected` would show up here shortly; the topic holds exactly `expected`.
    await new Promise((r) => setTimeout(r, 300));
    await stream.close().catch(() => undefined);
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  if (count !== expected) throw new Error(`@platformatic/kafka consumed ${count} messages, expected ${expected}`);
  if (opts.parse && parsed !== count) throw new Error(`@platformatic/kafka: ${parsed} of ${count} values parsed to an object`);
  return result('@platformatic/kafka', opts.parse, { api: 'Consumer.consume() stream, data events', groupConsumer: true, autocommit: false, ...opts }, count, valueBytes, t0, tJoin || tFirst, tFirst, tEnd);
}
