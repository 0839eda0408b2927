// Sessions in Redis (express-session + connect-redis): an httpOnly, SameSite=Lax cookie that ends after the idle
// time, Secure behind HTTPS. Forms carry synchronizer CSRF tokens kept in the session (csrf-sync): the `_csrf` field
// of a urlencoded form, or the x-csrf-token header.
import { RedisStore } from 'connect-redis';
import { csrfSync, type CsrfSynchronisedProtection, type CsrfTokenGenerator } from 'csrf-sync';
import type { RequestHandler } from 'express';
import session from 'express-session';
import type { Redis } from 'ioredis';
import type { ConsoleConfig } from '../common/config.ts';
import { consoleKeys } from '../contracts/redis-keys.ts';
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
  return { store, middleware };
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
