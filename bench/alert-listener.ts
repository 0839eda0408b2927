// Alerts published on Redis, received on a worker thread (alert-listener-worker.ts) and timestamped there.
import { Worker } from 'node:worker_threads';
import type { RedisOptions } from 'ioredis';
import { log } from './lib.ts';

/** An alert publication; `at` is absolute (performance.timeOrigin + performance.now() on the receiving thread), ms. */
export type AlertHandler = (channel: string, message: string, at: number) => void;

type FromWorker = { kind: 'alert'; channel: string; message: string; at: number } | { kind: 'done'; id: number; error?: string } | { kind: 'error'; message: string };

export class AlertListener {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private handler: AlertHandler | null = null;
  private nextId = 0;

  constructor(options: RedisOptions) {
    this.worker = new Worker(new URL('./alert-listener-worker.ts', import.meta.url), { workerData: options });
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => {
      if (m.kind === 'alert') this.handler?.(m.channel, m.message, m.at);
      else if (m.kind === 'error') log(`alert listener: ${m.message}`);
      else {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(`alert listener: ${m.error}`));
        else p?.resolve();
      }
    });
    this.worker.on('error', (err) => log(`alert listener thread failed: ${err.message}`));
  }

  private call(op: 'connect' | 'psubscribe' | 'punsubscribe' | 'quit', pattern?: string): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, pattern });
    });
  }

  connect(): Promise<void> {
    return this.call('connect');
  }

  /** Deliver publications on channels matching `pattern` to `handler` until `stop()`. */
  async listen(pattern: string, handler: AlertHandler): Promise<{ stop: () => Promise<void> }> {
    this.handler = handler;
    await this.call('psubscribe', pattern);
    return {
      stop: async () => {
        await this.call('punsubscribe', pattern);
        this.handler = null;
      },
    };
  }

  async close(): Promise<void> {
    await this.call('quit').catch(() => undefined);
    await this.worker.terminate();
  }
}

/** A main-thread performance.now() reading on the listener's absolute scale. */
export const absolute = (t: number): number => performance.timeOrigin + t;
