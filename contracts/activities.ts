// The activity surface the workflows see: what the worker registers (activities/) and the workflows call through
// proxyActivities. Workflow-safe: types only.
import type { AuditEntry } from './audit.ts';
import type { ExportResult, ExportWindow } from './export.ts';

export interface CaseActivities {
  appendAudit(input: { entries: AuditEntry[] }): Promise<void>;
  openReviewTask(input: { caseId: string; accountId: string; taskId: string; priority: 'HIGH' | 'CRITICAL'; dueAt: string; alertCount: number }): Promise<string>;
  closeReviewTask(input: { taskId: string; accountId: string }): Promise<void>;
  sendVerificationSms(input: { idempotencyKey: string; caseId: string; accountId: string }): Promise<string>;
  /** Blocks the account's card once per key (one key per case). Histories recorded before the block id was returned hold a string. */
  blockCard(input: { idempotencyKey: string; caseId: string; accountId: string; reason: string }): Promise<BlockCardResult>;
  /**
   * Lifts the block `blockId` if it is still the account's block on file, once per key; otherwise fails non-retryable,
   * saying why. With `blockKey` in place of `blockId`: the block made with that key, if any was (none: nothing to lift).
   */
  unblockCard(input: { idempotencyKey: string; caseId: string; accountId: string; blockId?: string; blockKey?: string; reason: string }): Promise<string>;
  notifyIssuer(input: { idempotencyKey: string; caseId: string; accountId: string; message: string }): Promise<string>;
  clearAccountState(input: { accountId: string; caseId: string }): Promise<string>;
}

/** What a card block returns: the issuer's id of the block (what lifting it names) and the action's detail. */
export interface BlockCardResult {
  blockId: string;
  detail: string;
}

export interface ExportActivities {
  /** Replace one window's rows in the sink with the audit log's; the same rows however often it runs. */
  exportWindow(window: ExportWindow): Promise<ExportResult>;
}
