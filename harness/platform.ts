// The platform as tests and benchmarks start it: a detector + worker pair (and, if asked, the console) as child
// processes on their own Kafka topic pair, Redis database and Temporal task queue, next to whatever else uses the
// local stack.
import { config, createTopics, startService, uniqueId, withAdmin, type RunningProcess } from './stack.ts';

/** Twilio's spec mock of the local stack (stack/twilio-mock.sh). */
export const twilioMockUrl = `http://127.0.0.1:${config.TWILIO_MOCK_PORT}`;

/** Credentials of the shape the twilio library checks; only a mock ever sees them. */
const mockTwilioAccount = {
  TWILIO_ACCOUNT_SID: 'AC0123456789abcdef0123456789abcdef',
  TWILIO_AUTH_TOKEN: 'local-mock-token',
  TWILIO_FROM_NUMBER: '+15005550006',
};

export interface PlatformOptions {
  /** Redis database of every process; the caller picks (and flushes) it, e.g. with isolatedRedis(). */
  redisDb: number;
  /** Partitions of the payments topic (default 3). */
  partitions?: number;
  /** Prefix of the unique task queue name (default 'cases-'). */
  taskQueuePrefix?: string;
  /** Start the worker with the platform (default); false: the caller does, with `worker.start()`. */
  startWorker?: boolean;
  /** More environment for the detector, e.g. { CHECKPOINT_INTERVAL_MS: '200' }. */
  detectorEnv?: Record<string, string>;
  /** More environment for the worker. */
  workerEnv?: Record<string, string>;
  /** Send the worker's SMS through the Twilio API at `apiBase` (default: the spec mock) with mock credentials. */
  twilio?: { apiBase?: string };
  /** Start the console too, signing its sessions with `sessionSecret`. */
  console?: { sessionSecret: string };
}

/** One service of the platform: the process currently running it, and how to start, stop and restart it. */
export interface Service {
  /** The last process started (it may have exited since). */
  readonly current: RunningProcess | undefined;
  readonly running: boolean;
  /** Start a process and wait until it is healthy; `port` reuses an address (default: a free port). */
  start(opts?: { port?: number }): Promise<RunningProcess>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** SIGKILL, then start again on the same port (a crash and a restart). */
  restart(): Promise<RunningProcess>;
}

export interface Platform {
  topic: string;
  dlq: string;
  taskQueue: string;
  redisDb: number;
  worker: Service;
  detector: Service;
  /** Only when the options asked for a console. */
  console: Service | undefined;
  /** Every process started, in order, restarts included (for their output). */
  processes: RunningProcess[];
  /** End every process (SIGKILL; `graceful`: SIGTERM and wait), then delete the topic pair if asked. */
  stop(opts?: { graceful?: boolean; deleteTopics?: boolean }): Promise<void>;
}

export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const { topic, dlq } = await createTopics(opts.partitions ?? 3);
  const taskQueue = uniqueId(opts.taskQueuePrefix ?? 'cases-');
  const common = { REDIS_DB: String(opts.redisDb), TEMPORAL_TASK_QUEUE: taskQueue, LOG_LEVEL: 'warn' };
  const processes: RunningProcess[] = [];
  const service = (entry: string, env: Record<string, string>, spawnOpts: { portVar: string; healthTimeoutMs?: number }): Service => {
    let current: RunningProcess | undefined;
    const svc: Service = {
      get current() {
        return current;
      },
      get running() {
        return current !== undefined && !current.exited();
      },
      async start({ port } = {}) {
        if (svc.running) throw new Error(`${entry} is already running (pid ${current!.pid})`);
        current = await startService(entry, env, { ...spawnOpts, port });
        processes.push(current);
        return current;
      },
      async stop() {
        await current?.stop();
      },
      async kill() {
        await current?.kill();
      },
      async restart() {
        const port = current?.port;
        await current?.kill();
        return svc.start({ port });
      },
    };
    return svc;
  };

  const twilio = opts.twilio ? { ...mockTwilioAccount, TWILIO_API_BASE: opts.twilio.apiBase ?? twilioMockUrl } : {};
  const platform: Platform = {
    topic,
    dlq,
    taskQueue,
    redisDb: opts.redisDb,
    worker: service('workers/main.ts', { ...common, ...twilio, ...opts.workerEnv }, { portVar: 'WORKER_HEALTH_PORT', healthTimeoutMs: 90_000 }),
    detector: service(
      'detector/main.ts',
      { ...common, PAYMENTS_TOPIC: topic, DLQ_TOPIC: dlq, DETECTOR_GROUP_ID: uniqueId('g-'), ...opts.detectorEnv },
      { portVar: 'DETECTOR_METRICS_PORT' },
    ),
    console: opts.console
      ? service('console/main.ts', { REDIS_DB: common.REDIS_DB, CONSOLE_SESSION_SECRET: opts.console.sessionSecret, LOG_LEVEL: 'warn' }, { portVar: 'CONSOLE_PORT' })
      : undefined,
    processes,
    async stop({ graceful = false, deleteTopics = false } = {}) {
      for (const p of processes) await (graceful ? p.stop() : p.kill()).catch(() => undefined);
      if (deleteTopics) await withAdmin((a) => a.deleteTopics({ topics: [topic, dlq] })).catch(() => undefined);
    },
  };
  try {
    if (opts.startWorker ?? true) await platform.worker.start();
    await platform.detector.start();
    await platform.console?.start();
  } catch (err) {
    await platform.stop({ deleteTopics: true });
    throw err;
  }
  return platform;
}
