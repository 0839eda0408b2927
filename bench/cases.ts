// Case benchmark (issue: alert -> workflow signalled p99 <= 100 ms, alert -> first action p99 <= 500 ms).
//
// Many accounts alert at once: for each of --accounts accounts, (reviewAfter + 1) velocity bursts are produced
// in one go, so every account crosses the review threshold together. The real detector (with its case signaller)
// and the real worker run against the local stack (Kafka, Redis, Temporal dev server). Latencies come from the
// audit log the workflows write:
//   alert -> signalled      audit entry `at` of each alert (the workflow task that handled the signal) minus the
//                           alert's `detected_at` (when the detector wrote it to Redis)
//   alert -> first action   audit entry `at` of the MANUAL_REVIEW action minus `detected_at` of the alert that
//                           crossed the threshold
//   sustained rate          alerts signalled per second over the whole burst: alerts / (last alert signalled minus
//                           the first alert's detected_at), the rate the case path drains a backlog at
// Runs on the profile the environment names (FRAUD_STACK_PROFILE=cluster with the cluster's settings: ./dev env).
// Both clocks are this machine's. Writes bench/results/cases-<time>.json and bench/CASES.md.
//   node bench/cases.ts [--accounts 200]
//   node bench/cases.ts --accounts 1 --results-dir /tmp --no-markdown     # a smoke run that changes no report
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import type { AuditEntry } from '../contracts/audit.ts';
import { repoRoot } from '../common/env.ts';
import { startPlatform, type Platform } from '../harness/platform.ts';
import { config, isolatedRedis, produce, stackProfile, uniqueId, waitFor } from '../harness/stack.ts';
import { caseWorkflowId, defaultPolicy } from '../contracts/case.ts';
import type { AlertSignal } from '../contracts/alert.ts';
import { log, round, scrape, summarise } from './lib.ts';
import { machineInfo } from './machine.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';

const opts = new Command('bench-cases')
  .option('--accounts <n>', 'accounts alerting at once', (v) => Number(v), 200)
  .option('--timeout-seconds <n>', 'give up after', (v) => Number(v), 240)
  .option('--results-dir <dir>', 'where the JSON report goes', `${repoRoot}bench/results`)
  .option('--no-markdown', 'do not rewrite bench/CASES.md')
  .parse()
  .opts<{ accounts: number; timeoutSeconds: number; resultsDir: string; markdown: boolean }>();

const alertsPerAccount = defaultPolicy.reviewAfter + 1;
const started = new Date();
let platform: Platform | undefined;
const connection = await Connection.connect(temporalConnectionOptions(config));
const client = new Client({ connection });
const { db, redis } = await isolatedRedis();
const prefix = uniqueId('BCASE');
const accounts = Array.from({ length: opts.accounts }, (_, i) => `${prefix}_${i}`);

try {
  platform = await startPlatform({ redisDb: db, partitions: 6, taskQueuePrefix: 'bench-cases-' });
  const { topic } = platform;

  const t0 = Date.now() - 5 * 60_000;
  const messages = accounts.flatMap((acc) =>
    Array.from({ length: alertsPerAccount * 3 }, (_, i) => ({
      key: acc,
      value: JSON.stringify({ transaction_id: `${acc}-${i}`, sender_account_id: acc, receiver_account_id: 'SHOP', amount: 10 + i, currency: 'EUR', region: 'eu-west', timestamp: t0 + i * 1000 }),
    })),
  );
  log(`producing ${messages.length} payments: ${opts.accounts} accounts x ${alertsPerAccount} alerts, all at once`);
  const producedAt = Date.now();
  await produce(topic, messages);

  const trails = new Map<string, AuditEntry[]>();
  await waitFor('every account to reach its first action', async () => {
    for (const acc of accounts) {
      if (trails.has(acc)) continue;
      const entries = (await redis.xrange(`fraud:audit:account:${acc}`, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as AuditEntry);
      if (entries.some((e) => e.type === 'action' && (e.data as { action?: string }).action === 'MANUAL_REVIEW')) trails.set(acc, entries);
    }
    return trails.size === accounts.length;
  }, opts.timeoutSeconds * 1000, 500);
  const doneAt = Date.now();

  // The signaller's own view: alert written -> signal accepted by Temporal (histogram buckets, upper bounds).
  const m = await scrape(platform.detector.current!.port);
  const buckets = [...m.entries()]
    .filter(([k]) => k.startsWith('signaller_alert_to_signal_seconds_bucket'))
    .map(([k, v]) => ({ le: k.includes('+Inf') ? Number.POSITIVE_INFINITY : Number(/le="([^"]+)"/.exec(k)![1]), n: v }))
    .sort((a, b) => a.le - b.le);
  const accepted = buckets.at(-1)?.n ?? 0;
  const bucketQuantile = (q: number) => buckets.find((b) => b.n >= q * accepted)?.le ?? Number.NaN;
  const signallerView = { alerts: accepted, p50AtMostMs: bucketQuantile(0.5) * 1000, p99AtMostMs: bucketQuantile(0.99) * 1000 };

  const toSignal: number[] = [];
  const toAction: number[] = [];
  for (const entries of trails.values()) {
    const alerts = entries.filter((e) => e.type === 'alert').map((e) => ({ at: Date.parse(e.at), alert: (e.data as { alert: AlertSignal }).alert }));
    for (const a of alerts) if (a.alert.detected_at) toSignal.push(a.at - Date.parse(a.alert.detected_at));
    const crossing = alerts[defaultPolicy.reviewAfter];
    const action = entries.find((e) => e.type === 'action' && (e.data as { action?: string }).action === 'MANUAL_REVIEW')!;
    if (crossing?.alert.detected_at) toAction.push(Date.parse(action.at) - Date.parse(crossing.alert.detected_at));
  }
  const signal = summarise(toSignal);
  const action = summarise(toAction);
  const alertEntries = [...trails.values()].flatMap((entries) => entries.filter((e) => e.type === 'alert'));
  const firstDetected = Math.min(...alertEntries.map((e) => Date.parse((e.data as { alert: AlertSignal }).alert.detected_at ?? e.at)));
  const lastSignalled = Math.max(...alertEntries.map((e) => Date.parse(e.at)));
  const sustained = { alerts: alertEntries.length, seconds: round((lastSignalled - firstDetected) / 1000, 3), perSecond: round(alertEntries.length / Math.max(0.001, (lastSignalled - firstDetected) / 1000), 1) };
  const report = {
    kind: 'cases',
    startedAt: started.toISOString(),
    command: `node bench/cases.ts --accounts ${opts.accounts}`,
    machine: await machineInfo(redis),
    profile: stackProfile,
    settings: {
      accounts: opts.accounts, alertsPerAccount, payments: messages.length, policy: defaultPolicy,
      temporal: stackProfile === 'cluster' ? `Temporal server on PostgreSQL, mTLS, ${config.TEMPORAL_ADDRESS}` : 'temporal CLI dev server (SQLite), loopback',
      kafkaBrokers: config.KAFKA_BOOTSTRAP_SERVERS.length, redis: config.REDIS_SENTINELS.length > 0 ? 'primary + replica behind Sentinels' : 'one node',
    },
    wallSeconds: round((doneAt - producedAt) / 1000, 2),
    alertToSignalAccepted: signallerView,
    alertToSignalled: signal,
    alertToFirstAction: action,
    sustainedAlertsSignalled: sustained,
    targets: { alertToSignalledP99Ms: 100, alertToFirstActionP99Ms: 500 },
  };
  const stamp = started.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const dir = resolve(opts.resultsDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/cases-${stamp}.json`, `${JSON.stringify(report, null, 2)}\n`);
  const file = `${dir}/cases-${stamp}.json`.replace(repoRoot, '');
  if (opts.markdown) writeCasesMarkdown();
  log(`signaller: accepted p50 <= ${signallerView.p50AtMostMs} ms, p99 <= ${signallerView.p99AtMostMs} ms`);
  log(`${stackProfile} profile: ${sustained.alerts} alerts signalled in ${sustained.seconds} s (${sustained.perSecond}/s)`);
  log(`alert -> signalled p50 ${round(signal.p50Ms)} p99 ${round(signal.p99Ms)} ms; alert -> first action p50 ${round(action.p50Ms)} p99 ${round(action.p99Ms)} ms; report ${file}`);
} finally {
  for (const acc of accounts) await client.workflow.getHandle(caseWorkflowId(acc)).terminate('benchmark over').catch(() => undefined);
  await platform?.stop({ graceful: true, deleteTopics: true });
  await redis.flushdb();
  redis.disconnect();
  await connection.close();
}

/** bench/CASES.md from the newest report of each profile and size in bench/results (run the bench once per size). */
function writeCasesMarkdown(): void {
  type Report = {
    startedAt: string; command: string; wallSeconds: number; machine: { cpuModel: string; loadavgAtStart: number[] };
    profile?: 'embedded' | 'cluster';
    settings: { accounts: number; alertsPerAccount: number; payments: number };
    alertToSignalAccepted: { p50AtMostMs: number; p99AtMostMs: number };
    alertToSignalled: ReturnType<typeof summarise>; alertToFirstAction: ReturnType<typeof summarise>;
    sustainedAlertsSignalled?: { alerts: number; seconds: number; perSecond: number };
  };
  const dir = `${repoRoot}bench/results/`;
  const newest = new Map<string, Report & { file: string }>();
  for (const f of readdirSync(dir).filter((x) => /^cases-.*\.json$/.test(x)).sort()) {
    const r = JSON.parse(readFileSync(dir + f, 'utf8')) as Report;
    // Reports from before the cluster profile have no profile: they ran on the embedded one.
    newest.set(`${r.profile ?? 'embedded'} ${r.settings.accounts}`, { ...r, file: `bench/results/${f}` });
  }
  const profileOrder = (p?: string) => (p === 'cluster' ? 1 : 0);
  const runs = [...newest.values()].sort((a, b) => a.settings.accounts - b.settings.accounts || profileOrder(a.profile) - profileOrder(b.profile));
  const ms = (n: number) => `${round(n)} ms`;
  const mark = (p99: number, target: number) => (p99 <= target ? 'met' : '**missed**');
  const rate = (r: Report) => (r.sustainedAlertsSignalled ? `${r.sustainedAlertsSignalled.perSecond}/s` : 'not measured');
  writeFileSync(
    `${repoRoot}bench/CASES.md`,
    [
      '# Case benchmark',
      '',
      'Generated by `npm run bench:cases -- --accounts N` (bench/cases.ts), once per size and profile; the newest report of each is shown. Do not edit by hand.',
      '',
      `N accounts alert at once: ${alertsPerAccount} velocity alerts each, all produced in one go, so every account crosses the review threshold (> ${defaultPolicy.reviewAfter}) together. Real detector with its case signaller, real worker, Redis and Kafka, all on one 2-core machine. **embedded**: the Temporal CLI dev server (SQLite in WAL mode), one Kafka broker, one Redis. **cluster** (\`eval "$(./dev env)"\` after \`./dev up --cluster\`, or the cluster's settings exported): the Temporal server on PostgreSQL with 8 history shards and mTLS, three Kafka brokers with SCRAM, Redis with a replica behind Sentinels; everything on the same 2 cores.`,
      '',
      '| accounts at once | profile | alerts | sustained alerts signalled | alert → signalled p50 | p99 (target 100 ms) | | alert → first action p50 | p99 (target 500 ms; 1 s on the cluster with 200) | | signal accepted p50 / p99 (histogram bounds) | all done after | run |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...runs.map((r) =>
        `| ${r.settings.accounts} | ${r.profile ?? 'embedded'} | ${r.alertToSignalled.count} | ${rate(r)} | ${ms(r.alertToSignalled.p50Ms)} | ${ms(r.alertToSignalled.p99Ms)} | ${mark(r.alertToSignalled.p99Ms, 100)} | ${ms(r.alertToFirstAction.p50Ms)} | ${ms(r.alertToFirstAction.p99Ms)} | ${mark(r.alertToFirstAction.p99Ms, 500)} | ≤ ${r.alertToSignalAccepted.p50AtMostMs} / ≤ ${r.alertToSignalAccepted.p99AtMostMs} ms | ${r.wallSeconds} s | ${r.startedAt}, load ${r.machine.loadavgAtStart.join(' ')}, \`${r.file}\` |`),
      '',
      'How measured: from the audit log the workflows write. "Signalled" is the workflow-task time at which the case handled the alert signal, minus the time the detector wrote the alert to Redis (`detected_at`). It includes the signaller reading the alert stream, signal-with-start (which starts the workflow for a new account) and the worker picking up the task. "First action" is the time the MANUAL_REVIEW activity completed, minus `detected_at` of the alert that crossed the threshold. "Sustained" is the alerts of the run divided by the time from the first alert written to the last one signalled: the rate the case path drains a backlog at. "Signal accepted" comes from the signaller\'s own histogram (alert written → Temporal accepted the signal-with-start), as bucket upper bounds.',
      '',
      'Where the time goes: when many accounts alert at once, latency is the time to drain the backlog at the sustained rate, so it grows with the number of accounts. On this 2-core machine the cluster profile drains no faster than the embedded one (its Temporal server, PostgreSQL, three Kafka brokers, two Redis nodes and three Sentinels share the same 2 cores with the platform), so the cluster targets (5x the dev server\'s rate, p99 alert → first action ≤ 1 s with 200 accounts) are not met here; where the cluster\'s time goes is not yet profiled. An older separate measurement (2026-11-26) put the dev server at 50-75 signal-with-starts per second; the sustained column is today\'s figure.',
      '',
    ].join('\n'),
  );
}
