// Socket.IO for signed-in users only: the handshake carries the session cookie (same origin only), each socket joins
// the alerts room and its session's room and gets the recent alerts first; the AlertRelay forwards live alerts from
// Redis to the room. Sockets outlive requests, so a sweep drops those whose session or user has gone, and the sockets
// of sessions ended elsewhere (sign-out, a password change or removal by the CLI: consoleKeys.sessionsEnded) go at once.
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Session, SessionData } from 'express-session';
import type { Redis } from 'ioredis';
import { Server as SocketServer } from 'socket.io';
import type { Logger } from '../common/logger.ts';
import { consoleKeys } from '../contracts/redis-keys.ts';
import { ALERTS_ROOM, AlertRelay } from './alerts.ts';
import { errorText } from './requests.ts';
import { endedSessionIds } from './session-index.ts';
import { sessionRoom, type Sessions } from './sessions.ts';
import type { UserStore } from './users.ts';

/** How often open sockets are checked against their session and user. */
const SWEEP_MS = 30_000;

export interface LiveAlertDeps {
  log: Logger;
  /** Commands: the alert stream (backfill). */
  redis: Redis;
  /** A dedicated pub/sub connection (created with autoResubscribe off). */
  subscriber: Redis;
  users: UserStore;
  sessions: Sessions;
  backfillCount: number;
}

export interface LiveAlerts {
  io: SocketServer;
  relay: AlertRelay;
  /** Subscribe to the alerts and start the sweep. */
  start(): void;
  /** Stop the sweep and close every socket. */
  close(): Promise<void>;
}

type SessionRequest = IncomingMessage & { session?: Session & Partial<SessionData>; sessionID?: string };

export function createLiveAlerts(http: HttpServer, deps: LiveAlertDeps): LiveAlerts {
  const { log, redis, users, sessions } = deps;
  const io = new SocketServer(http, {
    serveClient: true,
    // Same origin only: a page elsewhere must not open a socket with the user's cookie.
    allowRequest: (req, cb) => cb(null, sameOrigin(req)),
  });
  const relay = new AlertRelay({ subscriber: deps.subscriber, redis, io, log, backfillCount: deps.backfillCount });

  io.engine.use(sessions.middleware);
  io.use((socket, next) => {
    const req = socket.request as SessionRequest;
    const name = req.session?.user;
    if (!name || !req.sessionID) return next(new Error('unauthorized: sign in first'));
    Promise.all([users.get(name), sessions.index.listed(name, req.sessionID)]).then(([user, listed]) => {
      if (!user || !listed) return next(new Error('unauthorized: sign in first'));
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
    new Promise<SessionData | null | undefined>((resolve, reject) => void sessions.store.get(sid, (err: unknown, s?: SessionData | null) => (err ? reject(err) : resolve(s))));
  const sweepOnce = () => {
    for (const socket of io.of('/').sockets.values()) {
      const { sid, user } = socket.data as { sid: string; user: string };
      void Promise.all([getSession(sid), users.get(user), sessions.index.listed(user, sid)]).then(
        ([s, u, listed]) => {
          if (!s?.user || !u || !listed) socket.disconnect(true);
        },
        () => undefined,
      );
    }
  };
  let sweep: NodeJS.Timeout | undefined;

  // Sessions ended by another process (or console): their sockets go now, not at the next sweep.
  const subscriber = deps.subscriber;
  const onEnded = (channel: string, message: string) => {
    if (channel !== consoleKeys.sessionsEnded) return;
    for (const sid of endedSessionIds(message)) io.in(sessionRoom(sid)).disconnectSockets(true);
  };
  const subscribeEnded = () =>
    void subscriber.subscribe(consoleKeys.sessionsEnded).catch((err: unknown) => log.warn({ err: errorText(err) }, 'subscribing to ended sessions failed (retrying on reconnect)'));

  return {
    io,
    relay,
    start() {
      sweep = setInterval(sweepOnce, SWEEP_MS);
      sweep.unref();
      relay.start();
      // autoResubscribe is off on this connection: subscribe on every ready.
      subscriber.on('message', onEnded);
      subscriber.on('ready', subscribeEnded);
      if (subscriber.status === 'ready') subscribeEnded();
    },
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
