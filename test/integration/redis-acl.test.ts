// The cluster profile's Redis logins (stack/redis-ha.sh): one ACL user per service, reaching only the keys that service
// reads and writes; no login without a user and its password; a process given a login Redis refuses stops at start,
// naming the variables. Runs on the cluster profile only (jest.config.js CLUSTER_SUITES).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { redisOptions } from '../../common/redis.ts';
import { config, createTopics, isolatedRedis, redisLogin, spawnService, waitFor } from '../../harness/stack.ts';

type User = 'detector' | 'worker' | 'console' | 'operator';

const open: Redis[] = [];
/** A connection to the current primary (found through the Sentinels) as `user`, on the test's database. */
function as(user: User, db: number): Redis {
  const r = new Redis({ ...redisOptions({ ...config, ...redisLogin(user), REDIS_DB: db }, `acl-test-${user}`), maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  open.push(r);
  return r;
}

/** The reply of a command, or the first word of the error it was refused with. */
async function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(() => 'OK', (err: Error) => err.message.split(' ')[0]!);
}

describe('Redis logins on the cluster profile', () => {
  let db: number;
  beforeAll(async () => {
    if (config.REDIS_SENTINELS.length === 0) throw new Error('this suite runs on the cluster profile (./dev test --cluster): REDIS_SENTINELS is unset');
    const isolated = await isolatedRedis();
    db = isolated.db;
    isolated.redis.disconnect();
  });
  afterAll(() => {
    for (const r of open) r.disconnect();
  });

  it('when each service logs in as its own user, then it reaches its own keys and is refused every other key and administration', async () => {
    const detector = as('detector', db);
    const worker = as('worker', db);
    const consoleUser = as('console', db);
    const operator = as('operator', db);
    const table: Array<[User, string, Promise<unknown>]> = [
      ['detector', 'writes a counter', detector.incr('fraud:count:sender:ACL1')],
      ['detector', 'appends to the alert stream', detector.xadd('fraud:alerts:stream', '*', 'alert', '{}')],
      ['detector', 'writes a checkpoint', detector.hset('fraud:detector:g:t:0:meta', 'offset', '1')],
      ['detector', 'reads a console user', detector.hgetall('fraud:console:user:ops')],
      ['detector', 'writes an audit entry', detector.xadd('fraud:audit:all', '*', 'entry', '{}')],
      ['detector', 'flushes the database', detector.flushdb()],
      ['worker', 'appends an audit entry', worker.xadd('fraud:audit:all', '*', 'entry', '{}')],
      ['worker', 'records a sent SMS', worker.set('fraud:sms:sent:k1', '{}')],
      ['worker', 'reads a cardholder', worker.hgetall('fraud:cardholder:ACL1')],
      ['worker', 'writes a cardholder', worker.hset('fraud:cardholder:ACL1', 'phone', '+15550000000')],
      ['worker', 'writes a console session', worker.set('fraud:console:session:s1', '{}')],
      ['worker', 'changes the server config', worker.config('SET', 'maxmemory', '1')],
      ['console', 'writes a console user', consoleUser.hset('fraud:console:user:ops', 'role', 'ops')],
      ['console', 'reads the flagged accounts', consoleUser.smembers('fraud:alerts:accounts')],
      ['console', 'flags an account', consoleUser.sadd('fraud:alerts:accounts', 'ACL1')],
      ['console', 'writes an audit entry', consoleUser.xadd('fraud:audit:all', '*', 'entry', '{}')],
      ['operator', 'reads a cardholder', operator.hgetall('fraud:cardholder:ACL1')],
      ['operator', 'writes a cardholder', operator.hset('fraud:cardholder:ACL2', 'phone', '+15550000001')],
      ['operator', 'flushes the database', operator.flushdb()],
      ['operator', 'creates an ACL user', operator.call('ACL', 'SETUSER', 'intruder', 'on', '>pw', '~*', '+@all')],
    ];
    const got = await Promise.all(table.map(async ([user, what, p]) => `${user} ${what}: ${await outcome(p)}`));
    expect(got).toStrictEqual([
      'detector writes a counter: OK',
      'detector appends to the alert stream: OK',
      'detector writes a checkpoint: OK',
      'detector reads a console user: NOPERM',
      'detector writes an audit entry: NOPERM',
      'detector flushes the database: NOPERM',
      'worker appends an audit entry: OK',
      'worker records a sent SMS: OK',
      'worker reads a cardholder: OK',
      'worker writes a cardholder: NOPERM',
      'worker writes a console session: NOPERM',
      'worker changes the server config: NOPERM',
      'console writes a console user: OK',
      'console reads the flagged accounts: OK',
      'console flags an account: NOPERM',
      'console writes an audit entry: NOPERM',
      'operator reads a cardholder: OK',
      'operator writes a cardholder: OK',
      'operator flushes the database: NOPERM',
      'operator creates an ACL user: NOPERM',
    ]);
    // What the refusals were to change is unchanged.
    expect(await operator.sismember('fraud:alerts:accounts', 'ACL1')).toBe(0);
    expect(await operator.exists('fraud:console:session:s1')).toBe(0);
    expect(await operator.hget('fraud:cardholder:ACL1', 'phone')).toBeNull();
    expect(await operator.xlen('fraud:audit:all')).toBe(1); // the worker's entry alone
  });

  it('when a client gives no user, or no password, then the login is refused', async () => {
    const sentinel = new Redis({ ...config.REDIS_SENTINELS[0]!, password: config.REDIS_SENTINEL_PASSWORD, maxRetriesPerRequest: 1 });
    open.push(sentinel);
    const [host, port] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', config.REDIS_MASTER_NAME)) as [string, string];
    // No login at all: commands are refused; AUTH with a password alone is the default user's login, which is off.
    const anonymous = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1, enableReadyCheck: false });
    anonymous.on('error', () => undefined);
    open.push(anonymous);
    expect(await outcome(anonymous.get('fraud:alerts:accounts'))).toBe('NOAUTH');
    expect(await outcome(anonymous.call('AUTH', redisLogin('operator').REDIS_PASSWORD!))).toBe('WRONGPASS');
    expect(await outcome(anonymous.call('AUTH', 'operator', 'not-the-password'))).toBe('WRONGPASS');
    expect(await outcome(anonymous.call('AUTH', 'operator', redisLogin('operator').REDIS_PASSWORD!))).toBe('OK');
  });

  it.each([
    ['a wrong password', { REDIS_PASSWORD: 'not-the-password' }, /Redis refused the login of the user detector \(REDIS_USERNAME\): WRONGPASS.*check REDIS_USERNAME and REDIS_PASSWORD/],
    ['no user', { REDIS_USERNAME: undefined }, /Redis refused the login of the default user \(REDIS_USERNAME is unset\): WRONGPASS/],
    ['a wrong Sentinel password', { REDIS_SENTINEL_PASSWORD: 'not-the-password' }, /the Redis Sentinels \(REDIS_SENTINELS\) refused the login: .*WRONGPASS.*check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD/],
  ])('when the detector is started with %s, then it stops at start (exit 78) naming the variables', async (_what, env, message) => {
    const { topic, dlq } = await createTopics(1);
    const det = await spawnService('detector/main.ts', { PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, REDIS_DB: String(db), ...env }, { portVar: 'DETECTOR_METRICS_PORT' });
    try {
      await waitFor('the detector to exit', async () => det.exited(), 30_000, 100);
      expect({ status: det.exitStatus(), output: det.output() }).toStrictEqual({ status: 'exit 78', output: expect.stringMatching(message) });
    } finally {
      await det.kill();
    }
  });
});
