// Export windows and rows: the pure parts of the scheduled export.
import assert from 'node:assert/strict';
import { describe, it } from '@jest/globals';
import { buildWindowRows } from '../../activities/export.ts';
import type { AuditEntry } from '../../activities/types.ts';
import { parseConfig } from '../../common/env.ts';
import { workerConfigSchema } from '../../workers/config.ts';
import { scheduledTimeOf, scheduledWorkflowId } from '../../workers/export-schedule.ts';
import { resolveWindow } from '../../workflows/export.ts';
import { invalidWindowStart, manualExportWorkflowId, windowForScheduledTime, windowsBetween } from '../../workflows/export-window.ts';

const at = (iso: string) => new Date(iso);

describe('export windows', () => {
  it('when a run is scheduled on or after a boundary, then it exports the window that just closed', () => {
    const hour = { windowStart: '2026-01-01T10:00:00.000Z', windowEnd: '2026-01-01T11:00:00.000Z' };
    assert.deepEqual(windowForScheduledTime(at('2026-01-01T11:00:00Z'), 60), hour);
    assert.deepEqual(windowForScheduledTime(at('2026-01-01T11:05:00Z'), 60), hour, 'a 5-minute delay still means the previous hour');
    assert.deepEqual(windowForScheduledTime(at('2026-01-01T11:59:59.999Z'), 60), hour);
    assert.deepEqual(windowForScheduledTime(at('2026-01-01T00:15:00Z'), 15), { windowStart: '2026-01-01T00:00:00.000Z', windowEnd: '2026-01-01T00:15:00.000Z' });
  });

  it('when the scheduled time of a window is derived and derived back, then it is the same window', () => {
    for (const [interval, delay] of [[60, 5], [60, 0], [15, 14], [1, 0]] as const) {
      for (const w of windowsBetween(at('2026-03-01T00:00:00Z'), at('2026-03-01T06:00:00Z'), interval)) {
        assert.deepEqual(windowForScheduledTime(scheduledTimeOf(w, delay), interval), w);
      }
    }
    assert.equal(scheduledWorkflowId('fraud-export-hourly', at('2026-01-01T11:05:00Z')), 'fraud-export-hourly-2026-01-01T11:05:00Z');
    assert.equal(manualExportWorkflowId('2026-01-01T10:00:00.000Z'), 'fraud-export-manual-2026-01-01T10:00:00Z');
  });

  it('when a window start is not ISO or not aligned, then it is refused with the reason', () => {
    assert.equal(invalidWindowStart('2026-01-01T10:00:00Z', 60), undefined);
    assert.equal(invalidWindowStart('2026-01-01T10:45:00+02:00', 15), undefined);
    assert.match(invalidWindowStart('2026-01-01T10:30:00Z', 60)!, /not aligned to 60-minute windows \(e\.g\. 2026-01-01T10:00:00\.000Z\)/);
    assert.match(invalidWindowStart('yesterday', 60)!, /not an ISO-8601 time/);
    assert.match(invalidWindowStart('1767261600000', 60)!, /not an ISO-8601 time/);
  });

  it('when a range is split, then it yields every window in [from, to)', () => {
    const ws = windowsBetween(at('2026-01-01T10:00:00Z'), at('2026-01-01T13:00:00Z'), 60);
    assert.deepEqual(ws.map((w) => w.windowStart), ['2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z', '2026-01-01T12:00:00.000Z']);
    assert.equal(windowsBetween(at('2026-01-01T10:00:00Z'), at('2026-01-01T10:00:00Z'), 60).length, 0);
  });

  it('when the workflow has neither a window nor a scheduled time, then it fails without retrying', () => {
    assert.deepEqual(resolveWindow({ intervalMinutes: 60 }, at('2026-01-01T11:05:00Z')).windowStart, '2026-01-01T10:00:00.000Z');
    assert.deepEqual(resolveWindow({ windowStart: '2026-01-01T08:00:00Z', intervalMinutes: 60 }, undefined).windowEnd, '2026-01-01T09:00:00.000Z');
    assert.throws(() => resolveWindow({ intervalMinutes: 60 }, undefined), (e: Error & { nonRetryable?: boolean }) => e.nonRetryable === true && /no window to export/.test(e.message));
    assert.throws(() => resolveWindow({ windowStart: '2026-01-01T08:30:00Z', intervalMinutes: 60 }, undefined), /not aligned/);
    assert.throws(() => resolveWindow({ intervalMinutes: 0 }, at('2026-01-01T11:05:00Z')), /intervalMinutes/);
  });
});

describe('export rows', () => {
  const window = { windowStart: '2026-01-01T10:00:00.000Z', windowEnd: '2026-01-01T11:00:00.000Z' };
  let seq = 0;
  const alert = (account: string, velocity: number, atIso: string, alertId = `va_${account}_${seq}`): AuditEntry => ({
    id: `case-${account}#${++seq}`, accountId: account, caseId: `case-${account}`, at: atIso, type: 'alert', actor: 'detector', detail: 'velocity alert',
    data: { alert: { alert_id: alertId, sender_account_id: account, velocity_count: velocity }, stage: 'MONITORING', alertCount: 1 },
  });

  it('when alerts and actions are summarised, then each sender gets its distinct alert count and peak velocity', () => {
    const a1 = alert('ACC_A', 3, '2026-01-01T10:00:00.000Z');
    const entries: AuditEntry[] = [
      alert('ACC_B', 4, '2026-01-01T10:30:00.000Z'),
      a1,
      { ...a1 }, // the same entry twice: one row, one alert
      { ...alert('ACC_A', 7, '2026-01-01T10:10:00.000Z', 'va_same'), id: 'case-ACC_A#90' },
      { ...alert('ACC_A', 2, '2026-01-01T10:11:00.000Z', 'va_same'), id: 'case-ACC_A#91' }, // same alert in two entries: counted once
      { id: 'case-ACC_A#99', accountId: 'ACC_A', caseId: 'case-ACC_A', at: '2026-01-01T10:20:00.000Z', type: 'action', actor: 'system', detail: 'MANUAL_REVIEW: queued', data: { action: 'MANUAL_REVIEW' } },
    ];
    const rows = buildWindowRows(window, entries, at('2026-01-01T11:05:01Z'));
    const base = { window_start: window.windowStart, window_end: window.windowEnd, sync_time: '2026-01-01T11:05:01.000Z' };
    assert.deepEqual(rows.senderSummary, [
      { ...base, sender_account_id: 'ACC_A', alert_count_1h: 2, peak_velocity: 7 },
      { ...base, sender_account_id: 'ACC_B', alert_count_1h: 1, peak_velocity: 4 },
    ]);
    assert.equal(rows.auditEvents.length, 5);
    assert.deepEqual(rows.auditEvents.map((r) => r.occurred_at), [...rows.auditEvents.map((r) => r.occurred_at)].sort(), 'oldest first');
    const action = rows.auditEvents.find((r) => r.type === 'action')!;
    assert.equal(action.action, 'MANUAL_REVIEW');
    assert.equal(action.alert_id, null);
    assert.equal(action.velocity_count, null);
    assert.deepEqual(JSON.parse(action.data), { action: 'MANUAL_REVIEW' });
    const first = rows.auditEvents[0]!;
    assert.deepEqual([first.entry_id, first.alert_id, first.velocity_count, first.window_start], [a1.id, (a1.data.alert as { alert_id: string }).alert_id, 3, window.windowStart]);
  });

  it('when the window has no entries, then there are no rows', () => {
    const rows = buildWindowRows(window, [], at('2026-01-01T11:05:00Z'));
    assert.deepEqual([rows.senderSummary, rows.auditEvents], [[], []]);
  });
});

describe('export configuration', () => {
  it('when nothing is set, then exports default to hourly NDJSON files and the worker keeps the Schedule', () => {
    const c = parseConfig(workerConfigSchema, {});
    assert.equal(c.BIGQUERY_PROJECT, undefined);
    assert.equal(c.BIGQUERY_DATASET, 'fraud_analytics');
    assert.equal(c.EXPORT_DIR, '.stack/exports');
    assert.equal(c.EXPORT_INTERVAL_MINUTES, 60);
    assert.equal(c.EXPORT_DELAY_MINUTES, 5);
    assert.equal(c.EXPORT_SCHEDULE_ID, 'fraud-export-hourly');
    assert.equal(c.EXPORT_SCHEDULE, 'on');
  });

  it('when export variables are wrong, then each is named', () => {
    assert.throws(
      () => parseConfig(workerConfigSchema, { BIGQUERY_DATASET: 'fraud-analytics', EXPORT_SCHEDULE: 'yes' }),
      (err: Error) => /BIGQUERY_DATASET: letters, digits and underscores only/.test(err.message) && /EXPORT_SCHEDULE:/.test(err.message),
    );
    assert.throws(
      () => parseConfig(workerConfigSchema, { EXPORT_INTERVAL_MINUTES: '10', EXPORT_DELAY_MINUTES: '10' }),
      /EXPORT_DELAY_MINUTES: must be less than EXPORT_INTERVAL_MINUTES \(10\)/,
    );
  });
});
