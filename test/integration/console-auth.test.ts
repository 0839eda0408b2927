// The console's sign-in and sessions over HTTP, on the real Redis of the local stack (database 12), with the console
// app in this process (no Temporal: the dashboard shows its queue error, the rest works): no session is written before
// a successful sign-in; failed sign-ins are limited per client IP and per user name (clients connect from different
// loopback addresses, 127.0.0.2 and up, so no proxy header is trusted) and then let through after the window; at most
// CONSOLE_SIGNIN_CONCURRENCY password checks run at once; a password change, a removal and sign-out end sessions,
// their old cookies land on the sign-in page and their sockets are dropped.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { io as socketClient } from 'socket.io-client';
import { consoleConfigSchema } from '../../common/config.ts';
import { parseConfig, repoRoot } from '../../common/env.ts';
import { createRedis } from '../../common/redis.ts';
import { createConsole, type ConsoleServer } from '../../console/app.ts';
import { endUserSessions } from '../../console/session-index.ts';
import { UserStore, type User } from '../../console/users.ts';
import { consoleKeys } from '../../contracts/redis-keys.ts';
import { config as stack, isolatedRedis, nodeBin } from '../../harness/stack.ts';

const DB = 12;
const PASSWORD = 'correct horse battery';
const NEW_PASSWORD = 'a brand new password';

let redis: Redis;
const running: { server: ConsoleServer; subscriber: Redis; app: Redis }[] = [];

beforeAll(async () => {
  ({ redis } = await isolatedRedis(DB));
});

beforeEach(async () => {
  await redis.flushdb();
});

afterAll(async () => {
  for (const { server, subscriber, app } of running) {
    await server.close();
    server.http.close();
    subscriber.disconnect();
    app.disconnect();
  }
  await redis?.flushdb();
  redis?.disconnect();
});

/** Counts password checks and how many ran at once (`hold` keeps each one waiting until released). */
class CountingUsers extends UserStore {
  verifications = 0;
  inFlight = 0;
  maxInFlight = 0;
  hold: Promise<void> | undefined;
  override async verify(name: string, password: string): Promise<User | undefined> {
    this.verifications++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await this.hold;
      return await super.verify(name, password);
    } finally {
      this.inFlight--;
    }
  }
}

interface Console {
  base: string;
  users: CountingUsers;
  /** What the console logged, parsed. */
  logs: { msg: string; [k: string]: unknown }[];
}

/** A console on its own port, with these variables over the test defaults. */
async function startConsole(env: Record<string, string> = {}): Promise<Console> {
  const config = parseConfig(consoleConfigSchema, {
    REDIS_HOST: stack.REDIS_HOST, REDIS_PORT: String(stack.REDIS_PORT), REDIS_PASSWORD: stack.REDIS_PASSWORD, REDIS_DB: String(DB),
    CONSOLE_SESSION_SECRET: randomBytes(32).toString('hex'), CONSOLE_SIGNIN_WINDOW: '2s', ...env,
  });
  const logs: Console['logs'] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Console['logs'][number]) });
  const app = createRedis(config, 'console-auth-test');
  const subscriber = createRedis(config, 'console-auth-test-sub', { autoResubscribe: false });
  const users = new CountingUsers(app);
  // No Temporal here: every read fails at once, and the pages say so.
  const temporal = { withDeadline: () => Promise.reject(new Error('no Temporal in this test')) } as unknown as Client;
  const server = createConsole({ config, log, redis: app, subscriber, temporal, users });
  running.push({ server, subscriber, app });
  await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => (subscriber.status === 'ready' ? resolve() : subscriber.once('ready', () => resolve())));
  await sleep(50); // its SUBSCRIBE to ended sessions, sent on ready
  return { base: `http://127.0.0.1:${(server.http.address() as AddressInfo).port}`, users, logs };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A browser of sorts: its own cookies, and its own source address on the loopback network. */
class Agent {
  readonly cookies = new Map<string, string>();
  readonly base: string;
  readonly from: string;
  constructor(base: string, from = '127.0.0.2') {
    this.base = base;
    this.from = from;
  }

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  send(method: string, path: string, form?: Record<string, string>): Promise<Reply> {
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const headers: Record<string, string | number> = { cookie: this.cookieHeader };
    if (body !== undefined) Object.assign(headers, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) });
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${this.base}${path}`, { method, headers, localAddress: this.from }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          for (const c of res.headers['set-cookie'] ?? []) {
            const [pair = ''] = c.split(';');
            const name = pair.slice(0, pair.indexOf('='));
            const value = pair.slice(pair.indexOf('=') + 1);
            if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
            else this.cookies.set(name, value);
          }
          resolve({ status: res.statusCode!, headers: res.headers, body: text });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  get = (path: string) => this.send('GET', path);

  /** The sign-in form, filled in and sent. */
  async signIn(username: string, password: string, next = '/'): Promise<Reply> {
    const form = await this.get('/login');
    expect(form.status).toBe(200);
    return this.send('POST', '/login', { _csrf: csrfOf(form.body), username, password, next });
  }
}

const csrfOf = (html: string) => /name="_csrf" value="([^"]*)"/.exec(html)?.[1] ?? '';
const sessionKeys = () => redis.keys(`${consoleKeys.sessionPrefix}*`);
const listed = (user: string) => redis.zrange(consoleKeys.userSessions(user), 0, -1);
const sidOf = (agent: Agent) => decodeURIComponent(agent.cookies.get('fraudwatch.sid') ?? '').replace(/^s:/, '').replace(/\..*$/, '');

/** Signed in: the dashboard renders with the user's name. */
async function signedInAs(agent: Agent): Promise<string | undefined> {
  const page = await agent.get('/');
  return page.status === 200 ? /data-testid="signed-in-user">([^<]*)</.exec(page.body)?.[1] : undefined;
}

describe('console sign-in and sessions on Redis', () => {
  let c: Console;
  beforeAll(async () => {
    c = await startConsole({ CONSOLE_SIGNIN_MAX_PER_IP: '1000', CONSOLE_SIGNIN_MAX_PER_USER: '1000' });
  });
  beforeEach(async () => {
    await c.users.add('ana', 'analyst', PASSWORD);
    await c.users.add('bob', 'viewer', PASSWORD);
  });

  it('when anonymous requests come (the sign-in page, pages, fragments, forms), then nothing at all is written to Redis', async () => {
    const before = (await redis.keys('*')).sort();
    for (let i = 0; i < 25; i++) {
      const agent = new Agent(c.base);
      const form = await agent.get('/login?next=%2Fcases%2FACC_1');
      expect(form.status).toBe(200);
      expect(csrfOf(form.body)).toMatch(/^[0-9a-f]{64}\.[0-9a-f]{64}$/);
      expect(agent.cookies.has('fraudwatch.sid')).toBe(false);
      expect(agent.cookies.has('fraudwatch.login-csrf')).toBe(true);
    }
    const agent = new Agent(c.base);
    expect((await agent.get('/')).headers.location).toBe('/login?next=%2F');
    expect((await agent.get('/cases/ACC_1')).status).toBe(303);
    expect((await agent.get('/partials/reviews')).status).toBe(401);
    expect((await agent.send('POST', '/logout', { _csrf: 'x' })).status).toBe(401);
    expect((await agent.get('/no/such/page')).status).toBe(303);
    expect((await redis.keys('*')).sort()).toStrictEqual(before);
  });

  it('when sign-ins fail (wrong password, unknown user, no or a foreign CSRF token), then no session is written', async () => {
    const agent = new Agent(c.base);
    expect((await agent.signIn('ana', 'not the password')).status).toBe(401);
    expect((await agent.signIn('nobody', PASSWORD)).status).toBe(401);
    expect((await agent.signIn('', '')).status).toBe(401);
    // The token without its cookie, and a cookie of another browser with this one's token: refused before the password.
    const form = await agent.get('/login');
    const checked = c.users.verifications;
    const noCookie = new Agent(c.base);
    const refused = await noCookie.send('POST', '/login', { _csrf: csrfOf(form.body), username: 'ana', password: PASSWORD });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('The sign-in form expired or did not come from this console.');
    const other = new Agent(c.base);
    await other.get('/login');
    other.cookies.set('fraudwatch.login-csrf', 'forged.value');
    expect((await other.send('POST', '/login', { _csrf: 'forged.value', username: 'ana', password: PASSWORD })).status).toBe(403);
    expect(c.users.verifications).toBe(checked);

    expect(await sessionKeys()).toStrictEqual([]);
    // What failures leave: their counters, each expiring with the window.
    for (const key of await redis.keys('*')) {
      if ([consoleKeys.users, consoleKeys.user('ana'), consoleKeys.user('bob')].includes(key)) continue;
      expect(key.startsWith(consoleKeys.signInByIp) || key.startsWith(consoleKeys.signInByUser)).toBe(true);
      const ttl = await redis.pttl(key);
      expect(ttl > 0 && ttl <= 2000).toBe(true);
    }
  });

  it('when a user signs in, then exactly one session is written, listed under the user, and the pages work', async () => {
    const agent = new Agent(c.base);
    const res = await agent.signIn('ana', PASSWORD, '/cases/ACC_1');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/cases/ACC_1');
    expect(agent.cookies.has('fraudwatch.login-csrf')).toBe(false); // the session's token takes over
    expect(await sessionKeys()).toStrictEqual([`${consoleKeys.sessionPrefix}${sidOf(agent)}`]);
    expect(await listed('ana')).toStrictEqual([sidOf(agent)]);
    const ttl = await redis.pttl(consoleKeys.userSessions('ana'));
    expect(ttl > 8 * 3_600_000 && ttl <= 8 * 3_600_000 + 60_000).toBe(true); // the idle time and a minute
    const dashboard = await agent.get('/');
    expect(dashboard.status).toBe(200);
    expect(dashboard.body).toContain('data-testid="signed-in-user">ana<');
    expect(dashboard.body).toContain('no Temporal in this test');
    expect((await agent.get('/login')).headers.location).toBe('/');
  });

  it('when a password is changed with the CLI, then every session of that user ends and its old cookies go to sign-in; others stay', async () => {
    const [ana1, ana2, bob] = [new Agent(c.base), new Agent(c.base, '127.0.0.3'), new Agent(c.base)];
    for (const [a, name] of [[ana1, 'ana'], [ana2, 'ana'], [bob, 'bob']] as const) expect((await a.signIn(name, PASSWORD)).status).toBe(303);
    expect((await listed('ana')).length).toBe(2);

    const add = promisify(execFile)(nodeBin, [`${repoRoot}console/main.ts`, 'add-user', 'ana', '--role', 'ops', '--password-stdin', '--replace'], {
      env: { ...process.env, REDIS_DB: String(DB) },
    });
    add.child.stdin!.end(`${NEW_PASSWORD}\n`);
    expect((await add).stdout).toBe('updated user ana (role ops); their sessions are ended\n');

    expect(await listed('ana')).toStrictEqual([]);
    expect(await sessionKeys()).toStrictEqual([`${consoleKeys.sessionPrefix}${sidOf(bob)}`]);
    for (const old of [ana1, ana2]) {
      const res = await old.get('/');
      expect(res.status).toBe(303);
      expect(res.headers.location).toBe('/login?next=%2F');
    }
    expect(await signedInAs(bob)).toBe('bob');
    expect((await ana1.signIn('ana', PASSWORD)).status).toBe(401);
    expect((await ana1.signIn('ana', NEW_PASSWORD)).status).toBe(303);
    expect(await signedInAs(ana1)).toBe('ana');
  });

  it('when a user is removed, then their sessions end and their live socket is dropped at once', async () => {
    const ana = new Agent(c.base);
    expect((await ana.signIn('ana', PASSWORD)).status).toBe(303);
    const socket = socketClient(c.base, { transports: ['websocket'], reconnection: false, extraHeaders: { cookie: ana.cookieHeader } });
    await new Promise<void>((resolve, reject) => {
      socket.on('connect', () => resolve());
      socket.on('connect_error', reject);
    });
    const dropped = new Promise<number>((resolve) => socket.on('disconnect', () => resolve(Date.now())));

    const t0 = Date.now();
    expect(await c.users.remove('ana')).toBe(true);
    const at = await Promise.race([dropped, sleep(5000).then(() => -1)]);
    socket.close();
    expect(at).not.toBe(-1); // not within 5 s (the sweep would take up to 30 s)
    expect(at - t0 < 2000).toBe(true);
    expect(await sessionKeys()).toStrictEqual([]);
    expect((await ana.get('/')).headers.location).toBe('/login?next=%2F');
  });

  it('when a user signs out, then the session leaves the index and Redis, and the old cookie goes to sign-in', async () => {
    const ana = new Agent(c.base);
    expect((await ana.signIn('ana', PASSWORD)).status).toBe(303);
    const cookie = new Map(ana.cookies);
    const page = await ana.get('/');
    const out = await ana.send('POST', '/logout', { _csrf: /name="csrf-token" content="([^"]+)"/.exec(page.body)![1]! });
    expect(out.status).toBe(303);
    expect(await listed('ana')).toStrictEqual([]);
    expect(await sessionKeys()).toStrictEqual([]);
    const replay = new Agent(c.base);
    for (const [k, v] of cookie) replay.cookies.set(k, v);
    expect((await replay.get('/')).headers.location).toBe('/login?next=%2F');
  });

  it('when a request in flight writes an ended session back, then it still signs no one in and is deleted again', async () => {
    const ana = new Agent(c.base);
    expect((await ana.signIn('ana', PASSWORD)).status).toBe(303);
    const key = `${consoleKeys.sessionPrefix}${sidOf(ana)}`;
    const stored = (await redis.get(key))!;
    expect(await endUserSessions(redis, 'ana')).toBe(1);
    await redis.set(key, stored, 'EX', 3600); // what express-session's save at the end of such a request does
    expect((await ana.get('/')).headers.location).toBe('/login?next=%2F');
    expect(await redis.exists(key)).toBe(0);
    expect(c.logs.some((l) => l.msg === 'session ended' && l.user === 'ana')).toBe(true);
  });

  it('when sessions expired, then their ids are trimmed from the index at the next sign-in', async () => {
    await redis.zadd(consoleKeys.userSessions('ana'), Date.now() - 3_600_000, 'long-gone');
    const ana = new Agent(c.base);
    expect((await ana.signIn('ana', PASSWORD)).status).toBe(303);
    expect(await listed('ana')).toStrictEqual([sidOf(ana)]);
  });
});

describe('console sign-in limits', () => {
  it('when one address fails more than CONSOLE_SIGNIN_MAX_PER_IP times, then it gets 429 with Retry-After before any password check, others do not, and after the window it gets through', async () => {
    const c = await startConsole({ CONSOLE_SIGNIN_MAX_PER_IP: '3', CONSOLE_SIGNIN_MAX_PER_USER: '1000' });
    await c.users.add('ana', 'analyst', PASSWORD);
    const attacker = new Agent(c.base, '127.0.0.2');
    for (let i = 0; i < 3; i++) expect((await attacker.signIn(`guess${i}`, 'not the password')).status).toBe(401);
    const checked = c.users.verifications;
    for (const password of ['not the password', PASSWORD]) {
      const refused = await attacker.signIn('ana', password);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(2);
      expect(refused.body).toMatch(/Too many failed sign-ins\. Try again in [12] seconds?\./);
      expect(csrfOf(refused.body)).not.toBe(''); // the page is a working form
    }
    expect(c.users.verifications).toBe(checked); // refused before argon2
    expect(await sessionKeys()).toStrictEqual([]);
    expect(c.logs.filter((l) => l.msg === 'sign-in refused: too many failed attempts' && l.by === 'ip' && l.ip === '127.0.0.2').length).toBe(2);

    expect((await new Agent(c.base, '127.0.0.3').signIn('ana', PASSWORD)).status).toBe(303); // another address

    await sleep(2100);
    expect((await attacker.signIn('ana', PASSWORD)).status).toBe(303);
  });

  it('when one user name fails more than CONSOLE_SIGNIN_MAX_PER_USER times from many addresses, then it is refused from any address, other users are not, and after the window it gets through', async () => {
    const c = await startConsole({ CONSOLE_SIGNIN_MAX_PER_IP: '1000', CONSOLE_SIGNIN_MAX_PER_USER: '3' });
    await c.users.add('ana', 'analyst', PASSWORD);
    await c.users.add('bob', 'viewer', PASSWORD);
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) expect((await new Agent(c.base, from).signIn('ana', 'not the password')).status).toBe(401);
    // The name as sign-in reads it: case and spaces do not make another counter.
    const refused = await new Agent(c.base, '127.0.0.5').signIn(' ANA ', PASSWORD);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(c.logs.some((l) => l.msg === 'sign-in refused: too many failed attempts' && l.by === 'user' && l.username === 'ana')).toBe(true);
    expect((await new Agent(c.base, '127.0.0.5').signIn('bob', PASSWORD)).status).toBe(303);

    await sleep(2100);
    expect((await new Agent(c.base, '127.0.0.6').signIn('ana', PASSWORD)).status).toBe(303);
  });

  it('when a user signs in successfully again and again, then none of it counts against the limits', async () => {
    const c = await startConsole({ CONSOLE_SIGNIN_MAX_PER_IP: '2', CONSOLE_SIGNIN_MAX_PER_USER: '2', CONSOLE_SIGNIN_WINDOW: '1m' });
    await c.users.add('ana', 'analyst', PASSWORD);
    for (let i = 0; i < 6; i++) expect((await new Agent(c.base).signIn('ana', PASSWORD)).status).toBe(303);
    expect((await new Agent(c.base).signIn('ana', 'not the password')).status).toBe(401);
    expect((await new Agent(c.base).signIn('ana', 'not the password')).status).toBe(401);
    const third = await new Agent(c.base).signIn('ana', PASSWORD);
    expect(third.status).toBe(429);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(50);
    // 60 s is "1 minute"; a slow run (six argon2 checks before it) leaves 51-59 s, said in seconds.
    expect(third.body).toMatch(/Too many failed sign-ins\. Try again in (1 minute|5[1-9] seconds)\./);
  });

  it('when sign-ins flood in, then at most CONSOLE_SIGNIN_CONCURRENCY passwords are checked at once and those past the queue get 503', async () => {
    const c = await startConsole({ CONSOLE_SIGNIN_MAX_PER_IP: '1000', CONSOLE_SIGNIN_MAX_PER_USER: '1000', CONSOLE_SIGNIN_CONCURRENCY: '1', CONSOLE_SIGNIN_QUEUE: '2' });
    await c.users.add('ana', 'analyst', PASSWORD);
    const agents = Array.from({ length: 8 }, (_, i) => new Agent(c.base, `127.0.1.${i + 1}`));
    const forms = await Promise.all(agents.map((a) => a.get('/login')));
    let release!: () => void;
    c.users.hold = new Promise((resolve) => (release = resolve));
    const post = (i: number) =>
      agents[i]!.send('POST', '/login', { _csrf: csrfOf(forms[i]!.body), username: 'ana', password: i === 0 ? PASSWORD : 'not the password' });
    // The first is being checked (and held), the next two wait for it, the other five are refused straight away.
    const first = post(0);
    for (let i = 0; i < 100 && c.users.inFlight === 0; i++) await sleep(20);
    expect(c.users.inFlight).toBe(1);
    const queued = [post(1), post(2)];
    await sleep(300);
    const refused = await Promise.race([Promise.all([3, 4, 5, 6, 7].map(post)), sleep(5000).then(() => undefined)]);
    expect(refused?.map((r) => r.status)).toStrictEqual([503, 503, 503, 503, 503]);
    expect(refused![0]!.headers['retry-after']).toBe('5');
    expect(refused![0]!.body).toContain('The console is busy checking other sign-ins. Try again in 5 seconds.');
    expect(c.users.verifications).toBe(1);
    release();
    expect((await Promise.all([first, ...queued])).map((r) => r.status)).toStrictEqual([303, 401, 401]);
    expect(c.users.maxInFlight).toBe(1);
    expect(c.users.verifications).toBe(3);
    expect(c.logs.filter((l) => l.msg === 'sign-in refused: too many sign-ins in progress').length).toBe(5);
  });
});
