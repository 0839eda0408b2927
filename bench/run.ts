// Detector benchmark: produce a synthetic payment stream to a fresh topic on the local stack, then measure
//   (a) the raw consume ceiling of kafkajs and @platformatic/kafka on it, and         bench/phases/raw.ts
//       kafkajs consume + JSON.parse,
//   (b) the real detector's sustained throughput (child process, /metrics) and its    bench/phases/throughput.ts
//       alerts against the expected count,
//   (c) produce -> alert-in-Redis latency on a paced live stream (PSUBSCRIBE          bench/phases/latency.ts
//       fraud:alerts:*),
//   (b) and (c) once per --detector-clients client (KAFKA_CLIENT=kafkajs, platformatic), side by side,
//   (e) scale-out: one detector, then two in one group, on a 12-partition topic       bench/phases/scaleout.ts
//       (throughput, latency, CPU per process, the same alert ids),
//   (d) the detector's RSS with 100K and 1M distinct senders in the window,           bench/phases/memory.ts
//   and with --soak [minutes] a soak run at half the sustained rate (per minute: RSS,  bench/phases/latency.ts
//       heap, lag, p99; verdicts in bench/compare.ts).
// GC, event-loop delay and Redis SLOWLOG are taken per phase of (b)-(e).
// Writes bench/results/detector-<timestamp>.json (bench/report.ts) and rewrites bench/README.md. Bounded in time;
// stops by itself; talks to 127.0.0.1 only; removes its topics, consumer groups and Redis database (14) at the end.
// Options: bench/options.ts (--help); the run's state: bench/context.ts.
//
//   npm run bench                        # defaults: --events 2000000 --senders 100000 --burst-share 0.01
//   npm run bench -- --events 200000     # a quick try
//   npm run bench -- --phases produce,detector --cpu-prof /tmp/detector-prof --no-readme --results-dir /tmp
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { repoRoot } from '../common/env.ts';
import { BenchContext } from './context.ts';
import { log, now, round, withTimeout } from './lib.ts';
import { codeVersion, machineInfo } from './machine.ts';
import { parseOptions } from './options.ts';
import { compareClients, soakVerdict } from './compare.ts';
import { latencyPhases, soakPhase } from './phases/latency.ts';
import { scaleoutPhase } from './phases/scaleout.ts';
import { memoryPhase } from './phases/memory.ts';
import { producePhase } from './phases/produce.ts';
import { rawPhase } from './phases/raw.ts';
import { stopThroughputDetector, throughputPhase } from './phases/throughput.ts';
import { connectProducer } from './produce.ts';
import { publishReport, type ClientRuns } from './report.ts';

/** One benchmark at a time on this machine: two runs would share Redis db 14 (each flushes it) and the CPUs. */
function takeLock(): void {
  const lockPath = `${tmpdir()}/fraudwatch-bench.lock`;
  try {
    writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
  } catch {
    const holder = Number(readFileSync(lockPath, 'utf8').trim());
    let alive = false;
    try {
      process.kill(holder, 0);
      alive = holder !== process.pid;
    } catch {
      alive = false;
    }
    if (alive) {
      process.stderr.write(`bench: another benchmark (pid ${holder}) is running (${lockPath}); try again when it is done\n`);
      process.exit(75); // EX_TEMPFAIL
    }
    writeFileSync(lockPath, String(process.pid)); // stale lock
  }
  process.on('exit', () => {
    try {
      if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
    } catch {
      // already gone
    }
  });
}

/**
 * The detector picks its Kafka backend from KAFKA_CLIENT; a detector that does not read the variable runs kafkajs
 * whatever it is set to. Say so in the report when the code under test has no mention of it.
 */
function checkClientSupport(ctx: BenchContext): void {
  const others = ctx.opts.detectorClients.filter((c) => c !== 'kafkajs');
  if (others.length === 0) return;
  const sources = ['detector', 'common'].flatMap((dir) => readdirSync(`${repoRoot}${dir}`).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(`${repoRoot}${dir}/${f}`, 'utf8')));
  if (!sources.some((src) => src.includes('KAFKA_CLIENT'))) {
    ctx.note(`detector/ and common/ do not read KAFKA_CLIENT at this commit: the runs labelled ${others.join(', ')} ran the detector's default client (kafkajs)`);
  }
}

/** The phases in order; each skips itself unless asked for (or needed by a later one, see parseOptions). */
async function runPhases(ctx: BenchContext): Promise<void> {
  const t0 = now();
  const { redis, report, phases, opts } = ctx;
  await redis.connect();
  await ctx.alerts.connect();
  report.machine = await machineInfo(redis);
  report.code = codeVersion();
  const m = report.machine;
  log(`machine: ${m.nproc} cpus (${m.cpuModel}), ${m.memoryGiB} GiB, node ${m.node}, kafka ${m.kafka}, redis ${m.redis}; load ${m.loadavgAtStart.join(' ')}`);
  await redis.flushdb();
  await redis.set(ctx.sentinel, '1');
  ctx.admin = ctx.kafka.admin();
  await ctx.admin.connect();
  ctx.producer = await connectProducer(ctx.kafka);

  const main = phases.has('produce') ? await producePhase(ctx) : null;
  if (phases.has('raw') && main) await rawPhase(ctx, main);
  // Per detector client: its throughput on the main stream, then its latency runs with a fresh detector.
  let sustained: number | null = null;
  if (phases.has('detector') && main) {
    checkClientSupport(ctx);
    const clients: ClientRuns[] = (report.phases.clients = []);
    for (const [i, client] of opts.detectorClients.entries()) {
      const suffix = i === 0 ? '' : `:${client}`;
      const label = `detector${suffix}`;
      const t = await ctx.redisPhase(label, () => throughputPhase(ctx, main, client, label));
      const runs: ClientRuns = { client, detector: t.phase, latency: [] };
      clients.push(runs);
      if (i === 0) {
        report.phases.detector = t.phase;
        sustained = t.sustained;
      }
      ctx.saveProgress();
      await stopThroughputDetector(ctx, t.detector, label, client);
      if (phases.has('latency')) {
        runs.latency = await latencyPhases(ctx, client, t.sustained, suffix);
        if (i === 0) for (const l of runs.latency) report.phases[l.role === 'half' ? 'latency' : (`latencyAt${l.targetRate}` as const)] = l;
      }
      report.phases.clientComparison = compareClients(clients);
      ctx.saveProgress();
    }
    if (report.phases.clientComparison) log(`clients: ${report.phases.clientComparison.summary}`);
  }
  if (phases.has('scaleout')) await scaleoutPhase(ctx);
  if (phases.has('memory')) await memoryPhase(ctx);
  if (opts.soakMinutes > 0) {
    const rate = Math.max(100, Math.round(opts.liveRate ?? sustained! / 2));
    report.phases.soak = await soakPhase(ctx, rate);
    const v = (report.phases.soakVerdict = soakVerdict(report.phases.soak));
    if (v) log(`soak: RSS ${v.rssGrowthAfterMinute1 === null ? 'n/a' : `+${round(v.rssGrowthAfterMinute1 * 100, 1)}%`} after minute 1 (${v.rssOk === null ? 'under 2 minutes' : v.rssOk ? 'ok' : 'over the limit'}); max lag ${v.maxLag} (bound ${v.lagBound}: ${v.lagOk ? 'ok' : 'exceeded'})`);
    ctx.saveProgress();
  }
  report.durationSeconds = round((now() - t0) / 1000, 1);
}

const { opts, phases } = parseOptions();
const ctx = new BenchContext(opts, phases);
takeLock();
const { report } = ctx;

// Hard bound on the whole run, and signals: clean up and exit; a second bound in case cleanup hangs.
const hardStop = (why: string, code: number) => {
  log(`${why}: cleaning up and exiting`);
  report.status = 'aborted';
  report.error = why;
  try {
    ctx.saveProgress();
  } catch {
    // best effort
  }
  setTimeout(() => {
    ctx.killDetectors();
    process.exit(code);
  }, 60_000).unref();
  void ctx.cleanup().finally(() => process.exit(code));
};
// The soak's minutes come on top of --max-minutes.
const boundMinutes = opts.maxMinutes + opts.soakMinutes;
const watchdog = setTimeout(() => hardStop(`run exceeded --max-minutes ${opts.maxMinutes}${opts.soakMinutes ? ` + ${opts.soakMinutes} soak minutes` : ''}`, 3), boundMinutes * 60_000);
watchdog.unref();
process.once('SIGINT', () => hardStop('SIGINT', 130));
process.once('SIGTERM', () => hardStop('SIGTERM', 143));

let exitCode = 0;
try {
  await runPhases(ctx);
  report.status = 'ok';
} catch (err) {
  exitCode = 1;
  report.status = 'failed';
  report.error = (err as Error).stack ?? String(err);
  log(`failed: ${(err as Error).message}`);
} finally {
  await withTimeout(ctx.cleanup(), 90_000, 'cleanup').catch((e: Error) => log(e.message));
  clearTimeout(watchdog);
}
report.finishedAt = new Date().toISOString();
report.totalSeconds = round((Date.now() - ctx.startedAt.getTime()) / 1000, 1);
ctx.saveProgress();
if (report.status === 'ok') publishReport(ctx.reportPath, report, opts, log);
else log(`report of the failed run: ${ctx.reportPath}.tmp`);
process.exit(exitCode);
