// Who is signed in and what they may do: the user of each request (read from Redis, so a removed user is signed out
// at the next request), sign-in and sign-out, the gate in front of every other page, and the role checks made here,
// on the server, for every request that changes a case (the pages only hide what a role cannot use).
import { promisify } from 'node:util';
import express, { type RequestHandler, type Router } from 'express';
import type { Server as SocketServer } from 'socket.io';
import type { Logger } from '../common/logger.ts';
import { userOf, type Pages } from './requests.ts';
import { SESSION_COOKIE, sessionRoom, type Csrf } from './sessions.ts';
import { can, type UserStore } from './users.ts';
import { errorPage, loginPage } from './views.ts';

/** Where to go after signing in: only a local path (no scheme, no `//host` or `/\host`); anything else is `/`. */
export const safeNext = (next: unknown) =>
  // No control characters either: browsers drop tabs and newlines from URLs, so `/\t/evil.com` would be `//evil.com`.
  typeof next === 'string' && /^\/(?![/\\])/.test(next) && ![...next].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f) ? next : '/';

/** Puts the session's user (if it still exists) in res.locals; forgets the name of a user removed since. */
export function loadSignedInUser(users: UserStore): RequestHandler {
  return async (req, res, next) => {
    const name = req.session.user;
    if (name) {
      const user = await users.get(name);
      if (user) res.locals.user = user;
      else delete req.session.user; // removed since it signed in
    }
    next();
  };
}

/** GET and POST /login. */
export function signInRoutes(deps: { log: Logger; users: UserStore; csrf: Csrf; pages: Pages }): Router {
  const { log, users, csrf, pages } = deps;
  const router = express.Router();

  router.get('/login', (req, res) => {
    if (userOf(res)) return res.redirect(303, safeNext(req.query.next));
    res.send(loginPage(pages.page(req, res), { next: safeNext(req.query.next) }));
  });

  router.post('/login', csrf.protect, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const user = username && password ? await users.verify(username, password) : undefined;
    if (!user) {
      log.warn({ username, ip: req.ip }, 'sign-in failed');
      return res.status(401).send(loginPage(pages.page(req, res), { error: 'Wrong user name or password.', next: safeNext(body.next), username }));
    }
    // A new session id at sign-in (no fixation), with a new CSRF token.
    await promisify(req.session.regenerate.bind(req.session))();
    req.session.user = user.name;
    csrf.generateToken(req, true);
    await promisify(req.session.save.bind(req.session))();
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

/** POST /logout: ends the session, its sockets and its cookie. */
export function signOutRoutes(deps: { log: Logger; io: SocketServer }): Router {
  const { log, io } = deps;
  const router = express.Router();
  router.post('/logout', async (req, res) => {
    const sid = req.sessionID;
    const user = userOf(res)?.name;
    await promisify(req.session.destroy.bind(req.session))();
    io.in(sessionRoom(sid)).disconnectSockets(true);
    res.clearCookie(SESSION_COOKIE);
    log.info({ user }, 'signed out');
    res.redirect(303, '/login');
  });
  return router;
}
