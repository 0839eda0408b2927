// Sinks of the export: BigQuery (dataset and tables created on first use, each window rewritten by one MERGE per
// table) and newline-delimited JSON files per window (the default without BigQuery, as the reference guide's
// EXPORT DATA writes). Both take the same rows and replace a window's previous rows, so a re-run never doubles them.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BigQuery, type TableField } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { EXPORT_TABLES, type AuditEventRow, type ExportSink, type SenderSummaryRow, type WindowRows } from './export.ts';

// ---- BigQuery ----------------------------------------------------------------------------------------------------

type Column<R> = TableField & { name: Extract<keyof R, string>; type: 'STRING' | 'INT64' | 'TIMESTAMP'; mode: 'REQUIRED' | 'NULLABLE' };

interface TableSpec<R> {
  name: string;
  description: string;
  columns: Array<Column<R>>;
  clustering: Array<Extract<keyof R, string>>;
}

export const SENDER_SUMMARY_TABLE: TableSpec<SenderSummaryRow> = {
  name: EXPORT_TABLES.senderSummary,
  description: 'Velocity fraud alerts per sender and export window (the reference guide\'s hourly summary).',
  columns: [
    { name: 'window_start', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'Start of the export window (inclusive).' },
    { name: 'window_end', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'End of the export window (exclusive).' },
    { name: 'sender_account_id', type: 'STRING', mode: 'REQUIRED', description: 'The flagged sender.' },
    { name: 'alert_count_1h', type: 'INT64', mode: 'REQUIRED', description: 'Distinct velocity alerts recorded in the window.' },
    { name: 'peak_velocity', type: 'INT64', mode: 'REQUIRED', description: 'Highest velocity_count among those alerts.' },
    { name: 'sync_time', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'When the export ran.' },
  ],
  clustering: ['sender_account_id'],
};

export const AUDIT_EVENTS_TABLE: TableSpec<AuditEventRow> = {
  name: EXPORT_TABLES.auditEvents,
  description: 'Raw alerts and case responses (stage changes, actions, decisions, clearing) from the audit log, per export window.',
  columns: [
    { name: 'window_start', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'Start of the export window the entry belongs to.' },
    { name: 'entry_id', type: 'STRING', mode: 'REQUIRED', description: 'Audit entry id (caseId#seq), unique.' },
    { name: 'account_id', type: 'STRING', mode: 'REQUIRED', description: 'Account of the case.' },
    { name: 'case_id', type: 'STRING', mode: 'REQUIRED', description: 'Case (workflow id / first run id).' },
    { name: 'occurred_at', type: 'TIMESTAMP', mode: 'REQUIRED', description: 'The audit entry\'s `at`: when it happened (workflow time).' },
    { name: 'type', type: 'STRING', mode: 'REQUIRED', description: 'alert, case_opened, stage, action, action_failed, decision, sla_breached, cleared, ...' },
    { name: 'actor', type: 'STRING', mode: 'REQUIRED', description: 'Who: detector, system, analyst:<id>, ops:<id>.' },
    { name: 'detail', type: 'STRING', mode: 'REQUIRED', description: 'What and why, in words.' },
    { name: 'action', type: 'STRING', mode: 'NULLABLE', description: 'Ladder action of action / action_failed entries.' },
    { name: 'alert_id', type: 'STRING', mode: 'NULLABLE', description: 'Alert id of alert entries.' },
    { name: 'velocity_count', type: 'INT64', mode: 'NULLABLE', description: 'Payments in the velocity window, for alert entries.' },
    { name: 'data', type: 'STRING', mode: 'REQUIRED', description: 'The entry\'s data as a JSON string.' },
  ],
  clustering: ['account_id', 'type'],
};

export interface BigQuerySinkOptions {
  projectId: string;
  dataset: string;
  /** REST endpoint of an emulator (bqemulator); requests then carry no Google credentials. */
  apiEndpoint?: string;
  /** Dataset location for new datasets and jobs, e.g. US or EU (default: BigQuery's). */
  location?: string;
  /** Time partitioning of both tables on window_start (DAY keeps far under the per-table partition limit). */
  partitioning?: 'DAY' | 'HOUR';
  /** Rows of one table up to this many bytes of JSON are sent inline with the MERGE; more go through a load job. */
  maxInlineBytes?: number;
}

/**
 * Writes each window with one DML MERGE per table: the window's old rows are deleted and its new rows inserted in
 * one atomic statement (no streaming inserts: their insertId dedupe is best effort, and rows sit in the streaming
 * buffer where DML cannot touch them). The rows reach the MERGE as an array-of-STRUCT parameter, or, for a window
 * too large for one request, from a staging table filled by a load job. A window with no rows is a DELETE.
 */
export class BigQuerySink implements ExportSink {
  readonly kind = 'bigquery' as const;
  readonly destination: string;
  readonly bigquery: BigQuery;
  private readonly options: BigQuerySinkOptions;
  private ready: Promise<void> | undefined;

  constructor(options: BigQuerySinkOptions) {
    this.options = options;
    this.destination = `${options.projectId}.${options.dataset}`;
    this.bigquery = new BigQuery({
      projectId: options.projectId,
      ...(options.location ? { location: options.location } : {}),
      ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint, authClient: new PassThroughClient() } : {}),
    });
  }

  /** Create the dataset and both tables if missing (explicit schemas, time-partitioned, clustered). Idempotent. */
  ensureTables(): Promise<void> {
    this.ready ??= this.createMissing().catch((err: unknown) => {
      this.ready = undefined; // try again on the next call
      throw err;
    });
    return this.ready;
  }

  private async createMissing(): Promise<void> {
    const dataset = this.bigquery.dataset(this.options.dataset);
    const [dsExists] = await dataset.exists();
    if (!dsExists) {
      await this.bigquery
        .createDataset(this.options.dataset, {
          ...(this.options.location ? { location: this.options.location } : {}),
          description: 'Fraud platform exports: per-sender alert summaries and the audit trail, per time window.',
        })
        .catch(ignoreAlreadyExists);
    }
    for (const spec of [SENDER_SUMMARY_TABLE, AUDIT_EVENTS_TABLE] as Array<TableSpec<object>>) {
      const table = dataset.table(spec.name);
      const [exists] = await table.exists();
      if (exists) continue;
      await dataset
        .createTable(spec.name, {
          description: spec.description,
          schema: { fields: spec.columns },
          timePartitioning: { type: this.options.partitioning ?? 'DAY', field: 'window_start' },
          clustering: { fields: spec.clustering },
        })
        .catch(ignoreAlreadyExists);
    }
  }

  async writeWindow(rows: WindowRows): Promise<void> {
    await this.ensureTables();
    await this.replaceWindow(SENDER_SUMMARY_TABLE, rows.window.windowStart, rows.senderSummary);
    await this.replaceWindow(AUDIT_EVENTS_TABLE, rows.window.windowStart, rows.auditEvents);
  }

  /** Run one statement as a query job and wait for its result (errors surface here, not as an empty result). */
  async run(query: string, params?: Record<string, unknown>, types?: Record<string, unknown>): Promise<Array<Record<string, unknown>>> {
    const [job] = await this.bigquery.createQueryJob({
      query,
      ...(params ? { params } : {}),
      ...(types ? { types: types as never } : {}),
      ...(this.options.location ? { location: this.options.location } : {}),
    });
    const [rows] = await job.getQueryResults();
    return rows as Array<Record<string, unknown>>;
  }

  /** `dataset.table`, quoted. */
  tableRef(name: string): string {
    return `\`${this.options.dataset}.${name}\``;
  }

  private async replaceWindow<R extends object>(spec: TableSpec<R>, windowStart: string, rows: readonly R[]): Promise<void> {
    const table = this.tableRef(spec.name);
    const ws = this.bigquery.timestamp(new Date(windowStart));
    if (rows.length === 0) {
      await this.run(`DELETE FROM ${table} WHERE window_start = @window_start`, { window_start: ws }, { window_start: 'TIMESTAMP' });
      return;
    }
    const merge = (source: string) =>
      [
        `MERGE ${table} T`,
        `USING (${source}) S`,
        'ON FALSE',
        'WHEN NOT MATCHED BY SOURCE AND T.window_start = @window_start THEN DELETE',
        `WHEN NOT MATCHED THEN INSERT (${spec.columns.map((c) => `\`${c.name}\``).join(', ')}) VALUES (${spec.columns.map((c) => `S.\`${c.name}\``).join(', ')})`,
      ].join('\n');
    const text = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    if (Buffer.byteLength(text) <= (this.options.maxInlineBytes ?? DEFAULT_MAX_INLINE_BYTES)) {
      // Small window: the rows travel as one array-of-STRUCT query parameter.
      const rowType = Object.fromEntries(spec.columns.map((c) => [c.name, c.type]));
      const params = rows.map((r) =>
        Object.fromEntries(
          spec.columns.map((c) => {
            const v = (r as Record<string, unknown>)[c.name];
            return [c.name, c.type === 'TIMESTAMP' && v != null ? this.bigquery.timestamp(new Date(v as string)) : v];
          }),
        ),
      );
      await this.run(merge('SELECT r.* FROM UNNEST(@rows) AS r'), { rows: params, window_start: ws }, { rows: [rowType], window_start: 'TIMESTAMP' });
      return;
    }
    // Large window (query requests are capped at 10 MB): load the rows into a staging table, MERGE from it, drop it.
    const stagingName = `_staging_${spec.name}_${Date.parse(windowStart) / 1000}_${randomBytes(4).toString('hex')}`;
    const dataset = this.bigquery.dataset(this.options.dataset);
    await dataset.createTable(stagingName, {
      schema: { fields: spec.columns.map(({ name, type }) => ({ name, type, mode: 'NULLABLE' })) },
      expirationTime: String(Date.now() + 24 * 3600_000), // a backstop should the drop below never run
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const upload = dataset.table(stagingName).createWriteStream({ sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_APPEND' });
        upload.once('complete', () => resolve());
        upload.once('error', reject);
        upload.end(text);
      });
      await this.run(merge(`SELECT * FROM ${this.tableRef(stagingName)}`), { window_start: ws }, { window_start: 'TIMESTAMP' });
    } finally {
      await dataset.table(stagingName).delete().catch(() => undefined);
    }
  }
}

/** Rows per table up to this size (as JSON) go inline as a query parameter; larger ones through a load job. */
const DEFAULT_MAX_INLINE_BYTES = 2_000_000;

const ignoreAlreadyExists = (err: unknown) => {
  if ((err as { code?: number }).code === 409) return;
  throw err;
};

// ---- NDJSON files ------------------------------------------------------------------------------------------------

/** Folder name of a window: its start, sortable and without colons, e.g. 2026-01-01T10-00Z. */
export const windowFolder = (windowStart: string) => new Date(windowStart).toISOString().replace(/:\d\d\.\d{3}Z$/, 'Z').replace(':', '-');

export interface NdjsonManifest {
  window_start: string;
  window_end: string;
  sync_time: string;
  files: Record<string, { rows: number }>;
}

/**
 * One folder per window under `dir`: sender_summary.ndjson, audit_events.ndjson and manifest.json. The folder is
 * written beside the old one under a temporary name and swapped in by rename, so a reader sees the previous
 * export or the new one, never a mix; a re-run replaces the window.
 */
export class NdjsonSink implements ExportSink {
  readonly kind = 'ndjson' as const;
  readonly destination: string;

  constructor(dir: string) {
    this.destination = dir;
  }

  windowDir(windowStart: string): string {
    return join(this.destination, windowFolder(windowStart));
  }

  async writeWindow(rows: WindowRows): Promise<void> {
    const name = windowFolder(rows.window.windowStart);
    const final = join(this.destination, name);
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmp = join(this.destination, `.tmp-${name}-${tag}`);
    await mkdir(tmp, { recursive: true });
    try {
      await writeDurably(join(tmp, `${EXPORT_TABLES.senderSummary}.ndjson`), ndjson(rows.senderSummary));
      await writeDurably(join(tmp, `${EXPORT_TABLES.auditEvents}.ndjson`), ndjson(rows.auditEvents));
      const manifest: NdjsonManifest = {
        window_start: rows.window.windowStart,
        window_end: rows.window.windowEnd,
        sync_time: rows.syncTime,
        files: {
          [`${EXPORT_TABLES.senderSummary}.ndjson`]: { rows: rows.senderSummary.length },
          [`${EXPORT_TABLES.auditEvents}.ndjson`]: { rows: rows.auditEvents.length },
        },
      };
      await writeDurably(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      await swapIn(tmp, final, join(this.destination, `.old-${name}-${tag}`));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    // Leftovers of runs that died mid-swap.
    for (const f of await readdir(this.destination)) {
      if (f.startsWith(`.old-${name}-`)) await rm(join(this.destination, f), { recursive: true, force: true });
    }
  }
}

const ndjson = (rows: readonly object[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

async function writeDurably(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replace `final` by `tmp` (directories). A concurrent writer of the same window makes us retry; the last one wins. */
async function swapIn(tmp: string, final: string, old: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rename(final, old);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      await rename(tmp, final);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt >= 5) throw err;
    }
  }
  await rm(old, { recursive: true, force: true });
}

// ---- Choosing one --------------------------------------------------------------------------------------------------

export interface ExportSinkConfig {
  BIGQUERY_PROJECT?: string | undefined;
  BIGQUERY_DATASET: string;
  BIGQUERY_API_ENDPOINT?: string | undefined;
  BIGQUERY_LOCATION?: string | undefined;
  EXPORT_DIR: string;
}

/** BigQuery when BIGQUERY_PROJECT is set, NDJSON files under EXPORT_DIR (relative to `root`) otherwise. */
export function exportSinkFromConfig(c: ExportSinkConfig, root: string): ExportSink {
  if (c.BIGQUERY_PROJECT) {
    return new BigQuerySink({
      projectId: c.BIGQUERY_PROJECT,
      dataset: c.BIGQUERY_DATASET,
      ...(c.BIGQUERY_API_ENDPOINT ? { apiEndpoint: c.BIGQUERY_API_ENDPOINT } : {}),
      ...(c.BIGQUERY_LOCATION ? { location: c.BIGQUERY_LOCATION } : {}),
    });
  }
  return new NdjsonSink(resolve(root, c.EXPORT_DIR));
}
