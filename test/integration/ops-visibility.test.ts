// Operational visibility on the real stack.
//
// Stuck cases: a case workflow whose every workflow task fails, made the honest way: the case is started as the
// signaller starts one (type fraudCaseWorkflow, id fraud-account-<id>, a valid input, the search attributes) on a
// task queue served by a worker whose fraudCaseWorkflow throws (test/fixtures/workflows/stuck-case.ts), as a bad
// deploy would. The Temporal server marks it (TemporalReportedProblems) once the task failed
// system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute times in a row (stack/temporal.sh sets 2; the
// server's default 5 takes about a minute, which the waits allow). Then it must show in listStuckCases (and in the
// scan that stands in on older servers), in `npm run cli -- case stuck` and `case show`, in a worker's cases_stuck
// gauge and /healthz warnings; and once the real workflow code serves the queue ("the fix is deployed") it must
// leave all of them.
//
// Redis memory: maxmemory set just above what Redis uses: a worker's and a detector's /healthz warn (the worker
// still answers 200), the worker logs the crossing once, the gauges show the limit; restored, the warning goes.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { countStuckCases, listStuckCases, type StuckCases, type TaskProblem } from '../../common/cases.ts';
import { consoleConfigSchema } from '../../common/config.ts';
import { parseConfig, repoRoot } from '../../common/env.ts';
import { createRedis } from '../../common/redis.ts';
import { createConsole } from '../../console/app.ts';
import { UserStore } from '../../console/users.ts';
import { CASE_WORKFLOW_TYPE, caseStateQuery, caseWorkflowId, defaultPolicy } from '../../contracts/case.ts';
import { FraudAccountId, FraudAlertCount, FraudStage } from '../../contracts/search-attributes.ts';
import { config, freePort, isolatedRedis, redisClient, redisLogin, spawnService, startService, uniqueId, waitFor, type RunningProcess } from '../../harness/stack.ts';
import { expectWith } from '../support/expect.ts';
import { temporalConnectionOptions } from '../../common/temporal-connection.ts';

Runtime.install({
  logger: new DefaultLogger('ERROR'),
  // The fixture's failing tasks would log a warning each.
  telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } },
});

const FIXTURE = fileURLToPath(new URL('../fixtures/workflows/stuck-case.ts', import.meta.url));
const FIXTURE_ERROR = 'stuck-case fixture: this workflow task always fails';
/** Long enough for the server's default threshold (5 failures, about a minute of retry backoff on 1.32). */
const STUCK_WITHIN_MS = 150_000;

let connection: Connection;
let client: Client;
let db: number;
let redis: Redis;
/** A real worker on a queue of its own (it never runs the stuck case): its gauge and /healthz are under test. */
let observer: RunningProcess;
const running: RunningProcess[] = [];
const caseIds: string[] = [];

const workerEnv = (taskQueue: string) => ({
  REDIS_DB: String(db), TEMPORAL_TASK_QUEUE: taskQueue, STUCK_CASES_INTERVAL: '1s', REDIS_MEMORY_POLL_INTERVAL: '1s', LOG_LEVEL: 'info',
});

beforeAll(async () => {
  connection = await Connection.connect(temporalConnectionOptions(config));
  client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  ({ db, redis } = await isolatedRedis());
  observer = await startService('workers/main.ts', workerEnv(uniqueId('ops-observer-')), { portVar: 'WORKER_HEALTH_PORT' });
  running.push(observer);
});

afterAll(async () => {
  // Leave no test case running on the shared dev server.
  for (const id of caseIds) await client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
  for (const p of running) await p.stop(10_000);
  redis?.disconnect();
  await connection?.close();
});

async function get(p: RunningProcess, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${p.port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}
const healthz = async (p: RunningProcess) => {
  const r = await get(p, '/healthz');
  return { status: r.status, body: JSON.parse(r.text) as { ok: boolean; warnings: string[] } };
};
const gauge = async (p: RunningProcess, name: string): Promise<number | undefined> => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec((await get(p, '/metrics')).text);
  return m ? Number(m[1]) : undefined;
};

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await promisify(execFile)(`${repoRoot}node_modules/.bin/node`, [`${repoRoot}cli/main.ts`, ...args], { env: { ...process.env, REDIS_DB: String(db) } });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

/** The console in this process on the test's Redis database and the real Temporal, and a signed-in ops user. */
async function consoleSignedIn(): Promise<{ get(path: string): Promise<{ status: number; body: string }>; close(): Promise<void> }> {
  // The profile's settings (process.env holds .env's and the cluster's), as the console's own Redis user where there are users.
  const cfg = parseConfig(consoleConfigSchema, {
    ...process.env, ...redisLogin('console'), REDIS_DB: String(db), CONSOLE_SESSION_SECRET: randomBytes(32).toString('hex'),
  });
  const app = createRedis(cfg, 'ops-visibility-console');
  const subscriber = createRedis(cfg, 'ops-visibility-console-sub', { autoResubscribe: false });
  const users = new UserStore(app);
  const password = randomBytes(12).toString('hex');
  await users.add('ops-test', 'ops', password, { replace: true });
  const server = createConsole({ config: cfg, log: pino({ level: 'silent' }), redis: app, subscriber, temporal: client, users });
  await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.http.address() as AddressInfo).port}`;
  const cookies = new Map<string, string>();
  const send = async (path: string, form?: Record<string, string>) => {
    const res = await fetch(`${base}${path}`, {
      method: form ? 'POST' : 'GET', redirect: 'manual', body: form ? new URLSearchParams(form) : undefined,
      headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!;
      cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    }
    return { status: res.status, body: await res.text() };
  };
  const login = await send('/login');
  const csrf = /name="_csrf" value="([^"]*)"/.exec(login.body)?.[1] ?? '';
  expect((await send('/login', { _csrf: csrf, username: 'ops-test', password, next: '/' })).status).toBe(303);
  return {
    get: (path) => send(path),
    async close() {
      await server.close();
      server.http.close();
      subscriber.disconnect();
      app.disconnect();
    },
  };
}

describe('stuck cases', () => {
  const acc = uniqueId('ACC_STUCK_');
  const taskQueue = uniqueId('ops-stuck-');
  let fixture: Worker;
  let fixtureRun: Promise<void>;

  beforeAll(async () => {
    caseIds.push(caseWorkflowId(acc));
    const nativeConnection = await NativeConnection.connect(temporalConnectionOptions(config));
    fixture = await Worker.create({ connection: nativeConnection, namespace: config.TEMPORAL_NAMESPACE, taskQueue, workflowsPath: FIXTURE });
    fixtureRun = fixture.run().finally(() => nativeConnection.close());
    // As the detector's signaller starts a case.
    await client.workflow.start(CASE_WORKFLOW_TYPE, {
      workflowId: caseWorkflowId(acc), taskQueue, args: [{ accountId: acc, policy: defaultPolicy }],
      typedSearchAttributes: [{ key: FraudStage, value: 'MONITORING' }, { key: FraudAlertCount, value: 0 }, { key: FraudAccountId, value: acc }],
    });
  });

  afterAll(async () => {
    if (fixture?.getState() === 'RUNNING') fixture.shutdown();
    await fixtureRun?.catch(() => undefined);
  });

  const mine = (list: StuckCases) => list.cases.find((c) => c.accountId === acc);

  it('when a case\'s workflow task keeps failing, then Temporal reports it and listStuckCases finds it with the problem and the error', async () => {
    const found = await waitFor('the case among the stuck ones', async () => mine(await listStuckCases(client, { details: true })), STUCK_WITHIN_MS, 1000);
    expectWith(JSON.stringify(found), () => {
      expect(found).toMatchObject({ workflowId: caseWorkflowId(acc), stage: 'MONITORING', alertCount: 0 });
      expect(found.problem).toMatchObject({ category: 'WorkflowTaskFailed', cause: 'WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure', lastError: FIXTURE_ERROR });
      expect(found.problem.attempt).toBeGreaterThanOrEqual(2);
      expect(Date.parse(found.problem.since!)).toBeLessThanOrEqual(Date.now());
    });
    const list = await listStuckCases(client);
    expect(list.via).toBe('reported-problems');
    expect(mine(list)?.problem).toStrictEqual({ category: 'WorkflowTaskFailed', cause: 'WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure' });
    expect((await countStuckCases(client)).count).toBeGreaterThanOrEqual(1);
  });

  it('when the server\'s attribute is not used, then the scan of running cases finds the case by its retried task', async () => {
    // On this test's own task queue: a long-lived dev server can hold more running cases than one scan reads.
    const scan = await listStuckCases(client, { via: 'scan', details: true, taskQueue });
    expect(scan).toMatchObject({ via: 'scan', complete: true });
    expect(scan.scanned).toBeGreaterThanOrEqual(1);
    // The scan reads the same reported problem from describe(), and the pending attempt.
    expect(mine(scan)?.problem).toMatchObject({ category: 'WorkflowTaskFailed', lastError: FIXTURE_ERROR });
    expect(mine(scan)?.problem.attempt).toBeGreaterThanOrEqual(2);
    expect((await countStuckCases(client, { via: 'scan', taskQueue })).count).toBeGreaterThanOrEqual(1);
    // Another queue's scan does not see it.
    expect(mine(await listStuckCases(client, { via: 'scan', taskQueue: `${taskQueue}-other` }))).toBeUndefined();
  });

  it('when an operator asks the CLI, then case stuck lists it and case show explains it', async () => {
    const json = await cli('case', 'stuck', '--json');
    expectWith(json.err, () => expect(json.code).toBe(0));
    const listed = (JSON.parse(json.out) as StuckCases).cases.find((c) => c.accountId === acc);
    expect(listed?.problem).toMatchObject({ category: 'WorkflowTaskFailed', lastError: FIXTURE_ERROR });

    const human = await cli('case', 'stuck');
    const row = human.out.split('\n').find((l) => l.startsWith(`${acc} `));
    expectWith(human.out, () => {
      expect(human.out).toMatch(/^ACCOUNT +STAGE +ALERTS +PROBLEM +ATTEMPT +STUCK FOR +LAST ERROR$/m);
      expect(row).toMatch(new RegExp(`^${acc} +MONITORING +0 +WorkflowTaskFailed \\(WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure\\) +\\d+ +\\d+m +${FIXTURE_ERROR}$`));
      expect(human.out).toMatch(/\d+ stuck case\(s\)/);
    });

    const shown = await cli('case', 'show', acc);
    expectWith(shown.out + shown.err, () => {
      expect(shown.code).toBe(0);
      expect(shown.out).toContain(`case ${caseWorkflowId(acc)}: state unavailable (not queried: its workflow task keeps failing)`);
      expect(shown.out).toMatch(/STUCK: its workflow task keeps failing: WorkflowTaskFailed \(WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure\), attempt \d+, since \d{4}-/);
      expect(shown.out).toContain(`last error: ${FIXTURE_ERROR}`);
    });
    // `case ACC` is `case show ACC`.
    const short = await cli('case', acc, '--json');
    expect((JSON.parse(short.out) as { problem: TaskProblem }).problem).toMatchObject({ category: 'WorkflowTaskFailed', lastError: FIXTURE_ERROR });
  });

  it('when an analyst opens the console, then the dashboard lists the case with a link and its page shows the problem', async () => {
    const web = await consoleSignedIn();
    try {
      const dashboard = await web.get('/');
      expectWith(dashboard.body, () => {
        expect(dashboard.status).toBe(200);
        expect(dashboard.body).toMatch(/data-testid="stuck-count" data-count="[1-9]\d*"/);
        expect(dashboard.body).toMatch(new RegExp(`<tr data-account="${acc}">\\s*<td><a href="/cases/${acc}">${acc}</a></td>\\s*<td><span class="stage stage-MONITORING">MONITORING</span></td>\\s*<td class="num">0</td>\\s*<td>WorkflowTaskFailed <span class="hint">WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure</span></td>`));
      });
      expect((await web.get('/partials/stuck')).body).toContain(`href="/cases/${acc}"`);
      const page = await web.get(`/cases/${acc}`);
      expectWith(page.body, () => {
        expect(page.status).toBe(200);
        expect(page.body).toContain('data-testid="stuck"');
        expect(page.body).toContain(`<code data-testid="stuck-error">${FIXTURE_ERROR}</code>`);
        expect(page.body).toContain('Case state unavailable: not queried: the case is stuck');
      });
    } finally {
      await web.close();
    }
  });

  it('when a worker counts stuck cases, then cases_stuck and /healthz say so (still 200)', async () => {
    const n = await waitFor('cases_stuck >= 1', async () => {
      const v = await gauge(observer, 'cases_stuck');
      return v !== undefined && v >= 1 ? v : undefined;
    }, 15_000, 500);
    expect(n).toBeLessThanOrEqual((await countStuckCases(client)).count + 1);
    const h = await healthz(observer);
    expect(h.status).toBe(200);
    expect(h.body.warnings.join('\n')).toMatch(/\d+ fraud case\(s\) stuck: their workflow tasks keep failing/);
    expect(observer.output()).toMatch(/"msg":"\d+ fraud case\(s\) stuck: their workflow tasks keep failing/);
  });

  it('when the fixed workflow code serves the queue, then the case runs again and leaves the list, the CLI and the gauge', async () => {
    const before = (await gauge(observer, 'cases_stuck'))!;
    fixture.shutdown();
    await fixtureRun;
    const fixed = await startService('workers/main.ts', workerEnv(taskQueue), { portVar: 'WORKER_HEALTH_PORT' });
    running.push(fixed);

    // The real workflow completes the next attempt (after the server's retry backoff): the attribute goes.
    await waitFor('the case to leave the stuck list', async () => !mine(await listStuckCases(client)), 120_000, 1000);
    const state = await client.workflow.getHandle(caseWorkflowId(acc)).query(caseStateQuery);
    expect(state).toMatchObject({ accountId: acc, stage: 'MONITORING' });
    expect((await cli('case', 'stuck', '--json')).out).not.toContain(acc);
    const shown = await cli('case', acc);
    expect(shown.out).toMatch(/^ {2}stage MONITORING, 0 alerts/m);
    expect(shown.out).not.toContain('STUCK: ');
    await waitFor('cases_stuck to drop', async () => ((await gauge(observer, 'cases_stuck'))! < before), 15_000, 500);
    const web = await consoleSignedIn();
    try {
      expect((await web.get('/partials/stuck')).body).not.toContain(acc);
      const page = await web.get(`/cases/${acc}`);
      expect(page.body).not.toContain('data-testid="stuck"');
      expect(page.body).toContain('data-testid="stage">MONITORING<');
    } finally {
      await web.close();
    }
  });
});

describe('redis memory', () => {
  let admin: Redis | undefined;
  let maxmemory: string | undefined;
  afterAll(async () => {
    // Whatever happened, Redis gets its limit back for the tests after this one.
    if (admin && maxmemory !== undefined) await admin.config('SET', 'maxmemory', maxmemory);
    admin?.disconnect();
  });

  const memoryWarning = (h: { body: { warnings: string[] } }) => h.body.warnings.find((w) => w.startsWith('redis memory at '));

  it('when Redis memory nears maxmemory, then /healthz warns (200), the crossing is logged once, the gauges show it; restored, the warning goes', async () => {
    admin = redisClient(0);
    maxmemory = ((await admin.config('GET', 'maxmemory')) as string[])[1]!;
    // A detector too, without Kafka (its /healthz is 503 while it cannot consume; the warning is in the body still).
    const detector = await spawnService('detector/main.ts', {
      KAFKA_BOOTSTRAP_SERVERS: `127.0.0.1:${await freePort()}`, CASE_SIGNALLER: 'off', REDIS_DB: String(db), REDIS_MEMORY_POLL_INTERVAL: '1s',
      DETECTOR_GROUP_ID: uniqueId('g-'), LOG_LEVEL: 'error',
    }, { portVar: 'DETECTOR_METRICS_PORT' });
    running.push(detector);
    await waitFor('the detector\'s first memory reading', async () => (await gauge(detector, 'redis_memory_max_bytes')) === Number(maxmemory), 30_000, 250);
    expect((await healthz(observer)).body).toMatchObject({ ok: true });
    expect(memoryWarning(await healthz(observer))).toBeUndefined();

    // Just above what Redis uses now: about 95% used (ratio 0.8 by default). Reads and small writes still pass.
    const used = Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
    const tight = used + Math.ceil(used / 20);
    await admin.config('SET', 'maxmemory', String(tight));
    try {
      const h = await waitFor('the worker\'s memory warning', async () => {
        const r = await healthz(observer);
        return memoryWarning(r) ? r : undefined;
      }, 15_000, 250);
      expect(h.status).toBe(200);
      expect(memoryWarning(h)).toMatch(/^redis memory at (8[0-9]|9[0-9]|1[0-9]{2})% of maxmemory \(.* MiB of .* MiB, warning from 80%\): Redis refuses writes when it is full \(maxmemory-policy noeviction\)/);
      expect(await gauge(observer, 'redis_memory_max_bytes')).toBe(tight);
      expect(await gauge(observer, 'redis_memory_used_bytes')).toBeGreaterThan(0);
      await waitFor('the detector\'s memory warning', async () => memoryWarning(await healthz(detector)), 15_000, 250);
      await new Promise((r) => setTimeout(r, 3_000)); // three more polls above the line: still one log line
      expect(observer.output().match(/"msg":"redis memory at \d+% of maxmemory/g)).toHaveLength(1);
    } finally {
      await admin.config('SET', 'maxmemory', maxmemory);
    }

    await waitFor('the warning to go', async () => !memoryWarning(await healthz(observer)), 15_000, 250);
    expect(await gauge(observer, 'redis_memory_max_bytes')).toBe(Number(maxmemory));
    await waitFor('the recovery log line', async () => observer.output().includes('"msg":"redis memory back below 80% of maxmemory"'), 5_000, 250);
    expect(observer.output().match(/"msg":"redis memory at \d+% of maxmemory/g)).toHaveLength(1);
  });
});
