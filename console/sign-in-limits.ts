// Sign-in throttling, in front of the argon2id verification. Failed attempts are counted in Redis (express-rate-limit
// with rate-limit-redis, so every console instance shares the counts) per client IP and per user name tried, each
// over CONSOLE_SIGNIN_WINDOW from its first failure; a successful sign-in does not count. Past either limit POST /login
// gets 429 with Retry-After. Behind both, at most CONSOLE_SIGNIN_CONCURRENCY verifications run at once (p-limit),
// with up to CONSOLE_SIGNIN_QUEUE waiting; past that a sign-in is refused at once (503), so that a flood queues or is
// refused instead of keeping every core on argon2.
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import pLimit from 'p-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { ConsoleConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { consoleKeys } from '../contracts/redis-keys.ts';
import { USERNAME } from './users.ts';

/** The user name a sign-in form tried, as sign-in reads it. */
export const attemptedName = (body: unknown): string => {
  const v = (body as Record<string, unknown> | undefined)?.username;
  return typeof v === 'string' ? v.trim().toLowerCase() : '';
};

/** The per-user counter of a name: the name itself, or one shared counter for whatever cannot be a user name. */
export const userLimitKey = (name: string) => (USERNAME.test(name) ? name : '!invalid');

/** Whole seconds until `resetTime` (at least 1), or the window when the store did not say. */
export const retryAfterSeconds = (resetTime: Date | undefined, now: number, windowMs: number) =>
  Math.max(1, Math.ceil(((resetTime ? resetTime.getTime() : now + windowMs) - now) / 1000));

/** "45 seconds", "1 minute", "15 minutes": for the page. */
export function waitText(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

export const BUSY = Symbol('too many verifications in progress');

/** At most `concurrency` verifications at once and `queue` waiting; past that `run` returns BUSY without running `fn`. */
export function verificationGate(concurrency: number, queue: number) {
  const limit = pLimit(concurrency);
  return {
    run<T>(fn: () => Promise<T>): Promise<T> | typeof BUSY {
      return limit.activeCount + limit.pendingCount >= concurrency + queue ? BUSY : limit(fn);
    },
    get active() {
      return limit.activeCount;
    },
    get waiting() {
      return limit.pendingCount;
    },
  };
}

/** Why a sign-in was refused before its password was checked. */
export type Refusal = { status: 429 | 503; retryAfterSeconds: number; by: 'ip' | 'user' | 'busy' };

/** What the sign-in page says to a refused attempt. */
export const refusalText = (r: Refusal) =>
  r.status === 503
    ? `The console is busy checking other sign-ins. Try again in ${waitText(r.retryAfterSeconds)}.`
    : `Too many failed sign-ins. Try again in ${waitText(r.retryAfterSeconds)}.`;

export interface SignInLimits {
  /** POST /login middleware: the per-IP then the per-user counter. */
  attempts: RequestHandler[];
  /** The verification, or BUSY. */
  verify<T>(fn: () => Promise<T>): Promise<T> | typeof BUSY;
  /** Answers a sign-in that `verify` refused: 503 with Retry-After, logged. */
  busy(req: Request, res: Response): void;
}

/** When the gate is full: come back in a few seconds. */
const BUSY_RETRY_SECONDS = 5;

export function createSignInLimits(deps: {
  config: ConsoleConfig;
  redis: Redis;
  log: Logger;
  /** Answers a refused attempt (the sign-in page with `refusal`'s status); Retry-After is set already. */
  refuse: (req: Request, res: Response, refusal: Refusal) => void;
}): SignInLimits {
  const { config, redis, log, refuse } = deps;
  const windowMs = config.CONSOLE_SIGNIN_WINDOW;
  const limiter = (by: 'ip' | 'user', limit: number, prefix: string, keyGenerator: (req: Request) => string) => {
    const property = `signInLimit_${by}`;
    return rateLimit({
      windowMs,
      limit,
      // Failures only: an attempt is counted when it comes in and taken back when it signs in.
      skipSuccessfulRequests: true,
      keyGenerator,
      requestPropertyName: property,
      standardHeaders: false,
      legacyHeaders: false,
      store: new RedisStore({ prefix, sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply> }),
      handler: (req, res) => {
        const info = (req as unknown as Record<string, { resetTime?: Date } | undefined>)[property];
        const retry = retryAfterSeconds(info?.resetTime, Date.now(), windowMs);
        log.warn({ by, ip: req.ip, username: attemptedName(req.body), retryAfterSeconds: retry }, 'sign-in refused: too many failed attempts');
        res.set('Retry-After', String(retry));
        refuse(req, res, { status: 429, retryAfterSeconds: retry, by });
      },
    });
  };
  const gate = verificationGate(config.CONSOLE_SIGNIN_CONCURRENCY, config.CONSOLE_SIGNIN_QUEUE);
  return {
    attempts: [
      limiter('ip', config.CONSOLE_SIGNIN_MAX_PER_IP, consoleKeys.signInByIp, (req) => ipKeyGenerator(req.ip ?? '')),
      limiter('user', config.CONSOLE_SIGNIN_MAX_PER_USER, consoleKeys.signInByUser, (req) => userLimitKey(attemptedName(req.body))),
    ],
    verify: (fn) => gate.run(fn),
    busy(req, res) {
      log.warn({ ip: req.ip, username: attemptedName(req.body), active: gate.active, waiting: gate.waiting }, 'sign-in refused: too many sign-ins in progress');
      res.set('Retry-After', String(BUSY_RETRY_SECONDS));
      refuse(req, res, { status: 503, retryAfterSeconds: BUSY_RETRY_SECONDS, by: 'busy' });
    },
  };
}
