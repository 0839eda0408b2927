// Redis memory as the detector and the worker watch it. Redis runs with `maxmemory-policy noeviction` (stack/redis.sh):
// once `used_memory` reaches `maxmemory` it refuses every write, and the platform stalls until memory is freed or
// the limit raised (the detector retries its writes, the worker's activities retry). So both processes poll
// INFO memory, export it as gauges, and warn ahead of that point: a `warnings` entry in /healthz (which stays 200)
// and one log line each time the usage crosses REDIS_MEMORY_WARN_RATIO of the limit (and one when it falls back).
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from './logger.ts';
import { every, type Periodic } from './periodic.ts';

export interface RedisMemory {
  /** `used_memory`: what Redis holds now. */
  usedBytes: number;
  /** `maxmemory`: the limit, 0 for none. */
  maxBytes: number;
  /** `maxmemory_policy`, e.g. noeviction. */
  policy?: string;
}

/** The memory figures of an `INFO memory` reply; throws when it has no `used_memory`. */
export function parseInfoMemory(info: string): RedisMemory {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const num = (name: string) => {
    const v = fields.get(name);
    if (v === undefined || !/^\d+$/.test(v)) return undefined;
    return Number(v);
  };
  const usedBytes = num('used_memory');
  if (usedBytes === undefined) throw new Error('INFO memory has no used_memory');
  const policy = fields.get('maxmemory_policy');
  return { usedBytes, maxBytes: num('maxmemory') ?? 0, ...(policy ? { policy } : {}) };
}

/** Used over max, or undefined without a limit. */
export const memoryUsage = (m: RedisMemory): number | undefined => (m.maxBytes > 0 ? m.usedBytes / m.maxBytes : undefined);

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** The /healthz warning for this reading, or undefined below `ratio` of the limit (or without a limit). */
export function memoryWarning(m: RedisMemory, ratio: number): string | undefined {
  const usage = memoryUsage(m);
  if (usage === undefined || usage < ratio) return undefined;
  const then = m.policy === 'noeviction' || m.policy === undefined
    ? 'Redis refuses writes when it is full (maxmemory-policy noeviction)'
    : `Redis evicts keys when it is full (maxmemory-policy ${m.policy})`;
  return `redis memory at ${Math.floor(usage * 100)}% of maxmemory (${mb(m.usedBytes)} of ${mb(m.maxBytes)}, warning from ${Math.round(ratio * 100)}%): ${then}; free memory or raise maxmemory`;
}

/** Whether a reading is above the line, and whether it just crossed it (up or down) from the previous state. */
export function memoryTransition(wasHigh: boolean, m: RedisMemory, ratio: number): { high: boolean; crossed?: 'up' | 'down' } {
  const high = memoryWarning(m, ratio) !== undefined;
  if (high === wasHigh) return { high };
  return { high, crossed: high ? 'up' : 'down' };
}

export interface RedisMemoryWatchOptions {
  redis: Redis;
  log: Logger;
  /** Registry the gauges go into (the process's /metrics). */
  registry: Registry;
  /** Warn from this share of maxmemory (0 < ratio < 1). */
  ratio: number;
  /** How often INFO memory is read. */
  intervalMs: number;
}

/** Polls INFO memory: gauges redis_memory_used_bytes and redis_memory_max_bytes, and the warning for /healthz. */
export class RedisMemoryWatch {
  readonly used: Gauge;
  readonly max: Gauge;
  private last: RedisMemory | undefined;
  private high = false;
  private poller: Periodic | undefined;
  private readonly opts: RedisMemoryWatchOptions;

  constructor(opts: RedisMemoryWatchOptions) {
    this.opts = opts;
    this.used = new Gauge({ name: 'redis_memory_used_bytes', help: 'Redis used_memory (INFO memory), polled', registers: [opts.registry] });
    this.max = new Gauge({ name: 'redis_memory_max_bytes', help: 'Redis maxmemory (INFO memory), 0 = no limit', registers: [opts.registry] });
  }

  /** The latest reading (undefined until the first poll succeeds). */
  get reading(): RedisMemory | undefined {
    return this.last;
  }

  /** /healthz warnings: one while the latest reading is at or above the ratio. */
  warnings(): string[] {
    const w = this.last && memoryWarning(this.last, this.opts.ratio);
    return w ? [w] : [];
  }

  /** Read INFO memory once; a failure (Redis away) keeps the last reading and is retried on the next round. */
  async check(): Promise<void> {
    let m: RedisMemory;
    try {
      // Not queued while disconnected: a poll must not pile up behind an outage.
      if (this.opts.redis.status !== 'ready') return;
      m = parseInfoMemory(await this.opts.redis.info('memory'));
    } catch (err) {
      this.opts.log.debug({ err }, 'redis INFO memory failed (retrying on the next round)');
      return;
    }
    this.last = m;
    this.used.set(m.usedBytes);
    this.max.set(m.maxBytes);
    const t = memoryTransition(this.high, m, this.opts.ratio);
    this.high = t.high;
    const fields = { usedBytes: m.usedBytes, maxBytes: m.maxBytes, policy: m.policy, warnRatio: this.opts.ratio };
    if (t.crossed === 'up') this.opts.log.warn(fields, memoryWarning(m, this.opts.ratio));
    else if (t.crossed === 'down') this.opts.log.info(fields, `redis memory back below ${Math.round(this.opts.ratio * 100)}% of maxmemory`);
  }

  start(): void {
    this.poller ??= every(this.opts.intervalMs, () => this.check());
  }

  stop(): void {
    this.poller?.stop();
    this.poller = undefined;
  }
}
