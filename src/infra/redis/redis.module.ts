import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { RedisConfig } from '../../config/sections';
import { closing, withinMs } from '../lifecycle/shutdown';

export const REDIS = Symbol('REDIS');

/**
 * A Redis connection. `bounded` (the shared command connection, queue producers, the socket.io
 * publisher): every command fails after redis.commandTimeoutMs and is retried at most once over
 * a reconnect, so a caller never waits on a Redis that is down — it gets an error at once and
 * takes its documented failure direction. Unbounded (BullMQ workers' blocking connections,
 * subscribers): commands wait for reconnection, as BullMQ requires; nothing on a request path
 * uses them.
 */
export function createRedis(url: string, name: string, bounded?: Pick<RedisConfig, 'commandTimeoutMs' | 'connectTimeoutMs'>): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: bounded ? 1 : null,
    ...(bounded ? { commandTimeout: bounded.commandTimeoutMs, connectTimeout: bounded.connectTimeoutMs } : {}),
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/** QUIT within `ms`, else drop the connection (a Redis that is down never answers QUIT). */
export async function quitWithin(redis: Redis, ms: number): Promise<void> {
  const r = await withinMs(
    redis.quit().catch(() => 'failed' as const),
    ms,
  );
  if (r !== 'OK') redis.disconnect();
}

/**
 * BullMQ silently loses jobs when Redis may evict keys, so refuse to run on such a Redis.
 * Returns a message describing the problem, or null when the policy is right (or Redis cannot
 * be asked now: the service starts without Redis, so that alarms are taken during an outage).
 */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
  let policy: string | undefined;
  try {
    const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
    policy = res[1];
  } catch {
    // CONFIG may be disabled on managed Redis; INFO still tells.
    const info = await redis.info('memory').catch(() => '');
    policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  }
  if (policy === undefined || policy === 'noeviction') return null;
  return (
    `Redis maxmemory-policy is '${policy}', but BullMQ needs 'noeviction' (otherwise queued alarms can be evicted). ` +
    `Fix: redis-cli CONFIG SET maxmemory-policy noeviction, and set 'maxmemory-policy noeviction' in redis.conf.`
  );
}

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    await closing('redis (command connection)', () => quitWithin(this.redis, this.config.redis.commandTimeoutMs));
  }
}

/**
 * One shared command connection (bounded: see createRedis); keys are namespaced by
 * `redis.keyPrefix` explicitly (see `key`).
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => {
        const redis = createRedis(config.redis.url, `shouhu-${config.role}`, config.redis);
        const logger = new Logger('Redis');
        // One line per outage, not one per reconnect attempt.
        let down = false;
        redis.on('error', (e) => {
          if (!down) logger.warn(`redis: ${e.message}`);
          down = true;
        });
        redis.on('ready', () => {
          if (down) logger.log('redis: connected again');
          down = false;
        });
        return redis;
      },
    },
    RedisCloser,
  ],
  exports: [REDIS],
})
export class RedisModule {}

export function redisKey(config: AppConfig, ...parts: string[]): string {
  return [config.redis.keyPrefix, ...parts].join(':');
}
