// `fraud export ...`: the export Schedule from the command line: create or update it, run one window now, backfill
// a range through the Schedule, pause and resume, show its state.
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { z } from 'zod';
import { loadConfig } from '../common/env.ts';
import { cliExportConfigSchema } from '../common/config.ts';
import { backfillExport, ensureExportSchedule, waitForRun, type ExportScheduleOptions, type WindowOutcome } from '../common/export-schedule.ts';
import { EXPORT_RUN_TIMEOUT, EXPORT_WORKFLOW_TYPE, invalidWindowStart, manualExportWorkflowId, windowFrom, type ExportResult, type ExportWindowWorkflow } from '../contracts/export.ts';

type WithTemporal = <T>(fn: (client: Client) => Promise<T>) => Promise<T>;

/** A window boundary from the command line, or an error saying why not. */
function boundary(value: string, what: string, intervalMinutes: number): Date {
  const why = invalidWindowStart(value, intervalMinutes);
  if (why) throw new Error(`${what}: ${why}`);
  return new Date(value);
}

const tablesLine = (r: ExportResult) => Object.entries(r.tables).map(([t, n]) => `${t} ${n}`).join(', ');

const outcomeLine = (o: WindowOutcome) =>
  o.result ? `${o.result.windowStart}  ${o.status}  ${tablesLine(o.result)}  -> ${o.result.sink} ${o.result.destination}` : `${o.workflowId}  ${o.status}${o.error ? `: ${o.error}` : ''}`;

export function registerExportCommands(program: Command, temporal: WithTemporal): void {
  // Read only when an export command runs, so the other commands do not depend on these variables.
  let cached: z.output<typeof cliExportConfigSchema> | undefined;
  const config = () => (cached ??= loadConfig(cliExportConfigSchema, 'cli'));
  const scheduleOptions = (): ExportScheduleOptions => {
    const c = config();
    return { scheduleId: c.EXPORT_SCHEDULE_ID, taskQueue: c.TEMPORAL_TASK_QUEUE, intervalMinutes: c.EXPORT_INTERVAL_MINUTES, delayMinutes: c.EXPORT_DELAY_MINUTES };
  };
  const withSchedule = <T>(fn: (client: Client) => Promise<T>) =>
    temporal(async (client) => {
      try {
        return await fn(client);
      } catch (err) {
        if (err instanceof ScheduleNotFoundError) {
          throw new Error(`no export Schedule ${config().EXPORT_SCHEDULE_ID}: create it with \`export schedule\` (a worker also creates it at start)`);
        }
        throw err;
      }
    });

  const cmd = program
    .command('export')
    .description('scheduled exports of per-sender alert summaries and audit events (BigQuery or NDJSON files)');

  cmd
    .command('schedule')
    .description('create the export Schedule, or bring its interval and action up to date (paused state is kept)')
    .action(async () => {
      const o = scheduleOptions();
      const what = await temporal((client) => ensureExportSchedule(client, o));
      process.stdout.write(
        `export schedule ${o.scheduleId} ${what}: every ${o.intervalMinutes} min, ${o.delayMinutes} min after each window closes, on task queue ${o.taskQueue}\n`,
      );
    });

  cmd
    .command('status')
    .description("the Schedule's state, next runs and recent runs")
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const o = scheduleOptions();
      const d = await withSchedule((client) => client.schedule.getHandle(o.scheduleId).describe());
      const summary = {
        scheduleId: d.scheduleId,
        paused: d.state.paused,
        note: d.state.note,
        intervals: d.spec.intervals,
        overlap: d.policies.overlap,
        taskQueue: d.action.taskQueue,
        nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
        recentRuns: d.info.recentActions.slice(-5).map((a) => ({ scheduledAt: a.scheduledAt.toISOString(), workflowId: a.action.workflow.workflowId })),
        running: d.info.runningActions.map((a) => a.workflow.workflowId),
      };
      process.stdout.write(
        `${opts.json ? JSON.stringify(summary, null, 2) : [
          `schedule ${summary.scheduleId}: ${summary.paused ? `PAUSED${summary.note ? ` (${summary.note})` : ''}` : 'active'}, overlap ${summary.overlap}, task queue ${summary.taskQueue}`,
          `  next runs:   ${summary.nextRuns.join(', ') || 'none'}`,
          `  running:     ${summary.running.join(', ') || 'none'}`,
          '  recent runs:',
          ...summary.recentRuns.map((r) => `    ${r.scheduledAt}  ${r.workflowId}`),
        ].join('\n')}\n`,
      );
    });

  cmd
    .command('run')
    .description('export one window now and wait for it (re-running a window replaces its rows)')
    .requiredOption('--window <start>', 'ISO start of the window, e.g. 2026-01-01T10:00:00Z')
    .option('--json', 'machine-readable output')
    .action(async (opts: { window: string; json?: boolean }) => {
      const c = config();
      const start = boundary(opts.window, '--window', c.EXPORT_INTERVAL_MINUTES);
      const window = windowFrom(start, c.EXPORT_INTERVAL_MINUTES);
      if (Date.parse(window.windowEnd) > Date.now()) throw new Error(`window ${window.windowStart} .. ${window.windowEnd} has not closed yet`);
      const result = await temporal(async (client) => {
        const handle = await client.workflow.start<ExportWindowWorkflow>(EXPORT_WORKFLOW_TYPE, {
          taskQueue: c.TEMPORAL_TASK_QUEUE,
          workflowId: manualExportWorkflowId(window.windowStart),
          args: [{ windowStart: window.windowStart, intervalMinutes: c.EXPORT_INTERVAL_MINUTES }],
          // The same window already running: wait for that run instead of starting a second one.
          workflowIdConflictPolicy: 'USE_EXISTING',
          workflowRunTimeout: EXPORT_RUN_TIMEOUT,
        });
        return handle.result();
      });
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${window.windowStart} .. ${window.windowEnd}: ${tablesLine(result)} -> ${result.sink} ${result.destination}\n`);
    });

  cmd
    .command('backfill')
    .description('run every window in [from, to) through the Schedule, one after another')
    .requiredOption('--from <start>', 'ISO start of the first window')
    .requiredOption('--to <end>', 'ISO end of the last window (exclusive)')
    .option('--wait', 'wait for every window to finish and print its counts')
    .option('--timeout <minutes>', 'with --wait: how long to wait', '60')
    .action(async (opts: { from: string; to: string; wait?: boolean; timeout: string }) => {
      const o = scheduleOptions();
      const from = boundary(opts.from, '--from', o.intervalMinutes);
      const to = boundary(opts.to, '--to', o.intervalMinutes);
      if (to.getTime() <= from.getTime()) throw new Error('--to must be after --from');
      if (to.getTime() > Date.now()) throw new Error(`--to ${to.toISOString()} is in the future: only closed windows can be exported`);
      const failed = await withSchedule(async (client) => {
        const requestedAt = new Date();
        const runs = await backfillExport(client, { ...o, from, to });
        process.stdout.write(`backfill of ${runs.length} window(s) requested on schedule ${o.scheduleId}:\n${runs.map((r) => `  ${r.windowStart}  ${r.workflowId}`).join('\n')}\n`);
        if (!opts.wait) return 0;
        const deadline = Date.now() + Number(opts.timeout) * 60_000;
        let bad = 0;
        for (const r of runs) {
          const outcome = await waitForRun(client, r.workflowId, requestedAt, Math.max(0, deadline - Date.now()));
          if (outcome.status !== 'COMPLETED') bad++;
          process.stdout.write(`  ${outcomeLine(outcome)}\n`);
        }
        return bad;
      });
      if (failed > 0) throw new Error(`${failed} window(s) did not complete`);
    });

  cmd
    .command('pause')
    .description('pause the Schedule (no new runs until resumed; backfills and `export run` still work)')
    .option('--note <text>', 'why, shown in the Web UI and by `export status`', 'paused from the CLI')
    .action(async (opts: { note: string }) => {
      const o = scheduleOptions();
      await withSchedule((client) => client.schedule.getHandle(o.scheduleId).pause(opts.note));
      process.stdout.write(`export schedule ${o.scheduleId} paused: ${opts.note}\n`);
    });

  cmd
    .command('resume')
    .description('resume the Schedule')
    .option('--note <text>', 'why', 'resumed from the CLI')
    .action(async (opts: { note: string }) => {
      const o = scheduleOptions();
      await withSchedule((client) => client.schedule.getHandle(o.scheduleId).unpause(opts.note));
      process.stdout.write(`export schedule ${o.scheduleId} resumed\n`);
    });
}
