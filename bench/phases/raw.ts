// Phase a: the raw consume ceilings of kafkajs and @platformatic/kafka on the main stream, and the kafkajs ceiling
// with every value JSON.parse'd (the least a detector on kafkajs does with an event).
import type { BenchContext } from '../context.ts';
import { phaseTimeoutMs } from '../context.ts';
import { rawKafkajs, rawPlatformatic, type RawConsumeResult } from '../consume.ts';
import { cpuMeter, log, type CpuReport } from '../lib.ts';
import type { RawPhase } from '../report.ts';
import type { MainStream } from './produce.ts';

/** The `client` of the kafkajs runs in report.phases.raw: only counting, and with JSON.parse. */
export const KAFKAJS_RAW = 'kafkajs';
export const KAFKAJS_PARSE = 'kafkajs + JSON.parse';

export async function rawPhase(ctx: BenchContext, { pair, produced }: MainStream): Promise<void> {
  const events = produced.events;
  const timeout = phaseTimeoutMs(events);
  // The detector's fetch settings (detector/kafkajs-client.ts) and kafkajs' default maxBytes.
  const kafkajsOpts = { maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 10 * 1024 * 1024, maxWaitTimeInMs: 100, partitionsConsumedConcurrently: 1 };
  const runs: Array<{ name: string; run: () => Promise<RawConsumeResult> }> = [
    { name: KAFKAJS_RAW, run: () => rawKafkajs(ctx.kafka, pair.topic, ctx.consumerGroup('bench-raw-kafkajs'), events, timeout, { ...kafkajsOpts, parse: false }) },
    { name: KAFKAJS_PARSE, run: () => rawKafkajs(ctx.kafka, pair.topic, ctx.consumerGroup('bench-parse-kafkajs'), events, timeout, { ...kafkajsOpts, parse: true }) },
    {
      name: '@platformatic/kafka (defaults)',
      // Library defaults (maxBytes 50 MB per fetch and per partition, highWaterMark 1024), short maxWaitTime.
      run: () => rawPlatformatic(ctx.brokers, pair.topic, ctx.consumerGroup('bench-raw-plt'), events, timeout, { maxBytes: 50 * 1024 * 1024, maxWaitTime: 100, highWaterMark: 1024, parse: false }),
    },
    {
      name: '@platformatic/kafka (kafkajs-like fetch sizes)',
      run: () => rawPlatformatic(ctx.brokers, pair.topic, ctx.consumerGroup('bench-raw-plt2'), events, timeout, {
        maxBytes: 10 * 1024 * 1024, maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTime: 100, highWaterMark: 4096, parse: false,
      }),
    },
  ];
  // Each client `rawRepeats` times (fresh group each); other work on the machine only ever lowers a ceiling, so the
  // best run counts and all runs are kept.
  const raw: RawPhase[] = [];
  for (const r of runs) {
    const attempts: Array<RawConsumeResult & { cpu: CpuReport }> = [];
    for (let i = 0; i < ctx.opts.rawRepeats; i++) {
      log(`phase a: raw consume with ${r.name} (run ${i + 1}/${ctx.opts.rawRepeats})`);
      const cpu = cpuMeter(ctx.watched);
      const res = await r.run();
      const c = cpu.end();
      ctx.checkLoad(`raw ${r.name} run ${i + 1}`, c);
      attempts.push({ ...res, cpu: c });
      log(`  ${res.messages} messages in ${res.seconds}s = ${res.eventsPerSecond}/s; from group join (${res.joinSeconds}s): ${res.eventsPerSecondFromJoin}/s; first message at ${res.firstMessageSeconds}s`);
    }
    const best = attempts.reduce((a, b) => (b.eventsPerSecondFromJoin > a.eventsPerSecondFromJoin ? b : a));
    raw.push({ ...best, client: r.name, runs: attempts.map((a) => ({ eventsPerSecondFromJoin: a.eventsPerSecondFromJoin, eventsPerSecond: a.eventsPerSecond, otherCores: a.cpu.otherCores })) });
    ctx.report.phases.raw = raw;
    ctx.saveProgress();
  }
}
