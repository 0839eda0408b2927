// Activities of the fraud case: every side effect of the workflow, each idempotent, with clients injected by the
// worker (workers/main.ts). A retry or a worker crash mid-activity repeats the call with the same key, and the
// effect happens once.
import { ApplicationFailure, log } from '@temporalio/activity';
import type { Redis } from 'ioredis';
import type { AuditLog } from '../common/audit-log.ts';
import type { CaseActivities } from '../contracts/activities.ts';
import { FailureType } from '../contracts/failures.ts';
import { alertKeys, caseKeys } from '../contracts/redis-keys.ts';
import type { IssuerAdapter } from './issuer.ts';
import { maskPhone, sendOnce, smsReference, SmsAttemptInFlightError, type SmsTransport } from './sms.ts';

export interface ActivityDeps {
  redis: Redis;
  audit: AuditLog;
  sms: SmsTransport;
  issuer: IssuerAdapter;
  /** See activities/sms.ts (default SMS_SETTLE_MS). */
  smsSettleMs?: number;
  retentionDays?: number;
}

export function createActivities({ redis, audit, sms, issuer, smsSettleMs, retentionDays }: ActivityDeps): CaseActivities {
  const cardholder = async (accountId: string) => redis.hgetall(caseKeys.cardholder(accountId));

  return {
    async appendAudit({ entries }) {
      await audit.append(entries);
    },

    // The review queue is Temporal visibility (the case's FraudStage and `openReview` memo): cases opened since the
    // `review-queue-in-visibility` patch no longer call these two. They stay registered, doing nothing, for cases
    // that were already running and replay the calls; remove them once no such case is open.
    async openReviewTask({ taskId, priority, dueAt }) {
      return `review task ${taskId} open with priority ${priority}, due ${dueAt}`;
    },

    async closeReviewTask() {},

    async sendVerificationSms({ idempotencyKey, accountId }) {
      const { phone } = await cardholder(accountId);
      if (!phone) throw ApplicationFailure.nonRetryable(`no phone number on file for ${accountId}`, FailureType.NoPhoneOnFile);
      const body = `Unusual activity on your card. Reply YES to confirm your recent payments or call the number on the back of your card. Ref ${smsReference(idempotencyKey)}`;
      try {
        const r = await sendOnce(redis, sms, phone, body, idempotencyKey, { settleMs: smsSettleMs, retentionDays });
        log.info('verification SMS', { accountId, to: maskPhone(phone), channel: r.channel, id: r.id, repeated: r.repeated, recovered: r.recovered });
        return `verification SMS to ${maskPhone(phone)} via ${r.channel} (${r.id})${r.recovered ? ', found sent by an earlier attempt' : ''}`;
      } catch (err) {
        if (err instanceof SmsAttemptInFlightError) {
          throw ApplicationFailure.create({ message: err.message, type: FailureType.SmsAttemptInFlight, nextRetryDelay: err.retryInMs });
        }
        // 4xx from Twilio: the request itself is wrong, retrying cannot help.
        const status = (err as { status?: number }).status;
        if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
          throw ApplicationFailure.nonRetryable(`Twilio rejected the SMS (${status}): ${(err as Error).message}`, FailureType.SmsRejected);
        }
        throw err;
      }
    },

    async blockCard({ idempotencyKey, caseId, accountId, reason }) {
      // No card id on file: nothing to block, and no card id made up that the issuer would "block".
      const cardId = (await cardholder(accountId)).card_id?.trim();
      if (!cardId) throw ApplicationFailure.nonRetryable(`no card id on file for ${accountId} (${caseKeys.cardholder(accountId)} card_id)`, FailureType.NoCardOnFile);
      const r = await issuer.blockCard({ idempotencyKey, caseId, accountId, cardId, reason });
      const replaced = r.replaced ? `, in place of block ${r.replaced.blockId}${r.replaced.caseId ? ` of case ${r.replaced.caseId}` : ''}, still on file` : '';
      return { blockId: r.blockId, detail: `card ${r.blockId} blocked${r.repeated ? ' (already blocked by this case)' : ''}${replaced}` };
    },

    async unblockCard({ idempotencyKey, caseId, accountId, blockId: named, blockKey, reason }) {
      let blockId = named;
      if (blockId === undefined) {
        // The case's block attempts were stopped: whatever one of them blocked, by its key.
        if (!blockKey) throw ApplicationFailure.nonRetryable('unblockCard needs a blockId or a blockKey', FailureType.NoBlockToLift);
        const made = await issuer.blockMadeWith(blockKey);
        if (!made) return `no block was made by this case's attempts (${blockKey}): nothing to lift`;
        blockId = made.blockId;
      }
      const r = await issuer.unblockCard({ idempotencyKey, caseId, accountId, blockId, reason });
      if (r.outcome === 'lifted') return `card block ${blockId} lifted${r.repeated ? ' (already lifted by this case)' : ''}`;
      if (r.outcome === 'not-blocked') {
        throw ApplicationFailure.nonRetryable(`card block ${blockId} is no longer on file for ${accountId}: nothing lifted`, FailureType.NoBlockToLift);
      }
      const other = `${r.heldBy.blockId}${r.heldBy.caseId ? ` of case ${r.heldBy.caseId}` : ''}`;
      throw ApplicationFailure.nonRetryable(
        `${accountId}'s card block on file is ${other}, not this case's ${blockId}: left in place`, FailureType.BlockHeldByAnotherCase,
      );
    },

    async notifyIssuer({ idempotencyKey, accountId, message }) {
      const r = await issuer.notify({ idempotencyKey, accountId, message });
      return `issuer notified (${r.noticeId}): ${message}`;
    },

    async clearAccountState({ accountId }) {
      // What the guide's clients read: the account leaves the flagged set, its counter and alert detail go.
      const res = await redis
        .multi()
        .srem(alertKeys.accounts, accountId)
        .del(alertKeys.count(accountId))
        .del(alertKeys.sender(accountId))
        .exec();
      const removed = res?.[0]?.[1] === 1;
      return removed ? `${accountId} removed from ${alertKeys.accounts}, counter reset` : `${accountId} was not flagged; counter reset`;
    },
  };
}
