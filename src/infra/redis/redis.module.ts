import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { APP_CONFIG, AppConfig } from '../../config/config';

export const REDIS = Symbol('REDIS');

export function createRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null, // BullMQ requires it; commands wait for reconnection rather than fail
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
}

/**
 * BullMQ silently loses jobs when Redis may evict keys, so refuse to run on such a Redis.
 * Returns a message describing the problem, or null when the policy is right.
 */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
  let policy: string | undefined;
  try {
    const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
    policy = res[1];
  } catch {
    // CONFIG may be disabled on managed Redis; INFO still tells.
    const info = await redis.info('memory');
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
  constructor(@Inject(REDIS) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** One shared command connection; keys are namespaced by `redis.keyPrefix` explicitly (see `key`). */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => {
        const redis = createRedis(config.redis.url, `shouhu-${config.role}`);
        redis.on('error', (e) => new Logger('Redis').warn(`redis: ${e.message}`));
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
