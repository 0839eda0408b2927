// Phase c: latency produce -> alert in Redis with the throughput detector, caught up: at half the sustained rate (the
// benchmark's definition), then at fixed lower rates (on 2 shared cores the half-rate run can saturate the machine).
import type { BenchContext } from '../context.ts';
import { bucketBoundMs, cpuMeter, formatRuntime, gcDelta, histogramDelta, log, now, round, runtimeStats, sleep, summarise, total, withTimeout, mb, type DetectorProcess, type HistogramDelta, type Samples } from '../lib.ts';
import { absolute } from '../alert-listener.ts';
import { produceLive, type LiveTrigger } from '../produce.ts';
import type { BucketSummary, ExtraLatencyKey, LatencyPhase, SoakMinute } from '../report.ts';

export async function latencyPhases(ctx: BenchContext, detector: DetectorProcess, topic: string, sustained: number): Promise<void> {
  const { opts } = ctx;
  const runs: Array<{ key: 'latency' | ExtraLatencyKey; rate: number; seconds: number; burstShare: number }> = [
    { key: 'latency', rate: Math.max(100, Math.round(opts.liveRate ?? sustained / 2)), seconds: opts.liveSeconds, burstShare: opts.liveBurstShare },
  ];
  if (opts.highShare > 0 && opts.liveRate === undefined) {
    const rate = Math.max(100, Math.round(sustained * opts.highShare));
    runs.push({ key: `latencyAt${rate}`, rate, seconds: opts.extraSeconds, burstShare: opts.liveBurstShare });
  }
  for (const rate of opts.extraRates) runs.push({ key: `latencyAt${rate}`, rate, seconds: opts.extraSeconds, burstShare: opts.extraBurstShare });
  for (const [i, run] of runs.entries()) {
    ctx.report.phases[run.key] = await ctx.redisPhase(run.key, () => measureLatency(ctx, detector, topic, run.key, run.rate, run.seconds, run.burstShare, i));
    await ctx.checkSentinel(run.key);
    ctx.saveProgress();
  }
  if (opts.soakMinutes > 0) {
    // Half the sustained rate for minutes on end. Senders come from a fixed population, each paying every 40 s (3 in
    // 60 s never happens by chance), so the window holds them all: a steady state to watch for growth and lag.
    const rate = Math.max(100, Math.round(opts.liveRate ?? sustained / 2));
    ctx.report.phases.soak = await ctx.redisPhase('soak', () =>
      measureLatency(ctx, detector, topic, 'soak', rate, opts.soakMinutes * 60, opts.liveBurstShare, runs.length, { senders: rate * 40 }));
    await ctx.checkSentinel('soak');
    ctx.saveProgress();
  }
}

/** Soak figures per minute: alerts (by send time) and their p99, and the detector's RSS, heap and lag at the minute's end. */
function perMinute(start: Samples, samples: Array<{ at: number; m: Samples }>, latencies: number[], sentAts: number[]): SoakMinute[] {
  const t0 = samples.length > 0 ? samples[0]!.at - 60_000 : 0;
  return samples.map(({ m }, i) => {
    const inMinute = latencies.filter((_, k) => Math.floor((sentAts[k]! - t0) / 60_000) === i);
    return {
      minute: i + 1,
      alerts: inMinute.length,
      p99Ms: inMinute.length > 0 ? summarise(inMinute).p99Ms : null,
      rssMB: mb(total(m, 'detector_process_resident_memory_bytes')),
      heapUsedMB: mb(total(m, 'detector_nodejs_heap_size_used_bytes')),
      lag: total(m, 'detector_consumer_lag'),
      rssGrowthFromStart: round(total(m, 'detector_process_resident_memory_bytes') / Math.max(1, total(start, 'detector_process_resident_memory_bytes')), 2),
    };
  });
}

function bucketSummary(h: HistogramDelta): BucketSummary {
  const at = (q: number) => bucketBoundMs(h.buckets, h.count, q);
  return { ...h, p50MsAtMost: at(0.5), p99MsAtMost: at(0.99), p999MsAtMost: at(0.999) };
}

/** A soak run: senders drawn from a fixed population (not one each), and figures per minute. */
interface SoakOptions {
  senders: number;
}

async function measureLatency(
  ctx: BenchContext, detector: DetectorProcess, topic: string, label: string, rate: number, seconds: number, burstShare: number, index: number,
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
    // Soak: the detector's memory, heap and lag once a minute while the stream runs.
    const samples: Array<{ at: number; m: Samples }> = [];
    let sampling: Promise<void> = Promise.resolve();
    const sampler = soak
      ? setInterval(() => {
        sampling = sampling.then(() => detector.metrics()).then((m) => void samples.push({ at: now(), m }), () => undefined);
      }, 60_000)
      : undefined;
    const live = await withTimeout(
      produceLive(ctx.producer!, topic, {
        events, senders: soak?.senders ?? events, burstShare, burstSize: opts.burstSize, malformedShare: 0,
        startTime: Date.now(), spanMs: seconds * 1000, seed: opts.seed + 1 + index, accountPrefix: prefix,
      }, {
        rate, tickMs: 10, maxBatch: 4000, threshold: ctx.threshold,
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
    const minutes = soak ? perMinute(before, samples, latencies, sentAts) : undefined;
    for (const mm of minutes ?? []) log(`  minute ${mm.minute}: ${mm.alerts} alerts, p99 ${mm.p99Ms} ms; RSS ${mm.rssMB} MB, heap ${mm.heapUsedMB} MB, lag ${mm.lag}`);
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
      detectorCpuMicrosPerEvent: round(((c.processCores.detector ?? 0) * c.wallSeconds * 1e6) / Math.max(1, processed), 2),
      detectorGc: gcDelta(before, after),
      runtime,
      cpu: c,
    };
  } finally {
    await listening.stop();
  }
}
