// One export run: the fraud summary per sender and the raw audit events of one closed time window, written to
// BigQuery (or NDJSON files) by an activity that replaces the window's rows, so running a window again never
// doubles them. A Temporal Schedule (workers/export-schedule.ts) starts one run per interval; the CLI runs single
// windows and backfills ranges through the same Schedule.
import { ApplicationFailure, log, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ExportActivities } from '../contracts/activities.ts';
import { FailureType } from '../contracts/failures.ts';
import { invalidWindowStart, windowForScheduledTime, windowFrom, type ExportResult, type ExportWindow, type ExportWindowInput } from '../contracts/export.ts';
import { ExportWindowStart, TemporalScheduledStartTime } from '../contracts/search-attributes.ts';

const acts = proxyActivities<ExportActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds', // the activity heartbeats every 5 s: a dead worker's attempt is retried soon
  // A failing window (BigQuery unreachable, quota) retries with backoff for up to 45 minutes; each attempt and its
  // error show on the pending activity in the Web UI. Past that the run fails, and stays findable by
  // ExportWindowStart. A run never outlives EXPORT_RUN_TIMEOUT, so one stuck run cannot hold up the Schedule's queue.
  scheduleToCloseTimeout: '45 minutes',
  retry: { initialInterval: '15 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/** The scheduled (nominal) time of this run, when a Schedule started it. */
function scheduledStartTime(): Date | undefined {
  const info = workflowInfo();
  const typed = info.typedSearchAttributes.get(TemporalScheduledStartTime);
  if (typed) return typed;
  // The server writes this attribute without the type metadata typed decoding needs: read the raw value.
  const raw = info.searchAttributes?.[TemporalScheduledStartTime.name]?.[0];
  if (raw === undefined) return undefined;
  const at = new Date(raw as string | Date);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** The window this run exports: the one given, or the closed window the Schedule's nominal time stands for. */
export function resolveWindow(input: ExportWindowInput, scheduledAt: Date | undefined): ExportWindow {
  if (!Number.isInteger(input.intervalMinutes) || input.intervalMinutes < 1) {
    throw ApplicationFailure.nonRetryable(`intervalMinutes must be a whole number ≥ 1 (got ${JSON.stringify(input.intervalMinutes)})`, FailureType.InvalidExportWindow);
  }
  if (input.windowStart !== undefined) {
    const why = invalidWindowStart(input.windowStart, input.intervalMinutes);
    if (why) throw ApplicationFailure.nonRetryable(why, FailureType.InvalidExportWindow);
    return windowFrom(new Date(input.windowStart), input.intervalMinutes);
  }
  if (!scheduledAt) {
    throw ApplicationFailure.nonRetryable('no window to export: pass windowStart, or run the workflow from its Schedule', FailureType.InvalidExportWindow);
  }
  return windowForScheduledTime(scheduledAt, input.intervalMinutes);
}

export async function exportWindowWorkflow(input: ExportWindowInput): Promise<ExportResult> {
  const window = resolveWindow(input, input.windowStart === undefined ? scheduledStartTime() : undefined);
  upsertSearchAttributes([{ key: ExportWindowStart, value: new Date(window.windowStart) }]);
  const result = await acts.exportWindow(window);
  log.info('window exported', { ...window, sink: result.sink, tables: result.tables });
  return result;
}
