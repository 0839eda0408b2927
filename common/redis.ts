import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from './config.ts';

/**
 * Where and as whom to connect, from the Redis variables: one server (REDIS_HOST/REDIS_PORT), or the primary that the
 * Sentinels of REDIS_SENTINELS name for REDIS_MASTER_NAME, asked again on every reconnect and told of a failover as
 * it happens (failoverDetector), so a promoted replica takes over without a restart. The one definition every
 * connection of the platform, its tests and its benchmarks is built from.
 */
export function redisOptions(config: RedisConfig, name: string): RedisOptions {
  const login: RedisOptions = {
    ...(config.REDIS_USERNAME ? { username: config.REDIS_USERNAME } : {}),
    ...(config.REDIS_PASSWORD ? { password: config.REDIS_PASSWORD } : {}),
    db: config.REDIS_DB,
    connectionName: name,
  };
  if (config.REDIS_SENTINELS.length === 0) return { ...login, host: config.REDIS_HOST, port: config.REDIS_PORT };
  return {
    ...login,
    sentinels: config.REDIS_SENTINELS,
    name: config.REDIS_MASTER_NAME,
    role: 'master',
    failoverDetector: true,
    ...(config.REDIS_SENTINEL_USERNAME ? { sentinelUsername: config.REDIS_SENTINEL_USERNAME } : {}),
    ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
    // Each round asks every Sentinel once; a round that finds none answering ends in retryStrategy's backoff.
    sentinelRetryStrategy: (attempt) => (attempt > 3 ? null : 100 * attempt),
  };
}

/**
 * A Redis connection that retries forever with capped backoff and queues commands while disconnected, so a Redis
 * restart or failover pauses the caller instead of failing it. `extra` adds or overrides ioredis options (e.g. for a
 * subscriber).
 */
export function createRedis(config: RedisConfig, name: string, extra: RedisOptions = {}): Redis {
  return new Redis({
    ...redisOptions(config, name),
    maxRetriesPerRequest: null,
    // Behind Sentinels a failover takes a few seconds: try again soon enough to find the promoted replica at once.
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 6), config.REDIS_SENTINELS.length > 0 ? 1000 : 5000),
    enableAutoPipelining: false,
    ...extra,
  });
}

/** Replies that say the login itself is wrong (user, password, or the Sentinels' password): no retry mends them. */
const LOGIN_REFUSED = /^(WRONGPASS|NOAUTH)\b/;
/** ioredis's words when every Sentinel refused (or could not be reached), with the last reply. */
const SENTINELS_REFUSED = /^All sentinels are unreachable\..*Last error: (WRONGPASS|NOAUTH)\b/;

/**
 * A process's settings name a login Redis refuses: stop at once, naming the variables (EX_CONFIG, as a bad setting),
 * instead of retrying a password that will never work. Only before the connection was first ready: a refusal later
 * (an ACL changed under a running process) is logged by the caller's error handler and retried.
 */
export function exitOnRefusedLogin(redis: Redis, processName: string, config: RedisConfig): void {
  const onError = (err: Error) => {
    if (SENTINELS_REFUSED.test(err.message)) {
      process.stderr.write(`${processName}: the Redis Sentinels (REDIS_SENTINELS) refused the login: ${err.message} (check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD)\n`);
      process.exit(78);
    }
    if (!LOGIN_REFUSED.test(err.message)) return;
    const who = config.REDIS_USERNAME ? `the user ${config.REDIS_USERNAME} (REDIS_USERNAME)` : 'the default user (REDIS_USERNAME is unset)';
    process.stderr.write(`${processName}: Redis refused the login of ${who}: ${err.message} (check REDIS_USERNAME and REDIS_PASSWORD)\n`);
    process.exit(78);
  };
  redis.on('error', onError);
  redis.once('ready', () => redis.off('error', onError));
}
