// The export activity: reads one window of the audit log and hands its rows to a sink (BigQuery, or NDJSON files),
// which replaces whatever that window held before. The rows are a pure function of the audit entries whose `at`
// lies in [windowStart, windowEnd), plus the run's sync time, so retries, re-runs and backfills write the same rows.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ExportResult, ExportWindow } from '../contracts/export.ts';
import type { AlertSignal } from '../contracts/alert.ts';
import type { AuditLog } from '../common/audit-log.ts';
import type { ExportActivities } from '../contracts/activities.ts';
import { FailureType } from '../contracts/failures.ts';
import type { AuditEntry } from '../contracts/audit.ts';

/** Per sender and window: the reference guide's hourly summary (`alert_count_1h`, `peak_velocity`, `sync_time`). */
export interface SenderSummaryRow {
  window_start: string;
  window_end: string;
  sender_account_id: string;
  /** Distinct alerts recorded in the window (named as in the guide; the window is one hour by default). */
  alert_count_1h: number;
  /** Highest `velocity_count` among those alerts. */
  peak_velocity: number;
  /** When this export ran (the guide's CURRENT_TIMESTAMP()). */
  sync_time: string;
}

/** One audit log entry of the window: an alert, or a response to it (stage change, action, decision, clearing). */
export interface AuditEventRow {
  window_start: string;
  entry_id: string;
  account_id: string;
  case_id: string;
  /** The entry's `at` (named so because AT is a reserved word in BigQuery). */
  occurred_at: string;
  type: AuditEntry['type'];
  actor: string;
  detail: string;
  /** The ladder action of `action` / `action_failed` entries. */
  action: string | null;
  /** The alert of `alert` entries. */
  alert_id: string | null;
  velocity_count: number | null;
  /** The entry's `data`, as a JSON string. */
  data: string;
}

export interface WindowRows {
  window: ExportWindow;
  syncTime: string;
  senderSummary: SenderSummaryRow[];
  auditEvents: AuditEventRow[];
}

/** Where rows go. `writeWindow` replaces the window's rows in every table: running it twice leaves one copy. */
export interface ExportSink {
  readonly kind: ExportResult['sink'];
  readonly destination: string;
  writeWindow(rows: WindowRows): Promise<void>;
}

export const EXPORT_TABLES = { senderSummary: 'sender_summary', auditEvents: 'audit_events' } as const;

const alertOf = (e: AuditEntry): Partial<AlertSignal> | undefined =>
  e.type === 'alert' && e.data.alert && typeof e.data.alert === 'object' ? (e.data.alert as Partial<AlertSignal>) : undefined;

/** The rows of one window, from its audit entries (already filtered to the window). Pure. */
export function buildWindowRows(window: ExportWindow, entries: readonly AuditEntry[], syncTime: Date): WindowRows {
  const sync = syncTime.toISOString();
  const sorted = [...entries].sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const auditEvents: AuditEventRow[] = [];
  const seenEntries = new Set<string>();
  const perSender = new Map<string, { alerts: Set<string>; peak: number }>();
  for (const e of sorted) {
    if (seenEntries.has(e.id)) continue;
    seenEntries.add(e.id);
    const alert = alertOf(e);
    const velocity = typeof alert?.velocity_count === 'number' && Number.isFinite(alert.velocity_count) ? Math.trunc(alert.velocity_count) : null;
    const action = typeof e.data.action === 'string' ? e.data.action : null;
    auditEvents.push({
      window_start: window.windowStart,
      entry_id: e.id,
      account_id: e.accountId,
      case_id: e.caseId,
      occurred_at: new Date(e.at).toISOString(),
      type: e.type,
      actor: e.actor,
      detail: e.detail,
      action,
      alert_id: typeof alert?.alert_id === 'string' ? alert.alert_id : null,
      velocity_count: velocity,
      data: JSON.stringify(e.data),
    });
    if (e.type !== 'alert') continue;
    const sender = typeof alert?.sender_account_id === 'string' ? alert.sender_account_id : e.accountId;
    const s = perSender.get(sender) ?? { alerts: new Set<string>(), peak: 0 };
    // An alert counts once even if it were recorded twice (the case workflow already dedupes re-deliveries).
    s.alerts.add(typeof alert?.alert_id === 'string' ? alert.alert_id : e.id);
    s.peak = Math.max(s.peak, velocity ?? 0);
    perSender.set(sender, s);
  }
  const senderSummary = [...perSender.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sender, s]): SenderSummaryRow => ({
      window_start: window.windowStart,
      window_end: window.windowEnd,
      sender_account_id: sender,
      alert_count_1h: s.alerts.size,
      peak_velocity: s.peak,
      sync_time: sync,
    }));
  return { window, syncTime: sync, senderSummary, auditEvents };
}

export interface ExportDeps {
  audit: AuditLog;
  sink: ExportSink;
  /** The export's clock (sync_time); tests pin it. */
  now?: () => Date;
}

export function createExportActivities({ audit, sink, now = () => new Date() }: ExportDeps): ExportActivities {
  return {
    async exportWindow(window: ExportWindow): Promise<ExportResult> {
      const start = new Date(window.windowStart);
      const end = new Date(window.windowEnd);
      if (!(start.getTime() < end.getTime())) {
        // Retrying cannot make the window valid: fail the run at once.
        throw ApplicationFailure.nonRetryable(`empty or inverted window ${window.windowStart} .. ${window.windowEnd}`, FailureType.InvalidExportWindow);
      }
      // Heartbeats let Temporal notice a dead worker within the heartbeat timeout instead of the whole attempt's.
      const ctx = activityContext();
      const beat = ctx ? setInterval(() => ctx.heartbeat(), 5_000) : undefined;
      let rows: WindowRows;
      try {
        const entries = await audit.inRange(start, end);
        rows = buildWindowRows(window, entries, now());
        await sink.writeWindow(rows);
      } finally {
        clearInterval(beat);
      }
      const tables = { [EXPORT_TABLES.senderSummary]: rows.senderSummary.length, [EXPORT_TABLES.auditEvents]: rows.auditEvents.length };
      ctx?.log.info('export window written', { ...window, sink: sink.kind, destination: sink.destination, tables });
      return { ...window, sink: sink.kind, destination: sink.destination, tables };
    },
  };
}


/** The activity context when running as an activity; undefined when called directly (tests, scripts). */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}
