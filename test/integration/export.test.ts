// Scheduled exports on the real stack: audit entries written to an isolated Redis database with chosen times, exported
// to the BigQuery emulator (bqemulator, stack/bigquery.sh) and to NDJSON files, and checked against figures this test
// computes itself from the raw audit stream. Then the real thing: a worker process, the dev server's Schedule, and
// the CLI's pause, backfill, run and resume; and a window whose export fails until BigQuery is back.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { expectWith } from '../support/expect.ts';
import { Client, Connection } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { AuditLog } from '../../common/audit-log.ts';
import { createExportActivities, type AuditEventRow, type SenderSummaryRow } from '../../activities/export.ts';
import { BigQuerySink, NdjsonSink, type NdjsonManifest } from '../../activities/export-sinks.ts';
import type { AuditEntry } from '../../contracts/audit.ts';
import { repoRoot } from '../../common/env.ts';
import { exportWindowWorkflow } from '../../workflows/export.ts';
import { windowFrom, type ExportWindow } from '../../contracts/export.ts';
import { ExportWindowStart } from '../../contracts/search-attributes.ts';
import type { AlertSignal } from '../../contracts/alert.ts';
import { config, freePort, isolatedRedis, startService, uniqueId, waitFor, type RunningProcess } from '../../harness/stack.ts';
import { temporalConnectionOptions } from '../../common/temporal-connection.ts';

// Always the local emulator, whatever BIGQUERY_* the environment holds: a test never writes to a real project.
const BQ = { projectId: 'fraud-test', apiEndpoint: `http://127.0.0.1:${config.BIGQUERY_PORT}` };
const MINUTE = 60_000;

/** 1-minute windows, the newest ending a minute ago (the audit log is scanned by append time ±15 min). */
function recentWindows(count: number, endsMinutesAgo = 1): ExportWindow[] {
  const lastEnd = Math.floor(Date.now() / MINUTE) * MINUTE - endsMinutesAgo * MINUTE;
  return Array.from({ length: count }, (_, i) => windowFrom(new Date(lastEnd - (count - i) * MINUTE), 1));
}

/**
 * Audit entries shaped like the case workflow's, spread over `windows`: per window a few alerts of three senders
 * with varying velocity, responses (stage, action), an alert exactly at the window's start (inside) and one exactly
 * at its end (inside the next window, not this one).
 */
function auditEntries(windows: ExportWindow[], prefix: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  const seq = new Map<string, number>();
  const entry = (account: string, at: number, type: AuditEntry['type'], data: Record<string, unknown>): AuditEntry => {
    const n = (seq.get(account) ?? 0) + 1;
    seq.set(account, n);
    const caseId = `fraud-account-${account}/run-1`;
    return { id: `${caseId}#${n}`, accountId: account, caseId, at: new Date(at).toISOString(), type, actor: type === 'alert' ? 'detector' : 'system', detail: `${type} ${n}`, data };
  };
  const alert = (account: string, at: number, velocity: number) => {
    const a: AlertSignal = {
      alert_id: `va_${account}_${at}_${velocity}`, sender_account_id: account, velocity_count: velocity, amount: 10 + velocity, currency: 'EUR', region: 'eu-west',
      alert_timestamp: new Date(at - 5000).toISOString(),
    };
    return entry(account, at, 'alert', { alert: a, stage: 'MONITORING', alertCount: seq.get(account) ?? 0 });
  };
  windows.forEach((w, wi) => {
    const start = Date.parse(w.windowStart);
    const end = Date.parse(w.windowEnd);
    out.push(alert(`${prefix}EDGE`, start, 3 + wi));
    out.push(alert(`${prefix}EDGE`, end, 9)); // belongs to the next window
    ['A', 'B', 'C'].forEach((s, si) => {
      const alerts = (wi + si) % 4 + 1;
      for (let k = 0; k < alerts; k++) out.push(alert(`${prefix}${s}`, start + 1000 + (si * 13 + k * 7) * 1000, 3 + ((k * 5 + si + wi) % 7)));
    });
    out.push(entry(`${prefix}A`, start + 50_000, 'stage', { from: 'MONITORING', to: 'MANUAL_REVIEW' }));
    out.push(entry(`${prefix}A`, start + 50_500, 'action', { action: 'MANUAL_REVIEW' }));
  });
  return out;
}

/** The expected figures, computed straight from the raw audit stream in Redis (not through the export's code). */
async function expectedFromAuditLog(redis: Redis, w: ExportWindow) {
  const entries = (await redis.xrange('fraud:audit:all', '-', '+')).map(([, f]) => JSON.parse(f[1]!) as AuditEntry);
  const inWindow = entries.filter((e) => e.at >= w.windowStart && e.at < w.windowEnd); // same-format ISO strings compare as times
  const senders: Record<string, { alert_count_1h: number; peak_velocity: number }> = {};
  const seen = new Set<string>();
  for (const e of inWindow) {
    if (e.type !== 'alert') continue;
    const a = e.data.alert as AlertSignal;
    if (seen.has(a.alert_id)) continue;
    seen.add(a.alert_id);
    const s = (senders[a.sender_account_id] ??= { alert_count_1h: 0, peak_velocity: 0 });
    s.alert_count_1h++;
    s.peak_velocity = Math.max(s.peak_velocity, a.velocity_count);
  }
  return { senders, entryIds: inWindow.map((e) => e.id).sort() };
}

const ts = (v: unknown) => (v && typeof v === 'object' && 'value' in v ? new Date((v as { value: string }).value).toISOString() : v);
const plain = (row: Record<string, unknown>) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, ts(v)]));

async function bigQueryRows(sink: BigQuerySink, w?: ExportWindow) {
  const where = w ? 'WHERE window_start = @ws' : '';
  const params = w ? { ws: sink.bigquery.timestamp(new Date(w.windowStart)) } : undefined;
  const types = w ? { ws: 'TIMESTAMP' } : undefined;
  const summary = (await sink.run(`SELECT * FROM ${sink.tableRef('sender_summary')} ${where}`, params, types)).map(plain) as unknown as SenderSummaryRow[];
  const events = (await sink.run(`SELECT * FROM ${sink.tableRef('audit_events')} ${where}`, params, types)).map(plain) as unknown as AuditEventRow[];
  return { summary, events };
}

const figures = (rows: SenderSummaryRow[]) =>
  Object.fromEntries(rows.map((r) => [r.sender_account_id, { alert_count_1h: r.alert_count_1h, peak_velocity: r.peak_velocity }]));

async function dropDataset(sink: BigQuerySink) {
  await sink.bigquery.dataset(sink.destination.split('.')[1]!).delete({ force: true }).catch(() => undefined);
}

describe('exports to the BigQuery emulator', () => {
  let redis: Redis;
  let audit: AuditLog;
  let sink: BigQuerySink;
  const prefix = uniqueId('BQ_');
  const windows = recentWindows(3);
  const [w1, w2, w3] = windows as [ExportWindow, ExportWindow, ExportWindow];

  beforeAll(async () => {
    ({ redis } = await isolatedRedis());
    audit = new AuditLog(redis);
    await audit.append(auditEntries(windows, prefix));
    sink = new BigQuerySink({ ...BQ, dataset: uniqueId('it_export_') });
  });
  afterAll(async () => {
    if (sink) await dropDataset(sink);
    redis?.disconnect();
  });

  it('when a window is exported twice, then its rows are there once and the per-sender figures equal a count made from the audit log', async () => {
    const acts = createExportActivities({ audit, sink });
    const expected = await expectedFromAuditLog(redis, w1);
    const before = Date.now();
    const first = await acts.exportWindow(w1);
    const second = await acts.exportWindow(w1);
    expect(second.tables).toStrictEqual(first.tables);
    expect(first.tables).toStrictEqual({ sender_summary: Object.keys(expected.senders).length, audit_events: expected.entryIds.length });
    expect(first.sink).toBe('bigquery');

    const { summary, events } = await bigQueryRows(sink);
    expect(figures(summary)).toStrictEqual(expected.senders);
    expect(summary.length).toBe(4); // three senders and the edge account, once each
    expect(events.map((e) => e.entry_id).sort()).toStrictEqual(expected.entryIds); // every audit entry of the window, once
    for (const r of summary) {
      expect(r.window_start).toBe(w1.windowStart);
      expect(r.window_end).toBe(w1.windowEnd);
      expect(Date.parse(r.sync_time) >= before - 1000 && Date.parse(r.sync_time) <= Date.now()).toBeTruthy(); // sync_time is the export run time
    }
    const edge = events.filter((e) => e.account_id === `${prefix}EDGE`);
    expect(edge.map((e) => e.occurred_at)).toStrictEqual([w1.windowStart]); // the entry at the start is in, the one at the end is not
    const action = events.find((e) => e.type === 'action')!;
    expect(action.action).toBe('MANUAL_REVIEW');
    expect(JSON.parse(action.data)).toStrictEqual({ action: 'MANUAL_REVIEW' });
  });

  it('when a window is too large to send inline, then it goes through a staging table with the same result, twice giving one copy', async () => {
    const staged = new BigQuerySink({ ...BQ, dataset: sink.destination.split('.')[1]!, maxInlineBytes: 1 });
    const acts = createExportActivities({ audit, sink: staged });
    await acts.exportWindow(w2);
    await acts.exportWindow(w2);
    const expected = await expectedFromAuditLog(redis, w2);
    const { summary, events } = await bigQueryRows(sink, w2);
    expect(figures(summary)).toStrictEqual(expected.senders);
    expect(events.map((e) => e.entry_id).sort()).toStrictEqual(expected.entryIds);
    expect(events.find((e) => e.type === 'alert')?.velocity_count !== null).toBe(true);
    const [tables] = await sink.bigquery.dataset(sink.destination.split('.')[1]!).getTables();
    expect(tables.map((t) => t.id).sort()).toStrictEqual(['audit_events', 'sender_summary']); // no staging table left behind
  });

  it('when a window has no audit entries, then its export is empty and succeeds, and an emptied window loses its old rows', async () => {
    const acts = createExportActivities({ audit, sink });
    const [empty] = recentWindows(1, 10);
    const r = await acts.exportWindow(empty!);
    expect(r.tables).toStrictEqual({ sender_summary: 0, audit_events: 0 });
    expect(await bigQueryRows(sink, empty)).toStrictEqual({ summary: [], events: [] });

    await acts.exportWindow(w3);
    expect((await bigQueryRows(sink, w3)).summary.length > 0).toBeTruthy();
    const nothing = { inRange: async () => [] } as unknown as AuditLog;
    await createExportActivities({ audit: nothing, sink }).exportWindow(w3);
    expect(await bigQueryRows(sink, w3)).toStrictEqual({ summary: [], events: [] });
    expect((await bigQueryRows(sink, w1)).summary.length > 0).toBeTruthy(); // other windows are untouched
  });

  it('when the tables are created, then they have explicit schemas, window_start partitioning and clustering', async () => {
    const dataset = sink.bigquery.dataset(sink.destination.split('.')[1]!);
    const [summary] = await dataset.table('sender_summary').getMetadata();
    expect(summary.timePartitioning).toStrictEqual({ type: 'DAY', field: 'window_start' });
    expect(summary.clustering).toStrictEqual({ fields: ['sender_account_id'] });
    expect((summary.schema.fields as Array<{ name: string; type: string }>).map((f) => `${f.name}:${f.type.replace('INTEGER', 'INT64')}`)).toStrictEqual(['window_start:TIMESTAMP', 'window_end:TIMESTAMP', 'sender_account_id:STRING', 'alert_count_1h:INT64', 'peak_velocity:INT64', 'sync_time:TIMESTAMP']);
    const [events] = await dataset.table('audit_events').getMetadata();
    expect(events.timePartitioning).toStrictEqual({ type: 'DAY', field: 'window_start' });
    expect((events.schema.fields as Array<{ name: string }>).some((f) => f.name === 'occurred_at')).toBeTruthy();
  });
});

describe('exports to NDJSON files', () => {
  let redis: Redis;
  let audit: AuditLog;
  let dir: string;
  const prefix = uniqueId('ND_');
  const windows = recentWindows(2);
  const [w1, w2] = windows as [ExportWindow, ExportWindow];

  beforeAll(async () => {
    ({ redis } = await isolatedRedis());
    audit = new AuditLog(redis);
    await audit.append(auditEntries(windows, prefix));
    dir = await mkdtemp(join(tmpdir(), 'fraud-exports-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    redis?.disconnect();
  });

  const readWindow = async (sink: NdjsonSink, w: ExportWindow) => {
    const folder = sink.windowDir(w.windowStart);
    const lines = async (f: string) => (await readFile(join(folder, f), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    return {
      summary: (await lines('sender_summary.ndjson')) as unknown as SenderSummaryRow[],
      events: (await lines('audit_events.ndjson')) as unknown as AuditEventRow[],
      manifest: JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8')) as NdjsonManifest,
    };
  };

  it('when a window is exported twice, then its folder holds its rows once, with the audit log\'s figures, and nothing half-written is left', async () => {
    const sink = new NdjsonSink(dir);
    const acts = createExportActivities({ audit, sink });
    await acts.exportWindow(w1);
    const r = await acts.exportWindow(w1);
    expect(r.sink).toBe('ndjson');
    const expected = await expectedFromAuditLog(redis, w1);
    const got = await readWindow(sink, w1);
    expect(figures(got.summary)).toStrictEqual(expected.senders);
    expect(got.events.map((e) => e.entry_id).sort()).toStrictEqual(expected.entryIds);
    expect(got.manifest.files).toStrictEqual({ 'sender_summary.ndjson': { rows: got.summary.length }, 'audit_events.ndjson': { rows: got.events.length } });
    expect(got.manifest.window_start).toBe(w1.windowStart);
    expect(await readdir(dir)).toStrictEqual([sink.windowDir(w1.windowStart).slice(dir.length + 1)]); // one folder, no temporary or old copies
  });

  it('when a window has no audit entries, then it gets empty files and a manifest, not a failure', async () => {
    const sink = new NdjsonSink(dir);
    const [empty] = recentWindows(1, 10);
    const r = await createExportActivities({ audit, sink }).exportWindow(empty!);
    expect(r.tables).toStrictEqual({ sender_summary: 0, audit_events: 0 });
    const got = await readWindow(sink, empty!);
    expect([got.summary, got.events]).toStrictEqual([[], []]);
    expect(got.manifest.files['sender_summary.ndjson']!.rows).toBe(0);
  });

  it('when the same window goes to both sinks, then the rows are the same', async () => {
    const nd = new NdjsonSink(dir);
    const bq = new BigQuerySink({ ...BQ, dataset: uniqueId('it_export_same_') });
    try {
      const now = () => new Date('2030-01-01T00:00:00Z');
      await createExportActivities({ audit, sink: nd, now }).exportWindow(w2);
      await createExportActivities({ audit, sink: bq, now }).exportWindow(w2);
      const files = await readWindow(nd, w2);
      const tables = await bigQueryRows(bq, w2);
      const byKey = <T extends object>(rows: T[], key: keyof T) => [...rows].sort((a, b) => String(a[key]).localeCompare(String(b[key])));
      expect(byKey(tables.summary, 'sender_account_id')).toStrictEqual(byKey(files.summary, 'sender_account_id'));
      expect(byKey(tables.events, 'entry_id')).toStrictEqual(byKey(files.events, 'entry_id'));
    } finally {
      await dropDataset(bq);
    }
  });
});

describe('the export Schedule on the dev server, with a worker and the CLI', () => {
  let connection: Connection;
  let client: Client;
  let redis: Redis;
  let db: number;
  let sink: BigQuerySink;
  const running: RunningProcess[] = [];
  const scheduleId = uniqueId('it-export-');
  const taskQueue = uniqueId('export-q-');
  const prefix = uniqueId('SC_');
  const windows = recentWindows(3);

  const workerEnv = (extra: Record<string, string> = {}) => ({
    REDIS_DB: String(db),
    TEMPORAL_TASK_QUEUE: taskQueue,
    EXPORT_SCHEDULE: 'on',
    EXPORT_SCHEDULE_ID: scheduleId,
    EXPORT_INTERVAL_MINUTES: '1',
    EXPORT_DELAY_MINUTES: '0',
    BIGQUERY_PROJECT: BQ.projectId,
    BIGQUERY_API_ENDPOINT: BQ.apiEndpoint,
    BIGQUERY_DATASET: sink.destination.split('.')[1]!,
    LOG_LEVEL: 'warn',
    ...extra,
  });
  const startWorker = async (extra: Record<string, string> = {}) => {
    const w = await startService('workers/main.ts', workerEnv(extra), { portVar: 'WORKER_HEALTH_PORT', healthTimeoutMs: 90_000 });
    running.push(w);
    return w;
  };
  const cli = async (...args: string[]) => {
    try {
      const r = await promisify(execFile)(`${repoRoot}node_modules/.bin/node`, [`${repoRoot}cli/main.ts`, 'export', ...args], {
        env: { ...process.env, ...workerEnv() },
      });
      return { code: 0, out: r.stdout, err: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout, err: e.stderr };
    }
  };

  beforeAll(async () => {
    connection = await Connection.connect(temporalConnectionOptions(config));
    client = new Client({ connection });
    ({ db, redis } = await isolatedRedis());
    await new AuditLog(redis).append(auditEntries(windows, prefix));
    sink = new BigQuerySink({ ...BQ, dataset: uniqueId('it_export_sched_') });
  });
  afterAll(async () => {
    for (const p of running) await p.kill();
    await client?.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    await connection?.close();
    if (sink) await dropDataset(sink);
    redis?.disconnect();
  });

  it('when three windows are backfilled from the CLI on a paused Schedule, then each is exported once, in turn, with the audit log\'s figures', async () => {
    const worker = await startWorker(); // healthy only once it has created the Schedule

    const paused = await cli('pause', '--note', 'integration test');
    expectWith(paused.err, () => expect(paused.code).toBe(0));
    const status = await cli('status', '--json');
    expectWith(status.err, () => expect(status.code).toBe(0));
    expect((({ paused, note, overlap, taskQueue: q }) => ({ paused, note, overlap, taskQueue: q }))(JSON.parse(status.out) as Record<string, unknown>)).toStrictEqual({ paused: true, note: 'integration test', overlap: 'BUFFER_ALL', taskQueue });

    const from = windows[0]!.windowStart;
    const to = windows[2]!.windowEnd;
    const backfill = await cli('backfill', '--from', from, '--to', to, '--wait', '--timeout', '3');
    expectWith(`${backfill.out}\n${backfill.err}`, () => expect(backfill.code).toBe(0));
    expectWith(backfill.out, () => expect(backfill.out.match(/ COMPLETED /g)?.length).toBe(3));

    const { summary } = await bigQueryRows(sink);
    expect([...new Set(summary.map((r) => r.window_start))].sort()).toStrictEqual(windows.map((w) => w.windowStart)); // three windows
    for (const w of windows) {
      const expected = await expectedFromAuditLog(redis, w);
      expectWith(`figures of ${w.windowStart}`, () => expect(figures(summary.filter((r) => r.window_start === w.windowStart))).toStrictEqual(expected.senders));
      const { events } = await bigQueryRows(sink, w);
      expect(events.map((e) => e.entry_id).sort()).toStrictEqual(expected.entryIds);
    }

    // Each run is tagged with its window, and none overlapped the next.
    const runs = [];
    for (const line of backfill.out.split('\n').filter((l) => /^\s+\S+Z\s+it-export-/.test(l))) {
      const workflowId = line.trim().split(/\s+/)[1]!;
      runs.push(await client.workflow.getHandle(workflowId).describe());
    }
    expect(runs.length).toBe(3);
    expect(runs.map((d) => d.typedSearchAttributes.get(ExportWindowStart)?.toISOString())).toStrictEqual(windows.map((w) => w.windowStart));
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.startTime >= runs[i - 1]!.closeTime!).toBeTruthy(); // BUFFER_ALL: one window after another

    // Running a window again from the CLI replaces it: same figures, no doubles.
    const again = await cli('run', '--window', windows[1]!.windowStart);
    expectWith(again.err, () => expect(again.code).toBe(0));
    expect(again.out).toMatch(/sender_summary 4, audit_events \d+ -> bigquery/);
    const after = await bigQueryRows(sink, windows[1]);
    expect(figures(after.summary)).toStrictEqual((await expectedFromAuditLog(redis, windows[1]!)).senders);

    const resumed = await cli('resume');
    expectWith(resumed.err, () => expect(resumed.code).toBe(0));
    expect((JSON.parse((await cli('status', '--json')).out) as { paused: boolean }).paused).toBe(false);

    // A worker restart updates the Schedule in place and keeps an operator's pause.
    await cli('pause', '--note', 'kept across restarts');
    await worker.stop();
    await startWorker();
    const d = await client.schedule.getHandle(scheduleId).describe();
    expect(d.state.paused).toBe(true);
    expect(d.state.note).toBe('kept across restarts');
  });

  it('when BigQuery is unreachable, then the window\'s export retries with its error on the run, and completes once BigQuery is back', async () => {
    const queue = uniqueId('export-fail-q-');
    const deadEndpoint = `http://127.0.0.1:${await freePort()}`;
    const broken = await startWorker({ TEMPORAL_TASK_QUEUE: queue, EXPORT_SCHEDULE: 'off', BIGQUERY_API_ENDPOINT: deadEndpoint });
    const w = windows[0]!;
    const h = await client.workflow.start(exportWindowWorkflow, {
      taskQueue: queue, workflowId: uniqueId('it-export-retry-'), args: [{ windowStart: w.windowStart, intervalMinutes: 1 }],
    });
    const pending = await waitFor('a second attempt with the failure on the run', async () => {
      const p = (await h.describe()).raw.pendingActivities?.[0];
      return p && (p.attempt ?? 0) >= 2 && p.lastFailure?.message ? p : undefined;
    }, 60_000, 500);
    expect(String(pending.lastFailure?.message)).toMatch(/ECONNREFUSED|fetch failed|connect/i);
    expect((await h.describe()).status.name).toBe('RUNNING');

    await broken.kill();
    await startWorker({ TEMPORAL_TASK_QUEUE: queue, EXPORT_SCHEDULE: 'off' });
    const r = await h.result();
    expect(r.windowStart).toBe(w.windowStart);
    const expected = await expectedFromAuditLog(redis, w);
    expect(figures((await bigQueryRows(sink, w)).summary)).toStrictEqual(expected.senders);
  });
});
