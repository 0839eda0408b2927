// Phase e: scale-out. One bounded stream (the main generator's shape, with alert bursts) on a topic of
// --scaleout-partitions partitions, consumed by one detector and then by --scaleout-detectors detectors in one
// consumer group (fresh group, Redis db emptied, the same stream on a fresh topic each time, held in an open
// transaction until the group is Stable): combined throughput from the first event processed to the last, the alert
// ids (which must be the same set), CPU per process; then produce -> alert latency at --scaleout-rate with the same
// number of detectors on a fresh topic of the same partition count.
// All of it on the same 2 cores: the detectors, Kafka, Redis and the load generator share them.
import type { Redis } from 'ioredis';
import type { BenchContext } from '../context.ts';
import { phaseTimeoutMs } from '../context.ts';
import { cpuMeter, detectorCores, detectorSet, log, now, round, runtimeStats, sleep, total, trackEvents, waitDetectorHealthy, withTimeout, type DetectorSet } from '../lib.ts';
import { connectProducer, produceBulk, type BulkProduceResult } from '../produce.ts';
import type { ScaleoutPhase, ScaleoutRun } from '../report.ts';
import { liveDetectors, measureLatency } from './latency.ts';

/** Seed offset of the scale-out latency runs' traffic (the same for every configuration). */
const LIVE_INDEX = 50;

/** The alert ids in the alert stream (the detector's durable outbox; one entry per alert written). */
async function alertIds(redis: Redis): Promise<string[]> {
  const ids: string[] = [];
  let cursor = '-';
  for (;;) {
    const page = await redis.xrange('fraud:alerts:stream', cursor, '+', 'COUNT', 5000);
    for (const [, fields] of page) {
      const json = fields[fields.indexOf('alert') + 1];
      if (json) ids.push((JSON.parse(json) as { alert_id: string }).alert_id);
    }
    if (page.length < 5000) return ids;
    cursor = `(${page.at(-1)![0]}`;
  }
}

/**
 * After the combined count reached the stream's size: wait until it stops moving for a second (a detector that took
 * over partitions in a rebalance reprocesses what followed their last checkpoint) and return the final count and
 * when (ms after spawn) it was first seen.
 */
async function settle(set: DetectorSet, reached: { t: number; events: number }, timeoutMs: number): Promise<{ events: number; t: number }> {
  let last = reached;
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    await sleep(200);
    const events = total(await set.metrics(), 'detector_events_total');
    const t = now() - set.spawnedAt;
    if (events !== last.events) last = { t, events };
    else if (t - last.t >= 1000) break;
  }
  return last;
}

/**
 * The bounded stream for one configuration, produced to a topic of its own inside one Kafka transaction that stays
 * open: read_committed consumers (the detector's kafkajs consumer) see none of it until `commit()`, so every detector
 * of the group has joined before the backlog appears, and none races ahead alone.
 */
async function stagedBacklog(ctx: BenchContext, n: number): Promise<{ pair: { topic: string; dlq: string }; produced: BulkProduceResult; commit: () => Promise<void>; close: () => Promise<void> }> {
  const { opts } = ctx;
  const pair = await ctx.createTopicPair(`bench-scaleout-${n}x-${ctx.id}`, opts.scaleoutPartitions);
  const producer = await connectProducer(ctx.kafka, `bench-scaleout-${ctx.id}-${n}`);
  const tx = await producer.transaction();
  const close = async () => {
    if (tx.isActive()) await tx.abort().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  };
  try {
    log(`phase e: producing ${opts.scaleoutEvents} events to ${pair.topic} (${opts.scaleoutPartitions} partitions) in one open transaction`);
    const spanMs = 3_600_000;
    // The same traffic for every configuration (seed, senders, prefix): the same alerts.
    const produced = await withTimeout(
      produceBulk(tx, pair.topic, {
        events: opts.scaleoutEvents, senders: opts.senders, burstShare: opts.burstShare, burstSize: opts.burstSize, malformedShare: opts.malformedShare,
        startTime: Date.now() - spanMs, spanMs, seed: opts.seed + 3, accountPrefix: `SCL_${ctx.id}_`,
      }, { batchSize: opts.produceBatch, concurrency: opts.produceConcurrency, threshold: ctx.threshold }),
      phaseTimeoutMs(opts.scaleoutEvents, 2000), 'scale-out produce',
    );
    log(`  ${produced.events} events at ${produced.eventsPerSecond}/s; ${produced.expectedAlerts} alerts expected`);
    return { pair, produced, commit: () => tx.commit(), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function backlogRun(ctx: BenchContext, n: number): Promise<{ run: Omit<ScaleoutRun, 'latency'>; ids: string[]; produced: BulkProduceResult }> {
  const client = ctx.opts.detectorClients[0]!;
  const staged = await stagedBacklog(ctx, n);
  const { pair, produced } = staged;
  const events = produced.events;
  try {
    log(`phase e: ${n} detector(s) in one group on ${events} events (${ctx.opts.scaleoutPartitions} partitions)`);
    await ctx.freshRedis();
    const group = ctx.consumerGroup(`bench-scaleout-${n}`);
    const label = (i: number) => `scaleout-${n}x${n > 1 ? `-${i + 1}` : ''}`;
    const detectors = await Promise.all(Array.from({ length: n }, (_, i) => ctx.startDetector(label(i), pair.topic, pair.dlq, { client, group, cpuName: i === 0 ? 'detector' : `detector-${i + 1}` })));
    const set = detectorSet(detectors);
    for (const d of detectors) await waitDetectorHealthy(d);
    await ctx.waitGroupStable(group, n);
    const early = total(await set.metrics(), 'detector_events_total');
    if (early > 0) ctx.note(`${label(0)}: the detectors processed ${early} events of the open transaction before its commit (not read_committed?): the run's start is not simultaneous`);
    set.takePeaks();
    const cpu = cpuMeter(ctx.watched);
    await staged.commit();
    const committedAt = now() - set.spawnedAt;
    const progress = await trackEvents(set, events, phaseTimeoutMs(events, 1000));
    const end = await settle(set, { t: progress.reachedAt, events: total(progress.final, 'detector_events_total') }, 30_000);
    const c = cpu.end();
    ctx.checkLoad(label(0), c);
    const processed = end.events;
    // Exactly N processed: the interpolated time it was reached; more (reprocessing): when the final count was first read.
    const tEnd = processed === events ? progress.reachedAt : end.t;
    const first = progress.first!;
    const seconds = (tEnd - first.t) / 1000;
    const started = set.firstEventAt.every((x) => x !== null) ? Math.max(...(set.firstEventAt as number[])) : null;
    const atAllActive = started === null ? null : progress.samples.find((s) => s.t >= started);
    const eventsByDetector = set.last.map((m) => total(m, 'detector_events_total'));
    const ids = await alertIds(ctx.redis);
    const distinct = new Set(ids).size;
    await ctx.checkSentinel(label(0));
    for (const [i, d] of detectors.entries()) await ctx.stopDetector(d, label(i));
    const run: Omit<ScaleoutRun, 'latency'> = {
      detectors: n,
      client,
      group,
      topic: pair.topic,
      throughput: {
        events,
        processed,
        // One scrape saw the whole stream (a tiny run): no first-to-last span; the rate from the commit stands in.
        eventsPerSecond: seconds > 0 && first.events < events ? Math.round((events - first.events) / seconds) : Math.round(events / ((tEnd - committedAt) / 1000)),
        secondsFirstToLast: round(seconds, 2),
        eventsPerSecondFromCommit: Math.round(events / ((tEnd - committedAt) / 1000)),
        firstEventAtSeconds: set.firstEventAt.map((t) => (t === null ? null : round((t - committedAt) / 1000, 2))),
        eventsByDetector,
        eventsPerSecondAllActive: atAllActive && tEnd > atAllActive.t ? Math.round((events - Math.min(events, atAllActive.events)) / ((tEnd - atAllActive.t) / 1000)) : null,
        detectorCpuMicrosPerEvent: round((detectorCores(c) * c.wallSeconds * 1e6) / processed, 2),
        runtime: runtimeStats(new Map(), progress.final, set.takePeaks()),
        cpu: c,
      },
      alerts: { expected: produced.expectedAlerts, inStream: ids.length, distinctIds: distinct, ok: ids.length === produced.expectedAlerts && distinct === produced.expectedAlerts },
    };
    const t = run.throughput;
    log(`  ${n} detector(s): ${t.eventsPerSecond} events/s from the first event to the last (${t.secondsFirstToLast}s), ${t.eventsPerSecondFromCommit}/s from the commit; by detector ${eventsByDetector.join(' / ')} (${processed - events} reprocessed); ${ids.length} alerts (${distinct} distinct ids, ${produced.expectedAlerts} expected); cores ${JSON.stringify(c.processCores)}`);
    if (!run.alerts.ok) ctx.note(`scaleout, ${n} detector(s): ${ids.length} alerts in the stream (${distinct} distinct ids), ${produced.expectedAlerts} expected`);
    return { run, ids, produced };
  } finally {
    await staged.close();
  }
}

export async function scaleoutPhase(ctx: BenchContext): Promise<ScaleoutPhase> {
  const { opts } = ctx;
  const result: ScaleoutPhase = { partitions: opts.scaleoutPartitions, events: opts.scaleoutEvents, runs: [], speedup: null, speedupFromCommit: null, alertIdsIdentical: false, alertIdDifference: { onlyInFirst: [], onlyInLast: [] } };
  ctx.report.phases.scaleout = result;
  const idSets: Array<Set<string>> = [];
  for (const n of [1, opts.scaleoutDetectors]) {
    const { run, ids, produced } = await ctx.redisPhase(`scaleout-${n}x`, () => backlogRun(ctx, n));
    result.produced ??= produced;
    idSets.push(new Set(ids));
    const key = `scaleout-${n}x-live`;
    const live = await liveDetectors(ctx, key, { client: run.client, members: n, partitions: opts.scaleoutPartitions });
    let latency;
    try {
      latency = await ctx.redisPhase(key, () => measureLatency(ctx, live.set, live.topic, key, opts.scaleoutRate, opts.scaleoutSeconds, opts.extraBurstShare, LIVE_INDEX));
    } finally {
      await live.stop();
    }
    if (latency.missing > 0) ctx.note(`${key}: ${latency.missing} of ${latency.expectedAlerts} alerts missing`);
    result.runs.push({ ...run, latency: { ...latency, client: run.client, role: 'fixed' } });
    ctx.saveProgress();
  }
  const [one, many] = [result.runs[0]!, result.runs.at(-1)!];
  result.speedup = round(many.throughput.eventsPerSecond / Math.max(1, one.throughput.eventsPerSecond), 2);
  result.speedupFromCommit = round(many.throughput.eventsPerSecondFromCommit / Math.max(1, one.throughput.eventsPerSecondFromCommit), 2);
  const [a, b] = [idSets[0]!, idSets.at(-1)!];
  result.alertIdDifference = { onlyInFirst: [...a].filter((x) => !b.has(x)).slice(0, 20), onlyInLast: [...b].filter((x) => !a.has(x)).slice(0, 20) };
  result.alertIdsIdentical = a.size === b.size && result.alertIdDifference.onlyInFirst.length === 0;
  ctx.saveProgress();
  log(`  scale-out: ${many.detectors} detectors ${many.throughput.eventsPerSecond}/s vs one ${one.throughput.eventsPerSecond}/s (x${result.speedup}; from the commit x${result.speedupFromCommit}); alert ids ${result.alertIdsIdentical ? 'identical' : 'DIFFER'} (${a.size} / ${b.size})`);
  if (!result.alertIdsIdentical) {
    throw new Error(`scaleout: the alert ids differ between 1 and ${many.detectors} detectors (${a.size} vs ${b.size}; only with 1: ${result.alertIdDifference.onlyInFirst.slice(0, 5).join(', ')}; only with ${many.detectors}: ${result.alertIdDifference.onlyInLast.slice(0, 5).join(', ')})`);
  }
  return result;
}
