// The export Schedule on the Temporal server: one exportWindowWorkflow run per interval, each exporting the window
// that closed just before its scheduled time. Created or updated at worker start and by `cli export schedule`;
// backfills, pauses and single windows go through here too (cli/export.ts).
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
  type ScheduleSpec,
} from '@temporalio/client';
import { EXPORT_RUN_TIMEOUT, EXPORT_WORKFLOW_TYPE, intervalMs, windowsBetween, type ExportResult, type ExportWindow, type ExportWindowInput, type ExportWindowWorkflow } from '../contracts/export.ts';

export interface ExportScheduleOptions {
  scheduleId: string;
  taskQueue: string;
  intervalMinutes: number;
  /** Minutes after each window's end that its run starts (the spec's offset), so late audit appends are in. */
  delayMinutes: number;
}

/** Nominal time of the run that exports `window`: its end plus the delay. */
export const scheduledTimeOf = (window: ExportWindow, delayMinutes: number) => new Date(Date.parse(window.windowEnd) + delayMinutes * 60_000);

/** Id of the workflow the Schedule starts for a nominal time (the server appends the time in RFC 3339, seconds). */
export const scheduledWorkflowId = (scheduleId: string, nominal: Date) => `${scheduleId}-${nominal.toISOString().replace(/\.\d{3}Z$/, 'Z')}`;

function scheduleParts(o: ExportScheduleOptions) {
  const spec: ScheduleSpec = { intervals: [{ every: `${o.intervalMinutes}m`, offset: `${o.delayMinutes}m` }] };
  const args: [ExportWindowInput] = [{ intervalMinutes: o.intervalMinutes }];
  const action: ScheduleOptionsStartWorkflowAction<ExportWindowWorkflow> = {
    type: 'startWorkflow',
    workflowType: EXPORT_WORKFLOW_TYPE,
    args,
    taskQueue: o.taskQueue,
    // Each run's id is this plus its nominal time: fraud-export-hourly-2026-01-01T11:05:00Z.
    workflowId: o.scheduleId,
    workflowRunTimeout: EXPORT_RUN_TIMEOUT,
    staticSummary: `Export the ${o.intervalMinutes}-minute window before this run's scheduled time`,
  };
  // BUFFER_ALL: runs never overlap, and a run that is still retrying delays the next windows instead of dropping them.
  const policies = { overlap: ScheduleOverlapPolicy.BUFFER_ALL, pauseOnFailure: false };
  return { spec, action, policies };
}

/**
 * Create the Schedule, or bring an existing one's spec, action and policies up to date. Its state (paused, note)
 * is left as operators set it. Idempotent; returns what it did.
 */
export async function ensureExportSchedule(client: Client, o: ExportScheduleOptions): Promise<'created' | 'updated'> {
  const { spec, action, policies } = scheduleParts(o);
  try {
    await client.schedule.create({
      scheduleId: o.scheduleId,
      spec,
      action,
      policies,
      memo: { purpose: 'fraud exports: sender_summary and audit_events per window' },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(o.scheduleId).update((prev: ScheduleDescription) => ({ ...prev, spec, action, policies }));
  return 'updated';
}

/**
 * Ask the Schedule to run every window in [from, to) now, one after another (BUFFER_ALL), as if it had run at each
 * window's scheduled time. `from` and `to` must be window boundaries. Returns the windows and their workflow ids.
 */
export async function backfillExport(
  client: Client,
  o: ExportScheduleOptions & { from: Date; to: Date },
): Promise<Array<ExportWindow & { workflowId: string }>> {
  const windows = windowsBetween(o.from, o.to, o.intervalMinutes);
  if (windows.length === 0) return [];
  const first = scheduledTimeOf(windows[0]!, o.delayMinutes);
  const last = scheduledTimeOf(windows[windows.length - 1]!, o.delayMinutes);
  // The range is evaluated against the spec; a second's margin each side holds whether its ends are inclusive or not.
  const margin = Math.min(1000, intervalMs(o.intervalMinutes) / 4);
  await client.schedule.getHandle(o.scheduleId).backfill({
    start: new Date(first.getTime() - margin),
    end: new Date(last.getTime() + margin),
    overlap: ScheduleOverlapPolicy.BUFFER_ALL,
  });
  return windows.map((w) => ({ ...w, workflowId: scheduledWorkflowId(o.scheduleId, scheduledTimeOf(w, o.delayMinutes)) }));
}

export interface WindowOutcome {
  workflowId: string;
  status: string;
  result?: ExportResult;
  error?: string;
}

/** Wait for the run of `workflowId` that started at or after `since` to close. */
export async function waitForRun(client: Client, workflowId: string, since: Date, timeoutMs: number): Promise<WindowOutcome> {
  const deadline = Date.now() + timeoutMs;
  const handle = client.workflow.getHandle<ExportWindowWorkflow>(workflowId);
  for (;;) {
    const d = await handle.describe().catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (d && d.startTime.getTime() >= since.getTime() - 5_000 && d.status.name !== 'RUNNING') {
      if (d.status.name === 'COMPLETED') return { workflowId, status: d.status.name, result: await client.workflow.getHandle<ExportWindowWorkflow>(workflowId, d.runId).result() };
      const error = await client.workflow.getHandle(workflowId, d.runId).result().then(() => undefined, (e: Error) => (e.cause as Error | undefined)?.message ?? e.message);
      return { workflowId, status: d.status.name, ...(error ? { error } : {}) };
    }
    if (Date.now() > deadline) return { workflowId, status: d ? `${d.status.name} (still waiting at the deadline)` : 'NOT STARTED (still waiting at the deadline)' };
    await new Promise((r) => setTimeout(r, 500));
  }
}
