// Which sessions each console user has: a sorted set per user (consoleKeys.userSessions) of session ids, each scored
// by when it expires. Sign-in lists the new id; every request of a signed-in session checks that its id is still
// listed and moves its expiry on, as the session's own TTL moves; sign-out takes it out; a password change or the
// user's removal (endUserSessions) deletes every listed session and the set. A session whose id is not listed counts
// as ended, so one written back by a request that was in flight while its user's sessions were ended signs no one in.
// Bounded: expired ids are trimmed at each sign-in, and the set expires soon after its last session.
// No Express here: the user store (and so the CLI) ends sessions with it too.
import type { Redis } from 'ioredis';
import { consoleKeys } from '../contracts/redis-keys.ts';

/** A request refreshes its entry here when it starts and the session's TTL when it ends: this much slack between them. */
const SLACK_MS = 60_000;

async function exec(m: ReturnType<Redis['multi']>): Promise<unknown[]> {
  const replies = (await m.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
  return replies.map(([, value]) => value);
}

export class SessionIndex {
  private readonly redis: Redis;
  private readonly idleMs: number;

  constructor(redis: Redis, idleMs: number) {
    this.redis = redis;
    this.idleMs = idleMs;
  }

  /** At sign-in: list the new session under its user. */
  async add(user: string, sid: string): Promise<void> {
    const key = consoleKeys.userSessions(user);
    const now = Date.now();
    await exec(this.redis.multi().zremrangebyscore(key, '-inf', now - SLACK_MS).zadd(key, now + this.idleMs, sid).pexpire(key, this.idleMs + SLACK_MS));
  }

  /** On each request of a signed-in session: is it still listed (not ended)? If so its entry lives another idle period. */
  async refresh(user: string, sid: string): Promise<boolean> {
    const key = consoleKeys.userSessions(user);
    const now = Date.now();
    const [score] = await exec(this.redis.multi().zscore(key, sid).zadd(key, 'XX', now + this.idleMs, sid).pexpire(key, this.idleMs + SLACK_MS));
    return score !== null && Number(score) > now - SLACK_MS;
  }

  /** For sockets, which outlive requests: is the session still listed? */
  async listed(user: string, sid: string): Promise<boolean> {
    const score = await this.redis.zscore(consoleKeys.userSessions(user), sid);
    return score !== null && Number(score) > Date.now() - SLACK_MS;
  }

  /** At sign-out: take the session out, and tell every console to drop its sockets. */
  async remove(user: string, sid: string): Promise<void> {
    await this.redis.zrem(consoleKeys.userSessions(user), sid);
    await this.redis.publish(consoleKeys.sessionsEnded, JSON.stringify([sid]));
  }
}

/**
 * End every session of `user` (password changed, user removed): their session keys and the index go, and the consoles
 * are told to drop the sockets of those sessions. Returns how many sessions were listed.
 */
export async function endUserSessions(redis: Redis, user: string): Promise<number> {
  const key = consoleKeys.userSessions(user);
  const sids = await redis.zrange(key, 0, -1);
  const m = redis.multi();
  if (sids.length > 0) m.del(...sids.map((sid) => consoleKeys.sessionPrefix + sid));
  await exec(m.del(key));
  if (sids.length > 0) await redis.publish(consoleKeys.sessionsEnded, JSON.stringify(sids));
  return sids.length;
}

/** The session ids of a sessions-ended message, or none when it is not one. */
export function endedSessionIds(message: string): string[] {
  try {
    const v: unknown = JSON.parse(message);
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}
