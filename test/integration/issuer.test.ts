// The local issuer and the block activities on real Redis: a block per case (idempotent per key, a reopened case
// blocks again), a lift only of the case's own block, and no block without a card id on file.
import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { ApplicationFailure } from '@temporalio/common';
import type { Redis } from 'ioredis';
import { createActivities } from '../../activities/index.ts';
import { LocalIssuer } from '../../activities/issuer.ts';
import type { AuditLog } from '../../common/audit-log.ts';
import type { CaseActivities } from '../../contracts/activities.ts';
import { FailureType } from '../../contracts/failures.ts';
import { caseKeys } from '../../contracts/redis-keys.ts';
import { isolatedRedis, uniqueId } from '../../harness/stack.ts';
import type { SmsTransport } from '../../activities/sms.ts';

let redis: Redis;
let issuer: LocalIssuer;
afterAll(() => redis?.disconnect());
beforeEach(async () => {
  if (!redis) ({ redis } = await isolatedRedis());
  await redis.flushdb();
  issuer = new LocalIssuer(redis, { retentionDays: 1 });
});

const caseOf = (acc: string, run: string) => `fraud-account-${acc}/${run}`;
const blockReq = (acc: string, caseId: string) => ({ idempotencyKey: `${caseId}:block`, caseId, accountId: acc, cardId: `card-${acc}`, reason: '11 velocity fraud alerts' });
const unblockReq = (acc: string, caseId: string, blockId: string) => ({ idempotencyKey: `${caseId}:unblock`, caseId, accountId: acc, blockId, reason: 'cleared' });
const onFile = async (acc: string) => {
  const v = await redis.hget(caseKeys.issuerBlocks, acc);
  return v === null ? null : (JSON.parse(v) as { blockId: string; caseId: string; idempotencyKey: string; cardId: string });
};

describe('local issuer', () => {
  it('when a case blocks twice with its key, then the card is blocked once, and the account view holds the block with its case', async () => {
    const acc = uniqueId('ACC_I_');
    const a = caseOf(acc, 'run-a');
    const first = await issuer.blockCard(blockReq(acc, a));
    const again = await issuer.blockCard(blockReq(acc, a));
    expect(first).toStrictEqual({ blockId: `card-${acc}@${a}:block`, repeated: false });
    expect(again).toStrictEqual({ blockId: first.blockId, repeated: true });
    expect(await redis.hlen(caseKeys.issuerBlocks)).toBe(1);
    expect(await redis.hexists(caseKeys.issuerBlocks, acc)).toBe(1);
    expect(await onFile(acc)).toMatchObject({ blockId: first.blockId, caseId: a, idempotencyKey: `${a}:block`, cardId: `card-${acc}` });
    expect(await redis.ttl(caseKeys.issuerBlock(`${a}:block`))).toBeGreaterThan(0);
  });

  it('when a case lifts its block, then only its own block goes, once, and a reopened case blocks again under its own key', async () => {
    const acc = uniqueId('ACC_I_');
    const [a, b] = [caseOf(acc, 'run-a'), caseOf(acc, 'run-b')];
    const blockA = await issuer.blockCard(blockReq(acc, a));
    // Another case naming a block that is not the one on file lifts nothing.
    expect(await issuer.unblockCard(unblockReq(acc, b, `card-${acc}@${b}:block`))).toStrictEqual({ outcome: 'held-by-other', heldBy: { blockId: blockA.blockId, caseId: a } });
    expect(await redis.hexists(caseKeys.issuerBlocks, acc)).toBe(1);

    expect(await issuer.unblockCard(unblockReq(acc, a, blockA.blockId))).toStrictEqual({ outcome: 'lifted', repeated: false });
    expect(await redis.hexists(caseKeys.issuerBlocks, acc)).toBe(0);
    expect(await issuer.unblockCard(unblockReq(acc, a, blockA.blockId))).toStrictEqual({ outcome: 'lifted', repeated: true });
    expect(JSON.parse((await redis.get(caseKeys.issuerUnblock(`${a}:unblock`)))!)).toMatchObject({ blockId: blockA.blockId, caseId: a, accountId: acc });

    // The reopened case (new case id): a block of its own, even though the account was blocked before.
    const blockB = await issuer.blockCard(blockReq(acc, b));
    expect(blockB).toStrictEqual({ blockId: `card-${acc}@${b}:block`, repeated: false });
    expect(await onFile(acc)).toMatchObject({ blockId: blockB.blockId, caseId: b });
    // The first case's key repeated now answers with its recorded block and blocks nothing again.
    expect(await issuer.blockCard(blockReq(acc, a))).toStrictEqual({ blockId: blockA.blockId, repeated: true });
    expect(await onFile(acc)).toMatchObject({ caseId: b });
    // And the first case cannot lift the second one's block.
    expect((await issuer.unblockCard({ ...unblockReq(acc, a, blockA.blockId), idempotencyKey: `${a}:unblock-2` })).outcome).toBe('held-by-other');
    expect(await issuer.unblockCard(unblockReq(acc, b, blockB.blockId))).toStrictEqual({ outcome: 'lifted', repeated: false });
    expect(await redis.hlen(caseKeys.issuerBlocks)).toBe(0);
  });

  it('when a new case blocks while an earlier case\'s block was never lifted, then the new block stands in its place and only the new case lifts it', async () => {
    const acc = uniqueId('ACC_I_');
    const [a, b] = [caseOf(acc, 'run-a'), caseOf(acc, 'run-b')];
    const blockA = await issuer.blockCard(blockReq(acc, a));
    const blockB = await issuer.blockCard(blockReq(acc, b));
    expect(blockB).toStrictEqual({ blockId: `card-${acc}@${b}:block`, repeated: false, replaced: { blockId: blockA.blockId, caseId: a } });
    expect(await redis.hlen(caseKeys.issuerBlocks)).toBe(1);
    expect((await issuer.unblockCard(unblockReq(acc, a, blockA.blockId))).outcome).toBe('held-by-other');
    expect((await issuer.unblockCard(unblockReq(acc, b, blockB.blockId))).outcome).toBe('lifted');
  });

  it('when there is no block on file, or only one recorded before block ids were stored, then the lift says so or lifts the old record', async () => {
    const acc = uniqueId('ACC_I_');
    const a = caseOf(acc, 'run-a');
    expect(await issuer.unblockCard(unblockReq(acc, a, `card-${acc}@${a}:block`))).toStrictEqual({ outcome: 'not-blocked' });
    // The record the earlier issuer wrote with HSETNX (no blockId, no caseId): its block id was cardId@idempotencyKey.
    await redis.hset(caseKeys.issuerBlocks, acc, JSON.stringify({ idempotencyKey: `${a}:block`, accountId: acc, cardId: `card-of-${acc}`, reason: 'old', blockedAt: '2026-01-01T00:00:00.000Z' }));
    expect(await issuer.unblockCard({ ...unblockReq(acc, a, `card-${acc}@other`), idempotencyKey: 'k-other' })).toStrictEqual({
      outcome: 'held-by-other', heldBy: { blockId: `card-of-${acc}@${a}:block` },
    });
    expect(await issuer.unblockCard(unblockReq(acc, a, `card-of-${acc}@${a}:block`))).toStrictEqual({ outcome: 'lifted', repeated: false });
    expect(await redis.hexists(caseKeys.issuerBlocks, acc)).toBe(0);
  });
});

describe('block activities', () => {
  const activities = (): CaseActivities =>
    createActivities({ redis, issuer, audit: {} as AuditLog, sms: {} as SmsTransport });
  const failureOf = async (p: Promise<unknown>) => {
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  };

  it('when the account has no card id on file, then the block fails non-retryable with NoCardOnFile and nothing is blocked', async () => {
    const acts = activities();
    for (const [acc, directory] of [[uniqueId('ACC_NC_'), undefined], [uniqueId('ACC_NC_'), { phone: '+14155550100', card_id: '  ' }]] as const) {
      if (directory) await redis.hset(caseKeys.cardholder(acc), directory);
      const caseId = caseOf(acc, 'run-a');
      const f = await failureOf(acts.blockCard({ idempotencyKey: `${caseId}:block`, caseId, accountId: acc, reason: 'alerts' }));
      expect(f.type).toBe(FailureType.NoCardOnFile);
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(new RegExp(`^no card id on file for ${acc}`));
      expect(await redis.hexists(caseKeys.issuerBlocks, acc)).toBe(0);
    }
  });

  it('when a case blocks and is then cleared, then the activities return the block id, lift that block, and refuse to lift another case\'s', async () => {
    const acts = activities();
    const acc = uniqueId('ACC_ACT_');
    await redis.hset(caseKeys.cardholder(acc), { phone: '+14155550101', card_id: `card-${acc}` });
    const [a, b] = [caseOf(acc, 'run-a'), caseOf(acc, 'run-b')];
    const r = await acts.blockCard({ idempotencyKey: `${a}:block`, caseId: a, accountId: acc, reason: 'alerts' });
    expect(r).toStrictEqual({ blockId: `card-${acc}@${a}:block`, detail: `card card-${acc}@${a}:block blocked` });
    const notMine = await failureOf(acts.unblockCard({ idempotencyKey: `${b}:unblock`, caseId: b, accountId: acc, blockId: `card-${acc}@${b}:block`, reason: 'cleared' }));
    expect(notMine.type).toBe(FailureType.BlockHeldByAnotherCase);
    expect(notMine.nonRetryable).toBe(true);
    expect(notMine.message).toBe(`${acc}'s card block on file is card-${acc}@${a}:block of case ${a}, not this case's card-${acc}@${b}:block: left in place`);
    expect(await acts.unblockCard({ idempotencyKey: `${a}:unblock`, caseId: a, accountId: acc, blockId: r.blockId, reason: 'cleared' })).toBe(`card block ${r.blockId} lifted`);
    const gone = await failureOf(acts.unblockCard({ idempotencyKey: `${b}:unblock`, caseId: b, accountId: acc, blockId: r.blockId, reason: 'cleared' }));
    expect(gone.type).toBe(FailureType.NoBlockToLift);
  });

  it('when a case\'s block attempts were stopped by a clear, then the lift by the block\'s key lifts what an attempt blocked, and says so when none did', async () => {
    const acts = activities();
    const acc = uniqueId('ACC_KEY_');
    await redis.hset(caseKeys.cardholder(acc), { phone: '+14155550102', card_id: `card-${acc}` });
    const [a, b] = [caseOf(acc, 'run-a'), caseOf(acc, 'run-b')];
    // Case a: an attempt blocked the card, its answer never reached the case.
    await acts.blockCard({ idempotencyKey: `${a}:block`, caseId: a, accountId: acc, reason: 'alerts' });
    expect(await acts.unblockCard({ idempotencyKey: `${a}:unblock`, caseId: a, accountId: acc, blockKey: `${a}:block`, reason: 'cleared' }))
      .toBe(`card block card-${acc}@${a}:block lifted`);
    expect(await redis.hexists(caseKeys.issuerBlocks, acc)).toBe(0);
    // Case b: no attempt got through.
    expect(await acts.unblockCard({ idempotencyKey: `${b}:unblock`, caseId: b, accountId: acc, blockKey: `${b}:block`, reason: 'cleared' }))
      .toBe(`no block was made by this case's attempts (${b}:block): nothing to lift`);
    const neither = await failureOf(acts.unblockCard({ idempotencyKey: `${b}:unblock`, caseId: b, accountId: acc, reason: 'cleared' }));
    expect(neither.nonRetryable).toBe(true);
  });
});
