// The console's user store (console/users.ts) on the real Redis of the local stack: users are added, replaced and
// removed; passwords are kept as argon2id hashes and verified; names, roles and password lengths are checked before
// anything is written. Database 14: fixed and high, so that it cannot clash with the suites that count up from 1
// (and the browser suite's 13).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { consoleKeys } from '../../contracts/redis-keys.ts';
import { MIN_PASSWORD_LENGTH, UserError, UserStore, type Role } from '../../console/users.ts';
import { isolatedRedis } from '../../harness/stack.ts';
import { expectWith } from '../support/expect.ts';

let redis: Redis;
let users: UserStore;
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  ({ redis } = await isolatedRedis(14));
  users = new UserStore(redis);
});

beforeEach(async () => {
  await redis.flushdb();
});

afterAll(async () => {
  await redis?.flushdb();
  redis?.disconnect();
});

/** Every key and value in the database, for "nothing was written". */
const everything = async () => (await redis.keys('*')).sort();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function elapsed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

describe('console users on Redis', () => {
  it('when a user is added, then it can be read back with its role and creation time, and Redis holds a hash, not the password', async () => {
    const before = Date.now();
    const added = await users.add('ana', 'analyst', PASSWORD);
    expect(added.name).toBe('ana');
    expect(added.role).toBe('analyst');
    expect(await users.get('ana')).toStrictEqual(added);
    const createdAt = Date.parse(added.createdAt);
    expect(createdAt >= before - 1000 && createdAt <= Date.now()).toBeTruthy();

    const stored = await redis.hgetall(consoleKeys.user('ana'));
    expect(Object.keys(stored).sort()).toStrictEqual(['createdAt', 'hash', 'role']);
    expect(stored.hash!).toMatch(/^\$argon2id\$/);
    expect(Object.values(stored).some((v) => v.includes(PASSWORD))).toBe(false);
    expect(await redis.smembers(consoleKeys.users)).toStrictEqual(['ana']);
  });

  it('when a name is taken, then adding it again fails and the first user keeps its password and role', async () => {
    await users.add('ana', 'analyst', PASSWORD);
    await expect(users.add('ana', 'ops', 'another password 1')).rejects.toThrow(new UserError('user ana already exists (use --replace to change it)'));
    expect((await users.get('ana'))?.role).toBe('analyst');
    expect((await users.verify('ana', PASSWORD))?.name).toBe('ana');
    expect(await users.verify('ana', 'another password 1')).toBeUndefined();
  });

  it('when a user is replaced, then the new password and role hold and the old password no longer does', async () => {
    await users.add('ana', 'viewer', PASSWORD);
    const replaced = await users.add('ana', 'ops', 'a brand new password', { replace: true });
    expect(replaced.role).toBe('ops');
    expect(await users.verify('ana', PASSWORD)).toBeUndefined();
    expect(await users.verify('ana', 'a brand new password')).toStrictEqual(replaced);
    expect(await users.list()).toStrictEqual([replaced]);
  });

  it('when replace names a user that does not exist yet, then it is created', async () => {
    const created = await users.add('new.user', 'viewer', PASSWORD, { replace: true });
    expect(await users.get('new.user')).toStrictEqual(created);
    expect((await users.verify('new.user', PASSWORD))?.role).toBe('viewer');
  });

  it('when the password is right, then verify returns the user; when it is wrong or differs in case or spacing, then nothing', async () => {
    const added = await users.add('ana', 'analyst', PASSWORD);
    expect(await users.verify('ana', PASSWORD)).toStrictEqual(added);
    for (const wrong of ['', 'correct horse batter', 'Correct horse battery', `${PASSWORD} `, ` ${PASSWORD}`, `${PASSWORD}${PASSWORD}`]) {
      expect([wrong, await users.verify('ana', wrong)]).toStrictEqual([wrong, undefined]);
    }
  });

  it('when the name is unknown or not a valid name, then verify returns nothing', async () => {
    await users.add('ana', 'analyst', PASSWORD);
    for (const name of ['bob', 'ANA', 'ana ', '', '../ana', '*', 'fraud:console:user:ana']) {
      expect([name, await users.verify(name, PASSWORD)]).toStrictEqual([name, undefined]);
    }
  });

  it('when the name is unknown, then verifying costs about as much as a wrong password (no shortcut that tells names apart)', async () => {
    await users.add('ana', 'analyst', PASSWORD);
    await users.verify('nobody', PASSWORD); // the first unknown name also computes the stand-in hash
    const wrong: number[] = [];
    const unknown: number[] = [];
    const invalid: number[] = [];
    const lookup: number[] = [];
    for (let i = 0; i < 9; i++) {
      wrong.push(await elapsed(() => users.verify('ana', 'not the password')));
      unknown.push(await elapsed(() => users.verify('nobody', 'not the password')));
      invalid.push(await elapsed(() => users.verify('Not A Name!', 'not the password')));
      lookup.push(await elapsed(() => users.get('nobody')));
    }
    const [w, u, n, l] = [wrong, unknown, invalid, lookup].map(median) as [number, number, number, number];
    const context = `median ms: wrong password ${w.toFixed(1)}, unknown name ${u.toFixed(1)}, invalid name ${n.toFixed(1)}, lookup only ${l.toFixed(1)}`;
    // An argon2id verification is far slower than a Redis lookup; the unknown and invalid names pay for one too.
    expectWith(context, () => expect(w > 3 * l).toBeTruthy());
    expectWith(context, () => expect(u > w / 2).toBeTruthy());
    expectWith(context, () => expect(n > w / 2).toBeTruthy());
  });

  it('when the stored hash is damaged, then verify refuses instead of throwing', async () => {
    await users.add('ana', 'analyst', PASSWORD);
    await redis.hset(consoleKeys.user('ana'), 'hash', 'not an argon2 hash');
    expect(await users.verify('ana', PASSWORD)).toBeUndefined();
  });

  it('when the role is not one of viewer, analyst, ops, then adding fails and nothing is written', async () => {
    for (const role of ['admin', 'root', 'Analyst', '', 'ops ']) {
      await expect(users.add('eve', role as Role, PASSWORD)).rejects.toThrow(UserError);
    }
    expect(await everything()).toStrictEqual([]);
  });

  it('when a role in Redis was changed to one that does not exist, then the user is not found, cannot sign in and is not listed', async () => {
    await users.add('ana', 'analyst', PASSWORD);
    await users.add('bob', 'viewer', PASSWORD);
    await redis.hset(consoleKeys.user('ana'), 'role', 'superuser');
    expect(await users.get('ana')).toBeUndefined();
    expect(await users.verify('ana', PASSWORD)).toBeUndefined();
    expect((await users.list()).map((u) => u.name)).toStrictEqual(['bob']);
  });

  it('when the name follows the rules (lowercase letters, digits, . _ -, starting with a letter or digit, up to 64), then it is accepted', async () => {
    for (const name of ['a', '7', 'ana', 'ana.b_c-1', '0day', 'x'.repeat(64)]) {
      expect((await users.add(name, 'viewer', PASSWORD)).name).toBe(name);
    }
    expect((await users.list()).length).toBe(6);
  });

  it('when the name breaks the rules, then adding fails naming the rules and nothing is written', async () => {
    const bad = ['', 'Ana', 'ANA', '-ana', '.ana', '_ana', 'ana b', ' ana', 'ana/x', '../ana', 'ana:x', 'ana@x', 'anä', 'x'.repeat(65), 'ana\n', '*'];
    for (const name of bad) {
      await expect(users.add(name, 'viewer', PASSWORD)).rejects.toThrow(/^invalid user name .*: lowercase letters, digits, '\.', '_' or '-', up to 64$/);
    }
    expect(await everything()).toStrictEqual([]);
  });

  it(`when the password is shorter than ${MIN_PASSWORD_LENGTH} characters, then adding or replacing fails and nothing changes`, async () => {
    const short = 'x'.repeat(MIN_PASSWORD_LENGTH - 1);
    await expect(users.add('ana', 'analyst', short)).rejects.toThrow(new UserError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`));
    await expect(users.add('ana', 'analyst', '')).rejects.toThrow(UserError);
    expect(await everything()).toStrictEqual([]);

    await users.add('ana', 'analyst', 'y'.repeat(MIN_PASSWORD_LENGTH)); // exactly the minimum is enough
    await expect(users.add('ana', 'ops', short, { replace: true })).rejects.toThrow(UserError);
    expect((await users.verify('ana', 'y'.repeat(MIN_PASSWORD_LENGTH)))?.role).toBe('analyst');
  });

  it('when a user is removed, then it is gone from reads, sign-in and the list, and its name can be taken again', async () => {
    await users.add('ana', 'analyst', PASSWORD);
    await users.add('bob', 'viewer', PASSWORD);
    expect(await users.remove('ana')).toBe(true);
    expect(await users.get('ana')).toBeUndefined();
    expect(await users.verify('ana', PASSWORD)).toBeUndefined();
    expect((await users.list()).map((u) => u.name)).toStrictEqual(['bob']);
    expect(await redis.exists(consoleKeys.user('ana'))).toBe(0);
    expect((await users.add('ana', 'ops', 'the new ana password')).role).toBe('ops');
  });

  it('when the user to remove does not exist, then remove says so and leaves the others alone', async () => {
    await users.add('bob', 'viewer', PASSWORD);
    expect(await users.remove('ana')).toBe(false);
    expect((await users.list()).map((u) => u.name)).toStrictEqual(['bob']);
  });

  it('when users are listed, then they come sorted by name with their roles, and names without a user record are left out', async () => {
    await users.add('zed', 'ops', PASSWORD);
    await users.add('ana', 'analyst', PASSWORD);
    await users.add('mia', 'viewer', PASSWORD);
    await redis.sadd(consoleKeys.users, 'ghost'); // in the set, no hash
    const list = await users.list();
    expect(list.map((u) => [u.name, u.role])).toStrictEqual([['ana', 'analyst'], ['mia', 'viewer'], ['zed', 'ops']]);
    for (const u of list) expect(u).toStrictEqual(await users.get(u.name));
  });

  it('when there are no users, then the list is empty', async () => {
    expect(await users.list()).toStrictEqual([]);
  });
});
