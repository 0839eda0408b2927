// Who is signed in and what they may do: the user of each request (read from Redis, so a removed user is signed out
// at the next request, and a session its user no longer lists, after a password change, is ended), sign-in behind its
// limits (sign-in-limits.ts) and sign-out, the gate in front of every other page, and the role checks made here, on the
// server, for every request that changes a case (the pages only hide what a role cannot use). Nothing before a
// successful sign-in writes a session.
import { promisify } from 'node:util';
import cookieParser from 'cookie-parser';
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Redis } from 'ioredis';
import type { Server as SocketServer } from 'socket.io';
import type { ConsoleConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { userOf, type Pages } from './requests.ts';
import { createLoginCsrf, SESSION_COOKIE, sessionRoom, type Csrf, type Sessions } from './sessions.ts';
import { attemptedName, BUSY, createSignInLimits, refusalText } from './sign-in-limits.ts';
import { can, type UserStore } from './users.ts';
import { errorPage, loginPage } from './views.ts';

/** Where to go after signing in: only a local path (no scheme, no `//host` or `/\host`); anything else is `/`. */
export const safeNext = (next: unknown) =>
  // No control characters either: browsers drop tabs and newlines from URLs, so `/\t/evil.com` would be `//evil.com`.
  typeof next === 'string' && /^\/(?![/\\])/.test(next) && ![...next].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) ? next : '/';

/**
 * Puts the session's user in res.locals while the user exists and still lists the session. Otherwise the session
 * is deleted from Redis (and left unchanged in memory, so that express-session does not write it back).
 */
export function loadSignedInUser(deps: { log: Logger; users: UserStore; sessions: Sessions }): RequestHandler {
  const { log, users, sessions } = deps;
  return async (req, res, next) => {
    const name = req.session.user;
    if (name) {
      const [user, listed] = await Promise.all([users.get(name), sessions.index.refresh(name, req.sessionID)]);
      if (user && listed) {
        res.locals.user = user;
      } else {
        await sessions.store.destroy(req.sessionID);
        log.info({ user: name, reason: user ? 'no longer listed (password changed)' : 'user removed' }, 'session ended');
      }
    }
    next();
  };
}

/** GET and POST /login. */
export function signInRoutes(deps: { config: ConsoleConfig; redis: Redis; log: Logger; users: UserStore; sessions: Sessions; csrf: Csrf }): Router {
  const { config, redis, log, users, sessions, csrf } = deps;
  const loginCsrf = createLoginCsrf(config);
  const router = express.Router();
  const form = (req: Request, res: Response, status: number, opts: { error?: string; next?: string; username?: string }) =>
    res.status(status).send(loginPage({ csrfToken: loginCsrf.token(req, res) }, opts));
  const formAgain = (req: Request, res: Response, status: number, error: string) => {
    const body = req.body as Record<string, unknown>;
    form(req, res, status, { error, next: safeNext(body.next), username: attemptedName(body) });
  };
  const limits = createSignInLimits({ config, redis, log, refuse: (req, res, refusal) => formAgain(req, res, refusal.status, refusalText(refusal)) });

  router.use('/login', cookieParser());

  router.get('/login', (req, res) => {
    if (userOf(res)) return res.redirect(303, safeNext(req.query.next));
    form(req, res, 200, { next: safeNext(req.query.next) });
  });

  router.post('/login', ...limits.attempts, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const username = attemptedName(body);
    if (!loginCsrf.valid(req)) {
      log.warn({ username, ip: req.ip }, 'sign-in refused: invalid CSRF token');
      return formAgain(req, res, 403, 'The sign-in form expired or did not come from this console. Try again.');
    }
    const password = typeof body.password === 'string' ? body.password : '';
    const verifying = username && password ? limits.verify(() => users.verify(username, password)) : undefined;
    if (verifying === BUSY) return limits.busy(req, res);
    const user = await verifying;
    if (!user) {
      log.warn({ username, ip: req.ip }, 'sign-in failed');
      return formAgain(req, res, 401, 'Wrong user name or password.');
    }
    // A new session id at sign-in (no fixation), with a new CSRF token; listed under its user.
    await promisify(req.session.regenerate.bind(req.session))();
    req.session.user = user.name;
    csrf.generateToken(req, true);
    await promisify(req.session.save.bind(req.session))();
    await sessions.index.add(user.name, req.sessionID);
    loginCsrf.clear(res);
    log.info({ user: user.name, role: user.role, ip: req.ip }, 'signed in');
    res.redirect(303, safeNext(body.next));
  });

  return router;
}

/** The gate: pages redirect to sign-in (coming back afterwards), anything else (forms, fragments) gets a 401. */
export const requireSignIn: RequestHandler = (req, res, next) => {
  if (userOf(res)) return next();
  if (req.method === 'GET' && !req.path.startsWith('/partials/')) return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
  res.status(401).type('text/plain').send('sign in first');
};

export type RequireRole = (permission: keyof typeof can, what: string) => RequestHandler;

/** `requireRole('decide', 'decide reviews')`: a 403 page (and a warning in the log) for a role without the permission. */
export function roleGuard(deps: { log: Logger; pages: Pages }): RequireRole {
  const { log, pages } = deps;
  return (permission, what) => (req, res, next) => {
    const user = userOf(res)!;
    if (can[permission](user.role)) return next();
    log.warn({ user: user.name, role: user.role, path: req.path }, 'refused: role may not do this');
    res.status(403).send(errorPage(pages.page(req, res), 403, `Your role (${user.role}) may not ${what}.`));
  };
}

/** POST /logout: ends the session (and takes it out of its user's list), its sockets and its cookie. */
export function signOutRoutes(deps: { log: Logger; io: SocketServer; sessions: Sessions }): Router {
  const { log, io, sessions } = deps;
  const router = express.Router();
  router.post('/logout', async (req, res) => {
    const sid = req.sessionID;
    const user = userOf(res)!.name;
    await promisify(req.session.destroy.bind(req.session))();
    await sessions.index.remove(user, sid);
    io.in(sessionRoom(sid)).disconnectSockets(true);
    res.clearCookie(SESSION_COOKIE);
    log.info({ user }, 'signed out');
    res.redirect(303, '/login');
  });
  return router;
}
