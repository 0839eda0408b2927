// The pure parts of the console's sign-in limits (console/sign-in-limits.ts) and session index (console/session-index.ts):
// their settings (defaults, and a bad value named at start), the counter keys, the wait told to a refused sign-in,
// the gate in front of argon2, and the sessions-ended message. The limits on the real Redis and HTTP are in
// test/integration/console-auth.test.ts.
import { describe, expect, it } from '@jest/globals';
import { consoleConfigSchema } from '../../common/config.ts';
import { ConfigError, parseConfig } from '../../common/env.ts';
import { endedSessionIds } from '../../console/session-index.ts';
import { attemptedName, BUSY, refusalText, retryAfterSeconds, userLimitKey, verificationGate, waitText } from '../../console/sign-in-limits.ts';

const SECRET = { CONSOLE_SESSION_SECRET: 'x'.repeat(32) };

describe('sign-in limit settings', () => {
  it('when nothing is set, then 20 failures per address and 10 per user name in 15 minutes, one check at a time, 32 waiting', () => {
    const c = parseConfig(consoleConfigSchema, SECRET);
    expect([c.CONSOLE_SIGNIN_WINDOW, c.CONSOLE_SIGNIN_MAX_PER_IP, c.CONSOLE_SIGNIN_MAX_PER_USER, c.CONSOLE_SIGNIN_CONCURRENCY, c.CONSOLE_SIGNIN_QUEUE])
      .toStrictEqual([15 * 60_000, 20, 10, 1, 32]);
  });

  it('when they are set, then they hold (the window as a duration)', () => {
    const c = parseConfig(consoleConfigSchema, {
      ...SECRET, CONSOLE_SIGNIN_WINDOW: '2s', CONSOLE_SIGNIN_MAX_PER_IP: '100', CONSOLE_SIGNIN_MAX_PER_USER: '3', CONSOLE_SIGNIN_CONCURRENCY: '4', CONSOLE_SIGNIN_QUEUE: '0',
    });
    expect([c.CONSOLE_SIGNIN_WINDOW, c.CONSOLE_SIGNIN_MAX_PER_IP, c.CONSOLE_SIGNIN_MAX_PER_USER, c.CONSOLE_SIGNIN_CONCURRENCY, c.CONSOLE_SIGNIN_QUEUE])
      .toStrictEqual([2000, 100, 3, 4, 0]);
  });

  it('when a value is not usable, then the error names the variable and what it got', () => {
    const bad: [string, string][] = [
      ['CONSOLE_SIGNIN_WINDOW', '15'], ['CONSOLE_SIGNIN_WINDOW', '500ms'], ['CONSOLE_SIGNIN_WINDOW', '2d'], ['CONSOLE_SIGNIN_MAX_PER_IP', '0'],
      ['CONSOLE_SIGNIN_MAX_PER_IP', 'lots'], ['CONSOLE_SIGNIN_MAX_PER_USER', '-1'], ['CONSOLE_SIGNIN_MAX_PER_USER', '2.5'],
      ['CONSOLE_SIGNIN_CONCURRENCY', '0'], ['CONSOLE_SIGNIN_CONCURRENCY', '65'], ['CONSOLE_SIGNIN_QUEUE', '-1'],
    ];
    for (const [name, value] of bad) {
      const call = () => parseConfig(consoleConfigSchema, { ...SECRET, [name]: value });
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(new RegExp(`\\b${name}: .*\\(got ${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
    }
  });
});

describe('sign-in counters', () => {
  it('when a form names a user, then the counter is that name as sign-in reads it (trimmed, lowercase)', () => {
    expect(attemptedName({ username: '  Ana.B ' })).toBe('ana.b');
    expect(userLimitKey(attemptedName({ username: 'ANA' }))).toBe('ana');
  });

  it('when the name cannot be a user name (empty, too long, odd characters, not a string), then all of them share one counter', () => {
    for (const body of [{}, { username: '' }, { username: 'a b' }, { username: 'x'.repeat(65) }, { username: ['ana'] }, { username: 'fraud:console:*' }, undefined]) {
      expect([body, userLimitKey(attemptedName(body))]).toStrictEqual([body, '!invalid']);
    }
  });

  it('when a sign-in is refused, then Retry-After is the whole seconds left of the window, at least 1', () => {
    const now = 1_000_000;
    expect(retryAfterSeconds(new Date(now + 1500), now, 60_000)).toBe(2);
    expect(retryAfterSeconds(new Date(now + 60_000), now, 60_000)).toBe(60);
    expect(retryAfterSeconds(new Date(now - 10), now, 60_000)).toBe(1);
    expect(retryAfterSeconds(undefined, now, 900_000)).toBe(900);
  });

  it('when the page says how long to wait, then it says seconds under a minute and whole minutes (rounded up) from one', () => {
    expect([1, 2, 59, 60, 61, 120, 900].map(waitText)).toStrictEqual(['1 second', '2 seconds', '59 seconds', '1 minute', '2 minutes', '2 minutes', '15 minutes']);
    expect(refusalText({ status: 429, retryAfterSeconds: 840, by: 'user' })).toBe('Too many failed sign-ins. Try again in 14 minutes.');
    expect(refusalText({ status: 503, retryAfterSeconds: 5, by: 'busy' })).toBe('The console is busy checking other sign-ins. Try again in 5 seconds.');
  });
});

describe('password check gate', () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('when more checks come than run at once plus wait, then the rest are refused without running, and the waiting ones run in turn', async () => {
    const gate = verificationGate(2, 1);
    const holds = [deferred(), deferred(), deferred()];
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const check = (i: number) => async () => {
      started.push(i);
      most = Math.max(most, ++running);
      await holds[i]!.promise;
      running--;
      return i;
    };
    const admitted = [0, 1, 2].map((i) => gate.run(check(i)));
    expect(admitted.includes(BUSY)).toBe(false);
    expect(gate.run(check(3))).toBe(BUSY);
    expect([gate.active, gate.waiting]).toStrictEqual([2, 1]);
    await Promise.resolve();
    expect(started).toStrictEqual([0, 1]);
    holds[0]!.resolve();
    expect(await admitted[0]).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(started).toStrictEqual([0, 1, 2]);
    const later = gate.run(() => Promise.resolve(9)); // room to wait again
    expect(later).not.toBe(BUSY);
    expect(gate.run(() => Promise.resolve(10))).toBe(BUSY);
    holds[1]!.resolve();
    holds[2]!.resolve();
    expect(await Promise.all([...admitted, later])).toStrictEqual([0, 1, 2, 9]);
    expect(most).toBe(2);
  });

  it('when a check fails, then its place is freed all the same', async () => {
    const gate = verificationGate(1, 0);
    const failing = gate.run(() => Promise.reject(new Error('argon2 broke')));
    expect(gate.run(() => Promise.resolve(1))).toBe(BUSY);
    await expect(failing).rejects.toThrow('argon2 broke');
    expect(await gate.run(() => Promise.resolve(1))).toBe(1);
  });
});

describe('sessions-ended message', () => {
  it('when it is a JSON array of ids, then those ids; anything else, none', () => {
    expect(endedSessionIds('["a","b"]')).toStrictEqual(['a', 'b']);
    expect(endedSessionIds('["a",1,null,{"x":1}]')).toStrictEqual(['a']);
    for (const m of ['', 'not json', '{"sid":"a"}', '"a"', 'null', '42']) expect([m, endedSessionIds(m)]).toStrictEqual([m, []]);
  });
});
