// One durable case per flagged account: counts the detector's alerts, climbs the escalation ladder (manual review,
// 3DS verification SMS, card block + issuer notice) acting once per step, waits for analysts with a durable SLA
// timer, and closes when ops clear the account or an analyst calls a false positive, lifting the card block the case
// made (or saying in the audit trail why it could not).
//
// State machine and timers only: every side effect is an activity (activities/), idempotent by a key derived
// from the case id, so retries and worker crashes never repeat an action. Time here is the workflow clock
// (`new Date()` is deterministic inside the Temporal sandbox).
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BlockCardResult, CaseActivities } from '../contracts/activities.ts';
import type { AuditEntry } from '../contracts/audit.ts';
import { parseAlertSignal, type AlertSignal } from '../contracts/alert.ts';
import {
  LADDER,
  alertBatchSignal,
  alertSignal,
  caseInputSchema,
  caseStateQuery,
  clearAccountRequestSchema,
  clearAccountSignal,
  completeReviewRequestSchema,
  completeReviewUpdate,
  ladderRank as rank,
  type ActionRecord,
  type CaseInput,
  type CaseState,
  type ClearAccountRequest,
  type CompleteReviewRequest,
  type Stage,
} from '../contracts/case.ts';
import { FailureType } from '../contracts/failures.ts';
import { FraudAlertCount, FraudStage } from '../contracts/search-attributes.ts';
import { parseWith } from '../contracts/validation.ts';

const acts = proxyActivities<CaseActivities>({
  // Short: a worker that dies mid-activity holds the action only this long before another worker retries it.
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20 },
});

// A card block is retried until it succeeds: an issuer that is down for hours delays the block, it never drops it.
// Only a non-retryable refusal (the issuer says no) ends the attempts; the case then waits for an operator.
const blocking = proxyActivities<Pick<CaseActivities, 'blockCard'>>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

// The same, for cases since CLEAR_STOPS_BLOCK: clearing the account stops the attempts. Cancelled, an attempt that is
// running is waited for (it completes or times out; none starts after), so that what is lifted afterwards is final.
const blockingUntilCleared = proxyActivities<Pick<CaseActivities, 'blockCard'>>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

// Lifting the case's block when it is cleared: retried for a bounded time (about four minutes of backoff, ten at most),
// so that an issuer that is down delays the close, never holds it forever. The case then closes saying the block is
// still in place.
const unblocking = proxyActivities<Pick<CaseActivities, 'unblockCard'>>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

// Audit appends are quick, idempotent Redis writes made on every alert: as local activities they cost no extra
// round trip through the server (the dev server's SQLite is the bottleneck when many accounts alert at once).
const local = proxyLocalActivities<Pick<CaseActivities, 'appendAudit'>>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/** The detail of a BLOCK_CARD record whose attempts the clearing of the account stopped. */
const STOPPED_BY_CLEAR = 'stopped: the account is being cleared';

/** Bound on remembered alert ids; older ids are dropped (a re-delivery that old is not expected). */
const MAX_ALERT_IDS = 500;

/** Workflow time in ms (deterministic: the sandbox's clock is the workflow task's time). */
const now = () => new Date().getTime();

/**
 * Cases that reach this code keep their review queue in Temporal visibility alone (FraudStage and the `openReview`
 * memo): no openReviewTask/closeReviewTask activities. Histories recorded before it replay the old calls.
 */
const REVIEW_QUEUE_IN_VISIBILITY = 'review-queue-in-visibility';
/** Cases reopened by late alerts get a case id of their own (before: the closed case's, so its actions read as done). */
const FRESH_CASE_ID_AFTER_CLOSE = 'fresh-case-id-after-close';
/** Signals parsed at the boundary, rejected ones audited (before: used as they came). */
const STRICT_INPUTS = 'strict-inputs';
/** A refused block waits for an operator (before: the stage became BLOCKED and the issuer was told anyway). */
const BLOCK_REFUSAL_WAITS = 'block-refusal-waits';
/** Clearing a case that blocked the card lifts that block first (before: the block stayed after the case closed). */
const LIFT_BLOCK_ON_CLEAR = 'lift-block-on-clear';
/**
 * Audit ids derived from what each entry records (before: caseId#seq, numbered in the order of one workflow task
 * attempt, so a retried task that handled its inputs in another order gave the same id to another entry).
 */
const CONTENT_AUDIT_IDS = 'content-audit-ids';
/**
 * Clearing an account while its block is still being retried (the issuer down) stops the attempts, lifts whatever
 * an attempt may have blocked (looked up by the block's key), and closes (before: the clear waited for the block).
 */
const CLEAR_STOPS_BLOCK = 'clear-stops-block';

export async function fraudCaseWorkflow(input: CaseInput): Promise<CaseState> {
  const info = workflowInfo();
  // A start input that is not a case (someone started the type by hand) fails the run at once, naming the field.
  const valid = parseWith(caseInputSchema, input);
  if (!valid.ok) throw ApplicationFailure.nonRetryable(`invalid case input: ${valid.reason}`, FailureType.InvalidCaseInput);
  // Once per run, here: a run that started before the patch keeps the old behaviour to its end.
  const clearStopsBlock = patched(CLEAR_STOPS_BLOCK);
  const policy = input.policy;
  const state: CaseState = input.state ?? {
    accountId: input.accountId,
    // A case opened by alerts that raced the previous case's close continues that chain of runs: its id is its own
    // run's, so its SMS, block and notice keys and its audit ids are new.
    caseId: `${info.workflowId}/${input.carriedAlerts && patched(FRESH_CASE_ID_AFTER_CLOSE) ? info.runId : info.firstExecutionRunId}`,
    openedAt: new Date().toISOString(),
    stage: 'MONITORING',
    alertCount: 0,
    alertIds: [],
    actions: [],
  };
  let auditSeq = state.auditSeq ?? 0;
  let rejectedCount = state.rejectedCount ?? 0;
  const pendingAudit: AuditEntry[] = [];
  let clearRequest: (ClearAccountRequest & { at: string }) | undefined;
  let decision: CompleteReviewRequest | undefined;
  let decisionApplied = false;
  const lateAlerts: AlertSignal[] = [];

  /**
   * One audit entry; `key` names what it records within its type (the alert id, the action, the stage change), so
   * that its id is the same on every attempt of the workflow task that makes it, whatever else that attempt handled
   * first. The local activity that appends entries runs before its task completes: a task that fails after it (a
   * worker stopped past the task timeout; the server's UNHANDLED_COMMAND when a signal lands during a closing task)
   * is retried with its inputs in another order, and the retry's entries must match the ones already stored.
   */
  const audit = (type: AuditEntry['type'], key: string, actor: string, detail: string, data: Record<string, unknown> = {}) => {
    ++auditSeq;
    pendingAudit.push({
      id: patched(CONTENT_AUDIT_IDS) ? `${state.caseId}#${type}:${key}` : `${state.caseId}#${auditSeq}`,
      accountId: state.accountId,
      caseId: state.caseId,
      at: new Date().toISOString(),
      type,
      actor,
      detail,
      data: { ...data, stage: state.stage, alertCount: state.alertCount },
    });
  };

  /** A signal or input refused at the boundary: recorded in the audit trail, and nothing else changes. */
  const reject = (what: string, reason: string, payload: unknown) => {
    let shown: string;
    try {
      shown = JSON.stringify(payload) ?? 'undefined';
    } catch {
      shown = '(not JSON)';
    }
    log.warn('signal rejected', { what, reason, accountId: state.accountId });
    // Rejections come from signals alone, which every attempt handles in the history's order: their count is stable.
    audit('rejected', String(++rejectedCount), 'system', `${what} rejected: ${reason}`, { signal: what, reason, payload: shown.slice(0, 500) });
  };

  const onAlertInput = (what: string, input: unknown) => {
    const parsed = parseAlertSignal(input);
    if (!parsed.ok) return reject(what, parsed.reason, input);
    if (parsed.value.sender_account_id !== state.accountId) {
      return reject(what, `sender_account_id ${JSON.stringify(parsed.value.sender_account_id)} is not this case's account`, input);
    }
    onAlert(parsed.value);
  };

  const onAlert = (a: AlertSignal) => {
    if (state.alertIds.includes(a.alert_id)) return; // re-delivered: already counted
    if (state.stage === 'CLEARED' || clearRequest) {
      lateAlerts.push(a); // belongs to the next case
      return;
    }
    state.alertIds.push(a.alert_id);
    if (state.alertIds.length > MAX_ALERT_IDS) state.alertIds.splice(0, state.alertIds.length - MAX_ALERT_IDS);
    state.alertCount++;
    state.lastAlert = a;
    audit('alert', a.alert_id, 'detector', `velocity alert ${a.alert_id}: ${a.velocity_count} payments, last ${a.amount} ${a.currency} in ${a.region}`, { alert: a });
  };

  if (!input.state) audit('case_opened', 'opened', 'system', `case opened for ${state.accountId}`, { policy });

  // Handlers before the first await.
  // Every input is parsed here, at the boundary: whatever a signal carries, it is used or rejected, never thrown on.
  // Signals recorded before STRICT_INPUTS replay as they were handled then.
  setHandler(alertSignal, (a: unknown) => (patched(STRICT_INPUTS) ? onAlertInput('alert', a) : onAlert(a as AlertSignal)));
  setHandler(alertBatchSignal, (alerts: unknown) => {
    if (!patched(STRICT_INPUTS)) return (alerts as AlertSignal[]).forEach(onAlert);
    if (!Array.isArray(alerts)) return reject('alerts', 'alerts must be a list of alerts', alerts);
    alerts.forEach((a: unknown, i) => onAlertInput(`alerts[${i}]`, a));
  });
  setHandler(clearAccountSignal, (input: unknown) => {
    if (!patched(STRICT_INPUTS)) {
      const req = input as ClearAccountRequest | undefined;
      if (state.stage === 'CLEARED' || clearRequest) return;
      clearRequest = { by: req?.by ?? 'ops', reason: req?.reason ?? 'cleared by ops', at: new Date().toISOString() };
      return;
    }
    const parsed = parseWith(clearAccountRequestSchema, input);
    if (!parsed.ok) return reject('clearAccount', parsed.reason, input);
    if (state.stage === 'CLEARED' || clearRequest) return;
    clearRequest = { by: parsed.value?.by ?? 'ops', reason: parsed.value?.reason ?? 'cleared by ops', at: new Date().toISOString() };
  });
  setHandler(caseStateQuery, () => ({ ...state }));
  setHandler(
    completeReviewUpdate,
    async (input: unknown) => {
      // Validators do not run on replay: an update accepted before the schemas is taken as it came.
      const req = parseWith(completeReviewRequestSchema, input);
      decision = req.ok ? req.value : (input as CompleteReviewRequest);
      await condition(() => decisionApplied);
      return { stage: state.stage, decision: decision.decision };
    },
    {
      validator: (input: unknown) => {
        const parsed = parseWith(completeReviewRequestSchema, input);
        if (!parsed.ok) throw new Error(parsed.reason);
        const req = parsed.value;
        if (!state.review || state.review.taskId !== req.taskId) {
          throw new Error(`unknown review task ${JSON.stringify(req.taskId)}${state.review ? ` (open task: ${state.review.taskId})` : ' (this case has no review task)'}`);
        }
        if (state.review.decision || decision) throw new Error(`review task ${req.taskId} is already decided`);
        if (state.stage === 'CLEARED') throw new Error('the case is closed');
      },
    },
  );

  for (const a of input.carriedAlerts ?? []) onAlert(a); // parsed when they arrived

  /** Visibility for the Web UI, the CLI and the console: stage and count as search attributes, the open review as memo. */
  const publishStage = () => {
    upsertSearchAttributes([
      { key: FraudStage, value: state.stage },
      { key: FraudAlertCount, value: state.alertCount },
    ]);
    const r = state.review;
    upsertMemo({ openReview: r && !r.decision ? { taskId: r.taskId, priority: r.priority, openedAt: r.openedAt, dueAt: r.dueAt } : null });
  };
  const published = () => `${state.stage}/${state.alertCount}/${state.review?.priority}/${state.review?.decision ? 'decided' : ''}`;

  const flushAudit = async () => {
    if (pendingAudit.length === 0) return;
    const batch = pendingAudit.splice(0, pendingAudit.length);
    await local.appendAudit({ entries: batch });
  };

  /** Run one ladder action once; a permanent failure is recorded, not fatal to the case. */
  const act = async (action: ActionRecord['action'], run: () => Promise<string>): Promise<boolean> => {
    if (state.actions.some((r) => r.action === action && r.status === 'done')) return true;
    try {
      const detail = await run();
      state.actions.push({ action, status: 'done', at: new Date().toISOString(), detail });
      audit('action', action, 'system', `${action}: ${detail}`, { action });
      return true;
    } catch (err) {
      if (clearStopsBlock && clearRequest && isCancellation(err)) {
        state.actions.push({ action, status: 'failed', at: new Date().toISOString(), detail: STOPPED_BY_CLEAR });
        audit('action_failed', `${action}:stopped`, 'system', `${action} attempts stopped: the account is being cleared`, { action });
        return false;
      }
      if (!(err instanceof ActivityFailure)) throw err;
      const cause = err.cause instanceof ApplicationFailure ? `${err.cause.type ?? 'Error'}: ${err.cause.message}` : String(err.cause?.message ?? err.message);
      state.actions.push({ action, status: 'failed', at: new Date().toISOString(), detail: cause });
      const failures = state.actions.filter((r) => r.action === action && r.status === 'failed').length;
      audit('action_failed', `${action}:${failures}`, 'system', `${action} failed permanently: ${cause}`, { action });
      log.error('case action failed permanently', { action, cause, accountId: state.accountId });
      return false;
    }
  };

  const key = (action: string) => `${state.caseId}:${action}`;

  /** Run `call` until it completes, or until ops clear the account (then it is cancelled, and rejects). */
  const untilCleared = async <T>(call: () => Promise<T>): Promise<T> => {
    const scope = new CancellationScope();
    void condition(() => clearRequest !== undefined).then(() => scope.cancel());
    return scope.run(call);
  };

  const openReview = async () => {
    const now = new Date();
    const taskId = `review-${state.accountId}-${state.caseId.slice(-8)}`;
    state.review = {
      taskId,
      priority: 'HIGH',
      openedAt: now.toISOString(),
      dueAt: new Date(now.getTime() + policy.reviewSlaMs).toISOString(),
    };
    const opened = `review task ${taskId} open with priority HIGH, due ${state.review.dueAt}`;
    await act('MANUAL_REVIEW', async () =>
      patched(REVIEW_QUEUE_IN_VISIBILITY)
        ? opened
        : acts.openReviewTask({ caseId: state.caseId, accountId: state.accountId, taskId, priority: 'HIGH', dueAt: state.review!.dueAt, alertCount: state.alertCount }),
    );
  };

  const verify = () =>
    act('REQUIRE_3DS', () => acts.sendVerificationSms({ idempotencyKey: key('sms'), caseId: state.caseId, accountId: state.accountId }));

  /** The detail of the latest record of `action`. */
  const lastDetail = (action: ActionRecord['action']) => state.actions.filter((r) => r.action === action).at(-1)?.detail ?? '';

  /**
   * Block the card, then tell the issuer: the notice follows only a block that happened. Returns whether it did.
   * The block is this case's (its key derives from the case id); its id is kept for lifting it when the case clears.
   */
  const block = async (why: string): Promise<boolean> => {
    const idempotencyKey = key('block');
    const blocked = await act('BLOCK_CARD', async () => {
      const request = { idempotencyKey, caseId: state.caseId, accountId: state.accountId, reason: why };
      const r: BlockCardResult | string = clearStopsBlock
        ? await untilCleared(() => blockingUntilCleared.blockCard(request))
        : await blocking.blockCard(request);
      if (typeof r === 'string') return r; // recorded before the activity returned the block id
      state.block = { blockId: r.blockId, idempotencyKey, at: new Date().toISOString() };
      return r.detail;
    });
    // Stopped, or done just as the clear came: the case closes next (and lifts the block); no "card blocked" notice.
    if (clearStopsBlock && clearRequest) return blocked;
    if (!blocked && patched(BLOCK_REFUSAL_WAITS)) {
      state.blockRefused = true;
      const noCard = lastDetail('BLOCK_CARD').startsWith(`${FailureType.NoCardOnFile}:`);
      const refusals = state.actions.filter((r) => r.action === 'BLOCK_CARD' && r.status === 'failed').length;
      audit('action_failed', `BLOCK_CARD:${refusals}:waits`, 'system', `card not blocked: ${noCard ? 'no card on file' : 'the issuer refused'}; the case waits for an operator (review decision or clearing)`, { action: 'BLOCK_CARD' });
      return false;
    }
    await act('NOTIFY_ISSUER', () =>
      acts.notifyIssuer({ idempotencyKey: key('issuer'), caseId: state.caseId, accountId: state.accountId, message: `card blocked: ${why}` }),
    );
    return true;
  };
  /**
   * Before a case closes: lift the card block it made, if it made one. Returns why the block is still in place, if it
   * is (the case closes anyway, and says so). Cases that blocked before the block id was kept name it in the action's
   * detail ("card <blockId> blocked").
   */
  const liftBlock = async (why: string): Promise<string | undefined> => {
    const blocked = state.actions.find((r) => r.action === 'BLOCK_CARD' && r.status === 'done');
    const stopped = !blocked && state.actions.some((r) => r.action === 'BLOCK_CARD' && r.detail === STOPPED_BY_CLEAR);
    if (stopped) {
      // An attempt may have blocked the card without its answer reaching the case: the issuer is asked by the key.
      const lifted = await act('UNBLOCK_CARD', () =>
        unblocking.unblockCard({ idempotencyKey: key('unblock'), caseId: state.caseId, accountId: state.accountId, blockKey: key('block'), reason: why }),
      );
      if (lifted) return undefined;
      const cause = lastDetail('UNBLOCK_CARD');
      audit('action_failed', 'UNBLOCK_CARD:left-in-place', 'system', `a block this case's attempts may have made was not lifted (${cause}): the case closes anyway; check the card at the issuer`, {
        action: 'UNBLOCK_CARD', blockId: null,
      });
      return `a block this case's attempts may have made was not lifted: ${cause}`;
    }
    if (!blocked || !patched(LIFT_BLOCK_ON_CLEAR)) return undefined;
    const blockId = state.block?.blockId ?? /^card (\S+) blocked/.exec(blocked.detail)?.[1];
    let cause: string;
    if (blockId === undefined) {
      cause = `the block id is not known (the block was recorded as ${JSON.stringify(blocked.detail)})`;
      state.actions.push({ action: 'UNBLOCK_CARD', status: 'failed', at: new Date().toISOString(), detail: cause });
    } else {
      const lifted = await act('UNBLOCK_CARD', () =>
        unblocking.unblockCard({ idempotencyKey: key('unblock'), caseId: state.caseId, accountId: state.accountId, blockId, reason: why }),
      );
      if (lifted) return undefined;
      cause = lastDetail('UNBLOCK_CARD');
    }
    const which = blockId === undefined ? "this case's card block" : `card block ${blockId}`;
    audit('action_failed', 'UNBLOCK_CARD:left-in-place', 'system', `${which} not lifted (${cause}): the case closes anyway, with the block in place; lift it at the issuer if it should go`, {
      action: 'UNBLOCK_CARD', blockId: blockId ?? null,
    });
    return `${which} not lifted: ${cause}`;
  };
  const withNote = (reason: string, note: string | undefined) => (note ? `${reason}; ${note}` : reason);

  /** The issuer refused this case's block: the ladder does not try again on its own. */
  const blockRefused = () => state.blockRefused === true;

  const setStage = (stage: Stage, actor: string, why: string) => {
    if (state.stage === stage) return;
    const from = state.stage;
    state.stage = stage;
    audit('stage', `${from}->${stage}`, actor, `${from} -> ${stage}: ${why}`, { from, to: stage });
  };

  /** The stage the alert count calls for. */
  const ladderStage = (): Stage =>
    state.alertCount > policy.blockAfter ? 'BLOCKED'
      : state.alertCount > policy.verifyAfter ? 'REQUIRE_3DS'
      : state.alertCount > policy.reviewAfter ? 'MANUAL_REVIEW'
      : 'MONITORING';

  /** Only cases from before REVIEW_QUEUE_IN_VISIBILITY: their review left a Redis queue entry behind. */
  const closeReviewTask = async (taskId: string) => {
    if (!patched(REVIEW_QUEUE_IN_VISIBILITY)) await acts.closeReviewTask({ taskId, accountId: state.accountId });
  };

  /** The next ladder step the alert count calls for, if the case may take it. */
  const nextStep = (): Stage | undefined => {
    if (clearStopsBlock && clearRequest) return undefined; // closing: no more steps
    if (state.stage === 'BLOCKED' || rank(ladderStage()) <= rank(state.stage)) return undefined;
    const next = LADDER[rank(state.stage) + 1]!;
    return next === 'BLOCKED' && blockRefused() ? undefined : next;
  };

  /** Anything the main loop must act on. */
  const pendingWork = () =>
    pendingAudit.length > 0 ||
    clearRequest !== undefined ||
    (decision !== undefined && !decisionApplied) ||
    nextStep() !== undefined;

  const timeToContinueAsNew = () => {
    const i = workflowInfo();
    return i.continueAsNewSuggested || i.historyLength > (policy.historyLimit ?? 20_000);
  };

  publishStage();
  let lastPublished = published();

  for (;;) {
    const reviewDue = state.review && !state.review.decision && !state.review.slaBreached ? Date.parse(state.review.dueAt) : undefined;
    const wake = () => pendingWork() || timeToContinueAsNew();
    if (reviewDue !== undefined) {
      const left = reviewDue - now();
      if (left > 0) await condition(wake, left);
    } else {
      await condition(wake);
    }

    // 1. Ops clear the account: lift the case's block, reset what the guide's clients read, close the case.
    if (clearRequest) {
      const req = clearRequest;
      if (state.review && !state.review.decision) await closeReviewTask(state.review.taskId);
      const notLifted = await liftBlock(`account cleared by ops:${req.by}: ${req.reason ?? 'cleared'}`);
      await act('CLEAR_ACCOUNT', () => acts.clearAccountState({ accountId: state.accountId, caseId: state.caseId }));
      state.stage = 'CLEARED';
      state.closedAt = new Date().toISOString();
      state.closedReason = withNote(req.reason ?? 'cleared', notLifted);
      audit('cleared', 'closed', `ops:${req.by}`, `account cleared: ${state.closedReason}`);
      break;
    }

    // 2. An analyst's decision.
    if (decision && !decisionApplied && state.review) {
      const d = decision;
      state.review.decision = { decision: d.decision, analystId: d.analystId, note: d.note ?? '', decidedAt: new Date().toISOString() };
      audit('decision', d.taskId, `analyst:${d.analystId}`, `review ${d.taskId}: ${d.decision}${d.note ? ` (${d.note})` : ''}`, { decision: d });
      await closeReviewTask(d.taskId);
      if (d.decision === 'CONFIRMED_FRAUD') {
        if (await block(`confirmed fraud by analyst ${d.analystId}`)) setStage('BLOCKED', `analyst:${d.analystId}`, 'review confirmed fraud');
        decisionApplied = true;
      } else {
        const notLifted = await liftBlock(`false positive (analyst ${d.analystId})`);
        await act('CLEAR_ACCOUNT', () => acts.clearAccountState({ accountId: state.accountId, caseId: state.caseId }));
        state.stage = 'CLEARED';
        state.closedAt = new Date().toISOString();
        state.closedReason = withNote(`false positive (analyst ${d.analystId})`, notLifted);
        audit('cleared', 'closed', `analyst:${d.analystId}`, withNote('account cleared: review found a false positive', notLifted));
        decisionApplied = true;
        break;
      }
    }

    // 3. The SLA timer fired with the review still open: escalate on our own.
    if (reviewDue !== undefined && now() >= reviewDue && state.review && !state.review.decision) {
      state.review.slaBreached = true;
      state.review.priority = 'CRITICAL';
      audit('sla_breached', state.review.taskId, 'system', `review ${state.review.taskId} not decided within ${policy.reviewSlaMs / 60_000} min: escalating`);
      // The queue shows CRITICAL from the memo published below; older cases re-queued in Redis.
      if (!patched(REVIEW_QUEUE_IN_VISIBILITY)) {
        await acts.openReviewTask({
          caseId: state.caseId, accountId: state.accountId, taskId: state.review.taskId, priority: 'CRITICAL', dueAt: state.review.dueAt, alertCount: state.alertCount,
        });
      }
      if (rank(state.stage) < rank('REQUIRE_3DS')) {
        await verify();
        setStage('REQUIRE_3DS', 'system', 'review SLA breached');
      }
    }

    // 4. Climb the ladder as far as the alert count calls for, one step at a time, each action once.
    for (let next = nextStep(); next !== undefined; next = nextStep()) {
      if (next === 'MANUAL_REVIEW') await openReview();
      else if (next === 'REQUIRE_3DS') await verify();
      else if (!(await block(`${state.alertCount} velocity fraud alerts (more than ${policy.blockAfter})`))) continue; // refused: nextStep() stops
      setStage(next, 'system', `${state.alertCount} alerts`);
    }

    await flushAudit();
    if (published() !== lastPublished) {
      publishStage();
      lastPublished = published();
    }

    if (timeToContinueAsNew()) {
      // Only with nothing left to do: a signal or update that arrived meanwhile is handled in this run first.
      await condition(() => allHandlersFinished() || pendingWork());
      if (!pendingWork()) {
        await continueAsNew<typeof fraudCaseWorkflow>({ accountId: state.accountId, policy, state: { ...state, auditSeq, rejectedCount } });
      }
    }
  }

  // Closed: record, publish, and hand alerts that raced the close to a fresh case.
  decisionApplied = true;
  await flushAudit();
  publishStage();
  await condition(allHandlersFinished);
  if (lateAlerts.length > 0) {
    await continueAsNew<typeof fraudCaseWorkflow>({ accountId: state.accountId, policy, carriedAlerts: lateAlerts });
  }
  return state;
}
