// Phase b: the real detector's sustained throughput on the main stream (a backlog), its alerts against the expected
// count, and its CPU profile when asked for.
import { readdirSync } from 'node:fs';
import type { BenchContext, BenchDetector } from '../context.ts';
import { phaseTimeoutMs } from '../context.ts';
import { byLabel, cpuMeter, formatRuntime, gcDelta, histogramMean, log, round, runtimeStats, total, trackEvents, type ProgressSample } from '../lib.ts';
import { formatProfile, summariseProfile } from '../profile.ts';
import type { ThroughputPhase } from '../report.ts';
import type { MainStream } from './produce.ts';
import { KAFKAJS_PARSE, KAFKAJS_RAW } from './raw.ts';

/** The detector that consumed the backlog (stopped with stopThroughputDetector), its rate excluding startup, the results. */
export interface Throughput {
  detector: BenchDetector;
  sustained: number;
  phase: ThroughputPhase;
}

/**
 * One client's run (KAFKA_CLIENT=`client`, fresh group, Redis db emptied first) on the main stream; `label` names
 * its group and logs (`detector` for the first client). --cpu-prof profiles the first client's run only.
 */
export async function throughputPhase(ctx: BenchContext, { pair, produced }: MainStream, client: string, label: string): Promise<Throughput> {
  const { redis, report } = ctx;
  log(`phase b: detector (KAFKA_CLIENT=${client}) on ${produced.events} events`);
  await ctx.freshRedis();
  const cpu = cpuMeter(ctx.watched);
  const profile = client === ctx.opts.detectorClients[0] ? ctx.opts.cpuProf : undefined;
  const detector = await ctx.startDetector(label, pair.topic, pair.dlq, { client, ...(profile ? { cpuProfDir: profile } : {}) });
  const progress = await trackEvents(detector, produced.events, phaseTimeoutMs(produced.events, 1000));
  const c = cpu.end();
  ctx.checkLoad('detector', c);
  const m = progress.final;
  // Let the last alert writes land (they precede the events counter increment) and read Redis.
  const flagged = await redis.scard('fraud:alerts:accounts');
  const streamLen = await redis.xlen('fraud:alerts:stream');
  const first = progress.first!;
  const seconds = progress.reachedAt / 1000;
  const exclSeconds = (progress.reachedAt - first.t) / 1000;
  const rateExcl = (produced.events - first.events) / exclSeconds;
  const rateFromHealthy = progress.healthyAt === null ? null : produced.events / ((progress.reachedAt - progress.healthyAt) / 1000);
  const kafkajsRaw = report.phases.raw?.find((r) => r.client === KAFKAJS_RAW);
  const kafkajsParse = report.phases.raw?.find((r) => r.client === KAFKAJS_PARSE);
  const cpuMicrosPerMessage = (r: NonNullable<typeof kafkajsRaw>) => round(((r.cpu.processCores.bench ?? 0) * r.cpu.wallSeconds * 1e6) / r.messages, 2);
  const outcomes = byLabel(m, 'detector_events_total', 'outcome');
  const alertsWritten = total(m, 'detector_alerts_written_total');
  const batches = histogramMean(m, 'detector_batch_seconds');
  const checkpoints = histogramMean(m, 'detector_checkpoint_seconds');
  const d: ThroughputPhase = {
    client,
    events: produced.events,
    secondsFromSpawn: round(seconds, 2),
    eventsPerSecond: Math.round(produced.events / seconds),
    startupSeconds: round(first.t / 1000, 2),
    eventsAtFirstSample: first.events,
    secondsFromFirstSample: round(exclSeconds, 2),
    eventsPerSecondExclStartup: Math.round(rateExcl),
    rate5sWindows: windowRates(progress.samples),
    healthySeconds: progress.healthyAt === null ? null : round(progress.healthyAt / 1000, 2),
    eventsPerSecondFromHealthy: rateFromHealthy === null ? null : Math.round(rateFromHealthy),
    ratioToKafkajsRaw: kafkajsRaw ? round(rateExcl / kafkajsRaw.eventsPerSecondFromJoin, 3) : null,
    ratioToKafkajsRawFromJoin: kafkajsRaw && rateFromHealthy !== null ? round(rateFromHealthy / kafkajsRaw.eventsPerSecondFromJoin, 3) : null,
    ratioToKafkajsRawInclStartup: kafkajsRaw ? round(produced.events / seconds / kafkajsRaw.eventsPerSecond, 3) : null,
    parseCeiling: kafkajsParse ? {
      client: KAFKAJS_PARSE,
      eventsPerSecondFromJoin: kafkajsParse.eventsPerSecondFromJoin,
      ratio: round(rateExcl / kafkajsParse.eventsPerSecondFromJoin, 3),
      ratioFromJoin: rateFromHealthy === null ? null : round(rateFromHealthy / kafkajsParse.eventsPerSecondFromJoin, 3),
      cpuMicrosPerMessage: cpuMicrosPerMessage(kafkajsParse),
    } : null,
    outcomes,
    alerts: {
      expected: produced.expectedAlerts,
      writtenMetric: alertsWritten,
      duplicatesMetric: total(m, 'detector_alerts_duplicate_total'),
      flaggedAccountsInRedis: flagged,
      alertStreamLength: streamLen,
      ok: alertsWritten === produced.expectedAlerts && flagged === produced.expectedAlerts && streamLen === produced.expectedAlerts,
    },
    batches: { ...batches, meanEvents: round(produced.events / Math.max(1, batches.count), 1), busyShareOfWall: round(batches.sumSeconds / exclSeconds, 3) },
    // CPU time per event, from /proc: comparable across runs even when other work competes for the CPUs.
    cpuMicrosPerEvent: round(((c.processCores.detector ?? 0) * c.wallSeconds * 1e6) / produced.events, 2),
    kafkajsRawCpuMicrosPerMessage: kafkajsRaw?.cpu ? cpuMicrosPerMessage(kafkajsRaw) : null,
    // The detector's rate would be (kafkajs CPU per message / detector CPU per event) of the ceiling with equal CPU.
    ratioByCpuTime: kafkajsRaw?.cpu && c.processCores.detector
      ? round(((kafkajsRaw.cpu.processCores.bench ?? 0) * kafkajsRaw.cpu.wallSeconds / kafkajsRaw.messages) / ((c.processCores.detector * c.wallSeconds) / produced.events), 3)
      : null,
    checkpoints,
    gc: gcDelta(new Map(), m),
    runtime: runtimeStats(new Map(), m, detector.takePeaks()),
    rssBytesAtEnd: total(m, 'detector_process_resident_memory_bytes'),
    heapUsedBytesAtEnd: total(m, 'detector_nodejs_heap_size_used_bytes'),
    pollIntervalMs: 200,
    samples: progress.samples.filter((_, i) => i % 5 === 0).map((s): [number, number] => [Math.round(s.t), s.events]),
    cpu: c,
  };
  log(`  ${client}: ${produced.events} events in ${d.secondsFromSpawn}s from spawn = ${d.eventsPerSecond}/s; excl. startup (${d.startupSeconds}s): ${d.eventsPerSecondExclStartup}/s; ratio to kafkajs raw ${d.ratioToKafkajsRaw}, to kafkajs + JSON.parse ${d.parseCeiling?.ratio ?? 'n/a'}`);
  log(`  ${formatRuntime(d.runtime)}`);
  log(`  alerts: ${alertsWritten} written, ${flagged} flagged accounts, ${streamLen} in stream, ${produced.expectedAlerts} expected; outcomes ${JSON.stringify(outcomes)}`);
  if (!d.alerts.ok) ctx.note(`${label}: alert count mismatch: expected ${produced.expectedAlerts}, metric ${alertsWritten}, Redis accounts ${flagged}, stream ${streamLen}`);
  if (d.ratioToKafkajsRaw !== null && d.ratioToKafkajsRaw < 0.8) ctx.note(`${label} (KAFKA_CLIENT=${client}) reaches ${d.ratioToKafkajsRaw} of the kafkajs raw consume ceiling (target >= 0.8)`);
  await ctx.checkSentinel(label);
  return { detector, sustained: rateExcl, phase: d };
}

/** Stop the throughput detector (its CPU profile is written on exit) and, when it was profiled, summarise the profile. */
export async function stopThroughputDetector(ctx: BenchContext, detector: BenchDetector, label: string, client: string): Promise<void> {
  const how = await ctx.stopDetector(detector, label);
  log(`  detector stopped (${how})`);
  const dir = ctx.opts.cpuProf;
  if (dir && client === ctx.opts.detectorClients[0]) {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => `${dir}/${f}`).sort();
    const file = files.filter((f) => f.includes(`.${detector.pid}.`)).at(-1) ?? files.at(-1);
    if (file) {
      const summary = summariseProfile(file, 25);
      ctx.report.cpuProfile = summary;
      log(`\n${formatProfile(summary)}\n`);
    } else {
      ctx.note(`no .cpuprofile found in ${dir}`);
    }
  }
  ctx.saveProgress();
}

/** Events/s over sliding windows of `windowMs`, from the progress samples (only while events were flowing). */
function windowRates(samples: ProgressSample[], windowMs = 5000): { min: number; median: number; max: number } | null {
  const rates: number[] = [];
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    while (j < i && samples[i]!.t - samples[j]!.t > windowMs) j++;
    const a = samples[j]!;
    const b = samples[i]!;
    if (b.t - a.t >= windowMs * 0.8 && a.events > 0 && b.events > a.events) rates.push(((b.events - a.events) / (b.t - a.t)) * 1000);
  }
  if (rates.length === 0) return null;
  rates.sort((x, y) => x - y);
  return { min: Math.round(rates[0]!), median: Math.round(rates[Math.floor(rates.length / 2)]!), max: Math.round(rates[rates.length - 1]!) };
}
