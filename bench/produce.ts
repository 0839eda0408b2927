// Producing the benchmark's payment streams with kafkajs: as fast as possible (bulk) and paced (live).
import { Kafka, Partitioners, logLevel, type Message, type Producer } from 'kafkajs';
import { paymentStream, type TrafficOptions } from '../common/payment-traffic.ts';
import { log, now, round } from './lib.ts';

export function benchKafka(brokers: string[], clientId: string): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.ERROR, retry: { retries: 5 } });
}

/** With `transactionalId`: an idempotent transactional producer (its records stay invisible to read_committed consumers until commit). */
export async function connectProducer(kafka: Kafka, transactionalId?: string): Promise<Producer> {
  // DefaultPartitioner = murmur2 like the Java client; the key is the sender, so a sender stays on one partition.
  const producer = kafka.producer({
    allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner,
    ...(transactionalId ? { transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 600_000 } : {}),
  });
  await producer.connect();
  return producer;
}

export interface BulkProduceResult {
  events: number;
  bytes: number;
  seconds: number;
  eventsPerSecond: number;
  mbPerSecond: number;
  kinds: { normal: number; burst: number; malformed: number };
  /** Bursts that reached the alert threshold (each must raise exactly one alert). */
  expectedAlerts: number;
  bursts: number;
  batchSize: number;
  concurrency: number;
}

/**
 * Produce `traffic.events` events as fast as possible: batches of `batchSize` messages, up to `concurrency` sends in
 * flight, acks=-1, no compression. The generator runs in this process, so its cost is part of the measured time.
 * Keep `concurrency` at 1 when order matters: kafkajs does not keep concurrent send() calls in call order, and the
 * detector treats events more than a window behind a partition's newest event time as late.
 */
export async function produceBulk(
  producer: Pick<Producer, 'send'>, topic: string, traffic: Partial<TrafficOptions> & { events: number }, opts: { batchSize: number; concurrency: number; threshold: number },
): Promise<BulkProduceResult> {
  const kinds = { normal: 0, burst: 0, malformed: 0 };
  const perBurst = new Map<string, number>();
  let bytes = 0;
  const inflight = new Set<Promise<unknown>>();
  let failure: unknown = null;
  const began = now();
  let lastLog = began;
  let sent = 0;
  let batch: Message[] = [];
  const flush = async () => {
    const messages = batch;
    batch = [];
    const p = producer.send({ topic, acks: -1, messages }).then(
      () => {
        sent += messages.length;
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= opts.concurrency) await Promise.race(inflight);
    if (failure) throw failure;
    if (now() - lastLog > 10_000) {
      lastLog = now();
      log(`  produced ${sent} / ${traffic.events}`);
    }
  };
  for (const m of paymentStream(traffic)) {
    kinds[m.kind]++;
    if (m.kind === 'burst') perBurst.set(m.key, (perBurst.get(m.key) ?? 0) + 1);
    bytes += m.key.length + m.value.length;
    batch.push({ key: m.key, value: m.value });
    if (batch.length >= opts.batchSize) await flush();
  }
  if (batch.length > 0) await flush();
  await Promise.all(inflight);
  if (failure) throw failure;
  const seconds = (now() - began) / 1000;
  let expectedAlerts = 0;
  // Each alert clears the sender's window, so a burst of n events within the window raises floor(n / threshold).
  for (const n of perBurst.values()) expectedAlerts += Math.floor(n / opts.threshold);
  return {
    events: traffic.events,
    bytes,
    seconds: round(seconds, 2),
    eventsPerSecond: Math.round(traffic.events / seconds),
    mbPerSecond: round(bytes / 1024 / 1024 / seconds, 1),
    kinds,
    expectedAlerts,
    bursts: perBurst.size,
    batchSize: opts.batchSize,
    concurrency: opts.concurrency,
  };
}

export interface LiveTrigger {
  sender: string;
  transactionId: string;
  /** performance.now() just before the producer.send carrying the triggering event. */
  sentAt: number;
}

export interface LiveProduceResult {
  targetRate: number;
  achievedRate: number;
  events: number;
  seconds: number;
  sends: number;
  meanBatch: number;
  kinds: { normal: number; burst: number; malformed: number };
  /** Slowest producer.send (acks=-1) round trip, ms. */
  maxSendMs: number;
}

/**
 * Produce `events` at `rate` events/s: every `tickMs` send what is due in one producer.send (awaited, so a slow send
 * makes the next batch larger rather than queueing sends). Event timestamps are set to Date.now() at send time.
 * `onTrigger` is called for each event that must raise an alert (every `threshold`-th event of a burst sender).
 * With `maxSeconds`, it also stops after that long: a producer that cannot reach `rate` sends fewer events in the same
 * time instead of running longer.
 */
export async function produceLive(
  producer: Producer, topic: string, traffic: Partial<TrafficOptions> & { events: number },
  opts: { rate: number; tickMs: number; maxBatch: number; threshold: number; maxSeconds?: number; onTrigger: (t: LiveTrigger) => void },
): Promise<LiveProduceResult> {
  const stream = paymentStream(traffic);
  const kinds = { normal: 0, burst: 0, malformed: 0 };
  const perBurst = new Map<string, number>();
  const began = now();
  let produced = 0;
  let sends = 0;
  let maxSendMs = 0;
  let done = false;
  const deadline = opts.maxSeconds === undefined ? Number.POSITIVE_INFINITY : began + opts.maxSeconds * 1000;
  const dueTotal = () => Math.min(traffic.events, Math.floor(((now() - began) / 1000) * opts.rate));
  while (!done) {
    if (now() >= deadline) break;
    // At most a few sends' worth per round: a producer behind its target then notices the deadline within one round.
    const due = Math.min(opts.maxBatch * 4, dueTotal() - produced);
    if (due > 0) {
      const messages: Message[] = [];
      const triggers: Array<{ sender: string; transactionId: string; index: number }> = [];
      const ts = Date.now();
      for (let i = 0; i < due; i++) {
        const r = stream.next();
        if (r.done) {
          done = true;
          break;
        }
        const m = r.value;
        kinds[m.kind]++;
        // Event time = now. The generator writes "timestamp" last; a string splice keeps this loop cheap (it shares
        // the CPUs with the detector), with a parse/stringify fallback.
        const at = m.value.lastIndexOf('"timestamp":');
        let value: string;
        if (at > 0 && m.value.endsWith('}')) {
          value = `${m.value.slice(0, at)}"timestamp":${ts}}`;
        } else {
          const event = JSON.parse(m.value) as { timestamp: number };
          event.timestamp = ts;
          value = JSON.stringify(event);
        }
        if (m.kind === 'burst') {
          const n = (perBurst.get(m.key) ?? 0) + 1;
          perBurst.set(m.key, n);
          if (n % opts.threshold === 0) {
            const { transaction_id: transactionId } = JSON.parse(value) as { transaction_id: string };
            triggers.push({ sender: m.key, transactionId, index: messages.length });
          }
        }
        messages.push({ key: m.key, value });
      }
      // Send what is due in chunks of at most maxBatch (a stalled send must not turn into one oversized request).
      for (let i = 0; i < messages.length; i += opts.maxBatch) {
        const chunk = messages.slice(i, i + opts.maxBatch);
        const sentAt = now();
        for (const t of triggers) if (t.index >= i && t.index < i + chunk.length) opts.onTrigger({ sender: t.sender, transactionId: t.transactionId, sentAt });
        await producer.send({ topic, acks: -1, messages: chunk });
        maxSendMs = Math.max(maxSendMs, now() - sentAt);
        produced += chunk.length;
        sends++;
      }
      if (produced >= traffic.events) done = true;
    }
    if (!done && dueTotal() <= produced) {
      // Caught up: sleep until the next tick boundary.
      const next = began + (Math.floor((now() - began) / opts.tickMs) + 1) * opts.tickMs;
      await new Promise((r) => setTimeout(r, Math.max(0, next - now())));
    }
  }
  const seconds = (now() - began) / 1000;
  return {
    targetRate: opts.rate,
    achievedRate: Math.round(produced / seconds),
    events: produced,
    seconds: round(seconds, 2),
    sends,
    meanBatch: round(produced / Math.max(1, sends), 1),
    kinds,
    maxSendMs: round(maxSendMs, 1),
  };
}
