// The detector pipeline: Kafka batch -> parse -> velocity rule -> Redis alerts / dead-letter topic -> checkpoint ->
// offset commit. Kafka and Redis sit behind adapters; the rule and parsing are pure (event.ts, velocity.ts).
//
// Exactly-once alerts come from three facts:
// 1. The rule is deterministic in a partition's order, so reprocessing a range yields the same alerts and ids.
// 2. Alert writes are idempotent by alert id (AlertStore), so reprocessing never counts an alert twice.
// 3. Rule state and the partition position are checkpointed together in Redis, and the Kafka offset is committed
//    only after that checkpoint, so a restarted or new owner resumes from a consistent (state, offset) pair and
//    reprocesses at most what came after it.
//
// And from noticing when what it resumes from is gone: a Redis that restarted (its run_id changed) may have lost the
// last acknowledged writes, so every partition goes back to the checkpoint Redis still has and reprocesses from
// there, rewriting whatever alerts were lost; a log that ends before the checkpoint (topic deleted and recreated,
// records lost by the brokers) is read from its start; a checkpoint below the log start (retention deleted records
// not yet read) resumes at the log start, counting what was skipped.
import type { Logger } from '../common/logger.ts';
import { StallWatch } from '../common/stall-watch.ts';
import type { Alert } from '../contracts/alert.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DetectorStore } from './alert-store.ts';
import { isFencedError, isRestartedError } from './alert-store.ts';
import { SegmentWriter, readSegment } from '../contracts/checkpoint-segment.ts';
import { parsePaymentEvent } from './event.ts';
import { GroupRebalancingError, type BatchControl, type DeadLetterProducer, type InboundBatch, type InboundMessage, type OutboundMessage, type PaymentsConsumer } from './kafka.ts';
import type { DetectorMetrics } from './metrics.ts';
import { PartitionVelocityState, type VelocityRule } from './velocity.ts';

export interface DetectorOptions {
  topic: string;
  dlqTopic: string;
  rule: VelocityRule;
  maxClockSkewMs: number;
  checkpointIntervalMs: number;
  /** Backoff between attempts of a batch's writes: first delay and cap, in ms. */
  retryBackoffMs?: { initial: number; max: number };
  /** How often a batch held up by retries heartbeats the consumer group (ms, default 3000). */
  heartbeatIntervalMs?: number;
  /** Default DEFAULT_SNAPSHOT_POLICY. */
  snapshot?: SnapshotPolicy;
}

/** A batch whose writes could not complete before the partition was lost or the consumer stopped. */
export class BatchAbandonedError extends Error {
  override name = 'BatchAbandonedError';
}

/** When the checkpoint log is replaced by a fresh snapshot, and how much of it each checkpoint writes. */
export interface SnapshotPolicy {
  /** Slots a snapshot writes per checkpoint: a bounded amount of work beside each delta (a few milliseconds). */
  sliceSlots: number;
  /** The log gets a fresh snapshot once this many segments were appended since the last one completed … */
  afterSegments: number;
  /** … or once it is this many times larger than a snapshot would be, and at least `minLogBytes`. */
  logRatio: number;
  minLogBytes: number;
}

export const DEFAULT_SNAPSHOT_POLICY: SnapshotPolicy = { sliceSlots: 16_384, afterSegments: 256, logRatio: 2, minLogBytes: 4 * 1024 * 1024 };

interface LogSize {
  segments: number;
  records: number;
  bytes: number;
}

interface OwnedPartition {
  state: PartitionVelocityState;
  epoch: number;
  /** The Redis server (run_id) the partition was claimed on: its checkpoints go only there. */
  runId: string;
  /**
   * Next offset to process (the log start when the partition has no checkpoint). Offsets are kept as numbers: exact
   * up to 2^53, which a partition would reach after centuries at a million records a second.
   */
  nextOffset: number;
  /** Position of the last successful checkpoint. */
  checkpointedOffset: number;
  lastCheckpointAt: number;
  generation: number;
  /** The checkpoint in flight, if any: checkpoints run beside the next batches, one at a time per partition. */
  checkpointing?: Promise<void> | undefined;
  /** The checkpoint log as this owner knows it: segments, records and bytes, and the next segment number of its epoch. */
  /** `sinceSnapshot`: segments appended since the last snapshot completed (on claim: all of them). */
  log: LogSize & { seq: number; legacy: boolean; sinceSnapshot: number };
  /** A snapshot being written: the log index it started at (and the size before it), and the next slot to write. */
  snapshot?: { start: LogSize; cursor: number } | undefined;
}

/** A batch's write that keeps failing: what, since when, and the last error (for /healthz and the metrics). */
export interface StalledWrite {
  partition: number;
  what: string;
  sinceMs: number;
  error: string;
}

export class Detector {
  private readonly owned = new Map<number, OwnedPartition>();
  private readonly stalled = new Map<number, StalledWrite>();
  private generation = 0;
  private running = false;
  private lastReplicationWarning = 0;

  private readonly consumer: PaymentsConsumer;
  private readonly dlq: DeadLetterProducer;
  private readonly store: DetectorStore;
  private readonly metrics: DetectorMetrics;
  private readonly log: Logger;
  private readonly opts: DetectorOptions;
  private readonly snapshotPolicy: SnapshotPolicy;
  /** What each partition's batch, and the Redis restart check, wait on: a wait that lasts is logged by name. */
  private readonly watch: StallWatch;

  constructor(deps: {
    consumer: PaymentsConsumer;
    dlq: DeadLetterProducer;
    store: DetectorStore;
    metrics: DetectorMetrics;
    log: Logger;
    options: DetectorOptions;
  }) {
    ({ consumer: this.consumer, dlq: this.dlq, store: this.store, metrics: this.metrics, log: this.log, options: this.opts } = deps);
    this.snapshotPolicy = this.opts.snapshot ?? DEFAULT_SNAPSHOT_POLICY;
    this.watch = new StallWatch(this.log);
    this.metrics.windowState = () => {
      let senders = 0;
      let bytes = 0;
      for (const p of this.owned.values()) {
        senders += p.state.size;
        bytes += p.state.bufferBytes;
      }
      return { senders, bytes };
    };
    const consumer = this.consumer;
    // After any rebalance, re-read every partition from its checkpoint: another member may have moved it on.
    consumer.onRebalance(() => {
      this.generation++;
      this.log.info({ generation: this.generation }, 'consumer group (re)joined');
    });
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Partitions whose batch write has been failing for at least `minMs`. A refusal that lasts (a key of the wrong
   * type, a script Redis will not run, a DLQ topic that is gone for good) holds its partition: it is retried, never
   * skipped, and it shows here, on /healthz and in detector_write_stalled_seconds, for an operator to mend.
   */
  stalledWrites(minMs = 0, now = Date.now()): StalledWrite[] {
    return [...this.stalled.values()].filter((s) => now - s.sinceMs >= minMs);
  }

  /** Waits (a partition's claim, its writes; the Redis restart check) that have lasted 30 s or more. */
  stalledWaits(): Array<{ key: string; what: string; forMs: number }> {
    return this.watch.stalled();
  }

  async start(): Promise<void> {
    await this.consumer.start((batch, control) => this.handleBatch(batch, control));
    this.running = true;
  }

  /** Stop consuming, checkpoint what was processed, commit, disconnect. */
  async stop(): Promise<void> {
    this.running = false;
    await this.consumer.stop();
    for (const [partition, p] of this.owned) {
      await p.checkpointing;
      if (p.generation === this.generation) await this.checkpoint(partition, p, { commit: false }).catch(() => undefined);
    }
    await this.dlq.close();
    this.watch.close();
  }

  private async ownerOf(topic: string, partition: number): Promise<OwnedPartition> {
    const current = this.owned.get(partition);
    if (current && current.generation === this.generation) return current;
    const cp = await this.store.claim(topic, partition);
    const state = new PartitionVelocityState(this.opts.rule, topic, partition);
    state.restoreWatermark(cp.watermark);
    for (const [sender, encoded] of cp.legacy) {
      const [times, ids] = JSON.parse(encoded) as [number[], string[]];
      state.restoreRecord(sender, times, ids);
    }
    let bytes = 0;
    let records = 0;
    for (const segment of cp.segments) {
      readSegment(segment, (sender, times, ids) => {
        state.restoreRecord(sender, times, ids);
        records++;
      });
      bytes += segment.length;
    }
    // Never checkpointed: from the log's start, not from wherever the client's fetch position is. That position may be
    // past batches this process read and never checkpointed (Redis refused the first checkpoint), whose events the
    // empty state would otherwise never see.
    const offset = toOffset(cp.offset ?? (await this.consumer.logStartOffset(topic, partition)));
    const owned: OwnedPartition = {
      state, epoch: cp.epoch, runId: cp.runId, nextOffset: offset, checkpointedOffset: offset, lastCheckpointAt: Date.now(), generation: this.generation,
      log: { segments: cp.segments.length, records, bytes, seq: 0, legacy: cp.legacy.length > 0, sinceSnapshot: cp.segments.length },
    };
    this.owned.set(partition, owned);
    this.log.info({ topic, partition, epoch: cp.epoch, offset: cp.offset, senders: state.size, segments: cp.segments.length }, 'partition claimed');
    return owned;
  }

  /**
   * Called whenever the Redis connection is (re)established. If Redis is not the server the owned partitions were
   * claimed on, it restarted, and it may have come back without its last acknowledged writes (alerts, checkpoints):
   * each partition goes back to the checkpoint Redis has now and is read again from there. The alerts that were
   * lost are written again (same ids); those that were kept are recognised by id.
   */
  async redisReconnected(): Promise<void> {
    if (this.owned.size === 0) return;
    this.watch.enter(RESTART_CHECK, 'Redis and Kafka');
    try {
      await this.rewindIfRedisRestarted();
    } finally {
      this.watch.leave(RESTART_CHECK);
    }
  }

  private async rewindIfRedisRestarted(): Promise<void> {
    const runId = await this.store.serverRunId();
    for (const [partition, p] of [...this.owned]) {
      if (p.runId === runId || this.owned.get(partition) !== p) continue;
      this.owned.delete(partition); // a batch in flight sees it and is handed back; the next claims afresh
      this.metrics.partitionResets.inc({ reason: 'redis_restarted' });
      const offset = await this.store.checkpointOffset(p.state.topic, partition);
      this.log.warn(
        { partition, runId, was: p.runId, processedTo: p.nextOffset, checkpoint: offset },
        'Redis restarted since this partition was claimed and may have lost acknowledged writes: reading it again from the checkpoint Redis has',
      );
      try {
        // Never checkpointed (as far as this Redis knows): from the log's start.
        this.consumer.seek(p.state.topic, partition, offset ?? (await this.consumer.logStartOffset(p.state.topic, partition)));
      } catch (err) {
        // Not assigned here any more, or Kafka unreachable: the next batch of this partition (here or elsewhere) claims it.
        this.log.warn({ err, partition }, 'could not move the partition back now; its next batch resumes from the checkpoint');
      }
    }
  }

  private async handleBatch(batch: InboundBatch, control: BatchControl): Promise<void> {
    if (batch.messages.length === 0) return;
    try {
      await this.processBatch(batch, control);
    } finally {
      this.watch.leave(partitionKey(batch.partition));
    }
  }

  private async processBatch(batch: InboundBatch, control: BatchControl): Promise<void> {
    const { topic, partition, messages } = batch;
    const key = partitionKey(partition);
    const timer = this.metrics.batchSeconds.startTimer();
    const newest = messages[messages.length - 1]!.timestamp;
    // A record without a create time carries -1 (or a producer sent 0): no age can be told from it.
    const newestMs = newest === undefined ? 0 : Number(newest);
    if (newestMs > 0) this.metrics.recordAgeSeconds.observe(Math.max(0, Date.now() - newestMs) / 1000);
    this.watch.enter(key, 'its owner (a claim of its checkpoint, if not held)');
    const p = await this.ownerOf(topic, partition);
    const first = toOffset(messages[0]!.offset);
    if (toOffset(batch.highWatermark) < p.nextOffset) {
      // The log ends before the checkpoint: the topic was deleted and recreated, or the brokers lost records (an
      // unclean leader election). Nothing at these offsets is what the checkpoint counted: read the log as it is now.
      // The window state is kept (the payments it holds happened); alert ids derive from transaction ids, so a
      // payment read twice is recognised.
      this.metrics.partitionResets.inc({ reason: 'log_behind_checkpoint' });
      this.log.error(
        { partition, logEnd: batch.highWatermark, checkpoint: p.nextOffset, from: first },
        'the payments log ends before this partition\'s checkpoint (topic recreated, or records lost by the brokers): reading it from its start',
      );
      p.nextOffset = first;
    }
    if (first > p.nextOffset) {
      // The client is ahead of our checkpoint (e.g. it kept its fetch position across a rebalance): go back, unless
      // the records in between are no longer in the log (deleted by retention before they were read).
      this.watch.enter(key, 'the log start offset');
      const start = await this.consumer.logStartOffset(topic, partition).then(toOffset, (err: unknown) => {
        this.log.warn({ err, partition }, 'could not read the log start offset');
        return undefined;
      });
      if (start !== undefined && start > p.nextOffset) {
        const skipped = start - p.nextOffset;
        this.metrics.partitionResets.inc({ reason: 'checkpoint_below_log_start' });
        this.metrics.recordsSkipped.inc(skipped);
        this.log.error(
          { partition, checkpoint: p.nextOffset, logStart: start, skipped },
          'records between this partition\'s checkpoint and the log start were deleted before they were read (retention): they took no part in the rule',
        );
        p.nextOffset = start;
      }
      if (first > p.nextOffset) {
        this.log.info({ partition, from: first, to: p.nextOffset }, 'rewinding to checkpoint');
        control.seek(String(p.nextOffset));
        return;
      }
    }

    const alerts: Alert[] = [];
    const alertRecordTimes: number[] = []; // the Kafka timestamps of the records that raised them
    const deadLetters: OutboundMessage[] = [];
    const now = Date.now();
    // Per batch, not per event: the parse options and the headers every dead letter of this batch shares.
    const parseOptions = { now, maxClockSkewMs: this.opts.maxClockSkewMs };
    const failedAt = new Date(now).toISOString();
    const sourcePartition = String(partition);
    const deadLetter = (m: InboundMessage, reason: string) =>
      deadLetters.push({
        key: m.key,
        value: m.value,
        headers: {
          'dlq-reason': reason,
          'dlq-source-topic': topic,
          'dlq-source-partition': sourcePartition,
          'dlq-source-offset': m.offset,
          'dlq-failed-at': failedAt,
        },
      });
    let late = 0;
    let counted = 0;
    for (const m of messages) {
      const offset = Number(m.offset);
      if (offset < p.nextOffset) continue; // already in the restored state
      const key = m.key === null ? null : m.key.toString('utf8');
      const parsed = parsePaymentEvent(m.value, key, parseOptions);
      if (!parsed.ok) {
        deadLetter(m, parsed.reason);
      } else {
        const outcome = p.state.apply(parsed.event, m.offset);
        if (outcome.kind === 'alert') {
          alerts.push(outcome.alert);
          const recordMs = m.timestamp === undefined ? 0 : Number(m.timestamp);
          if (recordMs > 0) alertRecordTimes.push(recordMs);
        } else if (outcome.kind === 'counted') counted++;
        else {
          // Too old to take part in the rule: kept on the dead-letter topic, where it can be seen and replayed.
          late++;
          deadLetter(
            m,
            `late: event time ${new Date(parsed.event.timestamp).toISOString()} is a window or more behind the partition's newest ` +
              `event time ${new Date(outcome.watermark).toISOString()}; it took no part in the velocity rule`,
          );
        }
      }
      p.nextOffset = offset + 1;
    }

    // Side effects first (durable), then the position. The rule state has already moved past this batch, so its
    // writes are retried here until they land: nothing after them (offset, checkpoint) happens before, and nothing
    // is skipped. Both writes are idempotent (alert ids; DLQ entries may repeat, with the same source offset).
    // A group that rebalances meanwhile waits for this member to rejoin, which it cannot do while the batch retries:
    // the batch then gives way (abandoned; the partition resumes from its checkpoint, here or at its new owner).
    let rebalancing = false;
    const heartbeats = setInterval(() => void control.heartbeat().catch((err: unknown) => {
      if (err instanceof GroupRebalancingError) rebalancing = true;
    }), this.opts.heartbeatIntervalMs ?? 3000);
    const givesWay = () => rebalancing;
    try {
      if (deadLetters.length > 0) await this.untilDone(partition, p, control, givesWay, 'dead-letter send', () => this.dlq.send(this.opts.dlqTopic, deadLetters));
      const { written, duplicates } = await this.untilDone(partition, p, control, givesWay, 'alert write', () => this.store.writeAlerts(alerts));
      this.metrics.alerts.inc(written);
      this.metrics.duplicateAlerts.inc(duplicates);
      const writtenAt = Date.now();
      for (const t of alertRecordTimes) this.metrics.alertLatencySeconds.observe(Math.max(0, writtenAt - t) / 1000);
    } finally {
      clearInterval(heartbeats);
    }
    // A checkpoint that failed meanwhile dropped the partition and the changes it had taken: this batch's state is no
    // longer what was written. Resume from the last durable checkpoint instead of checkpointing on top of it.
    if (this.owned.get(partition) !== p) {
      throw new BatchAbandonedError(`partition ${partition} was reset to its last checkpoint while this batch was written`);
    }
    this.metrics.events.inc({ outcome: 'counted' }, counted);
    this.metrics.events.inc({ outcome: 'alert' }, alerts.length);
    this.metrics.events.inc({ outcome: 'late' }, late);
    this.metrics.events.inc({ outcome: 'dead_letter' }, deadLetters.length - late);
    this.metrics.setLag(partition, Number(batch.highWatermark) - p.nextOffset);

    control.markConsumed(messages[messages.length - 1]!.offset);
    if (!p.checkpointing && Date.now() - p.lastCheckpointAt >= this.opts.checkpointIntervalMs) {
      // Off the hot path: the snapshot (dirty senders, offset) is taken synchronously now; the write and the Kafka
      // commit complete while the next batches are processed.
      p.checkpointing = this.checkpoint(partition, p, { commit: true })
        .catch((err: unknown) => this.log.error({ err, partition }, 'checkpoint failed; the partition will be reclaimed from the last good one'))
        .finally(() => {
          p.checkpointing = undefined;
        });
    }
    timer();
  }

  /**
   * Run a batch's write until it succeeds, backing off between attempts. If the consumer stops or the partition moves
   * meanwhile, the partition is forgotten (its in-memory state is ahead of what was written) and the batch is
   * abandoned: the next owner, or this detector after it rejoins, resumes from the last checkpoint.
   */
  private async untilDone<T>(
    partition: number, p: OwnedPartition, control: BatchControl, givesWay: () => boolean, what: string, write: () => Promise<T>,
  ): Promise<T> {
    const backoff = this.opts.retryBackoffMs ?? { initial: 100, max: 5_000 };
    let delay = backoff.initial;
    this.watch.enter(partitionKey(partition), `its ${what}`);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await write();
        if (attempt > 1) this.log.info({ partition, attempts: attempt }, `${what} succeeded after retrying`);
        this.stalled.delete(partition);
        return result;
      } catch (err) {
        this.metrics.writeFailures.inc({ write: what });
        const error = err instanceof Error ? err.message : String(err);
        const since = this.stalled.get(partition)?.what === what ? this.stalled.get(partition)!.sinceMs : Date.now();
        this.stalled.set(partition, { partition, what, sinceMs: since, error });
        if (!control.isRunning() || control.isStale() || givesWay() || p.generation !== this.generation || this.owned.get(partition) !== p) {
          if (this.owned.get(partition) === p) this.owned.delete(partition);
          this.stalled.delete(partition);
          throw new BatchAbandonedError(`${what} for partition ${partition} abandoned: the consumer stopped, the group is rebalancing, or the partition moved`, { cause: err });
        }
        this.log.warn({ err, partition, attempt, retryInMs: delay }, `${what} failed; retrying the batch (nothing is skipped)`);
        await sleep(delay);
        delay = Math.min(delay * 2, backoff.max);
      }
    }
  }

  private async checkpoint(partition: number, p: OwnedPartition, { commit }: { commit: boolean }): Promise<void> {
    if (p.nextOffset === p.checkpointedOffset) return;
    const end = this.metrics.checkpointSeconds.startTimer();
    // Everything below up to the first await is synchronous: state and offset are one consistent snapshot.
    const out = new SegmentWriter();
    p.state.takeDelta(out);
    const { segments: s0, records: r0, bytes: b0 } = p.log;
    const snapshot = p.snapshot ?? (this.snapshotDue(p) ? { start: { segments: s0, records: r0, bytes: b0 }, cursor: 0 } : undefined);
    if (snapshot) snapshot.cursor = p.state.snapshotSlice(out, snapshot.cursor, this.snapshotPolicy.sliceSlots);
    const done = snapshot !== undefined && snapshot.cursor < 0;
    const segments = out.finish();
    const next = p.nextOffset;
    const offset = String(next);
    try {
      await this.store.checkpoint({
        topic: p.state.topic, partition, epoch: p.epoch, runId: p.runId, offset, watermark: p.state.watermark,
        seq: p.log.seq, segments, ...(done ? { drop: snapshot.start.segments } : {}),
      });
    } catch (err) {
      // Either way the in-memory changes are no longer tracked: forget the partition, so the next batch reclaims it
      // from the last good checkpoint and reprocesses (alert writes are idempotent).
      const wasOwned = this.owned.get(partition) === p;
      if (wasOwned) this.owned.delete(partition);
      if (isRestartedError(err)) {
        // Noticed here before the reconnect handler did: the next batch reclaims it from the checkpoint Redis has now.
        if (wasOwned) {
          this.metrics.partitionResets.inc({ reason: 'redis_restarted' });
          this.log.warn({ partition, err }, 'checkpoint refused: Redis restarted since the partition was claimed; resuming from the checkpoint it has');
        }
        return;
      }
      if (!isFencedError(err)) throw err;
      this.log.warn({ partition, epoch: p.epoch }, 'checkpoint fenced: partition moved to another detector');
      return;
    }
    p.log.seq += segments.length;
    p.log.segments += segments.length;
    p.log.sinceSnapshot += segments.length;
    p.log.records += out.records;
    p.log.bytes += out.bytes;
    if (done) {
      p.log.segments -= snapshot.start.segments;
      p.log.records -= snapshot.start.records;
      p.log.bytes -= snapshot.start.bytes;
      p.log.legacy = false;
      p.log.sinceSnapshot = 0;
      p.snapshot = undefined;
    } else p.snapshot = snapshot;
    p.checkpointedOffset = next;
    p.lastCheckpointAt = Date.now();
    end();
    if (commit && (await this.replicasHold(partition))) await this.consumer.commit([{ topic: p.state.topic, partition, offset }]);
  }

  /**
   * Whether the replicas Redis must have hold this checkpoint. When they do not (a replica down or behind), the Kafka
   * offset is not committed: it stays at the last checkpoint they held, and the next checkpoint asks again.
   */
  private async replicasHold(partition: number): Promise<boolean> {
    let held: Awaited<ReturnType<DetectorStore['replicated']>>;
    try {
      held = await this.store.replicated();
    } catch (err) {
      this.metrics.replicationWaits.inc({ result: 'failed' });
      this.warnReplication({ err, partition }, 'could not ask Redis whether its replicas hold the checkpoint; the Kafka offset is not committed');
      return false;
    }
    if (held === null) return true;
    if (held.acknowledged >= held.required) {
      this.metrics.replicationWaits.inc({ result: 'acknowledged' });
      return true;
    }
    this.metrics.replicationWaits.inc({ result: 'short' });
    this.warnReplication({ partition, ...held }, 'too few Redis replicas hold the checkpoint; the Kafka offset is not committed until they do');
    return false;
  }

  /** At most one replication warning per 30 s: with a replica down, every checkpoint would say so. */
  private warnReplication(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.lastReplicationWarning < 30_000) return;
    this.lastReplicationWarning = now;
    this.log.warn(fields, message);
  }

  /** Whether the log has grown enough past the state it stands for to be worth replacing by a snapshot. */
  private snapshotDue(p: OwnedPartition): boolean {
    const policy = this.snapshotPolicy;
    if (p.log.legacy || p.log.sinceSnapshot >= policy.afterSegments) return true;
    if (p.log.bytes < policy.minLogBytes) return false;
    const bytesPerRecord = p.log.bytes / Math.max(1, p.log.records);
    return p.log.bytes > policy.logRatio * bytesPerRecord * p.state.size;
  }
}

const RESTART_CHECK = 'the Redis restart check';
const partitionKey = (partition: number) => `partition ${partition}`;

/** A Kafka offset (a decimal string) as a number; refused beyond 2^53, where numbers stop being exact. */
function toOffset(offset: string): number {
  const n = Number(offset);
  if (!Number.isSafeInteger(n)) throw new Error(`Kafka offset ${offset} is not an integer below 2^53`);
  return n;
}
