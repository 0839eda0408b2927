// Phase d: the detector's RSS with many distinct senders in the window (by default 100K, then 1M), each size with a
// fresh detector on a topic of its own.
import type { BenchContext } from '../context.ts';
import { phaseTimeoutMs } from '../context.ts';
import { byLabel, cpuMeter, formatRuntime, histogramMean, log, mb, round, runtimeStats, sleep, total, trackEvents, waitDetectorHealthy } from '../lib.ts';
import { produceBulk } from '../produce.ts';
import { checkpointKeys } from '../../contracts/redis-keys.ts';
import { readSegment } from '../../contracts/checkpoint-segment.ts';
import type { Redis } from 'ioredis';
import type { MemoryRun } from '../report.ts';

/** Senders a partition's checkpoint holds: its segment log replayed in order (a record replaces a sender's window, an empty one removes it). */
async function sendersInCheckpoint(redis: Redis, group: string, topic: string, partition: number): Promise<number> {
  const senders = new Set<string>();
  for (const key of await redis.lrange(checkpointKeys.segments(group, topic, partition), 0, -1)) {
    const segment = await redis.getBuffer(key);
    if (!segment) throw new Error(`checkpoint segment ${key} is missing`);
    readSegment(segment, (sender, times) => (times.length > 0 ? senders.add(sender) : senders.delete(sender)));
  }
  return senders.size;
}

/** Each --memory-senders size in turn, smallest first; report.phases.memory is the largest, with every size in bySenders. */
export async function memoryPhase(ctx: BenchContext): Promise<void> {
  const bySenders: MemoryRun[] = [];
  for (const n of [...new Set(ctx.opts.memorySenders)].sort((a, b) => a - b)) {
    bySenders.push(await ctx.redisPhase(`memory-${n}`, () => memoryRun(ctx, n)));
    ctx.report.phases.memory = { ...bySenders.at(-1)!, bySenders };
    ctx.saveProgress();
  }
}

async function memoryRun(ctx: BenchContext, n: number): Promise<MemoryRun> {
  const { opts, redis } = ctx;
  const label = `memory-${n}`;
  const memPair = await ctx.createTopicPair(`bench-senders-${n}-${ctx.id}`);
  log(`phase d: detector RSS with ${n} distinct senders`);
  await redis.flushdb();
  await redis.set(ctx.sentinel, '1');
  const usedBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  const cpu = cpuMeter(ctx.watched);
  const d = await ctx.startDetector(label, memPair.topic, memPair.dlq);
  await waitDetectorHealthy(d);
  await sleep(2000);
  const m0 = await d.metrics();
  d.takePeaks();
  const baseline = { rssBytes: total(m0, 'detector_process_resident_memory_bytes'), heapUsedBytes: total(m0, 'detector_nodejs_heap_size_used_bytes'), proc: d.vmRss() };
  // Event times within the last ~50 s: every sender stays in the window (state is dropped after two idle windows).
  const spanMs = 45_000;
  const producing = produceBulk(ctx.producer!, memPair.topic, {
    events: n, senders: n, burstShare: 0, malformedShare: 0, startTime: Date.now() - 50_000, spanMs, seed: opts.seed + 2, accountPrefix: `MEM_${ctx.id}_`,
  }, { batchSize: opts.produceBatch, concurrency: opts.produceConcurrency, threshold: ctx.threshold });
  producing.catch(() => undefined);
  const progress = await trackEvents(d, n, phaseTimeoutMs(n, 1000), 500);
  const prod = await producing;
  await sleep(3000);
  const m1 = await d.metrics();
  const procMem = d.vmRss();
  const c = cpu.end();
  ctx.checkLoad(label, c);
  const rss = total(m1, 'detector_process_resident_memory_bytes');
  const heapUsed = total(m1, 'detector_nodejs_heap_size_used_bytes');
  const outcomes = byLabel(m1, 'detector_events_total', 'outcome');
  const runtime = runtimeStats(m0, m1, d.takePeaks());
  const how = await ctx.stopDetector(d, label); // the final checkpoint holds every sender still in the window
  let inCheckpoint = 0;
  for (let p = 0; p < opts.partitions; p++) inCheckpoint += await sendersInCheckpoint(redis, d.group, memPair.topic, p);
  const usedAfter = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
  const r: MemoryRun = {
    senders: n,
    eventTimeSpanMs: spanMs,
    produce: { seconds: prod.seconds, eventsPerSecond: prod.eventsPerSecond, concurrentWithConsume: true },
    detectorSecondsFromFirstEvent: round((progress.reachedAt - (progress.first?.t ?? 0)) / 1000, 2),
    outcomes,
    baseline: { rssMB: mb(baseline.rssBytes), heapUsedMB: mb(baseline.heapUsedBytes), vmRssMB: baseline.proc ? mb(baseline.proc.rssBytes) : null },
    after: {
      rssMB: mb(rss), heapUsedMB: mb(heapUsed),
      // Where the RSS is: the V8 heap as committed (used + free pages kept), memory outside it (Buffers, typed arrays).
      heapTotalMB: mb(total(m1, 'detector_nodejs_heap_size_total_bytes')),
      externalMB: mb(total(m1, 'detector_nodejs_external_memory_bytes')),
      vmRssMB: procMem ? mb(procMem.rssBytes) : null, vmHwmMB: procMem ? mb(procMem.hwmBytes) : null },
    rssBytesPerSender: Math.round(rss / n),
    rssDeltaBytesPerSender: Math.round((rss - baseline.rssBytes) / n),
    heapDeltaBytesPerSender: Math.round((heapUsed - baseline.heapUsedBytes) / n),
    sendersInFinalCheckpoint: inCheckpoint,
    redisUsedMemoryDeltaMB: mb(usedAfter - usedBefore),
    checkpoints: histogramMean(m1, 'detector_checkpoint_seconds'),
    batches: histogramMean(m1, 'detector_batch_seconds'),
    detectorStopped: how,
    runtime,
    cpu: c,
  };
  log(`  RSS ${r.after.rssMB} MB (baseline ${r.baseline.rssMB} MB, peak ${r.after.vmHwmMB} MB): ${r.rssBytesPerSender} B/sender total, ${r.rssDeltaBytesPerSender} B/sender above baseline; heap +${r.heapDeltaBytesPerSender} B/sender (heap committed ${r.after.heapTotalMB} MB, external ${r.after.externalMB} MB); ${inCheckpoint} senders in the final checkpoint`);
  log(`  ${formatRuntime(runtime)}`);
  if ((outcomes.late ?? 0) > 0 || (outcomes.alert ?? 0) > 0) ctx.note(`${label}: unexpected outcomes ${JSON.stringify(outcomes)}`);
  if (inCheckpoint !== n) ctx.note(`${label}: the final checkpoint holds ${inCheckpoint} senders, expected ${n}`);
  await ctx.checkSentinel(label);
  return r;
}
