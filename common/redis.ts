import { Redis } from 'ioredis';
import type { RedisConfig } from './env.ts';

/**
 * A Redis connection that retries forever with capped backoff and queues commands while disconnected, so a Redis
 * restart pauses the caller instead of failing it.
 */
export function createRedis(config: RedisConfig, name: string): Redis {
  return new Redis({
    host: config.REDIS_HOST,
    port: config.REDIS_PORT,
    password: config.REDIS_PASSWORD,
    db: config.REDIS_DB,
    connectionName: name,
    maxRetriesPerRequest: null,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), 5000),
    enableAutoPipelining: false,
  });
}
