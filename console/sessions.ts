// Sessions in Redis (express-session + connect-redis): an httpOnly, SameSite=Lax cookie that ends after the idle
// time, Secure behind HTTPS. A session is written only at sign-in (nothing before: an anonymous request writes nothing
// to Redis), and listed under its user (session-index.ts) so that a password change or removal can end it. Forms of
// signed-in pages carry synchronizer CSRF tokens kept in the session (csrf-sync): the `_csrf` field of a urlencoded
// form, or the x-csrf-token header. The sign-in form, which has no session yet, carries a stateless double-submit
// token instead (csrf-csrf): an HMAC keyed from the session secret, in the form and in a SameSite=Strict cookie.
import { createHmac } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import { doubleCsrf } from 'csrf-csrf';
import { csrfSync, type CsrfSynchronisedProtection, type CsrfTokenGenerator } from 'csrf-sync';
import type { Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import type { Redis } from 'ioredis';
import type { ConsoleConfig } from '../common/config.ts';
import { consoleKeys } from '../contracts/redis-keys.ts';
import { SessionIndex } from './session-index.ts';
import type { Flash } from './views.ts';

declare module 'express-session' {
  interface SessionData {
    /** Name of the signed-in user; the user record (role) is read from Redis on every request. */
    user?: string;
    flash?: Flash;
  }
}

export const SESSION_COOKIE = 'fraudwatch.sid';

/** Socket.IO room of the sockets opened by one session (disconnected when it signs out). */
export const sessionRoom = (sid: string) => `session:${sid}`;

export interface Sessions {
  store: RedisStore;
  /** express-session on the store: for the HTTP app and for Socket.IO's handshakes. */
  middleware: RequestHandler;
  /** Each user's session ids. */
  index: SessionIndex;
}

export function createSessions(config: ConsoleConfig, redis: Redis): Sessions {
  const idleMs = config.CONSOLE_SESSION_IDLE_MINUTES * 60_000;
  const store = new RedisStore({ client: redis, prefix: consoleKeys.sessionPrefix, ttl: idleMs / 1000 });
  const middleware = session({
    name: SESSION_COOKIE,
    store,
    secret: config.CONSOLE_SESSION_SECRET,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { httpOnly: true, sameSite: 'lax', secure: config.CONSOLE_HTTPS === 'on', maxAge: idleMs },
  });
  return { store, middleware, index: new SessionIndex(redis, idleMs) };
}

export interface Csrf {
  /** Refuses a request whose token does not match its session's (EBADCSRFTOKEN); GET/HEAD/OPTIONS pass. */
  protect: CsrfSynchronisedProtection;
  /** The session's token (created on first use; `true` makes a new one). */
  generateToken: CsrfTokenGenerator;
}

export function createCsrf(): Csrf {
  const { csrfSynchronisedProtection: protect, generateToken } = csrfSync({
    size: 32,
    getTokenFromRequest: (req) => (req.is('application/x-www-form-urlencoded') ? (req.body as Record<string, string>)?._csrf : req.get('x-csrf-token')),
  });
  return { protect, generateToken };
}

export interface LoginCsrf {
  /** A token for the sign-in form; sets (or keeps) its cookie. */
  token(req: Request, res: Response): string;
  /** The form's token matches its cookie and was made by this console. */
  valid(req: Request): boolean;
  /** After sign-in the session's token takes over. */
  clear(res: Response): void;
}

/** The sign-in form's CSRF protection, without a session (needs cookie-parser on the route). */
export function createLoginCsrf(config: ConsoleConfig): LoginCsrf {
  const secure = config.CONSOLE_HTTPS === 'on';
  // __Host-: only this origin over HTTPS may set it (no cookie tossing from a sibling domain); plain HTTP cannot use it.
  const cookieName = secure ? '__Host-fraudwatch.login-csrf' : 'fraudwatch.login-csrf';
  const cookieOptions = { sameSite: 'strict', path: '/', secure, httpOnly: true } as const;
  // A key of its own, derived from the session secret (which signs session cookies).
  const key = createHmac('sha256', config.CONSOLE_SESSION_SECRET).update('fraudwatch login form csrf').digest('hex');
  const { generateCsrfToken, validateRequest } = doubleCsrf({
    getSecret: () => key,
    // No session yet to bind the token to: the cookie alone carries it.
    getSessionIdentifier: () => 'sign-in',
    cookieName,
    cookieOptions,
    size: 32,
    getCsrfTokenFromRequest: (req) => (req.body as Record<string, unknown> | undefined)?._csrf as string | undefined,
  });
  return {
    token: (req, res) => generateCsrfToken(req, res),
    valid: (req) => validateRequest(req),
    clear: (res) => void res.clearCookie(cookieName, cookieOptions),
  };
}
