// The activity surface the case workflow sees (workflows import this file with `import type` only).

export interface AuditEntry {
  /** Unique and deterministic (caseId#seq): appending the same entry twice stores it once. */
  id: string;
  accountId: string;
  caseId: string;
  at: string;
  type: 'case_opened' | 'alert' | 'stage' | 'action' | 'action_failed' | 'review_opened' | 'decision' | 'sla_breached' | 'cleared';
  /** Who: detector, system, analyst:<id>, ops:<id>. */
  actor: string;
  /** What and why, in words. */
  detail: string;
  data: Record<string, unknown>;
}

export interface CaseActivities {
  appendAudit(input: { entries: AuditEntry[] }): Promise<void>;
  openReviewTask(input: { caseId: string; accountId: string; taskId: string; priority: 'HIGH' | 'CRITICAL'; dueAt: string; alertCount: number }): Promise<string>;
  closeReviewTask(input: { taskId: string; accountId: string }): Promise<void>;
  sendVerificationSms(input: { idempotencyKey: string; caseId: string; accountId: string }): Promise<string>;
  blockCard(input: { idempotencyKey: string; caseId: string; accountId: string; reason: string }): Promise<string>;
  notifyIssuer(input: { idempotencyKey: string; caseId: string; accountId: string; message: string }): Promise<string>;
  clearAccountState(input: { accountId: string; caseId: string }): Promise<string>;
}
