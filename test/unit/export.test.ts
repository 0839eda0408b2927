// Export windows and rows: the pure parts of the scheduled export.
import { describe, expect, it } from '@jest/globals';
import { buildWindowRows } from '../../activities/export.ts';
import type { AuditEntry } from '../../contracts/audit.ts';
import { parseConfig } from '../../common/env.ts';
import { workerConfigSchema } from '../../common/config.ts';
import { scheduledTimeOf, scheduledWorkflowId } from '../../common/export-schedule.ts';
import { resolveWindow } from '../../workflows/export.ts';
import { invalidWindowStart, manualExportWorkflowId, windowForScheduledTime, windowsBetween } from '../../contracts/export.ts';

const at = (iso: string) => new Date(iso);

describe('export windows', () => {
  it('when a run is scheduled on or after a boundary, then it exports the window that just closed', () => {
    const hour = { windowStart: '2026-01-01T10:00:00.000Z', windowEnd: '2026-01-01T11:00:00.000Z' };
    expect(windowForScheduledTime(at('2026-01-01T11:00:00Z'), 60)).toStrictEqual(hour);
    expect(windowForScheduledTime(at('2026-01-01T11:05:00Z'), 60)).toStrictEqual(hour); // a 5-minute delay still means the previous hour
    expect(windowForScheduledTime(at('2026-01-01T11:59:59.999Z'), 60)).toStrictEqual(hour);
    expect(windowForScheduledTime(at('2026-01-01T00:15:00Z'), 15)).toStrictEqual({ windowStart: '2026-01-01T00:00:00.000Z', windowEnd: '2026-01-01T00:15:00.000Z' });
  });

  it('when the scheduled time of a window is derived and derived back, then it is the same window', () => {
    for (const [interval, delay] of [[60, 5], [60, 0], [15, 14], [1, 0]] as const) {
      for (const w of windowsBetween(at('2026-03-01T00:00:00Z'), at('2026-03-01T06:00:00Z'), interval)) {
        expect(windowForScheduledTime(scheduledTimeOf(w, delay), interval)).toStrictEqual(w);
      }
    }
    expect(scheduledWorkflowId('fraud-export-hourly', at('2026-01-01T11:05:00Z'))).toBe('fraud-export-hourly-2026-01-01T11:05:00Z');
    expect(manualExportWorkflowId('2026-01-01T10:00:00.000Z')).toBe('fraud-export-manual-2026-01-01T10:00:00Z');
  });

  it('when a window start is not ISO or not aligned, then it is refused with the reason', () => {
    expect(invalidWindowStart('2026-01-01T10:00:00Z', 60)).toBe(undefined);
    expect(invalidWindowStart('2026-01-01T10:45:00+02:00', 15)).toBe(undefined);
    expect(invalidWindowStart('2026-01-01T10:30:00Z', 60)!).toMatch(/not aligned to 60-minute windows \(e\.g\. 2026-01-01T10:00:00\.000Z\)/);
    expect(invalidWindowStart('yesterday', 60)!).toMatch(/not an ISO-8601 time/);
    expect(invalidWindowStart('1767261600000', 60)!).toMatch(/not an ISO-8601 time/);
  });

  it('when a range is split, then it yields every window in [from, to)', () => {
    const ws = windowsBetween(at('2026-01-01T10:00:00Z'), at('2026-01-01T13:00:00Z'), 60);
    expect(ws.map((w) => w.windowStart)).toStrictEqual(['2026-01-01T10:00:00.000Z', '2026-01-01T11:00:00.000Z', '2026-01-01T12:00:00.000Z']);
    expect(windowsBetween(at('2026-01-01T10:00:00Z'), at('2026-01-01T10:00:00Z'), 60).length).toBe(0);
  });

  it('when the workflow has neither a window nor a scheduled time, then it fails without retrying', () => {
    expect(resolveWindow({ intervalMinutes: 60 }, at('2026-01-01T11:05:00Z')).windowStart).toStrictEqual('2026-01-01T10:00:00.000Z');
    expect(resolveWindow({ windowStart: '2026-01-01T08:00:00Z', intervalMinutes: 60 }, undefined).windowEnd).toStrictEqual('2026-01-01T09:00:00.000Z');
    expect(() => resolveWindow({ intervalMinutes: 60 }, undefined)).toThrow(/no window to export/);
    expect(() => resolveWindow({ intervalMinutes: 60 }, undefined)).toThrow(expect.objectContaining({ nonRetryable: true }));
    expect(() => resolveWindow({ windowStart: '2026-01-01T08:30:00Z', intervalMinutes: 60 }, undefined)).toThrow(/not aligned/);
    expect(() => resolveWindow({ intervalMinutes: 0 }, at('2026-01-01T11:05:00Z'))).toThrow(/intervalMinutes/);
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
    expect(rows.senderSummary).toStrictEqual([
      { ...base, sender_account_id: 'ACC_A', alert_count_1h: 2, peak_velocity: 7 },
      { ...base, sender_account_id: 'ACC_B', alert_count_1h: 1, peak_velocity: 4 },
    ]);
    expect(rows.auditEvents.length).toBe(5);
    expect(rows.auditEvents.map((r) => r.occurred_at)).toStrictEqual([...rows.auditEvents.map((r) => r.occurred_at)].sort()); // oldest first
    const action = rows.auditEvents.find((r) => r.type === 'action')!;
    expect(action.action).toBe('MANUAL_REVIEW');
    expect(action.alert_id).toBe(null);
    expect(action.velocity_count).toBe(null);
    expect(JSON.parse(action.data)).toStrictEqual({ action: 'MANUAL_REVIEW' });
    const first = rows.auditEvents[0]!;
    expect([first.entry_id, first.alert_id, first.velocity_count, first.window_start]).toStrictEqual([a1.id, (a1.data.alert as { alert_id: string }).alert_id, 3, window.windowStart]);
  });

  it('when the window has no entries, then there are no rows', () => {
    const rows = buildWindowRows(window, [], at('2026-01-01T11:05:00Z'));
    expect([rows.senderSummary, rows.auditEvents]).toStrictEqual([[], []]);
  });
});

describe('export configuration', () => {
  it('when nothing is set, then exports default to hourly NDJSON files and the worker keeps the Schedule', () => {
    const c = parseConfig(workerConfigSchema, {});
    expect(c.BIGQUERY_PROJECT).toBe(undefined);
    expect(c.BIGQUERY_DATASET).toBe('fraud_analytics');
    expect(c.EXPORT_DIR).toBe('.stack/exports');
    expect(c.EXPORT_INTERVAL_MINUTES).toBe(60);
    expect(c.EXPORT_DELAY_MINUTES).toBe(5);
    expect(c.EXPORT_SCHEDULE_ID).toBe('fraud-export-hourly');
    expect(c.EXPORT_SCHEDULE).toBe('on');
  });

  it('when export variables are wrong, then each is named', () => {
    const call = () => parseConfig(workerConfigSchema, { BIGQUERY_DATASET: 'fraud-analytics', EXPORT_SCHEDULE: 'yes' });
    expect(call).toThrow(/BIGQUERY_DATASET: letters, digits and underscores only/);
    expect(call).toThrow(/EXPORT_SCHEDULE:/);
    expect(() => parseConfig(workerConfigSchema, { EXPORT_INTERVAL_MINUTES: '10', EXPORT_DELAY_MINUTES: '10' })).toThrow(/EXPORT_DELAY_MINUTES: must be less than EXPORT_INTERVAL_MINUTES \(10\)/);
  });
});
