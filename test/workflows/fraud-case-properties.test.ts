// Property-based test (fast-check) of the per-account case workflow on Temporal's time-skipping test server: random
// sequences of valid alerts (repeated ids among them), hostile alert payloads, clearAccount signals (valid and
// hostile), completeReview updates (valid and hostile) and time skips around the review SLA, against an oracle of
// the contract (contracts/case.ts, contracts/alert.ts) checked after every step and at the end of each sequence.
//
// Every step is followed by settle(): the case's latest run is closed, or idle (its history ends with a completed
// workflow task and no activity in flight). So the steps never race the workflow, except where a step means to
// (clear, then alerts at once). The oracle is written out above runSequence(). The activities are recording fakes
// (test/support/temporal.ts): no retries happen unless a step asks the issuer to refuse a block, so "one call per
// case and action" is exact, and a repeated call is a repeated effect.
//
// The last test pins a bug the property's audit check led to (refused inputs lost from the audit trail when they
// reach a closing case), reproduced deterministically rather than left to the property's timing.
//
// FC_SEED and FC_NUM_RUNS pick the runs (defaults below); a failure prints fast-check's seed, path and shrunk
// sequence, and the trace of what each step sent, got back and sampled. FC_SEED=<seed> FC_PATH=<path> replays it.
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import proto from '@temporalio/proto';
import { WorkflowIdReusePolicy, WorkflowUpdateFailedError, type WorkflowExecutionDescription } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { fraudCaseWorkflow } from '../../workflows/fraud-case.ts';
import {
  LADDER,
  alertBatchSignal,
  alertSignal,
  caseStateQuery,
  completeReviewUpdate,
  ladderRank,
  type CaseState,
  type EscalationPolicy,
  type Stage,
} from '../../contracts/case.ts';
import type { AlertSignal } from '../../contracts/alert.ts';
import type { CaseActivities } from '../../contracts/activities.ts';
import { makeWorker, recordingActivities, timeSkippingEnv, type Call } from '../support/temporal.ts';

const SEED = Number(process.env.FC_SEED ?? 7_340_113);
const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 25);
/** fast-check stops starting new runs (and shrinking) after this long; the runs done still count (at least 5). */
const TIME_LIMIT_MS = Number(process.env.FC_TIME_LIMIT_MS ?? 150_000);

const { EventType } = proto.temporal.api.enums.v1;
const CLOSE_EVENTS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
  EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
]);
const WORKFLOW_TASK_EVENTS = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
]);
const uniqueId = (prefix: string) => `${prefix}${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

// ---- One worker for the whole file; activities record every call, and fail as the current sequence asks ---------

/** What the sequence under test wants of the fake issuer and SMS gateway (sequences run one at a time). */
const current = { refuseBlocks: 0, smsFails: false };
/** Indices into rec.calls of blockCard calls the issuer refused. */
const refusedBlocks = new Set<number>();
const rec = recordingActivities({
  blockCard: () => {
    if (current.refuseBlocks <= 0) return undefined;
    current.refuseBlocks--;
    refusedBlocks.add(rec.calls.length - 1); // recordingActivities pushes the call, then asks us
    return ApplicationFailure.nonRetryable('card unknown to the issuer', 'CardUnknown');
  },
  sendVerificationSms: () => (current.smsFails ? ApplicationFailure.nonRetryable('no phone number on file', 'NoPhoneOnFile') : undefined),
});

/** Set by the known-bug test below: the audit append that carries a case's `cleared` entry waits for `release`. */
let holdCloseAudit: { reached: boolean; release: Promise<void> } | undefined;
const activities: CaseActivities = {
  ...rec.activities,
  async appendAudit(input) {
    await rec.activities.appendAudit(input);
    const hold = holdCloseAudit;
    if (hold && input.entries.some((e) => e.type === 'cleared')) {
      hold.reached = true;
      await hold.release;
    }
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker | undefined;
let running: Promise<void> | undefined;
const taskQueue = uniqueId('tq-props-');
beforeAll(async () => {
  env = await timeSkippingEnv();
  worker = await makeWorker(env, taskQueue, activities);
  running = worker.run();
});
afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await running;
  await env?.teardown();
});

// ---- Steps: small descriptors (readable in a counterexample), turned into payloads when they are sent ----------

/** A valid alert: id `va_<n>` from a small pool (so ids repeat), maybe padded with whitespace (the schema trims). */
type ValidAlert = { n: number; padId: boolean; padSender: boolean; extraKeys: boolean; velocity: number; amount: number; currency: string; detectedAt: boolean };
type HostileAlert =
  | { kind: 'null' | 'undefined' | 'number' | 'string' | 'array_of_nulls' | 'toString' | 'proto' | 'empty_object' | 'huge_id' | 'huge_region' | 'other_account' }
  | { kind: 'missing'; field: AlertField; n: number }
  | { kind: 'wrong'; field: AlertField; variant: number; n: number };
type AlertField = (typeof ALERT_FIELDS)[number];
const ALERT_FIELDS = ['alert_id', 'sender_account_id', 'velocity_count', 'amount', 'currency', 'region', 'alert_timestamp'] as const;

type Step =
  | { t: 'alerts'; via: 'alerts' | 'alert'; alerts: ValidAlert[] }
  | { t: 'hostile_alert'; payload: HostileAlert }
  | { t: 'hostile_batch'; notArray: number }
  | { t: 'mixed_batch'; items: Array<{ valid: ValidAlert } | { hostile: HostileAlert }> }
  | { t: 'clear'; payload: number }
  | { t: 'hostile_clear'; payload: number }
  | { t: 'clear_then_alerts'; payload: number; alerts: ValidAlert[] }
  | { t: 'review'; decision: 'CONFIRMED_FRAUD' | 'FALSE_POSITIVE'; task: 'open' | 'unknown'; analyst: string; note?: string }
  | { t: 'hostile_review'; payload: number }
  | { t: 'sleep'; slaFraction: number; jitterMs: number };

const huge = (n: number) => 'x'.repeat(n);
const ALERT_TIME0 = 1_780_000_000_000;

const validAlert = (accountId: string, a: ValidAlert): Record<string, unknown> => ({
  alert_id: a.padId ? ` \tva_${a.n}\n` : `va_${a.n}`,
  sender_account_id: a.padSender ? `  ${accountId} ` : accountId,
  velocity_count: a.velocity,
  amount: a.amount,
  currency: a.currency,
  region: 'eu-west',
  alert_timestamp: new Date(ALERT_TIME0 + a.n * 1000).toISOString(),
  ...(a.detectedAt ? { detected_at: new Date(ALERT_TIME0 + a.n * 1000 + 5).toISOString() } : {}),
  // Unknown keys, some named like Object.prototype's members: the schema drops them.
  ...(a.extraKeys ? { toString: 'x', valueOf: 1, source: { topic: 'payments' } } : {}),
});
/** The id the case must count a valid alert under: the schema trims it. */
const idOf = (a: ValidAlert) => `va_${a.n}`;

/** Per field, values its schema refuses. */
const WRONG: Record<AlertField, unknown[]> = {
  alert_id: [{ toString: 1 }, 5, '', '   ', null, huge(129)],
  sender_account_id: [{ toString: 1 }, 5, '', 'SOMEONE_ELSE', null],
  velocity_count: ['3', 0, 1.5, -1, null, 1e20],
  amount: ['10', 0, -1, { valueOf: 1 }, null],
  currency: ['eur', 'EURO', 978, '', null],
  region: ['', '  ', 5, { toString: 1 }, huge(129)],
  alert_timestamp: ['not a time', 123, null, '', `2026-01-01T00:00:00Z${huge(30)}`],
};

/** A payload the alert schema refuses, as sent (`undefined`: a signal with no input at all). */
function hostileAlert(accountId: string, h: HostileAlert): unknown {
  switch (h.kind) {
    case 'null': return null;
    case 'undefined': return undefined;
    case 'number': return 42;
    case 'string': return 'va_1';
    case 'array_of_nulls': return [null, null];
    case 'toString': return { toString: 1 };
    // JSON.parse makes "__proto__" an own key (an object literal would set the prototype instead).
    case 'proto': return JSON.parse(`{"__proto__":${JSON.stringify(validAlert(accountId, { n: 1, padId: false, padSender: false, extraKeys: false, velocity: 3, amount: 1, currency: 'EUR', detectedAt: false }))}}`);
    case 'empty_object': return {};
    case 'huge_id': return { ...validAlert(accountId, baseAlert(1)), alert_id: huge(100_000) };
    case 'huge_region': return { ...validAlert(accountId, baseAlert(2)), region: huge(100_000) };
    case 'other_account': return validAlert(`${accountId}_OTHER`, baseAlert(3));
    case 'missing': {
      const v = validAlert(accountId, baseAlert(h.n));
      delete v[h.field];
      return v;
    }
    case 'wrong': {
      const values = WRONG[h.field];
      return { ...validAlert(accountId, baseAlert(h.n)), [h.field]: values[h.variant % values.length] };
    }
  }
}
const baseAlert = (n: number): ValidAlert => ({ n, padId: false, padSender: false, extraKeys: false, velocity: 3, amount: 10, currency: 'EUR', detectedAt: false });

const NOT_ARRAYS: unknown[] = [null, {}, 'va_1', 5, { 0: { alert_id: 'va_1' }, length: 1 }, true];
/** clearAccount inputs the schema takes (`undefined`: no input, as the Web UI's Send Signal can). */
const VALID_CLEARS: unknown[] = [undefined, null, {}, { by: 'ops-1' }, { reason: 'customer called' }, { by: 'ops-2', reason: 'verified' }, { by: ' ops-3 ' }, { unknown: 1 }];
const HOSTILE_CLEARS: unknown[] = [{ by: { length: { toString: 1 } } }, { by: { toString: 1 } }, 'now', 5, true, [], { by: '' }, { by: '   ' }, { reason: '' }, { by: huge(129) }, { reason: huge(1001) }, { by: 5 }, { by: null }, [{ by: 'ops' }]];
/**
 * Found by the property, fixed (contracts/validation.ts), pinned by tests at the end: a string field whose value is an object with a `length` that has no primitive value, such as
 * {"length":{"toString":1}}. zod 4's min/max length checks still run on it after the type check failed, compare
 * that `length` with a number, and throw TypeError out of safeParse; the signal handler throws, the workflow task
 * fails, and is retried with the same signal forever: the case is stuck. (The update validator throwing is a
 * refusal, so completeReview inputs like it stay in the property.)
 */
const LENGTH_TRAP = { length: { toString: 1 } };
/** completeReview inputs the schema refuses, whatever the review's state (`task` is filled in with the open task). */
const HOSTILE_REVIEWS: Array<(task: string) => unknown> = [
  () => null, () => undefined, () => 5, () => 'CONFIRMED_FRAUD', () => [], () => ({ toString: 1 }),
  (task) => ({ taskId: task, decision: 'MAYBE', analystId: 'a1' }),
  (task) => ({ taskId: task, decision: 'confirmed_fraud', analystId: 'a1' }),
  (task) => ({ taskId: task, decision: 'CONFIRMED_FRAUD', analystId: '' }),
  (task) => ({ taskId: task, decision: 'CONFIRMED_FRAUD', analystId: '   ' }),
  (task) => ({ taskId: task, decision: 'CONFIRMED_FRAUD', analystId: { toString: 1 } }),
  (task) => ({ taskId: task, decision: 'CONFIRMED_FRAUD', analystId: { length: { toString: 1 } } }),
  (task) => ({ taskId: task, decision: 'CONFIRMED_FRAUD', analystId: 'a1', note: { toString: 1 } }),
  (task) => ({ taskId: task, decision: 'FALSE_POSITIVE', analystId: 'a1', note: huge(2001) }),
  (task) => ({ taskId: task, decision: 'CONFIRMED_FRAUD' }),
  () => ({ decision: 'FALSE_POSITIVE', analystId: 'a1' }),
  () => ({ taskId: { toString: 1 }, decision: 'CONFIRMED_FRAUD', analystId: 'a1' }),
  () => ({ taskId: huge(257), decision: 'CONFIRMED_FRAUD', analystId: 'a1' }),
  () => ({ taskId: '', decision: 'CONFIRMED_FRAUD', analystId: 'a1' }),
  (task) => [{ taskId: task, decision: 'CONFIRMED_FRAUD', analystId: 'a1' }],
];

// ---- Arbitraries ----------------------------------------------------------------------------------------------

const ID_POOL = 8;
const validAlertArb: fc.Arbitrary<ValidAlert> = fc.record({
  n: fc.integer({ min: 0, max: ID_POOL - 1 }),
  padId: fc.boolean(),
  padSender: fc.boolean(),
  extraKeys: fc.boolean(),
  velocity: fc.integer({ min: 1, max: 50 }),
  amount: fc.oneof(fc.constant(Number.MIN_VALUE), fc.double({ min: 0.01, max: 1e9, noNaN: true })),
  currency: fc.constantFrom('EUR', 'USD', 'GBP', 'XXQ'), // the alert schema asks for 3 capitals, not a known code
  detectedAt: fc.boolean(),
});
const hostileAlertArb: fc.Arbitrary<HostileAlert> = fc.oneof(
  fc.constantFrom<HostileAlert>(
    ...(['null', 'undefined', 'number', 'string', 'array_of_nulls', 'toString', 'proto', 'empty_object', 'huge_id', 'huge_region', 'other_account'] as const).map((kind) => ({ kind })),
  ),
  fc.record({ kind: fc.constant('missing' as const), field: fc.constantFrom(...ALERT_FIELDS), n: fc.integer({ min: 0, max: ID_POOL - 1 }) }),
  fc.record({ kind: fc.constant('wrong' as const), field: fc.constantFrom(...ALERT_FIELDS), variant: fc.nat({ max: 5 }), n: fc.integer({ min: 0, max: ID_POOL - 1 }) }),
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('alerts' as const), via: fc.constantFrom('alerts' as const, 'alert' as const), alerts: fc.array(validAlertArb, { minLength: 1, maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('hostile_alert' as const), payload: hostileAlertArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('hostile_batch' as const), notArray: fc.nat({ max: NOT_ARRAYS.length - 1 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('mixed_batch' as const),
      items: fc.array(fc.oneof(validAlertArb.map((valid) => ({ valid })), hostileAlertArb.map((hostile) => ({ hostile }))), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('clear' as const), payload: fc.nat({ max: VALID_CLEARS.length - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hostile_clear' as const), payload: fc.nat({ max: HOSTILE_CLEARS.length - 1 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('clear_then_alerts' as const), payload: fc.nat({ max: VALID_CLEARS.length - 1 }), alerts: fc.array(validAlertArb, { minLength: 1, maxLength: 3 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        t: fc.constant('review' as const),
        decision: fc.constantFrom('CONFIRMED_FRAUD' as const, 'FALSE_POSITIVE' as const),
        task: fc.constantFrom('open' as const, 'open' as const, 'unknown' as const),
        analyst: fc.constantFrom('analyst-7', ' analyst-8 '),
        note: fc.constantFrom('card testing pattern', '', huge(2000)),
      },
      { requiredKeys: ['t', 'decision', 'task', 'analyst'] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hostile_review' as const), payload: fc.nat({ max: HOSTILE_REVIEWS.length - 1 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('sleep' as const), slaFraction: fc.constantFrom(0.3, 0.6, 0.9, 1.1, 1.6, 3), jitterMs: fc.nat({ max: 120_000 }) }) },
);

const MINUTE = 60_000;
interface Run {
  policy: EscalationPolicy;
  refuseBlocks: number;
  smsFails: boolean;
  steps: Step[];
}
const runArb: fc.Arbitrary<Run> = fc
  .record({
    reviewAfter: fc.integer({ min: 0, max: 2 }),
    verifyStep: fc.integer({ min: 0, max: 4 }),
    blockStep: fc.integer({ min: 0, max: 3 }),
    reviewSlaMs: fc.constantFrom(10 * MINUTE, 60 * MINUTE, 4 * 60 * MINUTE),
    refuseBlocks: fc.constantFrom(0, 0, 1, 2),
    smsFails: fc.constantFrom(false, false, false, true),
    first: validAlertArb, // each sequence opens a case first, so that the steps after it have one to work on
    steps: fc.array(stepArb, { minLength: 4, maxLength: 14 }),
  })
  .map(({ reviewAfter, verifyStep, blockStep, reviewSlaMs, refuseBlocks, smsFails, first, steps }) => ({
    policy: { reviewAfter, verifyAfter: reviewAfter + verifyStep, blockAfter: reviewAfter + verifyStep + blockStep, reviewSlaMs },
    refuseBlocks,
    smsFails,
    steps: [{ t: 'alerts', via: 'alerts', alerts: [first] } satisfies Step, ...steps],
  }));

// ---- The oracle ------------------------------------------------------------------------------------------------
//
// A case is one caseId: a chain of runs from its opening (a signal-with-start that finds no running case, or a closed
// case's continue-as-new with carried alerts) to its close (a valid clearAccount, or a review decided FALSE_POSITIVE).
// - Its alertIds/alertCount are the distinct (trimmed) alert_ids of the valid alerts for its account that reached it
//   while it was open. Hostile payloads, other accounts' alerts, and ids it already counted change nothing.
// - Alerts that reach it while it is closing (after a valid clearAccount, before its run completed) and that it has
//   not counted belong to the next case: the run continues as new with them, a case with a caseId of its own whose
//   count starts at those alerts (the closing case's count and ids do not change). If all are ids it had counted, the
//   case just ends.
// - Once its last run completed, signals and updates sent to the workflow id are refused by the server
//   (WorkflowNotFoundError), and the next valid alert (signal-with-start, as the detector's signaller sends them)
//   opens a new case from zero; the completed case's query still answers its final state (stage CLEARED).
// - The stage only climbs the ladder (rank in LADDER never goes down) until the case closes, then it is CLEARED for
//   good; while the case is open and settled, it is at least the step its count calls for, unless the issuer
//   refused the block (the ladder then waits below BLOCKED).
// - A completeReview whose input the schema refuses is refused by the validator (WorkflowUpdateFailedError) for a
//   schema reason, and changes nothing; a well-formed one is taken exactly when the case has an open, undecided
//   review with that task id.
// At the end of each sequence, over every run of the workflow id (continue-as-new chains followed in the histories):
// - no WorkflowTaskFailed event, and no run failed, timed out or terminated (the test terminates the last one after);
// - effects, per case: sendVerificationSms, blockCard and notifyIssuer each carry one key, `${caseId}:sms|block|issuer`
//   (distinct per case and step); at most one SMS, one issuer notice, one clearAccountState; one block, or a second
//   only after the issuer refused the first and an analyst then confirmed the fraud; the notice only after a block
//   that happened;
// - audit trail: one `rejected` entry per refused signal input, entry ids written once, and every `stage` entry
//   climbs the ladder from where the previous one left the case (the samples only see settled states).

type Phase = 'none' | 'open' | 'ended';
interface Model {
  phase: Phase;
  ids: Set<string>;
  /** The step opened a new case: the next sample must show a caseId never seen before. */
  fresh: boolean;
  caseId?: string;
}

class Trace {
  readonly lines: string[] = [];
  add(line: string) {
    this.lines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
  }
  fail(what: string): never {
    throw new Error(`${what}\n--- trace ---\n${this.lines.join('\n')}`);
  }
}

const short = (s: CaseState | undefined) =>
  s ? `${s.caseId.split('/')[1]?.slice(0, 8)} ${s.stage} count=${s.alertCount} ids=[${[...s.alertIds].sort().join(',')}]${s.review ? ` review=${s.review.priority}${s.review.decision ? `/${s.review.decision.decision}` : ''}${s.review.slaBreached ? '/breached' : ''}` : ''}${s.blockRefused ? ' blockRefused' : ''}` : 'no case';
const show = (v: unknown) => {
  try {
    const s = v === undefined ? 'undefined' : JSON.stringify(v);
    return s.length > 120 ? `${s.slice(0, 120)}…(${s.length} chars)` : s;
  } catch {
    return String(v);
  }
};
const errName = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${e.message}${e.cause instanceof Error ? ` (cause: ${e.cause.message})` : ''}` : String(e));

/**
 * The case's latest run once it is idle: closed, or its history ends with a completed workflow task and has no
 * activity in flight (so every signal, timer and activity result it was given has been handled, and its next move
 * waits on a new input or a timer). Read from the history, not from describe()'s pending task, which the
 * time-skipping server leaves empty while a workflow task is in flight; and the same verdict on two reads in a row,
 * with describe() agreeing, because that server lets a reader see a task's events appended one by one (a completed
 * task before the activity it scheduled, a close event while describe() still says RUNNING).
 */
async function settle(workflowId: string): Promise<WorkflowExecutionDescription | undefined> {
  let previous = '';
  let seen = '';
  for (let i = 0; i < 800; i++) {
    let d: WorkflowExecutionDescription;
    try {
      d = await env.client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
    const events = (await env.client.workflow.getHandle(workflowId, d.runId).fetchHistory()).events ?? [];
    const closedInHistory = CLOSE_EVENTS.has(events[events.length - 1]?.eventType ?? 0);
    const open = new Set<string>();
    for (const e of events) {
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) open.add(String(e.eventId));
      const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
      if (done) open.delete(String(done.scheduledEventId));
    }
    // Commands' events (markers, timers, search attributes, memo) follow a task's completion; anything that needs
    // the workflow's attention (a signal, an update, a fired timer, an activity's result) schedules a new task.
    const failed = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
    if (failed) throw new Error(`run ${d.runId}: ${describeTaskFailure(failed)}`);
    const lastTask = events.findLast((e) => WORKFLOW_TASK_EVENTS.has(e.eventType ?? 0));
    const idle = closedInHistory
      ? d.status.name !== 'RUNNING' && d.status.name !== 'CONTINUED_AS_NEW'
      : d.status.name === 'RUNNING' && lastTask?.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && open.size === 0;
    const verdict = `${d.runId}/${events.length}/${d.status.name}`;
    if (idle && verdict === previous) return d;
    previous = idle ? verdict : '';
    seen = `${d.status.name}, history of ${events.length} events, last workflow task event ${String(lastTask?.eventType)}, activities in flight: ${[...open].join(', ') || 'none'}`;
    await delay(20);
  }
  throw new Error(`case ${workflowId} never settled: ${seen}`);
}

type HistoryEvent = NonNullable<Awaited<ReturnType<ReturnType<TestWorkflowEnvironment['client']['workflow']['getHandle']>['fetchHistory']>>['events']>[number];
const describeTaskFailure = (e: HistoryEvent) => {
  const a = e.workflowTaskFailedEventAttributes;
  const cause = a?.cause ? proto.temporal.api.enums.v1.WorkflowTaskFailedCause[a.cause] : 'unknown cause';
  return `WorkflowTaskFailed (event ${String(e.eventId)}, ${cause}): ${a?.failure?.message ?? ''}\n${a?.failure?.stackTrace ?? ''}`;
};

/** `p` settled: its value, or the error it threw. */
const outcome = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> =>
  p.then((value) => ({ ok: true as const, value }), (err: unknown) => ({ ok: false as const, err }));

/** What the sequences reached, over the whole property (they must reach each, or the test says little). */
const reached = {
  stages: new Set<Stage>(), closedByClear: 0, closedByReview: 0, reopenedByLateAlerts: 0, reviewsTaken: 0, reviewsRefused: 0,
  hostileUpdatesRefused: 0, hostileSignalsRejected: 0, slaBreaches: 0, slaEscalations: 0, blocksRefused: 0,
};

/** One sequence on a fresh account; its case is terminated at the end, passed or failed (no timers left behind). */
async function runSequence(run: Run): Promise<void> {
  const accountId = uniqueId('ACC_P');
  const workflowId = `fraud-account-${accountId}`;
  try {
    await checkSequence(run, accountId, workflowId);
  } finally {
    await env.client.workflow.getHandle(workflowId).terminate('property sequence over').catch(() => undefined);
  }
}

async function checkSequence(run: Run, accountId: string, workflowId: string): Promise<void> {
  const trace: Trace = new Trace(); // typed, so that trace.fail() (never) narrows
  trace.add(`account ${accountId}, policy ${JSON.stringify(run.policy)}, issuer refuses ${run.refuseBlocks} block(s), sms ${run.smsFails ? 'fails' : 'works'}`);
  current.refuseBlocks = run.refuseBlocks;
  current.smsFails = run.smsFails;
  const callsFrom = rec.calls.length;
  const model: Model = { phase: 'none', ids: new Set(), fresh: false };
  /** Refused signal inputs a running case got: each must be in the audit trail as one `rejected` entry. */
  let rejected = 0;
  const seenCases = new Set<string>();
  const stages = new Map<string, Stage[]>();
  const runIds = new Set<string>();
  /** Cases whose review an analyst decided CONFIRMED_FRAUD (the decision retries a refused block, once). */
  const confirmed = new Set<string>();
  let last: CaseState | undefined;
  const handle = () => env.client.workflow.getHandle(workflowId);
  const start = { workflowId, taskQueue, args: [{ accountId, policy: run.policy }] as [{ accountId: string; policy: EscalationPolicy }], workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE };

  /** Valid alerts as the signaller sends them (signal-with-start), applied to the model. */
  const sendValid = async (alerts: ValidAlert[], via: 'alerts' | 'alert') => {
    const calls = via === 'alerts' ? [alerts] : alerts.map((a) => [a]);
    for (const batch of calls) {
      const payload = batch.map((a) => validAlert(accountId, a)) as unknown as AlertSignal[];
      const h = via === 'alerts'
        ? await env.client.workflow.signalWithStart(fraudCaseWorkflow, { ...start, signal: alertBatchSignal, signalArgs: [payload] })
        : await env.client.workflow.signalWithStart(fraudCaseWorkflow, { ...start, signal: alertSignal, signalArgs: [payload[0]!] });
      runIds.add(h.signaledRunId);
      if (model.phase !== 'open') Object.assign(model, { phase: 'open', ids: new Set<string>(), fresh: true, caseId: undefined });
      for (const a of batch) model.ids.add(idOf(a));
    }
  };
  /** A raw signal by name (what the Web UI's Send Signal or the CLI can send): any JSON reaches the workflow. */
  const rawSignal = (name: string, payload: unknown) => (payload === undefined ? handle().signal(name) : handle().signal(name, payload as never));
  /** Sent to a case that must be running, or to none (then the server refuses it). */
  const expectDelivered = (r: { ok: boolean; err?: unknown }, what: string) => {
    if (model.phase === 'open' && !r.ok) trace.fail(`${what} to a running case failed: ${errName(r.err)}`);
    if (model.phase !== 'open' && (r.ok || !(r.err instanceof WorkflowNotFoundError))) {
      trace.fail(`${what} to a closed case should be refused with WorkflowNotFoundError, got ${r.ok ? 'success' : errName(r.err)}`);
    }
  };

  for (const [i, step] of run.steps.entries()) {
    const before = last;
    let unchanged = false; // the step must leave the sampled state exactly as it was
    let note = '';
    /** A payload the case must refuse: delivered if the case runs, recorded as rejected, and nothing else changes. */
    const sendHostile = async (name: string, payload: unknown, what: string) => {
      const r = await outcome(rawSignal(name, payload));
      expectDelivered(r, what);
      if (r.ok) rejected++;
      unchanged = model.phase === 'open';
      note = show(payload);
    };
    switch (step.t) {
      case 'alerts': {
        await sendValid(step.alerts, step.via);
        note = `ids ${step.alerts.map(idOf).join(',')}`;
        break;
      }
      case 'hostile_alert':
        await sendHostile('alert', hostileAlert(accountId, step.payload), 'hostile alert');
        break;
      case 'hostile_batch':
        await sendHostile('alerts', NOT_ARRAYS[step.notArray], 'hostile alerts');
        break;
      case 'mixed_batch': {
        const payload = step.items.map((it) => ('valid' in it ? validAlert(accountId, it.valid) : hostileAlert(accountId, it.hostile)));
        const r = await outcome(rawSignal('alerts', payload));
        expectDelivered(r, 'mixed alerts');
        if (r.ok) for (const it of step.items) if ('valid' in it) model.ids.add(idOf(it.valid));
        if (r.ok) rejected += step.items.filter((it) => 'hostile' in it).length;
        unchanged = model.phase === 'open' && step.items.every((it) => 'hostile' in it);
        note = show(payload);
        break;
      }
      case 'clear': {
        const r = await outcome(rawSignal('clearAccount', VALID_CLEARS[step.payload]));
        expectDelivered(r, 'clearAccount');
        if (r.ok) model.phase = 'ended';
        if (r.ok) reached.closedByClear++;
        note = show(VALID_CLEARS[step.payload]);
        break;
      }
      case 'hostile_clear':
        await sendHostile('clearAccount', HOSTILE_CLEARS[step.payload], 'hostile clearAccount');
        break;
      case 'clear_then_alerts': {
        // The race the workflow handles on purpose: alerts that reach a closing case go to the next one.
        const c = await outcome(rawSignal('clearAccount', VALID_CLEARS[step.payload]));
        expectDelivered(c, 'clearAccount');
        if (!c.ok) break;
        reached.closedByClear++;
        const a = await outcome(rawSignal('alerts', step.alerts.map((x) => validAlert(accountId, x))));
        const late = new Set(step.alerts.map(idOf).filter((id) => !model.ids.has(id)));
        if (a.ok && late.size > 0) {
          Object.assign(model, { phase: 'open', ids: late, fresh: true, caseId: undefined });
          reached.reopenedByLateAlerts++;
        }
        else if (a.ok || a.err instanceof WorkflowNotFoundError) model.phase = 'ended';
        else trace.fail(`alerts right after clearAccount failed: ${errName(a.err)}`);
        note = `alerts ${step.alerts.map(idOf).join(',')} ${a.ok ? 'reached the closing case' : 'came after it completed'}`;
        break;
      }
      case 'review': {
        const open = before?.review;
        const taskId = step.task === 'open' && open ? open.taskId : `review-${accountId}-nope`;
        const input = { taskId, decision: step.decision, analystId: step.analyst, ...(step.note !== undefined ? { note: step.note } : {}) };
        const r = await outcome(handle().executeUpdate(completeReviewUpdate, { args: [input] }));
        if (model.phase !== 'open') {
          if (r.ok) trace.fail(`completeReview on a closed case was accepted: ${show(r.value)}`);
          note = `refused (closed): ${errName(r.err)}`;
          break;
        }
        const takes = Boolean(open && !open.decision && open.taskId === taskId && before?.stage !== 'CLEARED');
        if (takes !== r.ok) trace.fail(`completeReview ${show(input)} ${r.ok ? `was accepted (${show(r.value)})` : `was refused (${errName(r.err)})`}, but the review was ${show(open)}`);
        if (!r.ok && !(r.err instanceof WorkflowUpdateFailedError)) trace.fail(`completeReview refused with ${errName(r.err)}, not WorkflowUpdateFailedError`);
        if (r.ok) reached.reviewsTaken++;
        else reached.reviewsRefused++;
        if (r.ok) {
          if (r.value.decision !== step.decision) trace.fail(`completeReview answered ${show(r.value)} for ${step.decision}`);
          if (step.decision === 'FALSE_POSITIVE') {
            if (r.value.stage !== 'CLEARED') trace.fail(`FALSE_POSITIVE answered stage ${r.value.stage}`);
            model.phase = 'ended';
            reached.closedByReview++;
          } else {
            confirmed.add(before!.caseId);
            if (r.value.stage !== 'BLOCKED' && ladderRank(r.value.stage) !== ladderRank(before!.stage)) trace.fail(`CONFIRMED_FRAUD answered stage ${r.value.stage} from ${before!.stage}`);
          }
        }
        note = `${show(input)} -> ${r.ok ? show(r.value) : errName(r.err)}`;
        break;
      }
      case 'hostile_review': {
        const input = HOSTILE_REVIEWS[step.payload]!(before?.review?.taskId ?? `review-${accountId}-x`);
        const r = await outcome(input === undefined ? handle().executeUpdate('completeReview') : handle().executeUpdate('completeReview', { args: [input] }));
        if (r.ok) trace.fail(`hostile completeReview ${show(input)} was accepted: ${show(r.value)}`);
        if (model.phase === 'open') {
          if (!(r.err instanceof WorkflowUpdateFailedError)) trace.fail(`hostile completeReview ${show(input)} refused with ${errName(r.err)}, not WorkflowUpdateFailedError`);
          const reason = r.err.cause instanceof Error ? r.err.cause.message : '';
          if (!reason || /unknown review task|already decided|the case is closed/.test(reason)) trace.fail(`hostile completeReview ${show(input)} refused for "${reason}", not for its input`);
          unchanged = true;
          reached.hostileUpdatesRefused++;
        }
        note = `${show(input)} -> ${errName(r.err)}`;
        break;
      }
      case 'sleep': {
        let ms = Math.round(step.slaFraction * run.policy.reviewSlaMs) + step.jitterMs;
        // Never stop within 2 minutes before an open review's deadline: the next steps (real seconds on a clock that
        // is not skipping) must not race the SLA timer.
        const r = before?.review;
        if (model.phase === 'open' && r && !r.decision && !r.slaBreached) {
          const left = Date.parse(r.dueAt) - ((await env.currentTimeMs()) + ms);
          if (left >= 0 && left < 2 * MINUTE) ms += left + 1000;
        }
        await env.sleep(ms);
        note = `${Math.round(ms / 1000)}s`;
        break;
      }
    }

    // ---- Sample the settled case and check it against the model ----
    const d = await settle(workflowId).catch((err: unknown) => trace.fail(`step ${i} (${step.t} ${note}): ${errName(err)}`));
    if (!d) {
      if (model.phase !== 'none') trace.fail(`step ${i}: the workflow is gone`);
      trace.add(`#${i} ${step.t} ${note} => no case`);
      continue;
    }
    runIds.add(d.runId);
    const s = await handle().query(caseStateQuery);
    trace.add(`#${i} ${step.t} ${note} => ${d.status.name} ${short(s)}`);
    last = s;
    const expectedStatus = model.phase === 'open' ? 'RUNNING' : 'COMPLETED';
    if (d.status.name !== expectedStatus) trace.fail(`step ${i}: the case's latest run is ${d.status.name}, expected ${expectedStatus}`);
    if (model.fresh) {
      if (seenCases.has(s.caseId)) trace.fail(`step ${i}: expected a new case, still ${s.caseId}`);
      model.fresh = false;
      model.caseId = s.caseId;
    } else if (s.caseId !== model.caseId) {
      trace.fail(`step ${i}: expected case ${model.caseId}, found ${s.caseId}`);
    }
    seenCases.add(s.caseId);
    const expectedIds = [...model.ids].sort();
    if (s.alertCount !== model.ids.size || !isDeepStrictEqual([...s.alertIds].sort(), expectedIds)) {
      trace.fail(`step ${i}: alertCount ${s.alertCount}, ids [${[...s.alertIds].sort().join(',')}]; expected ${model.ids.size}, [${expectedIds.join(',')}]`);
    }
    const history = stages.get(s.caseId) ?? [];
    const prev = history[history.length - 1];
    if (prev === 'CLEARED' && s.stage !== 'CLEARED') trace.fail(`step ${i}: a closed case went from CLEARED to ${s.stage}`);
    if (prev && prev !== 'CLEARED' && s.stage !== 'CLEARED' && ladderRank(s.stage) < ladderRank(prev)) trace.fail(`step ${i}: stage went down the ladder, ${prev} -> ${s.stage}`);
    stages.set(s.caseId, [...history, s.stage]);
    reached.stages.add(s.stage);
    if (s.review?.slaBreached && !before?.review?.slaBreached && before?.caseId === s.caseId) {
      reached.slaBreaches++;
      if (before.stage === 'MANUAL_REVIEW') reached.slaEscalations++; // the timer, not the count, moved the case
    }
    if ((model.phase === 'ended') !== (s.stage === 'CLEARED')) trace.fail(`step ${i}: stage ${s.stage} but the case should be ${model.phase === 'ended' ? 'closed' : 'open'}`);
    if (model.phase === 'open') {
      const p = run.policy;
      const called: Stage = s.alertCount > p.blockAfter ? 'BLOCKED' : s.alertCount > p.verifyAfter ? 'REQUIRE_3DS' : s.alertCount > p.reviewAfter ? 'MANUAL_REVIEW' : 'MONITORING';
      const reachable = s.blockRefused && called === 'BLOCKED' ? 'REQUIRE_3DS' : called;
      if (ladderRank(s.stage) < ladderRank(reachable)) trace.fail(`step ${i}: ${s.alertCount} alerts call for ${reachable}, the case is settled at ${s.stage}`);
    }
    if (unchanged && !isDeepStrictEqual(s, before)) trace.fail(`step ${i}: a refused input changed the case:\nbefore ${JSON.stringify(before)}\nafter  ${JSON.stringify(s)}`);
  }

  // ---- The whole sequence: histories and effects ----
  // Every run of the chain (signal-with-start runs, and continue-as-new runs found through their histories).
  const todo = [...runIds];
  const histories = new Map<string, { events?: HistoryEvent[] | null }>();
  while (todo.length > 0) {
    const runId = todo.pop()!;
    if (histories.has(runId)) continue;
    const h = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    histories.set(runId, h);
    for (const e of h.events ?? []) {
      const from = e.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
      const to = e.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      for (const r of [from, to]) if (r && !histories.has(r)) todo.push(r);
    }
  }
  for (const [runId, h] of histories) {
    for (const e of h.events ?? []) {
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) trace.fail(`run ${runId}: ${describeTaskFailure(e)}`);
      if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED || e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED || e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT) {
        trace.fail(`run ${runId}: ended with event ${String(e.eventType)}: ${e.workflowExecutionFailedEventAttributes?.failure?.message ?? ''}`);
      }
    }
  }

  // Effects: of this account only (one worker serves every sequence, one at a time).
  const mine = rec.calls.map((c, index) => ({ ...c, index })).slice(callsFrom).filter((c) => {
    const entries = c.input.entries as Array<{ accountId: string }> | undefined;
    return (c.input.accountId ?? entries?.[0]?.accountId) === accountId;
  });
  const SUFFIX: Partial<Record<Call['name'], string>> = { sendVerificationSms: 'sms', blockCard: 'block', notifyIssuer: 'issuer' };
  for (const caseId of new Set(mine.map((c) => c.input.caseId as string | undefined).filter((x): x is string => x !== undefined))) {
    const of = (name: Call['name']) => mine.filter((c) => c.name === name && c.input.caseId === caseId);
    const desc = (name: Call['name']) => of(name).map((c) => `${String(c.input.idempotencyKey)}${refusedBlocks.has(c.index) ? '(refused)' : ''}`).join(', ');
    for (const name of ['sendVerificationSms', 'blockCard', 'notifyIssuer'] as const) {
      // One effect per case step: every call of an action names the same key, derived from the case id.
      const keys = new Set(of(name).map((c) => c.input.idempotencyKey));
      if (keys.size > 1 || (keys.size === 1 && !keys.has(`${caseId}:${SUFFIX[name]}`))) trace.fail(`case ${caseId}: ${name} with keys ${desc(name)}`);
    }
    if (of('sendVerificationSms').length > 1) trace.fail(`case ${caseId}: ${of('sendVerificationSms').length} SMS sent: ${desc('sendVerificationSms')}`);
    if (of('notifyIssuer').length > 1) trace.fail(`case ${caseId}: issuer told ${of('notifyIssuer').length} times`);
    if (of('clearAccountState').length > 1) trace.fail(`case ${caseId}: account cleared ${of('clearAccountState').length} times`);
    // The block: once, or a second time only after the issuer refused it and an analyst confirmed the fraud.
    const blocks = of('blockCard');
    const succeeded = blocks.filter((c) => !refusedBlocks.has(c.index));
    if (succeeded.length > 1 || blocks.length > 2 || (blocks.length === 2 && (!refusedBlocks.has(blocks[0]!.index) || !confirmed.has(caseId)))) {
      trace.fail(`case ${caseId}: blockCard calls ${desc('blockCard')} (confirmed by an analyst: ${confirmed.has(caseId)})`);
    }
    // "card blocked" goes to the issuer only after a block that happened.
    for (const n of of('notifyIssuer')) {
      if (!succeeded.some((b) => b.index < n.index)) trace.fail(`case ${caseId}: issuer notified without a block: ${desc('blockCard')}`);
    }
  }
  type Entry = { id: string; caseId: string; type: string; detail: string; data: { from?: Stage; to?: Stage } };
  const audited = mine.filter((c) => c.name === 'appendAudit').flatMap((c) => c.input.entries as Entry[]);
  // Every stage change of every case, from its audit trail (the samples only see settled states): each one climbs
  // the ladder, from where the previous one left the case.
  for (const caseId of new Set(audited.map((e) => e.caseId))) {
    let at: Stage = 'MONITORING';
    for (const e of audited.filter((x) => x.caseId === caseId && x.type === 'stage')) {
      const { from, to } = e.data;
      if (from !== at || !to || to === 'CLEARED' || ladderRank(to) <= ladderRank(from)) trace.fail(`case ${caseId}: stage change ${from} -> ${to} (was at ${at}): ${e.detail}`);
      at = to;
    }
  }
  // Every refused signal input a running case got is in its audit trail, once.
  const rejections = audited.filter((e) => e.type === 'rejected');
  if (rejections.length !== rejected) trace.fail(`${rejected} refused signal inputs, ${rejections.length} 'rejected' audit entries: ${rejections.map((e) => e.detail).join(' | ')}`);
  reached.hostileSignalsRejected += rejected;
  reached.blocksRefused += mine.filter((c) => refusedBlocks.has(c.index)).length;
  // Audit entries are written once each (ids caseId#seq).
  const auditIds = audited.map((e) => e.id);
  const dup = auditIds.filter((id, k) => auditIds.indexOf(id) !== k);
  if (dup.length > 0) trace.fail(`audit entries written twice: ${dup.join(', ')}`);
  // Stages of every case, from the samples: climbed the ladder, and those that closed ended CLEARED.
  trace.add(`stages: ${[...stages].map(([c, st]) => `${c.split('/')[1]?.slice(0, 8)}: ${st.join('>')}`).join('; ')}`);

}

describe('fraud case workflow (properties)', () => {
  it(
    'when random sequences of valid and hostile alerts, clears, review decisions and time skips reach a case, then no workflow task fails, counts, effects and the ladder keep the contract',
    async () => {
      const started = Date.now();
      const details = await fc.check(fc.asyncProperty(runArb, runSequence), {
        seed: SEED, numRuns: NUM_RUNS, plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS)],
        // Replay one counterexample: FC_SEED=<seed> FC_PATH=<path> (both printed on failure).
        ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
      });
      console.log(`fraud case properties: seed ${details.seed}, ${details.numRuns} run(s) of ${NUM_RUNS}${details.interrupted ? ' (time limit)' : ''}, ${Math.round((Date.now() - started) / 1000)}s`);
      if (details.failed) {
        const err = details.errorInstance;
        throw new Error(`${fc.defaultReportMessage(details)}\n\nGot: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      console.log(`reached: ${JSON.stringify({ ...reached, stages: [...reached.stages] })}`);
      // A time limit that stops the runs early is fine; one that leaves almost none is not a test.
      expect(details.numRuns).toBeGreaterThanOrEqual(Math.min(NUM_RUNS, 5));
      // The sequences reached what they are about (with the default seed and runs): every stage, both ways of
      // closing, a reopened case, taken and refused decisions, SLA breaches, refused blocks and hostile inputs.
      if (NUM_RUNS >= 15 && !details.interrupted) {
        expect([...reached.stages].sort()).toStrictEqual([...LADDER, 'CLEARED'].sort());
        const { stages: _, ...counts } = reached;
        for (const [what, n] of Object.entries(counts)) expect({ what, reached: n > 0 }).toStrictEqual({ what, reached: true });
      }
    },
    600_000,
  );

  // Found while checking the audit invariant of the property above; deterministic here by holding the close's audit
  // append (a local activity) until the inputs are in. Kept out of the property's steps.
  //
  // A signal that reaches a case during its closing workflow task (here a clearAccount the schema refuses and a null
  // alert) is buffered by the server; the task then tries to complete the workflow and is failed with
  // UNHANDLED_COMMAND (Temporal's own way to hand the workflow the new signals: it is retried with them). The
  // failed task's local activity had already appended the CLEAR_ACCOUNT action and the clearing. The retry handles
  // the signals first. When audit ids were numbered per attempt (`${caseId}#${++auditSeq}`), the retry gave the two
  // rejections the ids the action and the clearing had had, and the audit log, which keeps the first entry of each
  // id, dropped both rejections and kept the clearing twice. Ids now derive from what an entry records.
  it('when refused inputs reach a case while its closing task runs, then the audit trail keeps each rejection and the clearing once', async () => {
    const accountId = uniqueId('ACC_PBUG');
    const workflowId = `fraud-account-${accountId}`;
    const start = { workflowId, taskQueue, args: [{ accountId, policy: { reviewAfter: 3, verifyAfter: 5, blockAfter: 10, reviewSlaMs: 3_600_000 } }] as [{ accountId: string; policy: EscalationPolicy }] };
    const from = rec.calls.length;
    await env.client.workflow.signalWithStart(fraudCaseWorkflow, { ...start, signal: alertBatchSignal, signalArgs: [[validAlert(accountId, baseAlert(0)) as unknown as AlertSignal]] });
    await settle(workflowId);
    let release: () => void = () => undefined;
    const hold = { reached: false, release: new Promise<void>((r) => (release = r)) };
    holdCloseAudit = hold;
    try {
      const h = env.client.workflow.getHandle(workflowId);
      await h.signal('clearAccount', { by: 'ops-1' } as never);
      for (let i = 0; !hold.reached; i++) {
        if (i > 500) throw new Error('the close never appended its audit entries');
        await delay(10);
      }
      await h.signal('clearAccount', 'now' as never);
      await h.signal('alert', null as never);
      await delay(200); // both signals are in the server's buffer before the closing task ends
    } finally {
      release();
      holdCloseAudit = undefined;
    }
    // settle() refuses a history with a failed task (this one has the UNHANDLED_COMMAND retry): wait for the close.
    let status = '';
    for (let i = 0; i < 500 && (status = (await env.client.workflow.getHandle(workflowId).describe()).status.name) === 'RUNNING'; i++) await delay(20);
    expect(status).toBe('COMPLETED');
    await delay(200); // the history's last events and the appends of the retried task
    // The trail as the audit log stores it: the first entry of each id.
    const stored = new Map<string, { type: string; detail: string }>();
    for (const c of rec.calls.slice(from)) {
      if (c.name !== 'appendAudit') continue;
      for (const e of c.input.entries as Array<{ id: string; accountId: string; type: string; detail: string }>) if (e.accountId === accountId && !stored.has(e.id)) stored.set(e.id, e);
    }
    const trail = [...stored.values()].map((e) => e.type);
    expect({ rejected: trail.filter((t) => t === 'rejected').length, cleared: trail.filter((t) => t === 'cleared').length }).toStrictEqual({ rejected: 2, cleared: 1 });
  });

  // The property's counterexample, shrunk: open a case with one alert, then send clearAccount {"by":{"length":
  // {"toString":1}}} -> WorkflowTaskFailed (WORKFLOW_WORKER_UNHANDLED_FAILURE) "TypeError: Cannot convert object to
  // primitive value" at zod/v4/core/checks.js ($ZodCheckMinLength), from parseWith(clearAccountRequestSchema) in the
  // clearAccount handler (workflows/fraud-case.ts); the alert signals fail the same way in parseAlertSignal.
  // Fixed: contracts/validation.ts refuses what zod throws on.
  it.each([
    ['clearAccount', { by: LENGTH_TRAP }],
    ['alert', { ...validAlert('@', baseAlert(1)), alert_id: LENGTH_TRAP }],
    ['alerts', [{ ...validAlert('@', baseAlert(1)), region: LENGTH_TRAP }]],
  ] as const)('when %s carries a field {"length":{"toString":1}}, then the case rejects it and goes on', async (name, template) => {
    const accountId = uniqueId('ACC_PBUG');
    const workflowId = `fraud-account-${accountId}`;
    const payload = JSON.parse(JSON.stringify(template).replaceAll('"@"', JSON.stringify(accountId))) as unknown;
    try {
      const start = { workflowId, taskQueue, args: [{ accountId, policy: { reviewAfter: 3, verifyAfter: 5, blockAfter: 10, reviewSlaMs: 3_600_000 } }] as [{ accountId: string; policy: EscalationPolicy }] };
      await env.client.workflow.signalWithStart(fraudCaseWorkflow, { ...start, signal: alertBatchSignal, signalArgs: [[validAlert(accountId, baseAlert(0)) as unknown as AlertSignal]] });
      await settle(workflowId);
      await env.client.workflow.getHandle(workflowId).signal(name, payload as never);
      await settle(workflowId); // throws on the failed workflow task
      await env.client.workflow.signalWithStart(fraudCaseWorkflow, { ...start, signal: alertBatchSignal, signalArgs: [[validAlert(accountId, baseAlert(2)) as unknown as AlertSignal]] });
      await settle(workflowId);
      const s = await env.client.workflow.getHandle(workflowId).query(caseStateQuery);
      expect({ stage: s.stage, alertIds: s.alertIds }).toStrictEqual({ stage: 'MONITORING', alertIds: ['va_0', 'va_2'] });
    } finally {
      await env.client.workflow.getHandle(workflowId).terminate('test over').catch(() => undefined);
    }
  });
});
