// Redis's slowest commands and latency events during each phase: SLOWLOG and LATENCY, reset before the phase and read
// after it. Both are server-wide (every database and client of the shared Redis, not only the detector's); the
// benchmark's own connection is left out of the figures. The thresholds are lowered for the run and the values read
// with CONFIG GET before the first phase are put back in cleanup.
import type { Redis } from 'ioredis';
import { log } from './lib.ts';

/** Commands from 1 ms on are logged (µs; Redis's default is 10 ms), up to 1024 of them, and latency events from 5 ms on (ms). */
const SETTINGS = { 'slowlog-log-slower-than': '1000', 'slowlog-max-len': '1024', 'latency-monitor-threshold': '5' } as const;
const TOP = 10;

export interface RedisSlowEntry {
  /** Unix time (s) at which the command ran. */
  at: number;
  durationUs: number;
  /** Command name, e.g. EVALSHA. */
  command: string;
  /** Its first arguments, truncated (for EVALSHA: the script's sha1 and key count). */
  args: string;
  client: string;
}

export interface RedisLatencyEvent {
  event: string;
  maxMs: number;
  /** Spikes of this event during the phase. */
  count: number;
}

export interface RedisPhaseStats {
  /** Commands of 1 ms or more during the phase (not counting the benchmark's own). */
  slowCommands: number;
  /** SLOWLOG held its maximum of entries: more commands were slow than counted. */
  slowCommandsCapped: boolean;
  /** The slowest of them, slowest first. */
  slowest: RedisSlowEntry[];
  /** LATENCY LATEST / HISTORY: server-side stalls (fork, AOF fsync, expiry cycles, slow commands) of 5 ms or more. */
  latency: RedisLatencyEvent[];
}

export class RedisWatch {
  private readonly redis: Redis;
  private saved: Record<string, string> | null = null;
  private failed = false;
  /** addr of the benchmark's own connection (its FLUSHDB, checkpoint reads, ... are not the detector's). */
  private ownAddr = '';

  constructor(redis: Redis) {
    this.redis = redis;
  }

  /** Lower the thresholds (remembering the old values the first time) and reset SLOWLOG and LATENCY. */
  async begin(): Promise<void> {
    if (this.failed) return;
    try {
      if (!this.saved) {
        const saved: Record<string, string> = {};
        for (const key of Object.keys(SETTINGS)) {
          const [, value] = (await this.redis.config('GET', key)) as string[];
          if (value !== undefined) saved[key] = value;
        }
        this.saved = saved;
        this.ownAddr = /addr=(\S+)/.exec(String(await this.redis.client('INFO')))?.[1] ?? '';
      }
      for (const [key, value] of Object.entries(SETTINGS)) await this.redis.config('SET', key, value);
      await this.redis.slowlog('RESET');
      await this.redis.call('LATENCY', 'RESET');
    } catch (err) {
      this.failed = true;
      log(`redis slowlog/latency monitoring off: ${(err as Error).message}`);
    }
  }

  /** What SLOWLOG and LATENCY recorded since begin(); null when monitoring is off. */
  async end(): Promise<RedisPhaseStats | null> {
    if (this.failed) return null;
    try {
      const entries = (await this.redis.slowlog('GET', -1)) as Array<[number, number, number, string[], string?, string?]>;
      const all = entries
        .filter(([, , , , addr]) => addr !== this.ownAddr)
        .map(([, at, us, args, addr]) => ({
          at: Number(at),
          durationUs: Number(us),
          command: String(args[0] ?? '?').toUpperCase(),
          args: args.slice(1, 3).map((a) => String(a).slice(0, 60)).join(' '),
          client: String(addr ?? ''),
        }))
        .sort((a, b) => b.durationUs - a.durationUs);
      const latest = (await this.redis.call('LATENCY', 'LATEST')) as Array<[string, number, number, number]>;
      const latency: RedisLatencyEvent[] = [];
      for (const [event, , , maxMs] of latest) {
        const history = (await this.redis.call('LATENCY', 'HISTORY', event)) as unknown[];
        latency.push({ event, maxMs: Number(maxMs), count: history.length });
      }
      return { slowCommands: all.length, slowCommandsCapped: entries.length >= Number(SETTINGS['slowlog-max-len']), slowest: all.slice(0, TOP), latency };
    } catch (err) {
      log(`redis slowlog/latency: ${(err as Error).message}`);
      return null;
    }
  }

  /** Put back the settings read before the first phase. */
  async restore(): Promise<void> {
    if (!this.saved) return;
    for (const [key, value] of Object.entries(this.saved)) await this.redis.config('SET', key, value).catch((e: Error) => log(`could not restore redis ${key}=${value}: ${e.message}`));
    this.saved = null;
  }
}
