// Detector benchmark: produce a synthetic payment stream to a fresh topic on the local stack, then measure
//   (a) the raw consume ceiling of kafkajs and @platformatic/kafka on it, and         bench/phases/raw.ts
//       kafkajs consume + JSON.parse,
//   (b) the real detector's sustained throughput (child process, /metrics) and its    bench/phases/throughput.ts
//       alerts against the expected count,
//   (c) produce -> alert-in-Redis latency on a paced live stream (PSUBSCRIBE          bench/phases/latency.ts
//       fraud:alerts:*),
//   (d) the detector's RSS with 100K and 1M distinct senders in the window.           bench/phases/memory.ts
// GC, event-loop delay and Redis SLOWLOG are taken per phase of (b)-(d).
// Writes bench/results/detector-<timestamp>.json (bench/report.ts) and rewrites bench/README.md. Bounded in time;
// stops by itself; talks to 127.0.0.1 only; removes its topics, consumer groups and Redis database (14) at the end.
// Options: bench/options.ts (--help); the run's state: bench/context.ts.
//
//   npm run bench                        # defaults: --events 2000000 --senders 100000 --burst-share 0.01
//   npm run bench -- --events 200000     # a quick try
//   npm run bench -- --phases produce,detector --cpu-prof /tmp/detector-prof --no-readme --results-dir /tmp
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BenchContext } from './context.ts';
import { log, now, round, withTimeout } from './lib.ts';
import { codeVersion, machineInfo } from './machine.ts';
import { parseOptions } from './options.ts';
import { latencyPhases } from './phases/latency.ts';
import { memoryPhase } from './phases/memory.ts';
import { producePhase } from './phases/produce.ts';
import { rawPhase } from './phases/raw.ts';
import { stopThroughputDetector, throughputPhase } from './phases/throughput.ts';
import { connectProducer } from './produce.ts';
import { publishReport } from './report.ts';

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

/** The phases in order; each skips itself unless asked for (or needed by a later one, see parseOptions). */
async function runPhases(ctx: BenchContext): Promise<void> {
  const t0 = now();
  const { redis, report, phases } = ctx;
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
  const throughput = phases.has('detector') && main ? await ctx.redisPhase('detector', () => throughputPhase(ctx, main)) : null;
  if (phases.has('latency') && throughput && main) await latencyPhases(ctx, throughput.detector, main.pair.topic, throughput.sustained);
  if (throughput) await stopThroughputDetector(ctx, throughput.detector);
  if (phases.has('memory')) await memoryPhase(ctx);
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
const watchdog = setTimeout(() => hardStop(`run exceeded --max-minutes ${opts.maxMinutes}`, 3), opts.maxMinutes * 60_000);
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
