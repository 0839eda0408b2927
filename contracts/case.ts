// The fraud case workflow's contract: its id, type, input, state, and the signals, query and update it takes. Shared
// by the workflow, the detector's signaller, the CLI and the console. Workflow-safe: @temporalio/workflow and zod.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { AlertSignal } from './alert.ts';

export const caseWorkflowId = (accountId: string) => `fraud-account-${accountId}`;
export const CASE_WORKFLOW_TYPE = 'fraudCaseWorkflow';
/** The case workflow's signature, for typed client calls (workflows/index.ts holds the implementation to it). */
export type FraudCaseWorkflow = (input: CaseInput) => Promise<CaseState>;

/** The escalation ladder, in order: each step up acts once (review, SMS, block). BLOCKED is its top. */
export const LADDER = ['MONITORING', 'MANUAL_REVIEW', 'REQUIRE_3DS', 'BLOCKED'] as const;
export type LadderStage = (typeof LADDER)[number];
/** Every stage of a case: the ladder, and CLEARED when ops or an analyst close it. */
export const STAGES = [...LADDER, 'CLEARED'] as const;
export type Stage = (typeof STAGES)[number];
/** Position on the ladder (CLEARED: -1, below every step). */
export const ladderRank = (s: Stage): number => (LADDER as readonly Stage[]).indexOf(s);

export const DECISIONS = ['CONFIRMED_FRAUD', 'FALSE_POSITIVE'] as const;
export type Decision = (typeof DECISIONS)[number];

/** Escalation policy, fixed when the case opens. Counts are "more than": the guide escalates at > 3, > 5, > 10. */
export interface EscalationPolicy {
  reviewAfter: number;
  verifyAfter: number;
  blockAfter: number;
  /** Time an analyst has to decide a review before the case escalates on its own, in ms. */
  reviewSlaMs: number;
  /** Continue as new past this many history events even if Temporal has not suggested it yet. */
  historyLimit?: number;
}

export const defaultPolicy: EscalationPolicy = { reviewAfter: 3, verifyAfter: 5, blockAfter: 10, reviewSlaMs: 4 * 3600_000 };

const text = (what: string, max: number) =>
  z.string({ error: `${what} must be a string` }).trim().min(1, `${what} is empty`).max(max, `${what} is longer than ${max} characters`);

/** `clearAccount` input. Optional, and so are both fields, so that the Web UI's "Send Signal" works with no input. */
export const clearAccountRequestSchema = z
  .object({
    /** Who clears (ops user id). */
    by: text('by', 128).optional(),
    reason: text('reason', 1000).optional(),
  }, { error: 'clearAccount input must be an object such as {"by": "ops-7", "reason": "..."}' })
  .optional()
  .nullable();
export type ClearAccountRequest = NonNullable<z.output<typeof clearAccountRequestSchema>>;

/** `completeReview` input. */
export const completeReviewRequestSchema = z.object({
  taskId: text('taskId', 256),
  decision: z.enum(DECISIONS, { error: (iss) => `invalid decision ${JSON.stringify(iss.input) ?? 'undefined'}: use one of ${DECISIONS.join(', ')}` }),
  analystId: z.string({ error: 'analystId is required' }).trim().min(1, 'analystId is required').max(128, 'analystId is longer than 128 characters'),
  note: z.string({ error: 'note must be a string' }).max(2000, 'note is longer than 2000 characters').optional(),
}, { error: 'a review decision needs { taskId, decision, analystId, note? }' });
export type CompleteReviewRequest = z.output<typeof completeReviewRequestSchema>;

/** The case workflow's start input (continue-as-new carries state and alerts, checked where they were made). */
export const caseInputSchema = z.object({
  accountId: text('accountId', 128),
  policy: z.object({
    reviewAfter: z.number().int().min(0),
    verifyAfter: z.number().int().min(0),
    blockAfter: z.number().int().min(0),
    reviewSlaMs: z.number().int().min(1),
    historyLimit: z.number().int().min(1).optional(),
  }, { error: 'policy must be { reviewAfter, verifyAfter, blockAfter, reviewSlaMs }' }),
}, { error: 'a case needs { accountId, policy }' }).loose();

export interface ReviewTask {
  taskId: string;
  priority: 'HIGH' | 'CRITICAL';
  openedAt: string;
  dueAt: string;
  decision?: { decision: Decision; analystId: string; note: string; decidedAt: string };
  slaBreached?: boolean;
}

export interface ActionRecord {
  action: 'MANUAL_REVIEW' | 'REQUIRE_3DS' | 'BLOCK_CARD' | 'NOTIFY_ISSUER' | 'UNBLOCK_CARD' | 'CLEAR_ACCOUNT';
  status: 'done' | 'failed';
  at: string;
  detail: string;
}

export interface CaseState {
  accountId: string;
  /** Stable across continue-as-new: the first run's id. */
  caseId: string;
  openedAt: string;
  stage: Stage;
  alertCount: number;
  /** Alert ids already counted (dedupe of re-delivered signals). */
  alertIds: string[];
  lastAlert?: AlertSignal;
  review?: ReviewTask;
  actions: ActionRecord[];
  closedAt?: string;
  closedReason?: string;
  /** The issuer refused this case's card block (or there is no card on file): the ladder waits for an operator. */
  blockRefused?: boolean;
  /** This case's card block as the issuer recorded it: what clearing the case lifts. */
  block?: { blockId: string; idempotencyKey: string; at: string };
  /** Sequence of this case's audit entries, for cases whose ids are caseId#seq (before content-derived ids). */
  auditSeq?: number;
  /** How many inputs this case has rejected: the rejections' audit ids are caseId#rejected:<n>. */
  rejectedCount?: number;
}

export interface CaseInput {
  accountId: string;
  policy: EscalationPolicy;
  /** Present when the case continues as new. */
  state?: CaseState;
  /** Alerts that arrived while the previous case was closing: they open this one. */
  carriedAlerts?: AlertSignal[];
}

/** The workflow's memo `openReview`: what the review queue shows without querying each case. */
export interface OpenReviewMemo {
  taskId: string;
  priority: ReviewTask['priority'];
  openedAt: string;
  dueAt: string;
}

export interface CompleteReviewResult {
  stage: Stage;
  decision: Decision;
}

// Signals arrive from anyone who can reach Temporal (the Web UI's Send Signal takes any JSON): the workflow parses
// them (alertSignalSchema, clearAccountRequestSchema) and records what it refuses; the types say what is sent.
export const alertSignal = defineSignal<[AlertSignal]>('alert');
/** Several alerts of one account in one signal, in detection order: what the signaller sends under load. */
export const alertBatchSignal = defineSignal<[AlertSignal[]]>('alerts');
export const clearAccountSignal = defineSignal<[ClearAccountRequest?]>('clearAccount');
export const caseStateQuery = defineQuery<CaseState>('caseState');
export const completeReviewUpdate = defineUpdate<CompleteReviewResult, [CompleteReviewRequest]>('completeReview');
