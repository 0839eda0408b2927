// Console users in Redis: one hash per user (argon2id hash of the password, role, when it was created), plus a set of
// names. Roles decide what a signed-in user may do; the server checks them on every request that changes a case.
// Changing a user's password (add with replace) or removing the user ends every session the user has.
import { hash, verify } from '@node-rs/argon2';
import type { Redis } from 'ioredis';
import { consoleKeys } from '../contracts/redis-keys.ts';
import { endUserSessions } from './session-index.ts';

export const ROLES = ['viewer', 'analyst', 'ops'] as const;
export type Role = (typeof ROLES)[number];

/** viewer: reads everything; analyst: also decides reviews; ops: also clears accounts. */
export const can = {
  decide: (role: Role) => role === 'analyst' || role === 'ops',
  clear: (role: Role) => role === 'ops',
};

export interface User {
  name: string;
  role: Role;
  createdAt: string;
}

export const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 12;

export class UserError extends Error {
  override name = 'UserError';
}

const isRole = (v: unknown): v is Role => typeof v === 'string' && (ROLES as readonly string[]).includes(v);

export class UserStore {
  private readonly redis: Redis;
  /** Verified against when the name is unknown, so that a wrong name costs as much time as a wrong password. */
  private dummyHash: Promise<string> | undefined;

  constructor(redis: Redis) {
    this.redis = redis;
  }

  /** Create a user, or with `replace` change an existing one's password and role and end the user's sessions. */
  async add(name: string, role: Role, password: string, opts: { replace?: boolean } = {}): Promise<User> {
    if (!USERNAME.test(name)) throw new UserError(`invalid user name ${JSON.stringify(name)}: lowercase letters, digits, '.', '_' or '-', up to 64`);
    if (!isRole(role)) throw new UserError(`invalid role ${JSON.stringify(role)}: use one of ${ROLES.join(', ')}`);
    if (password.length < MIN_PASSWORD_LENGTH) throw new UserError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
    const user: User = { name, role, createdAt: new Date().toISOString() };
    const fields = { hash: await hash(password), role, createdAt: user.createdAt };
    const key = consoleKeys.user(name);
    if (opts.replace) {
      await this.redis.multi().hset(key, fields).sadd(consoleKeys.users, name).exec();
      await endUserSessions(this.redis, name);
    } else {
      // HSETNX on the hash field claims the name atomically; the other fields follow.
      if ((await this.redis.hsetnx(key, 'hash', fields.hash)) === 0) throw new UserError(`user ${name} already exists (use --replace to change it)`);
      await this.redis.multi().hset(key, { role, createdAt: user.createdAt }).sadd(consoleKeys.users, name).exec();
    }
    return user;
  }

  async get(name: string): Promise<User | undefined> {
    if (!USERNAME.test(name)) return undefined;
    const h = await this.redis.hgetall(consoleKeys.user(name));
    if (!h.hash || !isRole(h.role)) return undefined;
    return { name, role: h.role, createdAt: h.createdAt ?? '' };
  }

  /** The user if the password is theirs. */
  async verify(name: string, password: string): Promise<User | undefined> {
    const stored = USERNAME.test(name) ? await this.redis.hget(consoleKeys.user(name), 'hash') : null;
    if (!stored) {
      this.dummyHash ??= hash('not a password of anyone');
      await verify(await this.dummyHash, password).catch(() => false);
      return undefined;
    }
    if (!(await verify(stored, password).catch(() => false))) return undefined;
    return this.get(name);
  }

  /** Delete a user and end the user's sessions. */
  async remove(name: string): Promise<boolean> {
    const [[, n] = []] = (await this.redis.multi().del(consoleKeys.user(name)).srem(consoleKeys.users, name).exec()) ?? [];
    await endUserSessions(this.redis, name);
    return n === 1;
  }

  async list(): Promise<User[]> {
    const names = (await this.redis.smembers(consoleKeys.users)).sort();
    const users = await Promise.all(names.map((n) => this.get(n)));
    return users.filter((u): u is User => u !== undefined);
  }
}
