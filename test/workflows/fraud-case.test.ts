// The case workflow's logic on Temporal's time-skipping test server, with recording fake activities.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { WorkflowUpdateFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { fraudCaseWorkflow } from '../../workflows/fraud-case.ts';
import { alertBatchSignal, alertSignal, caseStateQuery, clearAccountSignal, completeReviewUpdate, defaultPolicy, type CaseState, type EscalationPolicy } from '../../contracts/case.ts';
import type { AlertSignal } from '../../contracts/alert.ts';
import { repoRoot } from '../../common/env.ts';
import { uniqueId } from '../../harness/stack.ts';
import { makeWorker, recordingActivities, timeSkippingEnv, type Call } from '../support/temporal.ts';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
});
afterAll(async () => {
  await env?.teardown();
});

const alert = (accountId: string, n: number): AlertSignal => ({
  alert_id: `va_${accountId}_${n}`, sender_account_id: accountId, velocity_count: 3, amount: 10 + n, currency: 'EUR', region: 'eu-west', alert_timestamp: new Date(1_780_000_000_000 + n).toISOString(),
});

async function withCase<T>(
  opts: { policy?: Partial<EscalationPolicy>; fail?: Parameters<typeof recordingActivities>[0]; record?: string },
  body: (h: WorkflowHandleWithFirstExecutionRunId<typeof fraudCaseWorkflow>, rec: ReturnType<typeof recordingActivities>, accountId: string) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueId('tq-');
  const accountId = uniqueId('ACC_');
  const rec = recordingActivities(opts.fail);
  const worker = await makeWorker(env, taskQueue, rec.activities);
  return worker.runUntil(async () => {
    const h = await env.client.workflow.start(fraudCaseWorkflow, {
      taskQueue, workflowId: `fraud-account-${accountId}`, args: [{ accountId, policy: { ...defaultPolicy, ...opts.policy } }],
    });
    const result = await body(h, rec, accountId);
    if (opts.record && process.env.RECORD_HISTORIES === '1') {
      // The history as proto JSON, written by the stock temporal CLI (what the Web UI's download gives too); the
      // stack's, or TEMPORAL_CLI_PATH (as TEMPORAL_TEST_SERVER_PATH for the test server).
      const json = execFileSync(
        process.env.TEMPORAL_CLI_PATH ?? `${repoRoot}.stack/venv/bin/temporal`,
        ['--disable-config-file', 'workflow', 'show', '--address', env.address, '--namespace', env.namespace ?? 'default', '--workflow-id', h.workflowId, '--output', 'json'],
        { encoding: 'utf8' },
      );
      writeFileSync(`${repoRoot}test/fixtures/histories/${opts.record}.json`, json);
    }
    return result;
  });
}

const signalAlerts = async (h: WorkflowHandle, accountId: string, from: number, to: number) => {
  for (let n = from; n <= to; n++) await h.signal(alertSignal, alert(accountId, n));
};

type Entry = { id: string; type: string; detail: string; at: string; data: Record<string, unknown> };
const auditEntries = (rec: ReturnType<typeof recordingActivities>): Entry[] =>
  rec.calls.filter((c) => c.name === 'appendAudit').flatMap((c) => c.input.entries as Entry[]);

const settle = async (h: WorkflowHandle, pred: (s: CaseState) => boolean): Promise<CaseState> => {
  for (let i = 0; i < 100; i++) {
    const s = await h.query(caseStateQuery);
    if (pred(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`case never settled: ${JSON.stringify(await h.query(caseStateQuery))}`);
};

describe('fraud case workflow', () => {
  it('when alerts climb past 3, 5 and 10, then review, SMS and block each happen exactly once, in order', () =>
    withCase({ record: 'ladder' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 3);
      let s = await settle(h, (x) => x.alertCount === 3);
      expect(s.stage).toBe('MONITORING');
      expect(s.actions).toStrictEqual([]);

      await signalAlerts(h, acc, 4, 4);
      s = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      expect(s.review?.priority).toBe('HIGH');
      await signalAlerts(h, acc, 5, 6);
      s = await settle(h, (x) => x.stage === 'REQUIRE_3DS');
      await signalAlerts(h, acc, 1, 6); // re-delivered alerts change nothing
      await signalAlerts(h, acc, 7, 11);
      s = await settle(h, (x) => x.stage === 'BLOCKED');
      expect(s.alertCount).toBe(11);
      // The review is the case's own state and memo (the queue is Temporal visibility): no activity queues it.
      expect(s.actions.map((a) => `${a.action}:${a.status}`)).toStrictEqual(['MANUAL_REVIEW:done', 'REQUIRE_3DS:done', 'BLOCK_CARD:done', 'NOTIFY_ISSUER:done']);
      expect(rec.count('openReviewTask') + rec.count('closeReviewTask')).toBe(0);
      expect(rec.count('sendVerificationSms')).toBe(1);
      expect(rec.count('blockCard')).toBe(1);
      expect(rec.count('notifyIssuer')).toBe(1);
      const order = rec.calls.map((c) => c.name).filter((n) => n !== 'appendAudit');
      expect(order).toStrictEqual(['sendVerificationSms', 'blockCard', 'notifyIssuer']);
      const notice = rec.calls.find((c) => c.name === 'notifyIssuer')!.input.message as string;
      expect(notice).toMatch(/card blocked: 11 velocity fraud alerts/);
      expect(rec.auditTypes().filter((t) => t === 'alert').length).toBe(11);
      expect(new Set(rec.auditTypes())).toStrictEqual(new Set(['case_opened', 'alert', 'action', 'stage']));
      await h.signal(clearAccountSignal, { by: 'ops-1', reason: 'test over' });
      expect((await h.result()).stage).toBe('CLEARED');
    }));

  it('when alerts arrive batched in one signal (as the signaller sends them under load), then each counts once', () =>
    withCase({}, async (h, rec, acc) => {
      await h.signal(alertBatchSignal, [alert(acc, 1), alert(acc, 2), alert(acc, 2), alert(acc, 3)]);
      await h.signal(alertBatchSignal, [alert(acc, 3), alert(acc, 4)]);
      const s = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      expect(s.alertCount).toBe(4);
      expect(s.lastAlert?.alert_id).toBe(alert(acc, 4).alert_id);
      expect(s.actions.filter((a) => a.action === 'MANUAL_REVIEW')).toHaveLength(1);
      await h.signal(clearAccountSignal);
      await h.result();
    }));

  it('when a review is not decided within its SLA, then the durable timer escalates the case', () =>
    withCase({ policy: { reviewSlaMs: 4 * 3600_000 }, record: 'sla' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 4);
      const opened = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      expect(rec.count('sendVerificationSms')).toBe(0);
      await env.sleep('3 hours');
      expect((await h.query(caseStateQuery)).stage).toBe('MANUAL_REVIEW');
      await env.sleep('61 minutes');
      const s = await settle(h, (x) => x.stage === 'REQUIRE_3DS');
      expect(s.review?.slaBreached).toBe(true);
      expect(s.review?.priority).toBe('CRITICAL');
      expect(s.review?.taskId).toBe(opened.review?.taskId);
      expect(rec.count('sendVerificationSms')).toBe(1);
      expect(rec.auditTypes().includes('sla_breached')).toBeTruthy();
      await h.signal(clearAccountSignal);
      await h.result();
    }));

  it('when an analyst decision is invalid, then the update is rejected with a reason and nothing changes', () =>
    withCase({}, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 4);
      const before = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      const taskId = before.review!.taskId;
      const rejects = async (input: unknown, reason: RegExp) => {
        const err = await h.executeUpdate(completeReviewUpdate, { args: [input as never] }).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
        expect(String(((err as WorkflowUpdateFailedError).cause as Error).message)).toMatch(reason);
      };
      await rejects({ taskId: 'review-nope', decision: 'CONFIRMED_FRAUD', analystId: 'a1' }, /unknown review task "review-nope"/);
      await rejects({ taskId, decision: 'MAYBE', analystId: 'a1' }, /invalid decision "MAYBE"/);
      await rejects({ taskId, decision: 'CONFIRMED_FRAUD', analystId: '' }, /analystId is required/);
      expect(await h.query(caseStateQuery)).toStrictEqual(before);
      expect(rec.count('blockCard')).toBe(0);

      const ok = await h.executeUpdate(completeReviewUpdate, { args: [{ taskId, decision: 'CONFIRMED_FRAUD', analystId: 'analyst-7', note: 'card testing pattern' }] });
      expect(ok).toStrictEqual({ stage: 'BLOCKED', decision: 'CONFIRMED_FRAUD' });
      await rejects({ taskId, decision: 'FALSE_POSITIVE', analystId: 'a2' }, /already decided/);
      const s = await h.query(caseStateQuery);
      expect(s.review?.decision?.analystId).toBe('analyst-7');
      expect(rec.count('blockCard')).toBe(1);
      expect(rec.count('notifyIssuer')).toBe(1);
      const decision = rec.calls.filter((c) => c.name === 'appendAudit').flatMap((c) => c.input.entries as Array<{ type: string; actor: string }>).find((e) => e.type === 'decision');
      expect(decision?.actor).toBe('analyst:analyst-7');
      await h.signal(clearAccountSignal);
      await h.result();
    }));

  it('when an analyst calls a false positive, then the account is cleared and the case closes', () =>
    withCase({ record: 'false-positive' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 4);
      const s = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      const r = await h.executeUpdate(completeReviewUpdate, { args: [{ taskId: s.review!.taskId, decision: 'FALSE_POSITIVE', analystId: 'a9', note: 'travelling' }] });
      expect(r.stage).toBe('CLEARED');
      const final = await h.result();
      expect(final.stage).toBe('CLEARED');
      expect(final.closedReason!).toMatch(/false positive/);
      expect(rec.count('clearAccountState')).toBe(1);
      expect(rec.count('blockCard')).toBe(0);
    }));

  it('when ops send clearAccount without input (as the Web UI can), then the account is reset and the case closes', () =>
    withCase({ record: 'clear' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 2);
      await settle(h, (x) => x.alertCount === 2);
      await h.signal(clearAccountSignal);
      const final = await h.result();
      expect(final.stage).toBe('CLEARED');
      expect(rec.count('clearAccountState')).toBe(1);
      expect(rec.auditTypes().includes('cleared')).toBeTruthy();
    }));

  it('when an action fails permanently, then the case records it and goes on', () =>
    withCase({ fail: { sendVerificationSms: () => ApplicationFailure.nonRetryable('no phone number on file', 'NoPhoneOnFile') } }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      const s = await settle(h, (x) => x.stage === 'BLOCKED');
      const sms = s.actions.find((a) => a.action === 'REQUIRE_3DS');
      expect(sms?.status).toBe('failed');
      expect(sms!.detail).toMatch(/NoPhoneOnFile: no phone number on file/);
      expect(rec.auditTypes().includes('action_failed')).toBeTruthy();
      expect(rec.count('blockCard')).toBe(1);
      await h.signal(clearAccountSignal);
      await h.result();
    }));

  it('when the issuer is down for longer than the other actions retry, then the block is still retried until it lands, and the notice follows it', () => {
    let attempts = 0;
    return withCase({ fail: { blockCard: () => (++attempts <= 25 ? new Error('issuer unreachable') : undefined) }, record: 'block-retried' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      await settle(h, (x) => x.stage === 'REQUIRE_3DS');
      expect(rec.count('notifyIssuer')).toBe(0);
      await env.sleep('3 hours'); // the retries' backoff, up to 5 minutes apart, on the skipping clock
      const s = await settle(h, (x) => x.stage === 'BLOCKED');
      expect(attempts).toBe(26);
      expect(s.actions.filter((a) => a.action === 'BLOCK_CARD').map((a) => a.status)).toStrictEqual(['done']);
      expect(rec.count('notifyIssuer')).toBe(1);
      await h.signal(clearAccountSignal);
      await h.result();
    });
  });

  it('when ops clear an account while its block is still retried (the issuer down), then the attempts stop, the case closes at once, and what an attempt may have blocked is lifted by its key', () => {
    let attempts = 0;
    return withCase({ fail: { blockCard: () => (++attempts, new Error('issuer unreachable')) }, record: 'block-stopped-by-clear' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      await settle(h, (x) => x.stage === 'REQUIRE_3DS');
      for (let i = 0; attempts < 2; i++) {
        if (i > 200) throw new Error('the block was never retried');
        await new Promise((r) => setTimeout(r, 50));
      }
      await h.signal(clearAccountSignal, { by: 'ops-7', reason: 'cardholder called in' });
      const final = await h.result(); // no skipping of the clock: the clear does not wait for the issuer
      expect(final.stage).toBe('CLEARED');
      expect(final.closedReason).toBe('cardholder called in');
      expect(final.actions.map((a) => `${a.action}:${a.status}`)).toStrictEqual([
        'MANUAL_REVIEW:done', 'REQUIRE_3DS:done', 'BLOCK_CARD:failed', 'UNBLOCK_CARD:done', 'CLEAR_ACCOUNT:done',
      ]);
      expect(final.actions.find((a) => a.action === 'BLOCK_CARD')!.detail).toBe('stopped: the account is being cleared');
      expect(rec.calls.filter((c) => c.name === 'unblockCard').map((c) => c.input)).toStrictEqual([{
        idempotencyKey: `${final.caseId}:unblock`, caseId: final.caseId, accountId: acc, blockKey: `${final.caseId}:block`, reason: 'account cleared by ops:ops-7: cardholder called in',
      }]);
      expect(rec.count('notifyIssuer')).toBe(0);
      const stoppedAt = attempts;
      await env.sleep('1 hour');
      expect(attempts).toBe(stoppedAt); // no attempt after the case closed
      expect(auditEntries(rec).filter((e) => e.type === 'action_failed').map((e) => e.detail)).toStrictEqual(['BLOCK_CARD attempts stopped: the account is being cleared']);
    });
  });

  it('when the issuer refuses the block, then the issuer is not told "card blocked", the stage stays, and the trail asks for an operator', () =>
    withCase({ fail: { blockCard: () => ApplicationFailure.nonRetryable('card unknown to the issuer', 'CardUnknown') }, record: 'block-refused' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      const s = await settle(h, (x) => x.actions.some((a) => a.action === 'BLOCK_CARD'));
      await signalAlerts(h, acc, 12, 13); // more alerts do not retry the block on their own
      const after = await settle(h, (x) => x.alertCount === 13);
      expect(after.stage).toBe('REQUIRE_3DS');
      expect(s.actions.find((a) => a.action === 'BLOCK_CARD')).toMatchObject({ status: 'failed', detail: 'CardUnknown: card unknown to the issuer' });
      expect(rec.count('blockCard')).toBe(1);
      expect(rec.count('notifyIssuer')).toBe(0);
      const details = rec.calls.filter((c) => c.name === 'appendAudit').flatMap((c) => c.input.entries as Array<{ detail: string }>).map((e) => e.detail);
      expect(details).toContainEqual(expect.stringMatching(/^card not blocked: the issuer refused; the case waits for an operator/));
      await h.signal(clearAccountSignal, { by: 'ops-2', reason: 'issuer confirmed the card is gone' });
      expect((await h.result()).stage).toBe('CLEARED');
    }));

  it('when a blocked case is cleared, then the block it made is lifted once, before the account is cleared, and the trail says so', () =>
    withCase({ record: 'block-lifted' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      const blocked = await settle(h, (x) => x.stage === 'BLOCKED' && x.actions.some((a) => a.action === 'NOTIFY_ISSUER'));
      expect(blocked.block).toMatchObject({ blockId: `card@${blocked.caseId}:block`, idempotencyKey: `${blocked.caseId}:block` });
      await h.signal(clearAccountSignal, { by: 'ops-4', reason: 'card replaced' });
      const final = await h.result();
      expect(final.stage).toBe('CLEARED');
      expect(final.closedReason).toBe('card replaced');
      const unblocks = rec.calls.filter((c) => c.name === 'unblockCard');
      expect(unblocks.map((c) => c.input)).toStrictEqual([{
        idempotencyKey: `${final.caseId}:unblock`, caseId: final.caseId, accountId: acc, blockId: `card@${final.caseId}:block`, reason: 'account cleared by ops:ops-4: card replaced',
      }]);
      // Lift the block, then clear the account's state, then close.
      const order = rec.calls.map((c) => c.name).filter((n) => n !== 'appendAudit');
      expect(order.slice(-2)).toStrictEqual(['unblockCard', 'clearAccountState']);
      expect(final.actions.map((a) => `${a.action}:${a.status}`).slice(-2)).toStrictEqual(['UNBLOCK_CARD:done', 'CLEAR_ACCOUNT:done']);
      const entries = auditEntries(rec);
      expect(entries.filter((e) => e.type === 'action' && e.data.action === 'UNBLOCK_CARD').map((e) => e.detail)).toStrictEqual([
        `UNBLOCK_CARD: card block card@${final.caseId}:block lifted`,
      ]);
      expect(entries.some((e) => e.type === 'action_failed')).toBe(false);
    }));

  it('when the issuer is down while a cleared case lifts its block, then the lift is retried for a bounded time and the case closes saying the block is still in place', () =>
    withCase({ fail: { unblockCard: () => new Error('issuer unreachable') }, record: 'block-not-lifted' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      await settle(h, (x) => x.stage === 'BLOCKED' && x.actions.some((a) => a.action === 'NOTIFY_ISSUER'));
      await h.signal(clearAccountSignal, { by: 'ops-5', reason: 'verified with the cardholder' });
      const final = await h.result(); // the retries' backoff, on the skipping clock
      expect(final.stage).toBe('CLEARED');
      expect(rec.count('unblockCard')).toBe(10);
      expect(rec.count('clearAccountState')).toBe(1);
      const blockId = `card@${final.caseId}:block`;
      expect(final.closedReason).toBe(`verified with the cardholder; card block ${blockId} not lifted: Error: issuer unreachable`);
      expect(final.actions.find((a) => a.action === 'UNBLOCK_CARD')).toMatchObject({ status: 'failed', detail: 'Error: issuer unreachable' });
      const entries = auditEntries(rec);
      expect(entries.filter((e) => e.type === 'action_failed').map((e) => e.detail)).toStrictEqual([
        'UNBLOCK_CARD failed permanently: Error: issuer unreachable',
        `card block ${blockId} not lifted (Error: issuer unreachable): the case closes anyway, with the block in place; lift it at the issuer if it should go`,
      ]);
      expect(entries.find((e) => e.type === 'cleared')?.detail).toBe(`account cleared: ${final.closedReason}`);
      // The retries were bounded: minutes on the workflow clock, not the block's hours.
      expect(Date.parse(final.closedAt!) - Date.parse(entries.find((e) => e.type === 'stage' && e.data.to === 'BLOCKED')!.at)).toBeLessThan(10 * 60_000);
    }));

  it('when the account\'s block on file is another case\'s, then clearing leaves it in place, says why, and closes', () =>
    withCase({ fail: { unblockCard: () => ApplicationFailure.nonRetryable("ACC's card block on file is card@other:block of case other, not this case's", 'BlockHeldByAnotherCase') } }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      await settle(h, (x) => x.stage === 'BLOCKED' && x.actions.some((a) => a.action === 'NOTIFY_ISSUER'));
      await h.signal(clearAccountSignal);
      const final = await h.result();
      expect(rec.count('unblockCard')).toBe(1); // a refusal is not retried
      expect(final.closedReason).toMatch(/^cleared by ops; card block card@\S+ not lifted: BlockHeldByAnotherCase: /);
      expect(auditEntries(rec).filter((e) => e.type === 'action_failed' && e.data.action === 'UNBLOCK_CARD')).toHaveLength(2);
    }));

  it('when an analyst calls a false positive on a blocked case, then its block is lifted and the case closes', () =>
    withCase({ record: 'false-positive-lifts-block' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      const s = await settle(h, (x) => x.stage === 'BLOCKED' && x.actions.some((a) => a.action === 'NOTIFY_ISSUER'));
      const r = await h.executeUpdate(completeReviewUpdate, { args: [{ taskId: s.review!.taskId, decision: 'FALSE_POSITIVE', analystId: 'a3', note: 'cardholder abroad' }] });
      expect(r.stage).toBe('CLEARED');
      const final = await h.result();
      expect(final.closedReason).toBe('false positive (analyst a3)');
      expect(rec.calls.filter((c) => c.name === 'unblockCard').map((c) => c.input.blockId)).toStrictEqual([`card@${s.caseId}:block`]);
      expect(rec.calls.filter((c) => c.name === 'unblockCard').map((c) => c.input.reason)).toStrictEqual(['false positive (analyst a3)']);
      expect(rec.count('clearAccountState')).toBe(1);
    }));

  it('when the account has no card on file, then the block is recorded as failed, the issuer is not told, and the case waits for an operator', () =>
    withCase({ fail: { blockCard: () => ApplicationFailure.nonRetryable('no card id on file for the account', 'NoCardOnFile') }, record: 'no-card-on-file' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      const s = await settle(h, (x) => x.actions.some((a) => a.action === 'BLOCK_CARD'));
      await signalAlerts(h, acc, 12, 13); // more alerts do not retry the block on their own
      const after = await settle(h, (x) => x.alertCount === 13);
      expect(after.stage).toBe('REQUIRE_3DS');
      expect(after.blockRefused).toBe(true);
      expect(after.block).toBeUndefined();
      expect(s.actions.find((a) => a.action === 'BLOCK_CARD')).toMatchObject({ status: 'failed', detail: 'NoCardOnFile: no card id on file for the account' });
      expect(rec.count('blockCard')).toBe(1);
      expect(rec.count('notifyIssuer')).toBe(0);
      const failed = auditEntries(rec).filter((e) => e.type === 'action_failed').map((e) => e.detail);
      expect(failed).toStrictEqual([
        'BLOCK_CARD failed permanently: NoCardOnFile: no card id on file for the account',
        'card not blocked: no card on file; the case waits for an operator (review decision or clearing)',
      ]);
      // Nothing was blocked, so clearing lifts nothing.
      await h.signal(clearAccountSignal, { by: 'ops-6', reason: 'card id added, cardholder verified' });
      const final = await h.result();
      expect(final.closedReason).toBe('card id added, cardholder verified');
      expect(rec.count('unblockCard')).toBe(0);
    }));

  it('when a blocked case is cleared and alerts reopen the account, then the new case blocks again under a key of its own and lifts only its own block', () =>
    withCase({ record: 'reopened-blocks-again' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 11);
      const first = await settle(h, (x) => x.stage === 'BLOCKED' && x.actions.some((a) => a.action === 'NOTIFY_ISSUER'));
      await h.signal(clearAccountSignal, { by: 'ops-7' });
      await h.signal(alertBatchSignal, Array.from({ length: 11 }, (_, i) => alert(acc, 100 + i)));
      const next = env.client.workflow.getHandle(h.workflowId);
      const second = await settle(next, (x) => x.caseId !== first.caseId && x.stage === 'BLOCKED' && x.actions.some((a) => a.action === 'NOTIFY_ISSUER'));
      const keys = (name: Call['name']) => rec.calls.filter((c) => c.name === name).map((c) => c.input.idempotencyKey);
      expect(keys('blockCard')).toStrictEqual([`${first.caseId}:block`, `${second.caseId}:block`]);
      expect(keys('notifyIssuer')).toStrictEqual([`${first.caseId}:issuer`, `${second.caseId}:issuer`]);
      expect(second.block?.blockId).toBe(`card@${second.caseId}:block`);
      await next.signal(clearAccountSignal, { by: 'ops-7', reason: 'second case over' });
      const final = await next.result();
      expect(final.caseId).toBe(second.caseId);
      // Each case lifted its own block.
      expect(rec.calls.filter((c) => c.name === 'unblockCard').map((c) => [c.input.idempotencyKey, c.input.blockId])).toStrictEqual([
        [`${first.caseId}:unblock`, `card@${first.caseId}:block`],
        [`${second.caseId}:unblock`, `card@${second.caseId}:block`],
      ]);
    }));

  it('when alerts race the close of a case, then they open a new case with a case id of its own', () =>
    withCase({ record: 'reopened' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 4);
      const first = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      // The next alerts arrive while the case is closing (clearing the account is under way): they belong to a new case.
      await h.signal(clearAccountSignal, { by: 'ops-3' });
      await h.signal(alertBatchSignal, [alert(acc, 5), alert(acc, 6)]);
      const next = env.client.workflow.getHandle(h.workflowId);
      const reopened = await settle(next, (x) => x.caseId !== first.caseId);
      expect(reopened.caseId).toBe(`${h.workflowId}/${(await next.describe()).runId}`);
      expect(reopened.alertIds).toStrictEqual([alert(acc, 5).alert_id, alert(acc, 6).alert_id]);
      const opened = rec.calls.filter((c) => c.name === 'appendAudit').flatMap((c) => c.input.entries as Array<{ id: string; type: string }>);
      expect(opened.filter((e) => e.type === 'case_opened').map((e) => e.id.split('#')[0])).toStrictEqual([first.caseId, reopened.caseId]);
      await next.signal(clearAccountSignal);
    }));

  it('when signals and updates carry hostile payloads, then each is refused or recorded as rejected and the case goes on unchanged', () =>
    withCase({ record: 'hostile-inputs' }, async (h, rec, acc) => {
      await signalAlerts(h, acc, 1, 4);
      const before = await settle(h, (x) => x.stage === 'MANUAL_REVIEW');
      // What the Web UI's Send Signal or the temporal CLI accept: any JSON at all.
      const anySignal = (name: string, input: unknown) => env.client.workflow.getHandle(h.workflowId).signal(name, input as never);
      await anySignal('clearAccount', { by: { toString: 1 } });
      await anySignal('clearAccount', 'now');
      await anySignal('alerts', null);
      await anySignal('alerts', [null, { ...alert(acc, 5), amount: { valueOf: 1 } }, { ...alert('SOMEONE_ELSE', 6) }, 7]);
      await anySignal('alert', { alert_id: { toString: 1 }, sender_account_id: acc });
      await anySignal('alert', []);
      const s = await settle(h, () => rec.auditTypes().filter((t) => t === 'rejected').length === 9);
      expect(s.stage).toBe('MANUAL_REVIEW');
      expect(s.alertCount).toBe(4);
      expect(s.alertIds).toStrictEqual(before.alertIds);
      const rejected = rec.calls
        .filter((c) => c.name === 'appendAudit')
        .flatMap((c) => c.input.entries as Array<{ type: string; detail: string }>)
        .filter((e) => e.type === 'rejected')
        .map((e) => e.detail);
      expect(rejected).toStrictEqual([
        'clearAccount rejected: by: by must be a string',
        expect.stringMatching(/^clearAccount rejected: clearAccount input must be an object/),
        'alerts rejected: alerts must be a list of alerts',
        expect.stringMatching(/^alerts\[0\] rejected: /),
        'alerts[1] rejected: amount: amount must be a number',
        expect.stringMatching(/^alerts\[2\] rejected: sender_account_id "SOMEONE_ELSE" is not this case's account/),
        expect.stringMatching(/^alerts\[3\] rejected: /),
        'alert rejected: alert_id: alert_id must be a string',
        expect.stringMatching(/^alert rejected: /),
      ]);
      // Updates with hostile input are refused by the validator, naming the field.
      const taskId = before.review!.taskId;
      for (const [input, reason] of [
        [{ taskId, decision: 'CONFIRMED_FRAUD', analystId: 'a1', note: { toString: 1 } }, /note: note must be a string/],
        [{ taskId: { toString: 1 }, decision: 'CONFIRMED_FRAUD', analystId: 'a1' }, /taskId: taskId must be a string/],
        [null, /a review decision needs/],
      ] as const) {
        const err = await h.executeUpdate(completeReviewUpdate, { args: [input as never] }).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
        expect(String(((err as WorkflowUpdateFailedError).cause as Error).message)).toMatch(reason);
      }
      // Still alive: a good alert counts, and a good clear closes it.
      await signalAlerts(h, acc, 5, 5);
      expect((await settle(h, (x) => x.alertCount === 5)).stage).toBe('MANUAL_REVIEW');
      await h.signal(clearAccountSignal, { by: 'ops-9', reason: 'after the noise' });
      const end = await h.result();
      expect(end.stage).toBe('CLEARED');
      expect(end.closedReason).toBe('after the noise');
    }));

  // On a test server of its own: time skipping (its 61 minutes) waits in real time while any workflow on the server has
  // work outstanding, and the cases the tests above leave behind on the shared server can hold it for good.
  it('when the history grows past the limit, then the case continues as new with alerts, review, timer and dedupe intact', async () => {
    const shared = env;
    env = await timeSkippingEnv();
    try {
      await continueAsNewCase();
    } finally {
      await env.teardown();
      env = shared;
    }
  });
});

const continueAsNewCase = () =>
    withCase({ policy: { historyLimit: 12, blockAfter: 1000, reviewSlaMs: 3600_000 }, record: 'continue-as-new' }, async (h, rec, acc) => {
      // Each step waits for the case to be quiet before the next message: Temporal's time-skipping test server can
      // drop a signal that races a continue-as-new (the real server rejects the continue-as-new and redelivers).
      const current = env.client.workflow.getHandle(h.workflowId);
      const alerts = Array.from({ length: 30 }, (_, i) => alert(acc, i + 1));
      await h.signal(alertBatchSignal, alerts.slice(0, 15));
      await quiet(current);
      await current.signal(alertBatchSignal, alerts.slice(15));
      const moved = await quiet(current);
      expect(moved.runId).not.toBe(h.firstExecutionRunId); // expected the case to have continued as new
      const s = await current.query(caseStateQuery);
      expect(s.alertCount).toBe(30);
      expect(s.stage).toBe('REQUIRE_3DS');

      await current.signal(alertBatchSignal, alerts); // all duplicates
      await quiet(current);
      const again = await current.query(caseStateQuery);
      expect(again.alertCount).toBe(30);
      expect(again.review?.taskId).toBe(s.review?.taskId);
      expect(again.caseId).toBe(s.caseId);

      await bounded('the time skip', env.sleep('61 minutes')); // the SLA timer survives continue-as-new
      await quiet(current);
      const breached = await current.query(caseStateQuery);
      expect(breached.review?.slaBreached).toBe(true);
      expect(breached.review?.priority).toBe('CRITICAL');
      // Re-queued as CRITICAL: the queue (visibility memo) says so.
      expect((await current.describe()).memo?.openReview).toMatchObject({ taskId: s.review?.taskId, priority: 'CRITICAL' });
      expect(rec.count('sendVerificationSms')).toBe(1);
      // The test server can drop a signal that races a continue-as-new, and then nothing ever ends the case: signal
      // the clear again if the case has not closed a while later, rather than wait on result() for good.
      for (let attempt = 1; ; attempt++) {
        await current.signal(clearAccountSignal);
        if (await closedWithin(current, 10_000)) break;
        if (attempt === 3) throw new Error('the case did not close after 3 clearAccount signals');
      }
      expect((await bounded('the result', current.result())).stage).toBe('CLEARED');
    });

/** `p`, or an error naming `what` if it takes longer than `ms` (a call the test server never answers). */
function bounded<T>(what: string, p: Promise<T>, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Whether the case's latest run completes within `ms`. */
async function closedWithin(h: WorkflowHandle, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if ((await bounded('describe', h.describe(), 10_000)).status.name === 'COMPLETED') return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Wait until the case's latest run is running with no pending workflow task and its history stops growing. */
async function quiet(h: WorkflowHandle) {
  let last = '';
  for (let i = 0; i < 200; i++) {
    const d = await bounded('describe', h.describe(), 10_000);
    const raw = d.raw.pendingWorkflowTask;
    const shape = `${d.runId}/${d.historyLength}/${d.status.name}`;
    if (d.status.name === 'RUNNING' && !raw && shape === last) return d;
    last = shape;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the case never went quiet');
}
