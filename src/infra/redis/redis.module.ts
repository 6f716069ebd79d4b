import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis, { Cluster, type Command, type RedisOptions } from 'ioredis';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { RedisConfig } from '../../config/sections';
import { closing, withinMs } from '../lifecycle/shutdown';

export const REDIS = Symbol('REDIS');

/** A connection to one Redis or to a Redis Cluster (redis.mode); both speak the same commands. */
export type RedisClient = Redis | Cluster;

/**
 * The seed nodes of a cluster (redis.clusterNodes, else redis.url) and the options every node
 * connection shares (user, password, TLS: from the first seed's URL).
 */
export function clusterSeeds(cfg: Pick<RedisConfig, 'url' | 'clusterNodes'>): { nodes: { host: string; port: number }[]; options: RedisOptions } {
  const urls = (cfg.clusterNodes.length ? cfg.clusterNodes : [cfg.url]).map((u) => new URL(u));
  const first = urls[0];
  return {
    nodes: urls.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) })),
    options: {
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
}

/**
 * A Redis connection (redis.mode: one Redis at redis.url, or a Redis Cluster), with one policy in
 * both modes. `bounded` (the shared command connection, queue producers, the socket.io publisher):
 * every command fails after redis.commandTimeoutMs and is retried at most once over a reconnect,
 * so a caller never waits on a Redis that is down — it gets an error at once and takes its
 * documented failure direction. Unbounded (BullMQ workers' blocking connections, subscribers):
 * commands wait for reconnection, as BullMQ requires; nothing on a request path uses them.
 * In cluster mode the same timeouts apply to each node's connection; a node that fails over is
 * found again through the cluster's slot map (MOVED, slots refresh), reconnecting as in single mode.
 * `shardedSubscribers`: a subscriber that uses SSUBSCRIBE (the sharded socket.io adapter) gets one
 * connection per master, as sharded pub/sub requires.
 */
export function createRedis(
  cfg: Pick<RedisConfig, 'mode' | 'url' | 'clusterNodes'>,
  name: string,
  bounded?: Pick<RedisConfig, 'commandTimeoutMs' | 'connectTimeoutMs'>,
  opts: { shardedSubscribers?: boolean } = {},
): RedisClient {
  const common: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: bounded ? 1 : null,
    ...(bounded ? { commandTimeout: bounded.commandTimeoutMs, connectTimeout: bounded.connectTimeoutMs } : {}),
    enableReadyCheck: true,
  };
  const retry = (times: number) => Math.min(times * 200, 2000);
  if (cfg.mode !== 'cluster') return guarded(new Redis(cfg.url, { ...common, retryStrategy: retry }));
  const seeds = clusterSeeds(cfg);
  const cluster = new Cluster(seeds.nodes, {
    redisOptions: { ...seeds.options, ...common },
    clusterRetryStrategy: retry,
    enableReadyCheck: true,
    shardedSubscribers: !!opts.shardedSubscribers,
    ...(bounded
      ? {
          slotsRefreshTimeout: bounded.connectTimeoutMs,
          // A slot whose master is down (no replica to take over) answers "Connection is closed", then
          // CLUSTERDOWN once the others see it fail: by default each is retried every 100 ms up to 16
          // times, each try waiting for the node's commandTimeout — seconds per command while the
          // caller (a press, holding a database connection) waits. Bounded: fail at once, as a
          // single Redis that is down does; MOVED/ASK (a resharding, a failover done) still follow.
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          retryDelayOnTryAgain: 0,
          maxRedirections: 4,
        }
      : {}),
  });
  return guarded(cluster, bounded?.commandTimeoutMs);
}

/**
 * Every command of `client`, and of every `.duplicate()` of it (BullMQ duplicates its connection for
 * each worker's blocking reads), is given a handler for its failure, so that one whose promise nobody
 * awaits (inside BullMQ, the socket.io adapter's SSUBSCRIBE of a new room, ioredis's own resubscribe)
 * cannot end the process with an unhandled rejection when Redis or one cluster master goes away —
 * the crash "Too many Cluster redirections. Last error: Connection is closed". A caller that awaits
 * the command still gets its error. A duplicate also gets an 'error' listener (an EventEmitter
 * 'error' with none throws); whoever uses it adds its own to report.
 * `deadlineMs` (bounded cluster clients): one deadline for all of a command's tries, set before it
 * is queued or sent to any node — the cluster's own offline queue (no slot map yet) has no commandTimeout.
 */
function guarded<T extends RedisClient>(client: T, deadlineMs?: number): T {
  const target = client as unknown as { sendCommand: (command: Command, ...rest: unknown[]) => unknown; duplicate: (...a: unknown[]) => RedisClient };
  const send = target.sendCommand.bind(client);
  target.sendCommand = (command, ...rest) => {
    if (deadlineMs !== undefined) command.setTimeout(deadlineMs);
    command.promise.catch(() => undefined);
    return send(command, ...rest);
  };
  const duplicate = target.duplicate.bind(client);
  target.duplicate = (...a) => {
    const d = duplicate(...a);
    d.on('error', () => undefined);
    return guarded(d); // no deadline: a duplicate runs blocking reads
  };
  return client;
}

/**
 * Every master of `redis` answers and takes a write within `ms`: one entry per master (`node`:
 * host:port), so a cluster with one master down says which (a PING through the Cluster goes to any
 * one node and answers PONG while a third of the slots has no master). Each master gets a PING,
 * then a SET of a probe key of its own slots (`<keyPrefix>:{<keyPrefix>:probe:N}:write`, expiring):
 * a Redis that answers PING but refuses writes — maxmemory reached under noeviction (OOM), a failed
 * snapshot with stop-writes-on-bgsave-error (MISCONF), a replica after a failover (READONLY) —
 * takes no job, and counted as up it held escalations back (attack pass 4: 50 s late while
 * readiness said ok). A master whose connection ended fails at once; one not connected yet (the
 * pool opens node connections lazily: a replica just promoted) is connected by its PING.
 * A cluster whose slot map names a master without a live connection (killed, failed over) is asked
 * to reload the map from a node that answers: after a replica's promotion the next call sees the new
 * master instead of failing on the dead one until some command happens to be redirected (MOVED) —
 * readiness and the producers' probe, which send no such command, stayed 503 / down for ~10 s after
 * a 2 s failover.
 */
export async function pingMasters(redis: RedisClient, ms: number, keyPrefix: string): Promise<{ node: string; ok: boolean; error?: string }[]> {
  const probe = async (n: Redis, key: string) => {
    const r = await withinMs(
      (async () => {
        const pong = await n.ping();
        return pong === 'PONG' ? n.set(key, '1', 'PX', Math.max(60_000, ms * 10)) : pong;
      })().catch((e: Error) => e),
      ms,
    );
    return r === 'OK' ? { ok: true } : { ok: false, error: r === 'timeout' ? 'timeout' : r instanceof Error ? r.message : String(r) };
  };
  const keyFor = (n: number) => `${keyPrefix}:{${keyPrefix}:probe:${n}}:write`;
  if (redis instanceof Cluster) {
    // The masters of the slot map: a master whose connection ended is dropped from redis.nodes(), not from the map.
    const pool = (redis as unknown as { connectionPool: { getInstanceByKey(key: string): Redis | undefined } }).connectionPool;
    const keys = [...new Set(redis.slots.map((s) => s?.[0]).filter((k): k is string => !!k))].sort();
    const gone = (n: Redis | undefined): boolean => !n || n.status === 'end' || n.status === 'close';
    if (redis.status === 'ready' && keys.some((k) => gone(pool.getInstanceByKey(k)))) redis.refreshSlotsCache(() => undefined);
    return Promise.all(
      keys.map(async (node) => {
        const n = pool.getInstanceByKey(node);
        if (!n || gone(n)) return { node, ok: false, error: `connection ${n?.status ?? 'closed'}` };
        // A probe key of this master's slots (a master holds a third of them or so: found in a few tries).
        let i = 0;
        while (i < 10_000 && redis.slots[keySlot(keyFor(i))]?.[0] !== node) i++;
        return { node, ...(await probe(n, keyFor(i))) };
      }),
    );
  }
  return Promise.all(masters(redis).map(async (n) => ({ node: `${n.options.host}:${n.options.port}`, ...(await probe(n, keyFor(0))) })));
}

/**
 * A key whose Redis Cluster slot is chosen by `tag` alone (a hash tag: only the part in braces is
 * hashed): `<prefix>:{<prefix>:<tag>}:<rest…>`, still under redis.keyPrefix. Every key that one
 * multi-key command, Lua script or pipeline touches must carry the same tag (a cluster refuses
 * others with CROSSSLOT; ioredis refuses a pipeline spanning nodes). Same layout in single mode.
 */
export function taggedKey(config: AppConfig, tag: string, ...rest: string[]): string {
  const p = config.redis.keyPrefix;
  return [p, `{${p}:${tag}}`, ...rest].join(':');
}

/** CRC16/XMODEM, as Redis Cluster hashes keys. */
function crc16(s: Buffer): number {
  let crc = 0;
  for (const byte of s) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key (0–16383): CRC16 of its hash tag (first non-empty {…}) or of the whole key. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  return crc16(Buffer.from(hashed)) % 16384;
}

/** Every master of a cluster, or the one Redis (commands that must reach each node: CONFIG, INFO, SCAN). */
export function masters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** QUIT within `ms`, else drop the connection (a Redis that is down never answers QUIT). */
export async function quitWithin(redis: RedisClient, ms: number): Promise<void> {
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
export async function checkEvictionPolicy(redis: RedisClient): Promise<string | null> {
  // In a cluster, every master holds queues: each must keep its keys.
  for (const node of masters(redis)) {
    let policy: string | undefined;
    try {
      const res = (await node.config('GET', 'maxmemory-policy')) as string[];
      policy = res[1];
    } catch {
      // CONFIG may be disabled on managed Redis; INFO still tells.
      const info = await node.info('memory').catch(() => '');
      policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
    }
    if (policy === undefined || policy === 'noeviction') continue;
    const where = redis instanceof Cluster ? ` on cluster node ${node.options.host}:${node.options.port}` : '';
    return (
      `Redis maxmemory-policy is '${policy}'${where}, but BullMQ needs 'noeviction' (otherwise queued alarms can be evicted). ` +
      `Fix: redis-cli CONFIG SET maxmemory-policy noeviction, and set 'maxmemory-policy noeviction' in redis.conf.`
    );
  }
  return null;
}

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
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
        const redis = createRedis(config.redis, `shouhu-${config.role}`, config.redis);
        const logger = new Logger('Redis');
        // One line per outage and kind of error, not one per reconnect attempt: a connection that stays down after
        // Redis is back (seen once under heavy CI load, 'max retries per request' for 150 s) then says why (a ready
        // check timing out, a refused connection) and for how long.
        let downSince: number | null = null;
        const said = new Set<string>();
        redis.on('error', (e) => {
          downSince ??= Date.now();
          const kind = e.message.replace(/\d+/g, 'N');
          if (said.size < 5 && !said.has(kind)) {
            said.add(kind);
            logger.warn(`redis: ${e.message}${said.size > 1 ? ` (down ${Math.round((Date.now() - downSince) / 1000)} s)` : ''}`);
          }
        });
        redis.on('ready', () => {
          if (downSince !== null) logger.log(`redis: connected again after ${((Date.now() - downSince) / 1000).toFixed(1)} s`);
          downSince = null;
          said.clear();
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
