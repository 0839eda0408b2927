// @platformatic/kafka behind the detector's Kafka interface (KAFKA_CLIENT=platformatic; kafkajs stays the default).
//
// The library's MessagesStream delivers messages one by one from a position it owns: no seek on a running stream (its
// migration guide answers a seek with a new stream in MANUAL mode), no per-partition batches. So this adapter runs
// its own fetch loop on the library's documented lower-level consumer API instead: joinGroup (the library keeps the
// membership: heartbeats, rejoin after a rebalance), fetch (one request per partition leader, on a connection pool of
// its own so that a fetch waiting on the broker never delays a heartbeat or a commit), listCommittedOffsets,
// listOffsets and commit. The positions are the adapter's: one partition's batch at a time, in offset order; a seek,
// inside a batch or outside, is a new position; offsets are committed only by commit(), never automatically.
//
// Throughput: the next fetch is in flight while the current response is processed (positions taken as if each batch
// were consumed to its end; a partition whose position turns out different, after a seek, a failed batch or a
// rebalance, has its prefetched records dropped and is fetched again from its real position). Messages are built
// once per record straight from the decoded record batches: offsets and timestamps as numbers, then decimal strings.
import {
  ConnectionPool, Consumer, IS_CONTROL, ListOffsetTimestamps, Producer, ProduceAcks, compatibilityPartitioner, findErrorBy,
  type ConsumerGroupJoinPayload, type KafkaRecord, type RecordsBatch, type fetchV17,
} from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';
import { platformaticSasl } from '../common/kafka-login.ts';
import type { Logger } from '../common/logger.ts';
import { StallWatch } from '../common/stall-watch.ts';
import { GroupRebalancingError, type BatchControl, type ConsumerOptions, type DeadLetterProducer, type InboundBatch, type InboundMessage, type OutboundMessage, type PaymentsConsumer } from './kafka.ts';

type FetchResponse = fetchV17.FetchResponse;
type FetchRequestTopic = fetchV17.FetchRequestTopic;

export interface PlatformaticOptions extends ConsumerOptions {
  /** Upper bound on bytes per fetch response (all partitions of one broker). */
  maxBytes?: number;
}

/** Kafka record batch attribute: the timestamps are the broker's log append time (then every record has maxTimestamp). */
const LOG_APPEND_TIME = 0x08;
/** Offsets at or above this are handled as bigints (numbers stay exact below 2^53). */
const SAFE_OFFSET = BigInt(Number.MAX_SAFE_INTEGER) - (1n << 32n);
const MAX_WAIT_MS = 100;
/** How long one JoinGroup may wait for the other members (Kafka holds the request up to this). */
const REBALANCE_TIMEOUT_MS = 30_000;
/** The fetch loop's key in the stall watch. */
const LOOP = 'the fetch loop';
/** A failed rejoin is logged on the first attempt and then every this many. */
const REJOIN_WARN_EVERY = 10;

/**
 * The library retries a failed request `retries` times, this long apart: exponential from 300 ms, at most 10 s, like
 * the kafkajs client's settings (a broker restart is ridden out, not reported). Those retries are silent in the
 * library: the first of a series and every fifth are logged here (retryLogged), with the error, so that a request
 * that keeps failing for minutes shows in the log.
 */
function retryDelayLogged(log: Logger) {
  return (_client: unknown, op: string, attempt: number, retries: number, err?: unknown): number => {
    if (retryLogged(attempt)) log.warn({ op, attempt, retries, err }, `Kafka ${op} failed; retrying`);
    return backoffMs(attempt);
  };
}
/** The first retry of a series and every fifth are logged. */
const retryLogged = (attempt: number) => attempt === 1 || attempt % 5 === 0;
/** Exponential from 300 ms, at most 10 s, with jitter. */
const backoffMs = (attempt: number) => Math.min(10_000, 300 * 2 ** Math.max(0, attempt - 1)) * (0.8 + Math.random() * 0.4);
/** Log start lookups: about a minute of attempts, as the library's own retries would give, then the caller's error path. */
const OFFSETS_ATTEMPTS = 12;
const RETRIES = 30;

/** One assigned partition: its next offset to fetch, and a counter that moves on each seek (a batch of an older one is stale). */
interface PartitionState {
  position: bigint | undefined;
  seeks: number;
}

interface FetchResult {
  /** The offset each partition was fetched from. */
  requested: Map<number, bigint>;
  responses: FetchResponse[];
  error?: unknown;
}

interface PendingBatch {
  state: PartitionState;
  from: bigint;
  next: bigint;
  batch: InboundBatch;
}

/** A decimal offset string as a bigint; anything else is refused with the value named. */
function parseOffset(offset: string): bigint {
  if (typeof offset !== 'string' || !/^\d{1,19}$/.test(offset)) throw new Error(`not a Kafka offset: ${JSON.stringify(offset)}`);
  return BigInt(offset);
}

function headersOf(raw: KafkaRecord['headers']): InboundMessage['headers'] {
  const out: NonNullable<InboundMessage['headers']> = {};
  for (const [k, v] of raw) {
    if (k === null) continue;
    const name = k.toString('utf8');
    const value = v ?? Buffer.alloc(0);
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** One record as the detector's message, its offset and timestamp already as decimal strings. */
const messageOf = (r: KafkaRecord, offset: string, timestamp: string): InboundMessage => ({
  offset,
  key: r.key,
  value: r.value,
  headers: r.headers.length === 0 ? undefined : headersOf(r.headers),
  timestamp,
});

/**
 * The messages of one partition's record batches from offset `from` on (a batch may start before it), control
 * records left out, and the offset after the last record of the batches (control ones included).
 */
export function messagesOf(batches: RecordsBatch[], from: bigint): { messages: InboundMessage[]; next: bigint } {
  const messages: InboundMessage[] = [];
  let next = from;
  for (const b of batches) {
    const end = b.firstOffset + BigInt(b.lastOffsetDelta) + 1n;
    if (end > next) next = end;
    if ((b.attributes & IS_CONTROL) !== 0 || end <= from) continue;
    const appendTime = (b.attributes & LOG_APPEND_TIME) !== 0;
    const records = b.records;
    if (b.firstOffset < SAFE_OFFSET) {
      const base = Number(b.firstOffset);
      const start = Number(from);
      const t0 = Number(b.firstTimestamp);
      const maxTs = appendTime ? String(b.maxTimestamp) : '';
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        const offset = base + r.offsetDelta;
        if (offset >= start) messages.push(messageOf(r, String(offset), appendTime ? maxTs : String(t0 + Number(r.timestampDelta))));
      }
    } else {
      for (const r of records) {
        const offset = b.firstOffset + BigInt(r.offsetDelta);
        if (offset >= from) messages.push(messageOf(r, String(offset), String(appendTime ? b.maxTimestamp : b.firstTimestamp + r.timestampDelta)));
      }
    }
  }
  return { messages, next };
}

/** The protocol error with this id anywhere in an error's chain (the library wraps retried errors). */
const protocolError = (err: unknown, apiId: string) => findErrorBy(err as Error, 'apiId', apiId);

/** The decoded response a failed fetch still carries (partition errors fail the whole request; the others hold data). */
function responseOf(err: unknown): FetchResponse | undefined {
  const withResponse = findErrorBy(err as Error, 'code', 'PLT_KFK_RESPONSE') as (Error & { response?: FetchResponse }) | null;
  return withResponse?.response ?? undefined;
}

/** Errors retrying cannot mend: the process should stop and say so. */
function isFatal(err: unknown): boolean {
  if (findErrorBy(err as Error, 'code', 'PLT_KFK_AUTHENTICATION')) return true;
  return ['TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'SASL_AUTHENTICATION_FAILED', 'UNSUPPORTED_VERSION']
    .some((id) => protocolError(err, id));
}

export class PlatformaticPaymentsConsumer implements PaymentsConsumer {
  private readonly consumer: Consumer;
  /** Fetches go over connections of their own (as the library's streams do): a fetch held by the broker never delays a heartbeat. */
  private readonly fetchPool: ConnectionPool;
  private readonly opts: PlatformaticOptions;
  private readonly log: Logger;
  private readonly rebalanceListeners: Array<() => void> = [];
  private readonly fatalListeners: Array<(err: Error) => void> = [];
  private readonly groupOptions: { sessionTimeout: number; heartbeatInterval: number; rebalanceTimeout: number };
  /** What the fetch loop waits on: a wait that lasts is logged by name. */
  private readonly watch: StallWatch;
  /**
   * Log start offsets are read on a client of their own that does not retry inside the library. The library's
   * listOffsets retries a failed request with the leader epoch it first read from the metadata, and refreshes the
   * metadata only after all its retries: once a broker restart has moved the leader epoch on, every retry fails with
   * FENCED_LEADER_EPOCH, for minutes. Without those inner retries, the library refreshes the metadata at once and asks
   * again; other failures are retried here (OFFSETS_ATTEMPTS), with the same backoff.
   */
  private readonly offsetsClient: Consumer;

  /** The partitions of the topic assigned here, by number. */
  private readonly partitions = new Map<number, PartitionState>();
  private positionsWanted = false;
  private running = false;
  private stopping = false;
  private loop?: Promise<void>;
  private fatal = false;
  private rejoining = false;
  /** Resolves the current wait of the loop early (a join, a stop). */
  private wake: () => void = () => undefined;
  private stopped!: Promise<void>;
  private signalStopped: () => void = () => undefined;

  constructor(opts: PlatformaticOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'platformatic-kafka' });
    this.watch = new StallWatch(this.log);
    const sessionTimeout = opts.sessionTimeoutMs ?? 10_000;
    this.groupOptions = { sessionTimeout, heartbeatInterval: Math.min(1_000, sessionTimeout / 5), rebalanceTimeout: REBALANCE_TIMEOUT_MS };
    this.consumer = new Consumer({
      clientId: opts.clientId,
      groupId: opts.groupId,
      bootstrapBrokers: opts.brokers,
      ...platformaticSasl(opts.login),
      ...this.groupOptions,
      autocommit: false,
      retries: RETRIES,
      retryDelay: retryDelayLogged(this.log),
      // A JoinGroup waits for the other members up to the rebalance timeout: the request must be allowed as long.
      requestTimeout: REBALANCE_TIMEOUT_MS + 10_000,
    });
    this.offsetsClient = new Consumer({ clientId: `${opts.clientId}-offsets`, groupId: opts.groupId, bootstrapBrokers: opts.brokers, ...platformaticSasl(opts.login), retries: 0 });
    this.fetchPool = new ConnectionPool(`${opts.clientId}-fetch`, { connectTimeout: 5_000, requestTimeout: 30_000, ...platformaticSasl(opts.login) });
    this.stopped = new Promise((resolve) => (this.signalStopped = resolve));
    this.consumer.on('consumer:group:join', (payload) => this.joined(payload));
    // Emitted when the library's rejoin after a rebalance failed for good (its retries exhausted): no heartbeats follow.
    this.consumer.on('error', (err: Error) => void this.rejoin(err));
    this.consumer.on('consumer:heartbeat:stalled', ({ stalledFor, lastError }) =>
      this.log.warn({ stalledForMs: stalledFor, err: lastError }, 'no successful heartbeat to the consumer group for a while (retrying)'));
  }

  onRebalance(listener: () => void): void {
    this.rebalanceListeners.push(listener);
  }

  onFatal(listener: (err: Error) => void): void {
    this.fatalListeners.push(listener);
  }

  async start(onBatch: (batch: InboundBatch, control: BatchControl) => Promise<void>): Promise<void> {
    this.running = true;
    // What the library's consume() does before it joins: the group subscription lists the tracked topics.
    this.consumer.topics.track(this.opts.topic);
    await this.consumer.joinGroup(this.groupOptions);
    this.loop = this.run(onBatch).catch((err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
  }

  commit(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void> {
    // Only partitions assigned here: a revoked one belongs to another member now, which commits its own position.
    const mine = offsets.filter((o) => o.topic === this.opts.topic && this.partitions.has(o.partition));
    if (mine.length === 0) return Promise.resolve();
    return this.consumer.commit({ offsets: mine.map((o) => ({ topic: o.topic, partition: o.partition, offset: parseOffset(o.offset), leaderEpoch: -1 })) });
  }

  seek(topic: string, partition: number, offset: string): void {
    const position = parseOffset(offset);
    const state = topic === this.opts.topic ? this.partitions.get(partition) : undefined;
    if (!state) return;
    state.position = position;
    state.seeks++;
  }

  async logStartOffset(topic: string, partition: number): Promise<string> {
    const start = (await this.logStarts(topic, [partition])).get(partition);
    if (start === undefined) throw new Error(`topic ${topic} has no partition ${partition}`);
    return String(start);
  }

  /** The first offset in the log of each of these partitions (see offsetsClient). */
  private async logStarts(topic: string, partitions: number[]): Promise<Map<number, bigint>> {
    for (let attempt = 1; ; attempt++) {
      try {
        const offsets = await this.offsetsClient.listOffsets({ topics: [topic], partitions: { [topic]: partitions }, timestamp: ListOffsetTimestamps.EARLIEST });
        const listed = offsets.get(topic);
        const out = new Map<number, bigint>();
        for (const p of partitions) if (listed?.[p] !== undefined) out.set(p, listed[p]!);
        return out;
      } catch (err) {
        if (isFatal(err) || attempt >= OFFSETS_ATTEMPTS || this.stopping) throw err;
        if (retryLogged(attempt)) this.log.warn({ op: 'listOffsets', attempt, err }, 'Kafka listOffsets failed; retrying');
        this.offsetsClient.clearMetadata();
        await Promise.race([sleep(backoffMs(attempt)), this.stopped]);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.loop;
    this.stopping = true;
    this.running = false;
    this.signalStopped();
    this.wake();
    // The batch in flight completes; a fetch or wait in progress is given up.
    await this.loop;
    this.watch.close();
    try {
      // Leaves the group: the partitions move at once instead of after the session timeout.
      await this.consumer.close(true);
    } finally {
      await this.fetchPool.close().catch(() => undefined);
      await this.offsetsClient.close().catch(() => undefined);
    }
  }

  // ---- group membership --------------------------------------------------------------------------------------

  private joined(payload: ConsumerGroupJoinPayload): void {
    const assigned = new Set(payload.assignments?.find((a) => a.topic === this.opts.topic)?.partitions ?? []);
    const before = [...this.partitions.keys()];
    for (const p of before) if (!assigned.has(p)) this.partitions.delete(p);
    // Partitions kept keep their position; new ones start from the group's committed offset (or the log start).
    for (const p of assigned) {
      if (!this.partitions.has(p)) {
        this.partitions.set(p, { position: undefined, seeks: 0 });
        this.positionsWanted = true;
      }
    }
    this.log.info({ generation: payload.generationId, partitions: [...assigned].sort((a, b) => a - b), before: before.sort((a, b) => a - b) }, 'consumer group joined');
    this.wake();
    for (const l of this.rebalanceListeners) l();
  }

  /**
   * The library's own rejoin failed for good (no heartbeats are scheduled after it): join again, with backoff, for as
   * long as the errors are retriable (a broker or coordinator that is down or loading), as kafkajs restarts its
   * consumer; an error retrying cannot mend (authentication, authorization) stops the process.
   */
  private async rejoin(cause: Error): Promise<void> {
    if (this.rejoining || !this.running) return;
    this.rejoining = true;
    this.log.warn({ err: cause }, 'rejoining the consumer group failed; trying again');
    try {
      for (let attempt = 1; this.running; attempt++) {
        try {
          await this.consumer.joinGroup(this.groupOptions);
          if (attempt > 1) this.log.info({ attempts: attempt }, 'rejoined the consumer group');
          return;
        } catch (err) {
          if (isFatal(err)) {
            this.fail(new Error(`could not rejoin consumer group ${this.opts.groupId}`, { cause: err }));
            return;
          }
          if (attempt % REJOIN_WARN_EVERY === 1) this.log.warn({ err, attempt }, 'rejoining the consumer group failed; retrying');
          await Promise.race([sleep(Math.min(10_000, 1000 * attempt)), this.stopped]);
        }
      }
    } finally {
      this.rejoining = false;
    }
  }

  private fail(err: Error): void {
    if (this.fatal || this.stopping) return;
    this.fatal = true;
    this.running = false;
    this.wake();
    for (const l of this.fatalListeners) l(err);
  }

  // ---- the fetch loop ----------------------------------------------------------------------------------------

  /** Wait up to `ms`, less if a join or a stop wakes the loop. */
  private pause(ms: number): Promise<void> {
    this.watch.leave(LOOP);
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(onBatch: (batch: InboundBatch, control: BatchControl) => Promise<void>): Promise<void> {
    let failures = 0;
    let lastWarn = 0;
    const warn = (err: unknown, msg: string) => {
      if (Date.now() - lastWarn < 5_000) return;
      lastWarn = Date.now();
      this.log.warn({ err, failures }, msg);
    };
    const backoff = () => this.pause(Math.min(10_000, 100 * 2 ** Math.min(failures, 7)));
    let prefetch: Promise<FetchResult> | undefined;
    let inactiveSince: number | undefined;
    while (this.running) {
      // Mid-rebalance (the library is rejoining): no new batches until the new assignment is known.
      if (!this.consumer.isActive()) {
        prefetch = undefined;
        inactiveSince ??= Date.now();
        if (Date.now() - inactiveSince > 30_000) warn(undefined, `not a member of the consumer group for ${Math.round((Date.now() - inactiveSince) / 1000)} s (waiting for the rejoin)`);
        await this.pause(50);
        continue;
      }
      inactiveSince = undefined;
      if (this.positionsWanted) {
        try {
          this.watch.enter(LOOP, 'the committed offsets of newly assigned partitions');
          await this.initPositions();
          failures = 0;
        } catch (err) {
          failures++;
          if (isFatal(err)) throw err;
          warn(err, 'could not read the committed offsets of newly assigned partitions (retrying)');
          await backoff();
        }
        continue;
      }
      if (this.partitions.size === 0) {
        prefetch = undefined;
        await this.pause(200);
        continue;
      }
      const pending = prefetch ?? this.fetch(this.currentPositions());
      prefetch = undefined;
      this.watch.enter(LOOP, 'a fetch', () => ({ positions: Object.fromEntries([...this.partitions].map(([p, st]) => [p, String(st.position)])) }));
      const result = await Promise.race([pending, this.stopped.then(() => undefined)]);
      this.watch.leave(LOOP);
      if (!result || !this.running) break;
      const responses = [...result.responses];
      let retryLater = false;
      if (result.error !== undefined) {
        if (isFatal(result.error)) throw result.error;
        // Partition errors fail the whole request; the response it carries still holds the other partitions' records.
        const failed = responseOf(result.error);
        if (failed) responses.push(failed);
        const outOfRange = failed ? this.outOfRange(failed, result.requested) : [];
        if (outOfRange.length > 0) {
          this.watch.enter(LOOP, 'the log start of partitions whose position is out of range', () => ({ partitions: outOfRange }));
          await this.resetOutOfRange(outOfRange).catch((err: unknown) => warn(err, 'could not reset partitions whose position is out of the log'));
        } else {
          failures++;
          retryLater = true;
          warn(result.error, 'fetch failed (retrying)');
          // A topic deleted and recreated has a new id, a partition a new leader: read the metadata afresh.
          this.watch.enter(LOOP, 'fresh metadata after a failed fetch');
          await this.consumer.metadata({ topics: [this.opts.topic], forceUpdate: true }).catch(() => undefined);
        }
      } else failures = 0;
      const batches = this.batchesOf(responses, result.requested);
      // The next fetch runs while these batches are processed, from where they end.
      if (batches.length > 0 && !retryLater) prefetch = this.fetch(this.currentPositions(batches));
      if (await this.process(batches, onBatch)) {
        failures++;
        retryLater = true;
      }
      if (retryLater) {
        prefetch = undefined;
        await backoff();
      }
    }
  }

  /** Where each assigned partition is to be fetched from; `ahead`: as if these batches were consumed to their end. */
  private currentPositions(ahead: PendingBatch[] = []): Map<number, bigint> {
    const positions = new Map<number, bigint>();
    for (const [p, s] of this.partitions) if (s.position !== undefined) positions.set(p, s.position);
    for (const b of ahead) positions.set(b.batch.partition, b.next);
    return positions;
  }

  /** New partitions: from the group's committed offset, or the log start when the group never committed one. */
  private async initPositions(): Promise<void> {
    this.positionsWanted = false;
    const wanted = [...this.partitions].filter(([, s]) => s.position === undefined).map(([p]) => p);
    if (wanted.length === 0) return;
    const { topic } = this.opts;
    try {
      const committed = await this.consumer.listCommittedOffsets({ topics: [{ topic, partitions: wanted }] });
      const missing: number[] = [];
      for (const p of wanted) {
        const offset = committed.get(topic)?.[p];
        const state = this.partitions.get(p);
        if (!state || state.position !== undefined) continue;
        if (offset !== undefined && offset >= 0n) state.position = offset;
        else missing.push(p);
      }
      if (missing.length > 0) {
        const starts = await this.logStarts(topic, missing);
        for (const p of missing) {
          const state = this.partitions.get(p);
          const start = starts.get(p);
          if (state && state.position === undefined && start !== undefined) state.position = start;
        }
      }
    } finally {
      if ([...this.partitions.values()].some((s) => s.position === undefined)) this.positionsWanted = true;
    }
  }

  /** One fetch per partition leader, all at once; never rejects (the error is in the result). */
  private async fetch(positions: Map<number, bigint>): Promise<FetchResult> {
    const result: FetchResult = { requested: positions, responses: [] };
    try {
      const { topic } = this.opts;
      const metadata = await this.consumer.metadata({ topics: [topic] });
      const meta = metadata.topics.get(topic);
      if (!meta) throw new Error(`no metadata for topic ${topic}`);
      const byNode = new Map<number, FetchRequestTopic>();
      for (const [partition, fetchOffset] of positions) {
        const leader = meta.partitions[partition]?.leader;
        if (leader === undefined || leader < 0) continue;
        let req = byNode.get(leader);
        if (!req) byNode.set(leader, (req = { topicId: meta.id, partitions: [] }));
        req.partitions.push({
          partition, fetchOffset, partitionMaxBytes: this.opts.maxBytesPerPartition ?? 4 * 1024 * 1024, currentLeaderEpoch: -1, lastFetchedEpoch: -1,
        });
      }
      const settled = await Promise.allSettled([...byNode].map(([node, req]) => this.consumer.fetch({
        node, topics: [req], connectionPool: this.fetchPool, maxWaitTime: MAX_WAIT_MS, minBytes: 1, maxBytes: this.opts.maxBytes ?? 10 * 1024 * 1024,
      })));
      for (const s of settled) {
        if (s.status === 'fulfilled') result.responses.push(s.value);
        else result.error ??= s.reason;
      }
    } catch (err) {
      result.error = err;
    }
    return result;
  }

  /** The partitions of a response to process now: still assigned here, and still at the offset they were fetched from. */
  private batchesOf(responses: FetchResponse[], requested: Map<number, bigint>): PendingBatch[] {
    const out: PendingBatch[] = [];
    const { topic } = this.opts;
    for (const response of responses) {
      for (const t of response.responses) {
        for (const part of t.partitions) {
          const from = requested.get(part.partitionIndex);
          const state = this.partitions.get(part.partitionIndex);
          if (from === undefined || !state || state.position !== from || part.errorCode !== 0 || !part.records?.length) continue;
          const { messages, next } = messagesOf(part.records, from);
          if (messages.length === 0) {
            state.position = next; // control records only
            continue;
          }
          out.push({ state, from, next, batch: { topic, partition: part.partitionIndex, messages, highWatermark: String(part.highWatermark) } });
        }
      }
    }
    return out;
  }

  private outOfRange(response: FetchResponse, requested: Map<number, bigint>): number[] {
    const out: number[] = [];
    for (const t of response.responses) {
      for (const part of t.partitions) {
        const state = this.partitions.get(part.partitionIndex);
        if (part.errorCode === 1 && state && state.position === requested.get(part.partitionIndex)) out.push(part.partitionIndex);
      }
    }
    return out;
  }

  /** A position outside the log (records deleted by retention, a topic recreated): from the log start, as kafkajs does. */
  private async resetOutOfRange(partitions: number[]): Promise<void> {
    const { topic } = this.opts;
    const starts = await this.logStarts(topic, partitions);
    for (const p of partitions) {
      const state = this.partitions.get(p);
      const start = starts.get(p);
      if (!state || start === undefined) continue;
      this.log.warn({ partition: p, position: String(state.position), logStart: String(start) }, 'fetch position is outside the log: reading the partition from its start');
      state.position = start;
      state.seeks++;
    }
  }

  /** Hand the batches over, one partition at a time (or up to the configured concurrency); true if a handler failed. */
  private async process(batches: PendingBatch[], onBatch: (batch: InboundBatch, control: BatchControl) => Promise<void>): Promise<boolean> {
    let failed = false;
    let i = 0;
    const worker = async () => {
      while (i < batches.length && this.running) {
        const b = batches[i++]!;
        if ((await this.deliver(b, onBatch)) === 'failed') failed = true;
      }
    };
    const n = Math.min(this.opts.partitionsConsumedConcurrently ?? 1, batches.length);
    if (n <= 1) await worker();
    else await Promise.all(Array.from({ length: n }, worker));
    return failed;
  }

  private async deliver(b: PendingBatch, onBatch: (batch: InboundBatch, control: BatchControl) => Promise<void>): Promise<'done' | 'skipped' | 'failed'> {
    const { state, batch } = b;
    const { partition } = batch;
    // A seek or a rebalance since the fetch: these records are not what the partition reads next.
    if (this.partitions.get(partition) !== state || state.position !== b.from) return 'skipped';
    const seeks = state.seeks;
    const current = () => this.partitions.get(partition) === state && state.seeks === seeks;
    const control: BatchControl = {
      markConsumed: (offset) => {
        const next = parseOffset(offset) + 1n;
        if (current() && (state.position === undefined || next > state.position)) state.position = next;
      },
      seek: (offset) => {
        state.position = parseOffset(offset);
        state.seeks++;
      },
      heartbeat: async () => {
        // The library heartbeats on its own; what is asked here is whether the group still stands as it did.
        if (!this.consumer.isActive()) throw new GroupRebalancingError('consumer group: rebalancing (this member is rejoining)');
        if (this.partitions.get(partition) !== state) throw new GroupRebalancingError(`consumer group: partition ${partition} was revoked`);
      },
      isRunning: () => this.running,
      isStale: () => !current(),
    };
    // A handler that waits long is named by the detector's own stall watch (per partition and step), for either client.
    try {
      await onBatch(batch, control);
      return 'done';
    } catch (err) {
      this.log.warn({ err, partition, from: batch.messages[0]!.offset }, 'batch handler failed; the partition is read again from its position');
      return 'failed';
    }
  }
}

export class PlatformaticDeadLetterProducer implements DeadLetterProducer {
  private readonly producer: Producer;

  constructor(opts: Pick<PlatformaticOptions, 'brokers' | 'login' | 'clientId' | 'logger'>) {
    this.producer = new Producer({
      clientId: `${opts.clientId}-dlq`,
      bootstrapBrokers: opts.brokers,
      ...platformaticSasl(opts.login),
      autocreateTopics: false,
      // With acks=all: a send retried after a lost answer does not write its dead letters twice.
      idempotent: true,
      retries: RETRIES,
      retryDelay: retryDelayLogged(opts.logger.child({ component: 'platformatic-kafka-dlq' })),
    });
  }

  async send(topic: string, messages: OutboundMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const buf = (v: Buffer | string | null) => (v === null ? undefined : typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
    await this.producer.send({
      acks: ProduceAcks.ALL,
      // murmur2 as the Java client and kafkajs' default partitioner compute it: a key lands where they would put it.
      partitioner: compatibilityPartitioner,
      messages: messages.map((m) => ({
        topic,
        key: buf(m.key),
        value: buf(m.value),
        headers: new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')])),
      })),
    });
  }

  async close(): Promise<void> {
    await this.producer.close();
  }
}
