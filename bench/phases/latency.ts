// Phase c: latency produce -> alert in Redis, per detector client with a fresh detector on a live topic of its own: at
// half the sustained rate (the benchmark's definition), at 90% of it, then at fixed lower rates (on 2 shared cores the
// half-rate run can saturate the machine). Also the --soak run, and the live detectors the scale-out phase uses.
import type { BenchContext, BenchDetector } from '../context.ts';
import {
  bucketBoundMs, cpuMeter, detectorCores, detectorSet, formatRuntime, gcDelta, histogramDelta, log, now, round, runtimeStats, sleep, summarise, total, waitDetectorHealthy, withTimeout, mb,
  type DetectorSet, type DetectorView, type HistogramDelta, type Samples,
} from '../lib.ts';
import type { BenchOptions } from '../options.ts';
import { absolute } from '../alert-listener.ts';
import { produceLive, type LiveTrigger } from '../produce.ts';
import type { BucketSummary, ExtraLatencyKey, LatencyPhase, SoakMinute } from '../report.ts';

/** Which latency run: at half the sustained rate, at --high-share of it, or at a fixed --extra-rates rate. */
export type LatencyRole = 'half' | 'high' | 'fixed';

export interface LatencyRun {
  key: 'latency' | ExtraLatencyKey;
  role: LatencyRole;
  rate: number;
  seconds: number;
  burstShare: number;
}

/** The latency runs at the rates --live-rate / half, --high-share and --extra-rates give for this sustained rate. */
export function latencyRuns(opts: BenchOptions, sustained: number): LatencyRun[] {
  const runs: LatencyRun[] = [
    { key: 'latency', role: 'half', rate: Math.max(100, Math.round(opts.liveRate ?? sustained / 2)), seconds: opts.liveSeconds, burstShare: opts.liveBurstShare },
  ];
  if (opts.highShare > 0 && opts.liveRate === undefined) {
    const rate = Math.max(100, Math.round(sustained * opts.highShare));
    runs.push({ key: `latencyAt${rate}`, role: 'high', rate, seconds: opts.extraSeconds, burstShare: opts.liveBurstShare });
  }
  for (const rate of opts.extraRates) runs.push({ key: `latencyAt${rate}`, role: 'fixed', rate, seconds: opts.extraSeconds, burstShare: opts.extraBurstShare });
  return runs;
}

/**
 * A fresh detector on an empty topic of its own (`partitions`, fresh group, Redis db emptied), waited for until it
 * has joined; with `members` > 1 that many detectors in one group, waited for until the group is Stable. `label`
 * names the topic, group and detector logs.
 */
export async function liveDetectors(ctx: BenchContext, label: string, o: { client?: string; members?: number; partitions?: number } = {}): Promise<{ topic: string; group: string; set: DetectorSet; stop: () => Promise<void> }> {
  const members = o.members ?? 1;
  await ctx.freshRedis();
  const pair = await ctx.createTopicPair(`bench-${label}-${ctx.id}`, o.partitions);
  const group = ctx.consumerGroup(`bench-${label}`);
  const detectors: BenchDetector[] = [];
  for (let i = 0; i < members; i++) {
    detectors.push(await ctx.startDetector(members > 1 ? `${label}-${i + 1}` : label, pair.topic, pair.dlq, { client: o.client, group, cpuName: i === 0 ? 'detector' : `detector-${i + 1}` }));
  }
  for (const d of detectors) await waitDetectorHealthy(d);
  await ctx.waitGroupStable(group, members);
  return {
    topic: pair.topic,
    group,
    set: detectorSet(detectors),
    stop: async () => {
      for (const [i, d] of detectors.entries()) await ctx.stopDetector(d, members > 1 ? `${label}-${i + 1}` : label);
    },
  };
}

/**
 * The latency runs for one detector client, with a fresh detector on a live topic of its own (so every client's runs
 * see the same traffic: same seeds, same senders). `suffix` tells the runs of a later client apart in report.redis.
 */
export async function latencyPhases(ctx: BenchContext, client: string, sustained: number, suffix: string): Promise<LatencyPhase[]> {
  const out: LatencyPhase[] = [];
  const live = await liveDetectors(ctx, `live-${client}`, { client });
  try {
    for (const [i, run] of latencyRuns(ctx.opts, sustained).entries()) {
      const label = `${run.key}${suffix}`;
      const r = await ctx.redisPhase(label, () => measureLatency(ctx, live.set, live.topic, label, run.rate, run.seconds, run.burstShare, i));
      out.push({ ...r, role: run.role, client });
      await ctx.checkSentinel(label);
      ctx.saveProgress();
    }
  } finally {
    await live.stop();
  }
  return out;
}

/** Seed offset of the soak's traffic (apart from the latency runs'). */
const SOAK_INDEX = 90;

/** Kafka's view of the group's lag: the partitions' high watermarks less the group's committed offsets (the detector commits at each checkpoint). */
async function committedLag(ctx: BenchContext, group: string, topic: string): Promise<number> {
  const admin = ctx.admin!;
  const [high, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
  const done = new Map((committed?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  return high.reduce((sum, p) => sum + Number(p.high) - (done.get(p.partition) ?? 0), 0);
}

/** How often the soak reads the detector (RSS, heap, lag); the per-minute table takes the last reading of each minute and the largest lag. */
const SOAK_SAMPLE_MS = 5000;

/**
 * --soak: minutes at `rate` with a fresh detector (the first client) on a topic of its own. Senders come from a fixed
 * population, each paying every 40 s (3 in 60 s never happens by chance), so the window holds them all: a steady state
 * to watch for growth and lag.
 */
export async function soakPhase(ctx: BenchContext, rate: number): Promise<LatencyPhase> {
  const client = ctx.opts.detectorClients[0]!;
  const live = await liveDetectors(ctx, 'soak', { client });
  try {
    const brokerLag = () => committedLag(ctx, live.group, live.topic);
    const r = await ctx.redisPhase('soak', () => measureLatency(ctx, live.set, live.topic, 'soak', rate, ctx.opts.soakMinutes * 60, ctx.opts.liveBurstShare, SOAK_INDEX, { senders: rate * 40, brokerLag }));
    await ctx.checkSentinel('soak');
    return { ...r, client };
  } finally {
    await live.stop();
  }
}

/**
 * Soak figures per minute of the stream (from `t0`, performance.now()): alerts by send time and their p99; the
 * detector's RSS, heap and lag (its own gauge, and Kafka's committed-offset lag) at the minute's last reading and the
 * largest lag read in it. Full minutes only.
 */
function perMinute(t0: number, seconds: number, start: Samples, samples: SoakSample[], latencies: number[], sentAts: number[]): SoakMinute[] {
  const startRss = Math.max(1, total(start, 'detector_process_resident_memory_bytes'));
  const out: SoakMinute[] = [];
  for (let i = 0; i < Math.floor(seconds / 60); i++) {
    const from = t0 + i * 60_000;
    const to = from + 60_000;
    const inside = samples.filter((x) => x.at >= from && x.at < to + SOAK_SAMPLE_MS / 2);
    const end = inside.at(-1);
    if (!end) continue;
    const inMinute = latencies.filter((_, k) => sentAts[k]! >= from && sentAts[k]! < to);
    const rss = total(end.m, 'detector_process_resident_memory_bytes');
    out.push({
      minute: i + 1,
      alerts: inMinute.length,
      p99Ms: inMinute.length > 0 ? summarise(inMinute).p99Ms : null,
      rssMB: mb(rss),
      heapUsedMB: mb(total(end.m, 'detector_nodejs_heap_size_used_bytes')),
      lag: total(end.m, 'detector_consumer_lag'),
      maxLag: Math.max(...inside.map((x) => total(x.m, 'detector_consumer_lag'))),
      committedLag: end.committedLag,
      maxCommittedLag: Math.max(...inside.map((x) => x.committedLag)),
      rssGrowthFromStart: round(rss / startRss, 2),
    });
  }
  return out;
}

function bucketSummary(h: HistogramDelta): BucketSummary {
  const at = (q: number) => bucketBoundMs(h.buckets, h.count, q);
  return { ...h, p50MsAtMost: at(0.5), p99MsAtMost: at(0.99), p999MsAtMost: at(0.999) };
}

/** A soak run: senders drawn from a fixed population (not one each), and figures per minute. */
interface SoakOptions {
  senders: number;
  /** The group's lag as Kafka sees it (committed offsets). */
  brokerLag: () => Promise<number>;
}

/** One reading during the soak: the detector's metrics and the group's committed lag. */
interface SoakSample {
  at: number;
  m: Samples;
  committedLag: number;
}

export async function measureLatency(
  ctx: BenchContext, detector: DetectorView, topic: string, label: string, rate: number, seconds: number, burstShare: number, index: number,
  soak?: SoakOptions,
): Promise<LatencyPhase> {
  const { opts } = ctx;
  const events = Math.round(rate * seconds);
  log(`phase c (${label}): live stream ${rate}/s for ${seconds}s (${events} events, ${burstShare} in bursts)`);
  const prefix = `LIVE${index}_${ctx.id}_`;
  const triggers = new Map<string, LiveTrigger>(); // by triggering transaction id
  const latencies: number[] = [];
  const sentAts: number[] = [];
  let unmatched = 0;
  let foreign = 0;
  let wrongTrigger = 0;
  const onMessage = (channel: string, message: string, at: number) => {
    if (!channel.startsWith(`fraud:alerts:sender:${prefix}`)) {
      foreign++; // another process publishing on the shared (database-independent) channel space
      return;
    }
    const alert = JSON.parse(message) as { sender_account_id: string; transaction_ids: string[] };
    const trigger = triggers.get(alert.transaction_ids[alert.transaction_ids.length - 1]!);
    if (!trigger) {
      unmatched++;
      return;
    }
    if (trigger.sender !== alert.sender_account_id) wrongTrigger++;
    latencies.push(at - absolute(trigger.sentAt));
    sentAts.push(trigger.sentAt);
    triggers.delete(trigger.transactionId);
  };
  const listening = await ctx.alerts.listen('fraud:alerts:*', onMessage);
  try {
    const before = await detector.metrics();
    detector.takePeaks(); // GC / event-loop peaks from before this run
    const eventsBefore = total(before, 'detector_events_total');
    const alertsBefore = total(before, 'detector_alerts_written_total');
    let expected = 0;
    const cpu = cpuMeter(ctx.watched);
    // Soak: the detector's memory, heap and lag every few seconds while the stream runs.
    const samples: SoakSample[] = [];
    let sampling: Promise<void> = Promise.resolve();
    const streamStart = now();
    const sampler = soak
      ? setInterval(() => {
        sampling = sampling
          .then(() => Promise.all([detector.metrics(), soak.brokerLag()]))
          .then(([m, committedLag]) => void samples.push({ at: now(), m, committedLag }), (err: Error) => log(`  soak reading failed: ${err.message}`));
      }, SOAK_SAMPLE_MS)
      : undefined;
    const live = await withTimeout(
      produceLive(ctx.producer!, topic, {
        events, senders: soak?.senders ?? events, burstShare, burstSize: opts.burstSize, malformedShare: 0,
        startTime: Date.now(), spanMs: seconds * 1000, seed: opts.seed + 1 + index, accountPrefix: prefix,
      }, {
        rate, tickMs: 10, maxBatch: 4000, threshold: ctx.threshold, maxSeconds: seconds,
        onTrigger: (t) => {
          expected++;
          triggers.set(t.transactionId, t);
        },
      }),
      seconds * 1000 * 3 + 30_000, 'live produce',
    );
    if (sampler) clearInterval(sampler);
    await sampling;
    // Wait (bounded) for the remaining alerts and for the detector to process the whole live stream.
    const waitUntil = now() + 20_000;
    while (now() < waitUntil && triggers.size > 0) await sleep(50);
    const c = cpu.end();
    ctx.checkLoad(label, c);
    let after = await detector.metrics();
    while (now() < waitUntil && total(after, 'detector_events_total') < eventsBefore + live.events) {
      await sleep(200);
      after = await detector.metrics();
    }
    const lat = summarise(latencies);
    // Where the slow alerts were: seconds into the run (clustered at the start = catching up; periodic = a stall).
    const p99 = lat.p99Ms;
    const phaseStart = sentAts.length > 0 ? sentAts.reduce((a, b) => Math.min(a, b)) : 0;
    const wallStart = new Date(Date.now() - (now() - phaseStart)).toISOString();
    const tail = latencies
      .map((l, i) => [round((sentAts[i]! - phaseStart) / 1000, 2), round(l, 1)] as [number, number])
      .filter(([, l]) => l >= p99)
      .sort((a, b) => a[0] - b[0])
      .slice(0, 60);
    const processed = total(after, 'detector_events_total') - eventsBefore;
    const age = bucketSummary(histogramDelta(before, after, 'detector_record_age_seconds'));
    const inside = bucketSummary(histogramDelta(before, after, 'detector_alert_latency_seconds'));
    log(`  detector's view: batch record age p50 <= ${age.p50MsAtMost} ms, p99 <= ${age.p99MsAtMost} ms; Kafka timestamp -> alert written p50 <= ${inside.p50MsAtMost} ms, p99 <= ${inside.p99MsAtMost} ms`);
    const runtime = runtimeStats(before, after, detector.takePeaks());
    log(`  produced ${live.events} at ${live.achievedRate}/s (target ${rate}); ${latencies.length}/${expected} alerts: p50 ${lat.p50Ms} ms, p99 ${lat.p99Ms} ms, p999 ${lat.p999Ms} ms, max ${lat.maxMs} ms`);
    log(`  ${formatRuntime(runtime)}`);
    if (triggers.size > 0) ctx.note(`${label}: ${triggers.size} of ${expected} expected alerts did not arrive within 20 s after the stream`);
    if (live.achievedRate < rate * 0.95) ctx.note(`${label}: the producer reached ${live.achievedRate}/s of the ${rate}/s target`);
    const minutes = soak ? perMinute(streamStart, seconds, before, samples, latencies, sentAts) : undefined;
    for (const mm of minutes ?? []) log(`  minute ${mm.minute}: ${mm.alerts} alerts, p99 ${mm.p99Ms} ms; RSS ${mm.rssMB} MB, heap ${mm.heapUsedMB} MB, detector lag ${mm.lag} (max ${mm.maxLag}), committed lag ${mm.committedLag} (max ${mm.maxCommittedLag})`);
    return {
      ...live,
      ...(minutes ? { minutes, senders: soak!.senders } : {}),
      burstShare,
      eventTimestamps: 'Date.now() at send time',
      expectedAlerts: expected,
      received: latencies.length,
      missing: triggers.size,
      unmatchedAlerts: unmatched,
      alertsWithUnexpectedSender: wrongTrigger,
      foreignPublications: foreign,
      detectorEventsProcessed: processed,
      detectorAlertsWritten: total(after, 'detector_alerts_written_total') - alertsBefore,
      latency: lat,
      firstTriggerAt: wallStart,
      slowestAtSeconds: tail,
      detectorBatches: histogramDelta(before, after, 'detector_batch_seconds'),
      detectorCheckpoints: histogramDelta(before, after, 'detector_checkpoint_seconds'),
      // The detector's own split of the latency: records' age when it starts on them (producer + broker + fetch), and
      // Kafka timestamp to alert written (what the subscriber sees, minus the pub/sub hop).
      detectorRecordAge: bucketSummary(histogramDelta(before, after, 'detector_record_age_seconds')),
      detectorAlertLatency: bucketSummary(histogramDelta(before, after, 'detector_alert_latency_seconds')),
      detectorCpuMicrosPerEvent: round((detectorCores(c) * c.wallSeconds * 1e6) / Math.max(1, processed), 2),
      detectorGc: gcDelta(before, after),
      runtime,
      cpu: c,
    };
  } finally {
    await listening.stop();
  }
}
