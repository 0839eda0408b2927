// End to end on the real stack: payments on Kafka -> detector -> alerts in Redis -> case signaller -> Temporal
// case workflow on a real worker -> review, SMS through Twilio's spec mock, card block, audit log; crashes; and
// clearing with the temporal CLI.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { expectWith } from '../support/expect.ts';
import { Client, Connection } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { repoRoot } from '../../common/env.ts';
import { caseStateQuery, caseWorkflowId } from '../../contracts/case.ts';
import { FraudAlertCount, FraudStage } from '../../contracts/search-attributes.ts';
import type { AuditEntry } from '../../contracts/audit.ts';
import { twilioRecorder, type TwilioRecorder } from '../../harness/twilio-recorder.ts';
import { startPlatform, twilioMockUrl, type Platform } from '../../harness/platform.ts';
import { config, isolatedRedis, produce, stack, temporalService, uniqueId, waitFor } from '../../harness/stack.ts';
import { temporalCliFlags, temporalConnectionOptions } from '../../common/temporal-connection.ts';

const temporalCli = `${repoRoot}.stack/venv/bin/temporal`;

let connection: Connection;
let client: Client;
let proxy: TwilioRecorder;
const platforms: Platform[] = [];

beforeAll(async () => {
  connection = await Connection.connect(temporalConnectionOptions(config));
  client = new Client({ connection });
  proxy = await twilioRecorder(twilioMockUrl);
});
const caseIds: string[] = [];
afterAll(async () => {
  // Leave no test case running on the shared dev server.
  for (const id of caseIds) await client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
  for (const p of platforms) await p.stop();
  await proxy?.close();
  await connection?.close();
});

/** A detector + worker pair on their own topic, Redis db and task queue, SMS through the recorder; the test starts the worker. */
async function platform(redisDb: number, opts: { twilio?: TwilioRecorder; workerEnv?: Record<string, string> } = {}): Promise<Platform> {
  const p = await startPlatform({
    redisDb, startWorker: false, detectorEnv: { CHECKPOINT_INTERVAL_MS: '200' }, twilio: { apiBase: (opts.twilio ?? proxy).url }, workerEnv: opts.workerEnv,
  });
  platforms.push(p);
  return p;
}

/** `alerts` velocity alerts for one account: bursts of 3 payments (threshold 3), one burst per alert. */
function bursts(accountId: string, alerts: number, from = 0) {
  const t0 = Date.now() - 10 * 60_000;
  return Array.from({ length: alerts * 3 }, (_, i) => ({
    key: accountId,
    value: JSON.stringify({
      transaction_id: `${accountId}-${from * 3 + i}`, sender_account_id: accountId, receiver_account_id: 'ACC_SHOP', amount: 19.99 + i,
      currency: 'USD', region: 'us-east', timestamp: t0 + (from * 3 + i) * 1000,
    }),
  }));
}

const audit = async (redis: Redis, accountId: string) =>
  (await redis.xrange(`fraud:audit:account:${accountId}`, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as AuditEntry);

async function caseAttributes(accountId: string) {
  const d = await client.workflow.getHandle(caseWorkflowId(accountId)).describe();
  return { stage: d.typedSearchAttributes.get(FraudStage), count: d.typedSearchAttributes.get(FraudAlertCount), status: d.status.name };
}


function checkExactlyOnce(entries: AuditEntry[]) {
  const done = entries.filter((e) => e.type === 'action').map((e) => (e.data as { action: string }).action);
  expect(done.sort()).toStrictEqual(['BLOCK_CARD', 'MANUAL_REVIEW', 'NOTIFY_ISSUER', 'REQUIRE_3DS']);
  const stages = entries.filter((e) => e.type === 'stage').map((e) => (e.data as { to: string }).to);
  expect(stages).toStrictEqual(['MANUAL_REVIEW', 'REQUIRE_3DS', 'BLOCKED']);
}

describe('fraud case end to end', () => {
  it('when an account keeps bursting, then review, SMS and block happen once each, FraudStage follows and the audit log has every step', async () => {
    const { db, redis } = await isolatedRedis();
    const acc = uniqueId('ACC_E2E_');
    caseIds.push(caseWorkflowId(acc));
    await redis.hset(`fraud:cardholder:${acc}`, { phone: '+14155550123', card_id: `card-${acc}` });
    const p = await platform(db);
    await p.worker.start();

    await produce(p.topic, bursts(acc, 4));
    await waitFor('MANUAL_REVIEW', async () => (await caseAttributes(acc).catch(() => undefined))?.stage === 'MANUAL_REVIEW', 60_000, 250);
    await produce(p.topic, bursts(acc, 8, 4));
    const attrs = await waitFor('BLOCKED with 12 alerts', async () => {
      const a = await caseAttributes(acc);
      return a.stage === 'BLOCKED' && a.count === 12 ? a : undefined;
    }, 60_000, 250);
    expect(attrs.status).toBe('RUNNING');

    const state = await client.workflow.getHandle(caseWorkflowId(acc)).query(caseStateQuery);
    expect(state.alertCount).toBe(12);
    expect(await redis.get(`fraud:count:sender:${acc}`)).toBe('12');
    expect(proxy.messages.filter((m) => m.to === '+14155550123')).toHaveLength(1);
    expect(await redis.hlen('fraud:issuer:blocks')).toBe(1);
    expect(await redis.xlen('fraud:issuer:notifications')).toBe(1);
    const notice = (await redis.xrange('fraud:issuer:notifications', '-', '+'))[0]![1];
    expect(notice[notice.indexOf('message') + 1]!).toMatch(/card blocked: 12 velocity fraud alerts/);

    const entries = await waitFor('the audit trail', async () => {
      const e = await audit(redis, acc);
      return e.filter((x) => x.type === 'alert').length === 12 && e.some((x) => x.type === 'stage' && (x.data as { to: string }).to === 'BLOCKED') ? e : undefined;
    });
    checkExactlyOnce(entries);
    expect(entries.every((e) => e.actor && e.at && e.detail)).toBeTruthy(); // every entry says who, when and what
    const sms = entries.find((e) => (e.data as { action?: string }).action === 'REQUIRE_3DS' && e.type === 'action')!;
    expect(sms.detail).toMatch(/\+1415•••0123 via twilio/);
    expect(JSON.stringify(entries)).not.toMatch(/4155550123/); // the full phone number is never recorded

    // Ops clear the account with the temporal CLI, as an operator would.
    await promisify(execFile)(temporalCli, [
      'workflow', 'signal', ...temporalCliFlags(config), '--workflow-id', caseWorkflowId(acc), '--name', 'clearAccount',
      '--input', JSON.stringify({ by: 'ops-e2e', reason: 'verified with the cardholder' }),
    ]);
    await waitFor('the case to close', async () => (await caseAttributes(acc)).status === 'COMPLETED', 30_000, 200);
    expect(await redis.sismember('fraud:alerts:accounts', acc)).toBe(0);
    expect(await redis.get(`fraud:count:sender:${acc}`)).toBe(null);
    // The case lifted the block it made, before it closed.
    expect(await redis.hexists('fraud:issuer:blocks', acc)).toBe(0);
    const closing = await audit(redis, acc);
    const lifted = closing.find((e) => e.type === 'action' && (e.data as { action: string }).action === 'UNBLOCK_CARD');
    expect(lifted?.detail).toBe(`UNBLOCK_CARD: card block card-${acc}@${state.caseId}:block lifted`);
    const cleared = closing.find((e) => e.type === 'cleared');
    expect(cleared?.actor).toBe('ops:ops-e2e');
    expect(cleared?.detail).toBe('account cleared: verified with the cardholder');
    expect((await caseAttributes(acc)).stage).toBe('CLEARED');
    redis.disconnect();
  });

  it('when the worker is SIGKILLed mid-escalation and restarted, then every action still happens exactly once', async () => {
    const { db, redis } = await isolatedRedis();
    const acc = uniqueId('ACC_KILL_');
    caseIds.push(caseWorkflowId(acc));
    await redis.hset(`fraud:cardholder:${acc}`, { phone: '+14155550199', card_id: `card-${acc}` });
    const p = await platform(db);
    await p.worker.start();
    await produce(p.topic, bursts(acc, 12));
    // Kill the worker the moment each action's effect lands, while the next one is under way, three times over.
    const effects: Array<[string, () => Promise<boolean>]> = [
      ['the review task', async () => Boolean((await client.workflow.getHandle(caseWorkflowId(acc)).describe()).memo?.openReview)],
      ['the SMS', async () => (await redis.keys('fraud:sms:sent:*')).length > 0],
      ['the card block', async () => (await redis.hexists('fraud:issuer:blocks', acc)) === 1],
    ];
    for (const [what, landed] of effects) {
      await waitFor(what, async () => landed(), 60_000, 5);
      await p.worker.restart();
    }
    await waitFor('BLOCKED', async () => (await caseAttributes(acc)).stage === 'BLOCKED', 90_000, 250);
    const entries = await waitFor('the full trail', async () => {
      const e = await audit(redis, acc);
      return e.some((x) => x.type === 'action' && (x.data as { action: string }).action === 'NOTIFY_ISSUER') ? e : undefined;
    }, 30_000);
    checkExactlyOnce(entries);
    expect(entries.filter((e) => e.type === 'alert').length).toBe(12);
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length); // no audit entry twice
    expect(proxy.messages.filter((m) => m.to === '+14155550199')).toHaveLength(1);
    expect(await redis.xlen('fraud:issuer:notifications')).toBe(1);
    expect(await redis.hlen('fraud:issuer:blocks')).toBe(1);
    await client.workflow.getHandle(caseWorkflowId(acc)).signal('clearAccount');
    redis.disconnect();
  });

  it('when Twilio accepts the SMS but its reply is lost (slower than the timeout, a 500 after sending, the worker killed before the record), then the cardholder still gets one SMS', async () => {
    const twilio = await twilioRecorder(twilioMockUrl);
    try {
      const { db, redis } = await isolatedRedis();
      const p = await platform(db, { twilio, workerEnv: { SMS_SETTLE_SECONDS: '10' } });
      await p.worker.start();
      const smsAction = async (acc: string) =>
        (await audit(redis, acc)).find((e) => e.type === 'action' && (e.data as { action: string }).action === 'REQUIRE_3DS');
      const scenarios: Array<[string, () => void, (acc: string) => Promise<void>]> = [
        // The reply comes after the 8s request timeout (and the 10s start-to-close); the message was sent.
        ['slow reply', () => Object.assign(twilio.faults, { delayReplyMs: 12_000, failAfterCreate: false }), async () => undefined],
        // Sent, then a 500.
        ['500 after sending', () => Object.assign(twilio.faults, { delayReplyMs: 0, failAfterCreate: true }), async () => undefined],
        // Sent; the worker dies while the reply is on its way, before the result is recorded.
        ['worker killed before the record', () => Object.assign(twilio.faults, { delayReplyMs: 4_000, failAfterCreate: false }), async (acc) => {
          await waitFor('the message at Twilio', async () => twilio.messages.some((m) => m.body && m.to === phoneOf(acc)), 60_000, 20);
          await p.worker.restart();
        }],
      ];
      const phones = new Map<string, string>();
      const phoneOf = (acc: string) => phones.get(acc)!;
      for (const [i, [what, fault, during]] of scenarios.entries()) {
        const acc = uniqueId(`ACC_SMS${i}_`);
        caseIds.push(caseWorkflowId(acc));
        phones.set(acc, `+1415555${String(1000 + i)}`);
        await redis.hset(`fraud:cardholder:${acc}`, { phone: phoneOf(acc), card_id: `card-${acc}` });
        fault();
        await produce(p.topic, bursts(acc, 6)); // more than verifyAfter (5): the SMS step, not yet the block
        await during(acc);
        // Clear the fault once the message is at Twilio, so that only a resend could add another.
        await waitFor(`${what}: the message at Twilio`, async () => twilio.messages.some((m) => m.to === phoneOf(acc)), 60_000, 50);
        Object.assign(twilio.faults, { delayReplyMs: 0, failAfterCreate: false });
        const action = await waitFor(`${what}: the SMS step recorded`, () => smsAction(acc), 90_000, 250);
        expectWith(what, () => {
          expect(action.detail).toMatch(/found sent by an earlier attempt/);
          expect(twilio.messages.filter((m) => m.to === phoneOf(acc))).toHaveLength(1);
        });
      }
      // Every attempt after the first looked the message up in the Messages list.
      expect(twilio.requests((m, path) => m === 'GET' && path.includes('/Messages.json'))).toBeGreaterThanOrEqual(3);
      redis.disconnect();
    } finally {
      await twilio.close();
    }
  });
});

describe('Temporal outage', () => {
  it('when Temporal is down, then detection goes on and every alert reaches the case once Temporal is back', async () => {
    const { db, redis } = await isolatedRedis();
    const acc = uniqueId('ACC_DOWN_');
    caseIds.push(caseWorkflowId(acc));
    const p = await platform(db);
    await p.worker.start();
    await stack('down', temporalService);
    try {
      await produce(p.topic, bursts(acc, 5));
      // Detection does not wait for Temporal: all five alerts land in Redis while it is down.
      await waitFor('five alerts in Redis', async () => (await redis.get(`fraud:count:sender:${acc}`)) === '5', 60_000, 200);
      const pending = (await redis.xpending('fraud:alerts:stream', 'case-signaller')) as [number, ...unknown[]];
      expect(pending[0] + (await redis.xlen('fraud:alerts:stream')) > 0).toBeTruthy(); // the alerts wait in the stream
    } finally {
      await stack('up', temporalService);
    }
    await connection.close();
    connection = await Connection.connect(temporalConnectionOptions(config));
    client = new Client({ connection });
    if (!p.worker.running) await p.worker.start();
    const state = await waitFor('the case with all five alerts', async () => {
      const s = await client.workflow.getHandle(caseWorkflowId(acc)).query(caseStateQuery).catch(() => undefined);
      return s?.alertCount === 5 && s.stage === 'MANUAL_REVIEW' ? s : undefined;
    }, 120_000, 500);
    expect(state.actions.filter((a) => a.action === 'MANUAL_REVIEW').length).toBe(1);
    redis.disconnect();
  });
});

describe('the analysts\' CLI on a live case', () => {
  it('when an analyst lists, rejects and completes a review from the CLI, then the case follows and the trail says who', async () => {
    const { db, redis } = await isolatedRedis();
    const acc = uniqueId('ACC_CLI_');
    caseIds.push(caseWorkflowId(acc));
    await redis.hset(`fraud:cardholder:${acc}`, { card_id: `card-${acc}` }); // confirmed fraud blocks this card (none is made up)
    const p = await platform(db);
    await p.worker.start();
    await produce(p.topic, bursts(acc, 4));
    await waitFor('MANUAL_REVIEW', async () => (await caseAttributes(acc).catch(() => undefined))?.stage === 'MANUAL_REVIEW', 60_000, 250);

    const cli = async (...args: string[]) => {
      try {
        const r = await promisify(execFile)(`${repoRoot}node_modules/.bin/node`, [`${repoRoot}cli/main.ts`, ...args], { env: { ...process.env, REDIS_DB: String(db) } });
        return { code: 0, out: r.stdout, err: r.stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, out: e.stdout, err: e.stderr };
      }
    };
    const listed = await waitFor('the review in the queue', async () => {
      const r = await cli('reviews', '--json');
      const rows = JSON.parse(r.out) as Array<{ accountId: string; taskId: string; priority: string }>;
      return rows.find((x) => x.accountId === acc);
    }, 30_000, 500);
    expect(listed.priority).toBe('HIGH');

    const bad = await cli('review', acc, '--task', 'review-bogus', '--decision', 'confirmed-fraud', '--analyst', 'ana');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/rejected: unknown review task "review-bogus"/);
    expect((await caseAttributes(acc)).stage).toBe('MANUAL_REVIEW');

    const ok = await cli('review', acc, '--decision', 'confirmed-fraud', '--analyst', 'ana', '--note', 'card testing');
    expectWith(ok.err, () => expect(ok.code).toBe(0));
    expect(ok.out).toMatch(/CONFIRMED_FRAUD; case is now BLOCKED/);
    await waitFor('FraudStage BLOCKED', async () => (await caseAttributes(acc)).stage === 'BLOCKED', 20_000, 200);

    const again = await cli('review', acc, '--decision', 'false-positive', '--analyst', 'bob');
    expect(again.err).toMatch(/already decided/);

    const shown = await cli('case', acc);
    expectWith(shown.err, () => expect(shown.code).toBe(0));
    expect(shown.out).toMatch(/stage BLOCKED/);
    expect(shown.out).toMatch(/analyst:ana\s+decision\s+review .*CONFIRMED_FRAUD \(card testing\)/);
    await client.workflow.getHandle(caseWorkflowId(acc)).signal('clearAccount');
    redis.disconnect();
  });
});
