// The export's contract: window arithmetic, input and result, shared by the export workflow, its activities, the
// Schedule client and the CLI. Workflow-safe: no imports, no clock of its own.
//
// Windows are half-open [start, end), `intervalMinutes` long and aligned to the Unix epoch, like the intervals of a
// Temporal Schedule spec: with 60 minutes they are the UTC hours. A Schedule run stands for the closed window that
// ended at or before its scheduled (nominal) time, so a retry or a backfill of the same action exports the same rows.

export const EXPORT_WORKFLOW_TYPE = 'exportWindowWorkflow';
/** The export workflow's signature, for typed client calls (workflows/index.ts holds the implementation to it). */
export type ExportWindowWorkflow = (input: ExportWindowInput) => Promise<ExportResult>;

export interface ExportWindowInput {
  /** ISO start of the window, aligned to the interval. Absent when a Schedule runs the workflow. */
  windowStart?: string;
  intervalMinutes: number;
}

export interface ExportWindow {
  /** ISO-8601, UTC, inclusive. */
  windowStart: string;
  /** ISO-8601, UTC, exclusive. */
  windowEnd: string;
}

/** Rows written per table for one window. */
export interface ExportResult extends ExportWindow {
  sink: 'bigquery' | 'ndjson';
  /** Dataset (project.dataset) or folder the rows went to. */
  destination: string;
  tables: Record<string, number>;
}

/**
 * Run timeout of every export run (Schedule and CLI): above the activity's 45-minute retry budget. With BUFFER_ALL
 * a run that can never finish (say, on a task queue nobody polls any more) would otherwise hold back every later one.
 */
export const EXPORT_RUN_TIMEOUT = '1 hour';

/** Id of a window's run started from the CLI: fraud-export-manual-2026-01-01T10:00:00Z. */
export const manualExportWorkflowId = (windowStart: string) => `fraud-export-manual-${new Date(windowStart).toISOString().replace(/\.000Z$/, 'Z')}`;

export const intervalMs = (intervalMinutes: number) => intervalMinutes * 60_000;

/** The start of the window that contains `at`. */
export const windowContaining = (at: Date, intervalMinutes: number): Date => {
  const ms = intervalMs(intervalMinutes);
  return new Date(Math.floor(at.getTime() / ms) * ms);
};

export function windowFrom(start: Date, intervalMinutes: number): ExportWindow {
  return { windowStart: start.toISOString(), windowEnd: new Date(start.getTime() + intervalMs(intervalMinutes)).toISOString() };
}

/**
 * The window a scheduled run stands for: the scheduled time truncated to the interval, minus one interval. A
 * Schedule that runs some minutes past each boundary (spec offset) still exports the window that just closed.
 */
export function windowForScheduledTime(scheduledAt: Date, intervalMinutes: number): ExportWindow {
  const end = windowContaining(scheduledAt, intervalMinutes);
  return windowFrom(new Date(end.getTime() - intervalMs(intervalMinutes)), intervalMinutes);
}

/** Why `windowStart` is not a usable window start, or undefined when it is. */
export function invalidWindowStart(windowStart: string, intervalMinutes: number): string | undefined {
  const at = new Date(windowStart);
  if (!/^\d{4}-\d\d-\d\dT/.test(windowStart) || Number.isNaN(at.getTime())) {
    return `window start ${JSON.stringify(windowStart)} is not an ISO-8601 time such as 2026-01-01T10:00:00Z`;
  }
  if (at.getTime() % intervalMs(intervalMinutes) !== 0) {
    return `window start ${at.toISOString()} is not aligned to ${intervalMinutes}-minute windows (e.g. ${windowContaining(at, intervalMinutes).toISOString()})`;
  }
  return undefined;
}

/** Every window start in [from, to), both aligned to the interval. */
export function windowsBetween(from: Date, to: Date, intervalMinutes: number): ExportWindow[] {
  const out: ExportWindow[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += intervalMs(intervalMinutes)) out.push(windowFrom(new Date(t), intervalMinutes));
  return out;
}
