// Reading fraud cases from the client side, shared by the CLI and the console: the open review queue from Temporal
// visibility (search attributes + the workflow's `openReview` memo, no per-case query) and how ages and deadlines
// are shown.
import type { Client } from '@temporalio/client';
import { CASE_WORKFLOW_TYPE, type OpenReviewMemo } from '../contracts/case.ts';
import { FraudAccountId, FraudAlertCount, FraudStage } from '../contracts/search-attributes.ts';

export interface OpenReview extends OpenReviewMemo {
  accountId: string;
  workflowId: string;
  stage: string;
  alertCount: number;
}

export const OPEN_REVIEWS_QUERY =
  `WorkflowType = '${CASE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND FraudStage IN ('MANUAL_REVIEW', 'REQUIRE_3DS', 'BLOCKED')`;

/** Open review tasks from Temporal visibility, most urgent first (CRITICAL before HIGH, then the earliest deadline). */
export async function openReviews(client: Client): Promise<OpenReview[]> {
  const out: OpenReview[] = [];
  for await (const wf of client.workflow.list({ query: OPEN_REVIEWS_QUERY })) {
    const review = wf.memo?.openReview as OpenReviewMemo | undefined;
    if (!review) continue;
    out.push({
      ...review,
      workflowId: wf.workflowId,
      accountId: wf.typedSearchAttributes.get(FraudAccountId) ?? wf.workflowId.replace(/^fraud-account-/, ''),
      stage: wf.typedSearchAttributes.get(FraudStage) ?? '?',
      alertCount: wf.typedSearchAttributes.get(FraudAlertCount) ?? 0,
    });
  }
  const rank = (r: OpenReview) => (r.priority === 'CRITICAL' ? 0 : 1);
  return out.sort((a, b) => rank(a) - rank(b) || Date.parse(a.dueAt) - Date.parse(b.dueAt));
}

const hm = (m: number) => (m < 60 ? `${m}m` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`);

/** How long ago `iso` was: `42m`, `3h05m`. */
export const ago = (iso: string, now = Date.now()) => hm(Math.round((now - Date.parse(iso)) / 60_000));

/** Time left until `iso`: `42m`, `3h05m`, or `overdue 7m`. */
export const left = (iso: string, now = Date.now()) => {
  const m = Math.round((Date.parse(iso) - now) / 60_000);
  return m < 0 ? `overdue ${-m}m` : hm(m);
};
