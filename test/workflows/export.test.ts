// The export workflow on Temporal's time-skipping test server, with a fake export activity: which window a run
// exports, the ExportWindowStart search attribute, retries of a failing window, and refusing a run with no window.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { ExportActivities } from '../../contracts/activities.ts';
import { exportWindowWorkflow } from '../../workflows/export.ts';
import type { ExportResult, ExportWindow } from '../../contracts/export.ts';
import { ExportWindowStart, TemporalScheduledStartTime } from '../../contracts/search-attributes.ts';
import { uniqueId } from '../../harness/stack.ts';
import { registerSearchAttributes, timeSkippingEnv, workflowsPath } from '../support/temporal.ts';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
  // TemporalScheduledStartTime is the server's own on a real server; the test server needs it registered so a test
  // can set it the way a Schedule would.
  await registerSearchAttributes(env, [TemporalScheduledStartTime]);
});
afterAll(async () => {
  await env?.teardown();
});

/** A fake export activity that records each window it is asked for and fails the first `failures` attempts. */
function fakeExport(failures = 0) {
  const windows: ExportWindow[] = [];
  let attempts = 0;
  const activities: ExportActivities = {
    async exportWindow(w) {
      attempts++;
      if (attempts <= failures) throw new Error(`BigQuery unavailable (attempt ${attempts})`);
      windows.push(w);
      return { ...w, sink: 'ndjson', destination: '/fake', tables: { sender_summary: 2, audit_events: 5 } } satisfies ExportResult;
    },
  };
  return { activities, windows, attempts: () => attempts };
}

async function withWorker<T>(activities: ExportActivities, body: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueId('export-');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath, activities });
  return worker.runUntil(body(taskQueue));
}

describe('export workflow', () => {
  it('when a window is given, then exactly that window is exported and the run is tagged with ExportWindowStart', async () => {
    const fake = fakeExport();
    await withWorker(fake.activities, async (taskQueue) => {
      const h = await env.client.workflow.start(exportWindowWorkflow, {
        taskQueue, workflowId: uniqueId('fraud-export-manual-'), args: [{ windowStart: '2026-01-01T10:00:00Z', intervalMinutes: 60 }],
      });
      const r = await h.result();
      expect(fake.windows).toStrictEqual([{ windowStart: '2026-01-01T10:00:00.000Z', windowEnd: '2026-01-01T11:00:00.000Z' }]);
      expect(r.tables).toStrictEqual({ sender_summary: 2, audit_events: 5 });
      const d = await h.describe();
      expect(d.typedSearchAttributes.get(ExportWindowStart)?.toISOString()).toBe('2026-01-01T10:00:00.000Z');
    });
  });

  it('when a Schedule starts the run 5 minutes past the hour, then it exports the hour that just closed, not "now minus one hour"', async () => {
    const fake = fakeExport();
    await withWorker(fake.activities, async (taskQueue) => {
      // What the Schedule does: no window in the input, the nominal time as TemporalScheduledStartTime. The
      // test server's clock is elsewhere entirely, so the window can only come from the scheduled time.
      const h = await env.client.workflow.start(exportWindowWorkflow, {
        taskQueue, workflowId: uniqueId('fraud-export-hourly-'), args: [{ intervalMinutes: 60 }],
        typedSearchAttributes: [{ key: TemporalScheduledStartTime, value: new Date('2026-02-03T07:05:00Z') }],
      });
      await h.result();
      expect(fake.windows).toStrictEqual([{ windowStart: '2026-02-03T06:00:00.000Z', windowEnd: '2026-02-03T07:00:00.000Z' }]);
      expect((await h.describe()).typedSearchAttributes.get(ExportWindowStart)?.toISOString()).toBe('2026-02-03T06:00:00.000Z');
    });
  });

  it('when the export fails, then the activity retries with backoff and the same window is exported', async () => {
    const fake = fakeExport(2);
    await withWorker(fake.activities, async (taskQueue) => {
      const h = await env.client.workflow.start(exportWindowWorkflow, {
        taskQueue, workflowId: uniqueId('fraud-export-manual-'), args: [{ windowStart: '2026-01-01T10:00:00Z', intervalMinutes: 60 }],
      });
      await h.result();
      expect(fake.attempts()).toBe(3);
      expect(fake.windows.map((w) => w.windowStart)).toStrictEqual(['2026-01-01T10:00:00.000Z']);
      const history = await h.fetchHistory();
      const started = history.events?.find((e) => e.activityTaskStartedEventAttributes)?.activityTaskStartedEventAttributes;
      expect(started?.attempt).toBe(3); // the history shows the third attempt
    });
  });

  it('when a run has no window and no scheduled time, or a misaligned window, then it fails at once without calling the export', async () => {
    const fake = fakeExport();
    await withWorker(fake.activities, async (taskQueue) => {
      for (const [args, reason] of [
        [{ intervalMinutes: 60 }, /no window to export/],
        [{ windowStart: '2026-01-01T10:30:00Z', intervalMinutes: 60 }, /not aligned to 60-minute windows/],
      ] as const) {
        const h = await env.client.workflow.start(exportWindowWorkflow, { taskQueue, workflowId: uniqueId('fraud-export-bad-'), args: [args] });
        const err = await h.result().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause;
        expect(cause).toBeInstanceOf(ApplicationFailure);
        expect((cause as ApplicationFailure).type).toBe('InvalidExportWindow');
        expect((cause as ApplicationFailure).message).toMatch(reason);
      }
      expect(fake.attempts()).toBe(0);
    });
  });
});
