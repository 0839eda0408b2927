// Phase 0: the main stream, produced to a fresh topic as fast as the producer goes.
import type { BenchContext } from '../context.ts';
import { phaseTimeoutMs } from '../context.ts';
import { cpuMeter, log, round, withTimeout } from '../lib.ts';
import { produceBulk, type BulkProduceResult } from '../produce.ts';

/** The main stream the raw, throughput and latency phases read. */
export interface MainStream {
  pair: { topic: string; dlq: string };
  produced: BulkProduceResult;
}

export async function producePhase(ctx: BenchContext): Promise<MainStream> {
  const { opts } = ctx;
  const mainTopic = `bench-payments-${ctx.id}`;
  const pair = await ctx.createTopicPair(mainTopic);
  log(`phase 0: producing ${opts.events} events to ${mainTopic} (${opts.partitions} partitions)`);
  const cpu = cpuMeter(ctx.watched);
  const spanMs = 3_600_000;
  const produced = await withTimeout(
    produceBulk(ctx.producer!, pair.topic, {
      events: opts.events, senders: opts.senders, burstShare: opts.burstShare, burstSize: opts.burstSize, malformedShare: opts.malformedShare,
      startTime: Date.now() - spanMs, spanMs, seed: opts.seed, accountPrefix: `ACC_${ctx.id}_`,
    }, { batchSize: opts.produceBatch, concurrency: opts.produceConcurrency, threshold: ctx.threshold }),
    phaseTimeoutMs(opts.events, 2000), 'bulk produce',
  );
  const c = cpu.end();
  ctx.report.phases.produce = { topic: pair.topic, ...produced, meanEventBytes: round(produced.bytes / produced.events), cpu: c };
  ctx.checkLoad('produce', c);
  log(`  ${produced.events} events in ${produced.seconds}s = ${produced.eventsPerSecond}/s (${produced.mbPerSecond} MB/s); ${produced.bursts} bursts, ${produced.expectedAlerts} alerts expected`);
  ctx.saveProgress();
  return { pair, produced };
}
