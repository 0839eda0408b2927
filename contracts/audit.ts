// An entry of the append-only audit log (`fraud:audit:*` streams): written by the case workflow through an
// activity, read by the CLI, the console, the exports and the benchmarks. Workflow-safe.

export const AUDIT_TYPES = ['case_opened', 'alert', 'stage', 'action', 'action_failed', 'review_opened', 'decision', 'sla_breached', 'cleared', 'rejected'] as const;
export type AuditType = (typeof AUDIT_TYPES)[number];

export interface AuditEntry {
  /**
   * Unique and deterministic, derived from what the entry records (caseId#alert:<alert id>, caseId#action:<action>,
   * caseId#stage:<from>-><to>, ...), never from the order entries were made in: a workflow task that is retried with
   * more inputs gives the same entries the same ids, and appending the same entry twice stores it once. Cases opened
   * before these ids number their entries caseId#seq.
   */
  id: string;
  accountId: string;
  caseId: string;
  at: string;
  type: AuditType;
  /** Who: detector, system, analyst:<id>, ops:<id>. */
  actor: string;
  /** What and why, in words. */
  detail: string;
  data: Record<string, unknown>;
}
