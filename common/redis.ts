import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from './config.ts';

/**
 * A Redis connection that retries forever with capped backoff and queues commands while disconnected, so a Redis
 * restart pauses the caller instead of failing it. `extra` adds or overrides ioredis options (e.g. for a subscriber).
 */
export function createRedis(config: RedisConfig, name: string, extra: RedisOptions = {}): Redis {
  return new Redis({
    host: config.REDIS_HOST,
    port: config.REDIS_PORT,
    password: config.REDIS_PASSWORD,
    db: config.REDIS_DB,
    connectionName: name,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 5000),
    enableAutoPipelining: false,
    ...extra,
  });
}
