// The console's HTTP and Socket.IO server, composed from its parts in the order that matters: headers (helmet) and
// the public routes (health, assets) first; then sessions (sessions.ts) and the signed-in user; sign-in (auth.ts)
// behind its limits (sign-in-limits.ts);
// then the gate that needs a signed-in user and a CSRF token for everything below it: sign-out, the dashboard
// (dashboard.ts), case pages (case-page.ts), decisions and clearing behind roles (case-actions.ts); the 404 and
// error pages last (errors.ts). Live alerts go over Socket.IO (sockets.ts) to signed-in sessions only.
import { createServer, type Server as HttpServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import express, { type Router } from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import type { Server as SocketServer } from 'socket.io';
import { AuditLog } from '../common/audit-log.ts';
import type { ConsoleConfig } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import type { AlertRelay } from './alerts.ts';
import { loadSignedInUser, requireSignIn, roleGuard, signInRoutes, signOutRoutes } from './auth.ts';
import { caseActionRoutes } from './case-actions.ts';
import { casePageRoutes } from './case-page.ts';
import { dashboardRoutes } from './dashboard.ts';
import { errorHandler, notFound } from './errors.ts';
import { pages as pageHelpers } from './requests.ts';
import { createCsrf, createSessions } from './sessions.ts';
import { createLiveAlerts } from './sockets.ts';
import type { UserStore } from './users.ts';

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

const publicDir = fileURLToPath(new URL('./public/', import.meta.url));

/** Content-Security-Policy: everything from this origin only, no framing; HSTS and upgrades behind HTTPS only. */
const securityHeaders = (https: boolean) =>
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
  });

/** GET /healthz (for probes: Redis and the alert subscription) and /static assets: no session, no sign-in. */
function publicRoutes(deps: { redis: Redis; relay: AlertRelay }): Router {
  const { redis, relay } = deps;
  const router = express.Router();
  router.get('/healthz', (_req, res) => {
    const ok = redis.status === 'ready';
    res.status(ok ? 200 : 503).json({ ok, redis: redis.status, alerts: relay.live ? 'subscribed' : 'not subscribed' });
  });
  router.use('/static', express.static(publicDir, { maxAge: '5m', index: false }));
  return router;
}

export function createConsole(deps: ConsoleDeps): ConsoleServer {
  const { config, log, redis, temporal, users } = deps;
  const https = config.CONSOLE_HTTPS === 'on';
  const sessions = createSessions(config, redis);
  const csrf = createCsrf();
  const pages = pageHelpers(csrf.generateToken);
  const requireRole = roleGuard({ log, pages });

  const app = express();
  const http = createServer(app);
  const live = createLiveAlerts(http, { log, redis, subscriber: deps.subscriber, users, sessions, backfillCount: config.CONSOLE_BACKFILL_ALERTS });

  app.disable('x-powered-by');
  if (https) app.set('trust proxy', 1);
  app.use(securityHeaders(https));
  app.use(publicRoutes({ redis, relay: live.relay }));

  app.use(sessions.middleware);
  app.use(express.urlencoded({ extended: false, limit: '16kb' }));
  app.use(loadSignedInUser({ log, users, sessions }));
  app.use(signInRoutes({ config, redis, log, users, sessions, csrf }));

  // ---- everything below needs a signed-in user and, to change anything, the session's CSRF token ---------------
  app.use(requireSignIn);
  app.use(csrf.protect);
  app.use(signOutRoutes({ log, io: live.io, sessions }));
  app.use(dashboardRoutes({ redis, temporal, pages }));
  app.use(casePageRoutes({ config, redis, temporal, audit: new AuditLog(redis), pages }));
  app.use(caseActionRoutes({ log, temporal, pages, requireRole }));

  app.use(notFound(pages));
  app.use(errorHandler({ log, generateToken: csrf.generateToken }));

  live.start();

  return { http, io: live.io, relay: live.relay, close: () => live.close() };
}
