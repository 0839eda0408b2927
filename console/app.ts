// The console's HTTP and Socket.IO server: sign-in, the dashboard (live alerts + review queue), case pages with the
// review form and clearing. Sessions live in Redis (express-session + connect-redis), passwords are argon2id hashes
// (@node-rs/argon2), forms carry synchronizer CSRF tokens (csrf-sync), headers come from helmet. Roles are checked
// here, on the server, for every request that changes a case; the pages only hide what a role cannot use.
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { WorkflowNotFoundError } from '@temporalio/common';
import { WorkflowUpdateFailedError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import { RedisStore } from 'connect-redis';
import { csrfSync } from 'csrf-sync';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import session, { type Session, type SessionData } from 'express-session';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import { Server as SocketServer } from 'socket.io';
import { z } from 'zod';
import { AuditLog } from '../common/audit-log.ts';
import { openReviews, type OpenReview } from '../common/cases.ts';
import type { Logger } from '../common/logger.ts';
import { alertKeys, consoleKeys } from '../contracts/redis-keys.ts';
import { DECISIONS, caseStateQuery, caseWorkflowId, clearAccountSignal, completeReviewUpdate } from '../contracts/case.ts';
import { ALERTS_ROOM, AlertRelay, toView } from './alerts.ts';
import type { ConsoleConfig } from '../common/config.ts';
import { can, type User, type UserStore } from './users.ts';
import { caseHref, casePage, dashboardPage, errorPage, loginPage, reviewsTable, type CaseView, type Flash, type PageContext } from './views.ts';

declare module 'express-session' {
  interface SessionData {
    /** Name of the signed-in user; the user record (role) is read from Redis on every request. */
    user?: string;
    flash?: Flash;
  }
}

export interface ConsoleDeps {
  config: ConsoleConfig;
  log: Logger;
  /** Commands: sessions, users, audit trail, alert stream. */
  redis: Redis;
  /** A dedicated pub/sub connection (created with autoResubscribe off). */
  subscriber: Redis;
  temporal: Client;
  users: UserStore;
}

export interface ConsoleServer {
  http: HttpServer;
  io: SocketServer;
  relay: AlertRelay;
  close(): Promise<void>;
}

const SESSION_COOKIE = 'fraudwatch.sid';
const ACCOUNT_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;
/** Deadline of the Temporal reads behind a page (the page shows the error instead of hanging when Temporal is down). */
const TEMPORAL_READ_MS = 5_000;
/** Deadline for a decision to pass the workflow's validator (a busy worker may take a while to pick it up). */
const TEMPORAL_UPDATE_MS = 15_000;
const publicDir = fileURLToPath(new URL('./public/', import.meta.url));

class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const userOf = (res: Response) => res.locals.user as User | undefined;
const sessionRoom = (sid: string) => `session:${sid}`;
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** Only local paths: no scheme, no `//host`. */
const safeNext = (next: unknown) => (typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/');

function accountParam(value: unknown): string {
  if (typeof value !== 'string' || !ACCOUNT_ID.test(value)) throw new HttpError(400, 'not an account id: letters, digits and _ . : @ - only, up to 128');
  return value;
}

export function createConsole(deps: ConsoleDeps): ConsoleServer {
  const { config, log, redis, temporal, users } = deps;
  const audit = new AuditLog(redis);
  const https = config.CONSOLE_HTTPS === 'on';
  const idleMs = config.CONSOLE_SESSION_IDLE_MINUTES * 60_000;

  const store = new RedisStore({ client: redis, prefix: consoleKeys.sessionPrefix, ttl: idleMs / 1000 });
  const sessions = session({
    name: SESSION_COOKIE,
    store,
    secret: config.CONSOLE_SESSION_SECRET,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { httpOnly: true, sameSite: 'lax', secure: https, maxAge: idleMs },
  });
  const { csrfSynchronisedProtection: csrf, generateToken } = csrfSync({
    size: 32,
    getTokenFromRequest: (req) => (req.is('application/x-www-form-urlencoded') ? (req.body as Record<string, string>)?._csrf : req.get('x-csrf-token')),
  });

  const app = express();
  app.disable('x-powered-by');
  if (https) app.set('trust proxy', 1);
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          upgradeInsecureRequests: https ? [] : null,
        },
      },
      strictTransportSecurity: https,
    }),
  );

  const http = createServer(app);
  const io = new SocketServer(http, {
    serveClient: true,
    // Same origin only: a page elsewhere must not open a socket with the user's cookie.
    allowRequest: (req, cb) => cb(null, sameOrigin(req)),
  });
  const relay = new AlertRelay({ subscriber: deps.subscriber, redis, io, log, backfillCount: config.CONSOLE_BACKFILL_ALERTS });

  // ---- public: health, assets ------------------------------------------------------------------------------------
  app.get('/healthz', (_req, res) => {
    const ok = redis.status === 'ready';
    res.status(ok ? 200 : 503).json({ ok, redis: redis.status, alerts: relay.live ? 'subscribed' : 'not subscribed' });
  });
  app.use('/static', express.static(publicDir, { maxAge: '5m', index: false }));

  app.use(sessions);
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.use(async (req, res, next) => {
    const name = req.session.user;
    if (name) {
      const user = await users.get(name);
      if (user) res.locals.user = user;
      else delete req.session.user; // removed since it signed in
    }
    next();
  });

  const page = (req: Request, res: Response): PageContext => {
    const flash = req.session.flash;
    if (flash) delete req.session.flash;
    return { user: userOf(res), csrfToken: generateToken(req), flash };
  };
  const flashAndBack = (req: Request, res: Response, to: string, flash: Flash) => {
    req.session.flash = flash;
    res.redirect(303, to);
  };

  // ---- sign in / out ---------------------------------------------------------------------------------------------
  app.get('/login', (req, res) => {
    if (userOf(res)) return res.redirect(303, safeNext(req.query.next));
    res.send(loginPage(page(req, res), { next: safeNext(req.query.next) }));
  });

  app.post('/login', csrf, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const user = username && password ? await users.verify(username, password) : undefined;
    if (!user) {
      log.warn({ username, ip: req.ip }, 'sign-in failed');
      return res.status(401).send(loginPage(page(req, res), { error: 'Wrong user name or password.', next: safeNext(body.next), username }));
    }
    // A new session id at sign-in (no fixation), with a new CSRF token.
    await promisify(req.session.regenerate.bind(req.session))();
    req.session.user = user.name;
    generateToken(req, true);
    await promisify(req.session.save.bind(req.session))();
    log.info({ user: user.name, role: user.role, ip: req.ip }, 'signed in');
    res.redirect(303, safeNext(body.next));
  });

  // ---- everything below needs a signed-in user ------------------------------------------------------------------
  app.use((req, res, next) => {
    if (userOf(res)) return next();
    if (req.method === 'GET' && !req.path.startsWith('/partials/')) return res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
    res.status(401).type('text/plain').send('sign in first');
  });
  app.use(csrf);

  const requireRole = (permission: keyof typeof can, what: string): RequestHandler => (req, res, next) => {
    const user = userOf(res)!;
    if (can[permission](user.role)) return next();
    log.warn({ user: user.name, role: user.role, path: req.path }, 'refused: role may not do this');
    res.status(403).send(errorPage(page(req, res), 403, `Your role (${user.role}) may not ${what}.`));
  };

  app.post('/logout', async (req, res) => {
    const sid = req.sessionID;
    const user = userOf(res)?.name;
    await promisify(req.session.destroy.bind(req.session))();
    io.in(sessionRoom(sid)).disconnectSockets(true);
    res.clearCookie(SESSION_COOKIE);
    log.info({ user }, 'signed out');
    res.redirect(303, '/login');
  });

  const loadReviews = (): Promise<OpenReview[] | { error: string }> =>
    temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => openReviews(temporal)).catch((err: unknown) => ({ error: errorText(err) }));

  app.get('/', async (req, res) => {
    const [reviews, flagged] = await Promise.all([loadReviews(), redis.scard(alertKeys.accounts).catch(() => undefined)]);
    res.send(dashboardPage(page(req, res), { reviews, flagged }));
  });

  app.get('/partials/reviews', async (_req, res) => {
    res.type('html').send(reviewsTable(await loadReviews()).text);
  });

  app.get('/cases', (req, res) => {
    res.redirect(303, caseHref(accountParam(typeof req.query.account === 'string' ? req.query.account.trim() : undefined)));
  });

  const loadCase = async (accountId: string): Promise<CaseView> => {
    const handle = temporal.workflow.getHandle(caseWorkflowId(accountId));
    const temporalUrl = `${config.TEMPORAL_UI_URL}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(caseWorkflowId(accountId))}`;
    const [trail, latest, described] = await Promise.all([
      audit.forAccount(accountId),
      redis.get(alertKeys.sender(accountId)),
      temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => handle.describe()).then(
        (d) => ({ workflow: { status: d.status.name, runId: d.runId } }),
        (err: unknown) => (err instanceof WorkflowNotFoundError ? {} : { error: errorText(err) }),
      ),
    ]);
    const view: CaseView = { accountId, trail, temporalUrl, latestAlert: latest ? toView(latest) : undefined };
    if ('error' in described) view.stateError = described.error;
    if ('workflow' in described) {
      view.workflow = described.workflow;
      try {
        view.state = await temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => handle.query(caseStateQuery));
      } catch (err) {
        view.stateError = errorText(err);
      }
    }
    return view;
  };

  app.get('/cases/:account', async (req, res) => {
    const view = await loadCase(accountParam(req.params.account));
    if (!view.workflow && !view.stateError && view.trail.length === 0) {
      return res.status(404).send(errorPage(page(req, res), 404, `No case and no audit trail for ${view.accountId}.`));
    }
    res.send(casePage(page(req, res), view));
  });

  const reviewForm = z.object({
    taskId: z.string().min(1).max(200),
    decision: z.enum(DECISIONS, { error: `choose a decision (${DECISIONS.join(' or ')})` }),
    note: z.string().max(500, 'the note is limited to 500 characters').optional().default(''),
  });

  app.post('/cases/:account/review', requireRole('decide', 'decide reviews'), async (req, res) => {
    const accountId = accountParam(req.params.account);
    const user = userOf(res)!;
    const form = reviewForm.safeParse(req.body);
    if (!form.success) return flashAndBack(req, res, caseHref(accountId), { kind: 'error', text: `Not sent: ${form.error.issues.map((i) => i.message).join('; ')}` });
    const request = { taskId: form.data.taskId, decision: form.data.decision, analystId: user.name, note: form.data.note.trim() };
    const handle = temporal.workflow.getHandle(caseWorkflowId(accountId));
    let flash: Flash;
    try {
      // Accepted means the workflow's validator passed; a rejection (unknown or decided task, closed case) throws here.
      const update = await temporal.withDeadline(Date.now() + TEMPORAL_UPDATE_MS, () =>
        handle.startUpdate(completeReviewUpdate, { args: [request], waitForStage: WorkflowUpdateStage.ACCEPTED }),
      );
      try {
        const result = await temporal.withDeadline(Date.now() + 20_000, () => update.result());
        flash = { kind: 'ok', text: `Review ${request.taskId}: ${result.decision} by ${user.name}. The case is now ${result.stage}.` };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) throw err;
        flash = { kind: 'ok', text: `Review ${request.taskId}: ${request.decision} by ${user.name} was accepted and is still being applied (${errorText(err)}). Reload in a moment.` };
      }
      log.info({ user: user.name, accountId, taskId: request.taskId, decision: request.decision }, 'review decided');
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        flash = { kind: 'error', text: `Rejected by the case: ${(err.cause as Error | undefined)?.message ?? err.message}` };
      } else if (err instanceof WorkflowNotFoundError) {
        flash = { kind: 'error', text: `No running case for ${accountId}.` };
      } else {
        log.error({ err: errorText(err), accountId }, 'review update failed');
        flash = { kind: 'error', text: `Could not reach the case: ${errorText(err)}` };
      }
    }
    flashAndBack(req, res, caseHref(accountId), flash);
  });

  const clearForm = z.object({ reason: z.string().trim().min(1, 'give a reason').max(500, 'the reason is limited to 500 characters') });

  app.post('/cases/:account/clear', requireRole('clear', 'clear accounts'), async (req, res) => {
    const accountId = accountParam(req.params.account);
    const user = userOf(res)!;
    const form = clearForm.safeParse(req.body);
    if (!form.success) return flashAndBack(req, res, caseHref(accountId), { kind: 'error', text: `Not sent: ${form.error.issues.map((i) => i.message).join('; ')}` });
    try {
      await temporal.withDeadline(Date.now() + TEMPORAL_UPDATE_MS, () =>
        temporal.workflow.getHandle(caseWorkflowId(accountId)).signal(clearAccountSignal, { by: user.name, reason: form.data.reason }),
      );
      log.info({ user: user.name, accountId, reason: form.data.reason }, 'clearAccount sent');
      flashAndBack(req, res, caseHref(accountId), { kind: 'ok', text: `clearAccount sent by ${user.name}: the case closes once the worker has cleared the account.` });
    } catch (err) {
      const text = err instanceof WorkflowNotFoundError ? `No running case for ${accountId}.` : `Could not reach the case: ${errorText(err)}`;
      flashAndBack(req, res, caseHref(accountId), { kind: 'error', text });
    }
  });

  app.use((req, res) => {
    res.status(404).send(errorPage(page(req, res), 404, 'No such page.'));
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; code?: string; message?: string };
    const status = err instanceof HttpError ? err.status : e.code === 'EBADCSRFTOKEN' ? 403 : typeof e.status === 'number' && e.status < 500 ? e.status : 500;
    const message = e.code === 'EBADCSRFTOKEN' ? 'The form has expired or did not come from this console (invalid CSRF token). Reload the page and try again.'
      : status < 500 ? (e.message ?? 'bad request') : 'Something went wrong; the console log has the details.';
    if (status >= 500) log.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) return;
    const ctx: PageContext = { user: userOf(res), csrfToken: req.session ? generateToken(req) : '' };
    res.status(status).send(errorPage(ctx, status, message));
  });

  // ---- Socket.IO: signed-in users only ----------------------------------------------------------------------------
  type SessionRequest = IncomingMessage & { session?: Session & Partial<SessionData>; sessionID?: string };
  io.engine.use(sessions);
  io.use((socket, next) => {
    const req = socket.request as SessionRequest;
    const name = req.session?.user;
    if (!name || !req.sessionID) return next(new Error('unauthorized: sign in first'));
    users.get(name).then((user) => {
      if (!user) return next(new Error('unauthorized: sign in first'));
      socket.data = { user: user.name, sid: req.sessionID };
      next();
    }, next);
  });
  io.on('connection', (socket) => {
    const { sid } = socket.data as { sid: string };
    void socket.join([ALERTS_ROOM, sessionRoom(sid)]);
    relay.recent().then((alerts) => socket.emit('backfill', alerts), (err: unknown) => log.warn({ err: errorText(err) }, 'backfill failed'));
  });
  // Sockets outlive requests: drop those whose session has ended (expired, signed out elsewhere, user removed).
  const getSession = (sid: string) =>
    new Promise<SessionData | null | undefined>((resolve, reject) => void store.get(sid, (err: unknown, s?: SessionData | null) => (err ? reject(err) : resolve(s))));
  const sweep = setInterval(() => {
    for (const socket of io.of('/').sockets.values()) {
      const { sid, user } = socket.data as { sid: string; user: string };
      void Promise.all([getSession(sid), users.get(user)]).then(
        ([s, u]) => {
          if (!s?.user || !u) socket.disconnect(true);
        },
        () => undefined,
      );
    }
  }, 30_000);
  sweep.unref();

  relay.start();

  return {
    http,
    io,
    relay,
    async close() {
      clearInterval(sweep);
      await new Promise<void>((resolve) => void io.close(() => resolve()));
    },
  };
}

/** A browser's Origin, when it sends one, must be this server. */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
