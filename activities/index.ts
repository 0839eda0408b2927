// Activities of the fraud case: every side effect of the workflow, each idempotent, with clients injected by the
// worker (workers/main.ts). A retry or a worker crash mid-activity repeats the call with the same key, and the
// effect happens once.
import { ApplicationFailure, log } from '@temporalio/activity';
import type { Redis } from 'ioredis';
import { keys as alertKeys } from '../detector/alert-store.ts';
import type { AuditLog } from './audit-log.ts';
import type { IssuerAdapter } from './issuer.ts';
import { maskPhone, sendOnce, type SmsTransport } from './sms.ts';
import type { CaseActivities } from './types.ts';

export const FailureTypes = {
  noPhoneOnFile: 'NoPhoneOnFile',
  smsRejected: 'SmsRejected',
} as const;

export const caseKeys = {
  /** Cardholder directory: hash with `phone` (E.164) and `card_id`. */
  cardholder: (accountId: string) => `fraud:cardholder:${accountId}`,
  reviewQueue: 'fraud:reviews:open',
  review: (taskId: string) => `fraud:review:${taskId}`,
};

export interface ActivityDeps {
  redis: Redis;
  audit: AuditLog;
  sms: SmsTransport;
  issuer: IssuerAdapter;
}

export function createActivities({ redis, audit, sms, issuer }: ActivityDeps): CaseActivities {
  const cardholder = async (accountId: string) => redis.hgetall(caseKeys.cardholder(accountId));

  return {
    async appendAudit({ entries }) {
      await audit.append(entries);
    },

    async openReviewTask({ caseId, accountId, taskId, priority, dueAt, alertCount }) {
      // Queue order: CRITICAL before HIGH, then by due time.
      const score = (priority === 'CRITICAL' ? 0 : 1e13) + Date.parse(dueAt);
      await redis
        .multi()
        .set(caseKeys.review(taskId), JSON.stringify({ taskId, caseId, accountId, priority, dueAt, alertCount, openedAt: new Date().toISOString() }))
        .zadd(caseKeys.reviewQueue, score, taskId)
        .exec();
      return `review task ${taskId} queued with priority ${priority}, due ${dueAt}`;
    },

    async closeReviewTask({ taskId }) {
      await redis.multi().zrem(caseKeys.reviewQueue, taskId).del(caseKeys.review(taskId)).exec();
    },

    async sendVerificationSms({ idempotencyKey, accountId }) {
      const { phone } = await cardholder(accountId);
      if (!phone) throw ApplicationFailure.nonRetryable(`no phone number on file for ${accountId}`, FailureTypes.noPhoneOnFile);
      const body = 'Unusual activity on your card. Reply YES to confirm your recent payments or call the number on the back of your card.';
      try {
        const r = await sendOnce(redis, sms, phone, body, idempotencyKey);
        log.info('verification SMS', { accountId, to: maskPhone(phone), channel: r.channel, id: r.id, repeated: r.repeated });
        return `verification SMS to ${maskPhone(phone)} via ${r.channel} (${r.id})`;
      } catch (err) {
        // 4xx from Twilio: the request itself is wrong, retrying cannot help.
        const status = (err as { status?: number }).status;
        if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
          throw ApplicationFailure.nonRetryable(`Twilio rejected the SMS (${status}): ${(err as Error).message}`, FailureTypes.smsRejected);
        }
        throw err;
      }
    },

    async blockCard({ idempotencyKey, accountId, reason }) {
      const { card_id: cardId } = await cardholder(accountId);
      const r = await issuer.blockCard({ idempotencyKey, accountId, cardId: cardId ?? `card-of-${accountId}`, reason });
      return `card ${r.blockId} blocked${r.repeated ? ' (already blocked)' : ''}`;
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
