// The analyst console end to end in real headless Chromium (Debian's chromium, driven by playwright-core) on the
// real stack: payments on Kafka -> detector -> Redis pub/sub + stream -> console -> Socket.IO -> the page; the case
// workflow on a real worker, decided from the case page through the workflow's update; roles enforced by the server.
// Set CONSOLE_SCREENSHOT_DIR (e.g. docs) to save the dashboard and a case page as PNG.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { expectWith } from '../support/expect.ts';
import { Client, Connection } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { io as socketClient } from 'socket.io-client';
import { repoRoot } from '../../common/env.ts';
import { UserStore } from '../../console/users.ts';
import { caseWorkflowId } from '../../contracts/case.ts';
import { FraudStage } from '../../contracts/search-attributes.ts';
import { startPlatform, type Platform, type Service } from '../../harness/platform.ts';
import { config, isolatedRedis, nodeBin, produce, uniqueId, waitFor } from '../../harness/stack.ts';
import { temporalConnectionOptions } from '../../common/temporal-connection.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.CONSOLE_SCREENSHOT_DIR;

let connection: Connection;
let client: Client;
let browser: Browser;
let redis: Redis;
let db: number;
let topic: string;
let platform: Platform | undefined;
let web: Service;
let consolePort: number;
let base: string;
const caseIds: string[] = [];
const contexts: BrowserContext[] = [];

const tag = uniqueId('').slice(-6).toLowerCase();
const users = {
  analyst: { name: `ana-${tag}`, password: randomBytes(12).toString('base64url'), role: 'analyst' as const },
  viewer: { name: `vic-${tag}`, password: randomBytes(12).toString('base64url'), role: 'viewer' as const },
  ops: { name: `ops-${tag}`, password: randomBytes(12).toString('base64url'), role: 'ops' as const },
};
type TestUser = (typeof users)[keyof typeof users];

const sessionSecret = randomBytes(32).toString('base64url');

/** `alerts` velocity alerts for one account: bursts of 3 payments (the default threshold), one burst per alert. */
function bursts(accountId: string, alerts: number, from = 0) {
  const t0 = Date.now() - 5 * 60_000;
  return Array.from({ length: alerts * 3 }, (_, i) => ({
    key: accountId,
    value: JSON.stringify({
      transaction_id: `${accountId}-${from * 3 + i}`, sender_account_id: accountId, receiver_account_id: 'ACC_SHOP', amount: 49.5 + i,
      currency: 'EUR', region: 'eu-west', timestamp: t0 + (from * 3 + i) * 1000,
    }),
  }));
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  contexts.push(context);
  return context.newPage();
}

async function signIn(page: Page, user: TestUser, next = '/'): Promise<void> {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.fill('input[name=username]', user.name);
  await page.fill('input[name=password]', user.password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
  expect(await page.locator('[data-testid=signed-in-user]').textContent()).toBe(user.name);
}

const stageOf = async (accountId: string) =>
  (await client.workflow.getHandle(caseWorkflowId(accountId)).describe().catch(() => undefined))?.typedSearchAttributes.get(FraudStage);

const alertRow = (page: Page, accountId: string) => page.locator(`#alerts tbody tr[data-account="${accountId}"]`);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: bash stack/stack.sh install chromium (apt-get install -y chromium)`);
  connection = await Connection.connect(temporalConnectionOptions(config));
  client = new Client({ connection });
  // A high database: the other suites count up from 1, and this one may run next to them on a shared machine.
  ({ db, redis } = await isolatedRedis(13));
  const store = new UserStore(redis);
  await store.add(users.viewer.name, 'viewer', users.viewer.password);
  await store.add(users.ops.name, 'ops', users.ops.password);
  // The analyst through the user-management command, as an operator would.
  const add = promisify(execFile)(nodeBin, [`${repoRoot}console/main.ts`, 'add-user', users.analyst.name, '--role', 'analyst', '--password-stdin'], {
    env: { ...process.env, REDIS_DB: String(db) },
  });
  add.child.stdin!.end(`${users.analyst.password}\n`);
  expect((await add).stdout).toMatch(new RegExp(`created user ${users.analyst.name} \\(role analyst\\)`));

  // Worker, detector and console on their own topic, task queue and this database.
  platform = await startPlatform({
    redisDb: db, taskQueuePrefix: 'console-cases-', detectorEnv: { CHECKPOINT_INTERVAL_MS: '200' }, console: { sessionSecret },
  });
  topic = platform.topic;
  web = platform.console!;
  consolePort = web.current!.port;
  base = `http://127.0.0.1:${consolePort}`;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  // The services' output, for when something failed (test-results/ is git-ignored).
  const logs = `${repoRoot}test-results/console-browser`;
  await mkdir(logs, { recursive: true });
  for (const [i, p] of (platform?.processes ?? []).entries()) await writeFile(join(logs, `${i}-${p.proc.spawnargs.at(-1)!.split('/').slice(-2).join('-')}.log`), p.output());
  for (const id of caseIds) await client?.workflow.getHandle(id).terminate('test over').catch(() => undefined);
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await platform?.stop();
  redis?.disconnect();
  await connection?.close();
});

describe('analyst console in headless Chromium', () => {
  it('when nobody is signed in, then pages redirect to sign-in, and forms, fragments and the socket are refused', async () => {
    const res = await fetch(`${base}/`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/login?next=%2F');
    const casePage = await fetch(`${base}/cases/ACC_1`, { redirect: 'manual' });
    expect(casePage.status).toBe(303);
    expect(casePage.headers.get('location') ?? '').toMatch(/^\/login\?next=%2Fcases%2FACC_1$/);
    expect((await fetch(`${base}/partials/reviews`)).status).toBe(401);
    const post = await fetch(`${base}/cases/ACC_1/review`, { method: 'POST', body: new URLSearchParams({ taskId: 't', decision: 'FALSE_POSITIVE' }), redirect: 'manual' });
    expect(post.status).toBe(401);

    const socket = socketClient(base, { transports: ['websocket'], reconnection: false });
    const refused = await new Promise<string>((resolve) => {
      socket.on('connect', () => resolve('connected'));
      socket.on('connect_error', (err) => resolve(err.message));
    });
    socket.close();
    expect(refused).toMatch(/^unauthorized/);

    const page = await newPage();
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name=username]', users.analyst.name);
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    expect(await page.locator('[data-testid=login-error]').textContent()).toBe('Wrong user name or password.');
    expect(await page.locator('#alerts').count()).toBe(0); // no account data before signing in
  });

  let dashboard: Page;
  const liveAccount = uniqueId('ACC_LIVE_');
  const reviewAccount = uniqueId('ACC_REVIEW_');
  const queuedAccount = uniqueId('ACC_QUEUED_');

  it('when an analyst signs in, then an alert produced on Kafka appears live on the dashboard within a second', async () => {
    caseIds.push(caseWorkflowId(liveAccount), caseWorkflowId(reviewAccount));
    dashboard = await newPage();
    await signIn(dashboard, users.analyst);
    await dashboard.locator('#live-status[data-state=live]').waitFor({ timeout: 10_000 });

    // Note when the row is inserted, in the page's clock (the same machine's clock as the detector's detected_at).
    // (Not awaited here: `void`, or evaluate would wait for the promise.)
    await dashboard.evaluate(`void (window.__shownAt = new Promise((resolve) => {
      const tbody = document.querySelector('#alerts tbody');
      const seen = () => tbody.querySelector('tr[data-account="${liveAccount}"]');
      new MutationObserver((_, obs) => { if (seen()) { obs.disconnect(); resolve(Date.now()); } }).observe(tbody, { childList: true });
    }))`);
    await produce(topic, bursts(liveAccount, 1));
    const json = await waitFor('the detector to write the alert', async () => (await redis.get(`fraud:alerts:sender:${liveAccount}`)) ?? undefined, 60_000);
    const alert = JSON.parse(json) as { detected_at: string; velocity_count: number; region: string };
    const shownAt = (await dashboard.evaluate('Promise.race([window.__shownAt, new Promise((r) => setTimeout(() => r(-1), 5000))])')) as number;
    expect(shownAt).not.toBe(-1); // the alert never showed
    const delay = shownAt - Date.parse(alert.detected_at);
    expectWith(`shown ${delay}ms after the detector wrote it`, () => expect(delay < 1000).toBeTruthy());
    const cells = await alertRow(dashboard, liveAccount).locator('td').allTextContents();
    expect(cells[1]).toBe(liveAccount);
    expect(cells[2]).toBe(String(alert.velocity_count));
    expect(cells[3]!).toMatch(/^\d+\.\d\d EUR$/);
    expect(cells[4]).toBe('eu-west');

    // A case for the review tests: 4 alerts (> ESCALATION_REVIEW_AFTER = 3) open a manual review. Two more senders
    // with one alert each, and a second account in review, so the queue has an order to keep.
    const others = [uniqueId('ACC_'), uniqueId('ACC_')];
    caseIds.push(...[...others, queuedAccount].map(caseWorkflowId));
    await redis.hset(`fraud:cardholder:${reviewAccount}`, { card_id: `card-${reviewAccount}` }); // the confirmed fraud below blocks this card
    await produce(topic, [...bursts(reviewAccount, 4), ...others.flatMap((a) => bursts(a, 1)), ...bursts(queuedAccount, 4)]);
    await waitFor('MANUAL_REVIEW', async () => (await stageOf(reviewAccount)) === 'MANUAL_REVIEW', 60_000, 250);
    await waitFor('MANUAL_REVIEW', async () => (await stageOf(queuedAccount)) === 'MANUAL_REVIEW', 60_000, 250);
    for (const a of others) await alertRow(dashboard, a).waitFor();
    await waitFor('4 alerts of the reviewed account', async () => (await alertRow(dashboard, reviewAccount).count()) >= 4);
    expect(await alertRow(dashboard, reviewAccount).count()).toBe(4); // each alert once
  });

  it('when the console restarts, then the page reconnects by itself and backfills the alerts written meanwhile', async () => {
    const missed = uniqueId('ACC_MISSED_');
    caseIds.push(caseWorkflowId(missed));
    await web.stop();
    await dashboard.locator('#live-status[data-state=down]').waitFor({ timeout: 10_000 });
    await produce(topic, bursts(missed, 1));
    await waitFor('the alert in Redis', async () => (await redis.exists(`fraud:alerts:sender:${missed}`)) === 1, 30_000);
    await web.start({ port: consolePort });
    await dashboard.locator('#live-status[data-state=live]').waitFor({ timeout: 20_000 });
    await alertRow(dashboard, missed).waitFor({ timeout: 5_000 });
    expect(await alertRow(dashboard, liveAccount).count()).toBe(1); // rows already shown stay once
  });

  it('when the console loses its Redis subscription, then it re-subscribes and pages backfill what was not published to them', async () => {
    const list = await redis.client('LIST') as string;
    const line = list.split('\n').find((l) => l.includes(` name=fraud-console-alerts-${web.current!.pid} `));
    expect(line).toBeTruthy(); // the console subscriber connection
    const id = /\bid=(\d+)/.exec(line!)![1]!;
    await redis.client('KILL', 'ID', id);
    // An alert that reached the stream while the console was not subscribed (never published to it).
    const unseen = uniqueId('ACC_UNSEEN_');
    const json = JSON.stringify({
      alert_id: uniqueId('a-'), sender_account_id: unseen, velocity_count: 3, amount: 12.5, currency: 'EUR', region: 'eu-north',
      alert_timestamp: new Date().toISOString(), detected_at: new Date().toISOString(),
    });
    await redis.xadd('fraud:alerts:stream', '*', 'alert', json, 'count', '1');
    await alertRow(dashboard, unseen).waitFor({ timeout: 10_000 });
  });

  it('when the review queue lists the case, then it shows priority, age and SLA left, and the case page its timeline and Temporal link', async () => {
    const queue = dashboard.locator('[data-testid=review-queue] tbody tr');
    const row = dashboard.locator(`[data-testid=review-queue] tr[data-account="${reviewAccount}"]`);
    await waitFor('both reviews in the queue', async () => {
      await dashboard.reload();
      const listed = await queue.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-account')));
      return listed.includes(reviewAccount) && listed.includes(queuedAccount) ? listed : undefined;
    }, 30_000, 1000);
    // Both HIGH: the earlier deadline first.
    const dues = await queue.evaluateAll((rows, ours) => rows.filter((r) => ours.includes(r.getAttribute('data-account') ?? ''))
      .map((r) => r.lastElementChild?.getAttribute('title') ?? ''), [reviewAccount, queuedAccount]);
    expect(dues.length).toBe(2);
    expectWith(`ordered by deadline: ${dues.join(', ')}`, () => expect(dues[0]! <= dues[1]!).toBeTruthy());
    const cells = await row.locator('td').allTextContents();
    expect(cells.slice(0, 4)).toStrictEqual([reviewAccount, 'HIGH', 'MANUAL_REVIEW', '4']);
    expect(cells[4]!).toMatch(/^\d+m$/);
    expect(cells[5]!).toMatch(/^(3h5\dm|4h00m)$/);
    await dashboard.locator('#live-status[data-state=live]').waitFor();
    if (SCREENSHOTS) await dashboard.screenshot({ path: join(SCREENSHOTS, 'console-dashboard.png') });

    await Promise.all([dashboard.waitForURL(`**/cases/${reviewAccount}`), row.locator('a').click()]);
    expect(await dashboard.locator('[data-testid=stage]').textContent()).toBe('MANUAL_REVIEW');
    expect(await dashboard.locator('[data-testid=temporal-link]').getAttribute('href')).toBe(`http://127.0.0.1:${config.TEMPORAL_UI_PORT}/namespaces/default/workflows/${caseWorkflowId(reviewAccount)}`);
    const timeline = await dashboard.locator('[data-testid=timeline] li').allTextContents();
    expect(timeline.filter((t) => /detector\s+alert/.test(t)).length).toBe(4);
    expect(timeline.some((t) => /system\s+stage\s+MONITORING -> MANUAL_REVIEW/.test(t))).toBeTruthy();
  });

  it('when a viewer opens the case, then there is no form, and a forged decision or clear is refused with 403', async () => {
    const page = await newPage();
    await signIn(page, users.viewer, `/cases/${reviewAccount}`);
    expect(await page.locator('[data-testid=stage]').textContent()).toBe('MANUAL_REVIEW');
    expect(await page.locator('[data-testid=review-form]').count()).toBe(0);
    expect(await page.locator('[data-testid=clear-form]').count()).toBe(0);
    expect((await page.locator('[data-testid=read-only]').textContent())!).toMatch(/viewer/);

    // Forged with a valid CSRF token of the viewer's own session: only the role stops it.
    const csrf = (await page.locator('meta[name=csrf-token]').getAttribute('content'))!;
    const taskId = (await client.workflow.getHandle(caseWorkflowId(reviewAccount)).query('caseState') as { review: { taskId: string } }).review.taskId;
    const forged = await page.request.post(`${base}/cases/${reviewAccount}/review`, {
      form: { _csrf: csrf, taskId, decision: 'FALSE_POSITIVE', note: 'forged' }, maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toMatch(/Your role \(viewer\) may not decide reviews/);
    const clear = await page.request.post(`${base}/cases/${reviewAccount}/clear`, { form: { _csrf: csrf, reason: 'forged' }, maxRedirects: 0 });
    expect(clear.status()).toBe(403);
    // Without the token, even a role that may decide is refused.
    const noToken = await dashboard.request.post(`${base}/cases/${reviewAccount}/review`, { form: { taskId, decision: 'FALSE_POSITIVE' }, maxRedirects: 0 });
    expect(noToken.status()).toBe(403);
    expect(await stageOf(reviewAccount)).toBe('MANUAL_REVIEW'); // nothing changed
  });

  it('when an analyst completes the review on the case page, then the rejection or result shows, the stage changes and the trail says who', async () => {
    const page = dashboard;
    await page.reload();
    const form = page.locator('[data-testid=review-form]');
    // A stale form (another task id): the workflow's validator rejects it and the page says why.
    await form.locator('input[name=taskId]').evaluate((el: { value: string }) => { el.value = 'review-stale'; });
    await form.locator('input[value=CONFIRMED_FRAUD]').check();
    await Promise.all([page.waitForURL(`**/cases/${reviewAccount}`), form.locator('button[type=submit]').click()]);
    expect((await page.locator('[data-testid=flash]').textContent())!).toMatch(/^Rejected by the case: unknown review task "review-stale"/);
    expect(await page.locator('[data-testid=stage]').textContent()).toBe('MANUAL_REVIEW');

    await form.locator('input[value=CONFIRMED_FRAUD]').check();
    await form.locator('textarea[name=note]').fill('card testing');
    await Promise.all([page.waitForURL(`**/cases/${reviewAccount}`), form.locator('button[type=submit]').click()]);
    expect((await page.locator('[data-testid=flash]').textContent())!).toMatch(new RegExp(`CONFIRMED_FRAUD by ${users.analyst.name}\\. The case is now BLOCKED\\.$`));
    expect(await page.locator('[data-testid=stage]').textContent()).toBe('BLOCKED');
    expect(await form.count()).toBe(0); // a decided review has no form
    expect((await page.locator('[data-testid=decision]').textContent())!).toMatch(new RegExp(`CONFIRMED_FRAUD by ${users.analyst.name}`));
    const timeline = await page.locator('[data-testid=timeline] li').allTextContents();
    expect(timeline.some((t) => new RegExp(`analyst:${users.analyst.name}\\s+decision\\s+review .*CONFIRMED_FRAUD \\(card testing\\)`).test(t))).toBeTruthy();
    expect(timeline.some((t) => /BLOCK_CARD/.test(t))).toBeTruthy();
    await waitFor('FraudStage BLOCKED', async () => (await stageOf(reviewAccount)) === 'BLOCKED', 20_000, 200);
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'console-case.png'), fullPage: true });
  });

  it('when ops clear an account from its case page, then the case closes and the trail records who', async () => {
    const page = await newPage();
    await signIn(page, users.ops, `/cases/${liveAccount}`);
    expect(await page.locator('[data-testid=stage]').textContent()).toBe('MONITORING');
    const form = page.locator('[data-testid=clear-form]');
    await form.locator('input[name=reason]').fill('verified with the cardholder <img src=x onerror="document.title=1">');
    await Promise.all([page.waitForURL(`**/cases/${liveAccount}`), form.locator('button[type=submit]').click()]);
    expect((await page.locator('[data-testid=flash]').textContent())!).toMatch(new RegExp(`clearAccount sent by ${users.ops.name}`));
    await waitFor('CLEARED', async () => (await stageOf(liveAccount)) === 'CLEARED', 30_000, 200);
    await page.reload();
    expect(await page.locator('[data-testid=stage]').textContent()).toBe('CLEARED');
    const timeline = await page.locator('[data-testid=timeline] li').allTextContents();
    expect(timeline.some((t) => new RegExp(`ops:${users.ops.name}\\s+cleared\\s+account cleared: verified with the cardholder <img src=x`).test(t))).toBeTruthy();
    expect(await page.locator('[data-testid=timeline] img').count()).toBe(0); // the reason is text, not markup
    expect(await redis.sismember('fraud:alerts:accounts', liveAccount)).toBe(0);

    // Signing out ends the session: the page, its socket and its cookie no longer reach account data.
    await Promise.all([page.waitForURL('**/login'), page.click('header .who button')]);
    const after = await page.request.get(`${base}/cases/${liveAccount}`, { maxRedirects: 0 });
    expect(after.status()).toBe(303);
  });
});
