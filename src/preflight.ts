import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import Redis, { Cluster } from 'ioredis';
import { clusterSeeds, type RedisClient } from './infra/redis/redis.module';
import type { AppConfig } from './config/config';

/** A boot failure the operator can fix: main.ts and `npm start` print its message alone (no stack) and exit 1. */
export class BootError extends Error {}

interface Listener {
  port: number;
  host: string;
  proto: 'tcp' | 'udp';
  /** The configuration key and what to do about it, for the message. */
  key: string;
  fix: string;
}

/** The ports this process will listen on at boot (api and all roles): HTTP, and the GB/T 28181 SIP server when enabled. Port 0 (any) is never busy. */
export function bootListeners(config: AppConfig): Listener[] {
  if (config.role === 'worker') return [];
  const out: Listener[] = [];
  if (config.http.port !== 0) out.push({ port: config.http.port, host: config.http.host, proto: 'tcp', key: 'http.port', fix: 'set PORT to a free port' });
  if (config.gb28181.enabled && config.gb28181.port !== 0) {
    const fix = 'set SHOUHU__GB28181__PORT to a free port, or SHOUHU__GB28181__ENABLED=false on every process of this host but one';
    for (const proto of ['udp', 'tcp'] as const) out.push({ port: config.gb28181.port, host: config.gb28181.host, proto, key: 'gb28181.port', fix });
  }
  return out;
}

/** Binds and releases the port: null when it is free, else the bind error (EADDRINUSE, EACCES, EADDRNOTAVAIL…). */
function tryBind(l: Listener): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    if (l.proto === 'tcp') {
      const srv = createServer();
      srv.once('error', (e: NodeJS.ErrnoException) => resolve(e));
      srv.listen({ port: l.port, host: l.host, exclusive: true }, () => srv.close(() => resolve(null)));
      return;
    }
    const sock = createSocket({ type: l.host.includes(':') ? 'udp6' : 'udp4' });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      sock.close();
      resolve(e);
    });
    sock.bind({ port: l.port, address: l.host, exclusive: true }, () => sock.close(() => resolve(null)));
  });
}

export function describeBindError(l: Listener, e: NodeJS.ErrnoException): string {
  const where = `${l.port}/${l.proto} on ${l.host} (${l.key})`;
  if (e.code === 'EADDRINUSE') return `port ${where} is already in use by another process: stop it, or ${l.fix}.`;
  if (e.code === 'EACCES') return `port ${where} may not be opened by this user (ports below 1024 need privileges): ${l.fix}.`;
  if (e.code === 'EADDRNOTAVAIL') return `address ${l.host} of port ${where} is not an address of this machine: set the host key next to ${l.key} (e.g. HOST).`;
  return `port ${where} cannot be opened (${e.code ?? e.message}): ${l.fix}.`;
}

/**
 * Checks, before migrations, seeding or any connection, that every port of bootListeners is free
 * (each bound and released at once). Throws a BootError naming the port, its key and the setting
 * to change. A process taking the port between this check and listen() still fails at listen;
 * bootstrap reports that the same way.
 */
export async function checkPorts(config: AppConfig): Promise<void> {
  const problems: string[] = [];
  for (const l of bootListeners(config)) {
    const e = await tryBind(l);
    if (e) problems.push(describeBindError(l, e));
  }
  if (problems.length) throw new BootError(problems.join('\n'));
}

/** The Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Cluster mode pointed at a Redis that answers but is not a cluster node (cluster_enabled:0) would
 * only warn "Failed to refresh slots cache" for ever: that is a configuration mistake, so boot stops
 * naming the keys. A seed that does not answer is not refused here: as in single mode, the service
 * starts without Redis (checkRedis warns once) and connects when it answers.
 */
async function refuseNonClusterSeeds(config: AppConfig): Promise<void> {
  const seeds = clusterSeeds(config.redis);
  const urls = config.redis.clusterNodes.length ? config.redis.clusterNodes : [config.redis.url];
  for (const [i, node] of seeds.nodes.entries()) {
    const r = new Redis({
      ...seeds.options,
      host: node.host,
      port: node.port,
      lazyConnect: true,
      connectTimeout: config.redis.connectTimeoutMs,
      commandTimeout: config.redis.connectTimeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      connectionName: `shouhu-${config.role}-preflight`,
    });
    r.on('error', () => undefined);
    const info = await r
      .connect()
      .then(() => r.info('cluster'))
      .catch(() => null)
      .finally(() => r.disconnect());
    if (info !== null && /cluster_enabled:0/.test(info))
      throw new BootError(
        `redis.mode is 'cluster' (REDIS_MODE) but ${redactUrl(urls[i])} is not a cluster node (cluster_enabled:0): ` +
          `list the cluster's nodes in redis.clusterNodes (REDIS_CLUSTER_NODES), or set redis.mode to 'single' for one Redis.`,
      );
  }
}

/**
 * Waits until Redis answers PING, trying again every 500 ms for at most `redis.bootTimeoutMs`
 * (a Redis started alongside gets that long). Returns null when it answered, else one line for the
 * log saying where it looked — no ioredis error events or stacks reach the console. Failure
 * direction: the service starts anyway (issue 11: alarms are committed to Postgres during a Redis
 * outage; queued work catches up from the outbox when Redis returns), so the caller only warns.
 */
export async function checkRedis(config: AppConfig): Promise<string | null> {
  if (config.redis.mode === 'cluster') await refuseNonClusterSeeds(config);
  const timeoutMs = config.redis.bootTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const left = Math.max(deadline - Date.now(), 100);
    const options = {
      lazyConnect: true,
      connectTimeout: left,
      commandTimeout: left,
      maxRetriesPerRequest: 0,
      connectionName: `shouhu-${config.role}-preflight`,
    };
    const seeds = config.redis.mode === 'cluster' ? clusterSeeds(config.redis) : null;
    // A cluster answers once its slot map is loaded from a seed (CLUSTER SLOTS) and a node answers PING.
    const r: RedisClient = seeds
      ? new Cluster(seeds.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          clusterRetryStrategy: () => null,
          slotsRefreshTimeout: left,
          redisOptions: { ...seeds.options, ...options },
        })
      : new Redis(config.redis.url, { ...options, retryStrategy: () => null, enableOfflineQueue: false });
    let cause: string | undefined;
    r.on('error', (e: Error) => (cause = e.message)); // said once, by the caller, without ioredis's stack
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return null;
    } catch (e) {
      last = (cause ?? (e as Error).message).replace(/\.+$/, ''); // the socket's error, not "Connection is closed"
      r.disconnect();
    }
    if (Date.now() + 500 >= deadline) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  const where =
    config.redis.mode === 'cluster'
      ? `cluster seeds ${(config.redis.clusterNodes.length ? config.redis.clusterNodes : [config.redis.url]).map(redactUrl).join(', ')} (REDIS_CLUSTER_NODES, redis.clusterNodes)`
      : `${redactUrl(config.redis.url)} (REDIS_URL, redis.url)`;
  return (
    `Redis does not answer at ${where} after ${timeoutMs} ms: ${last}. ` +
    `Starting without it: alarms and logins are taken into Postgres, queued work catches up when Redis answers. ` +
    `Shouhu needs Redis ≥ 6.2 with maxmemory-policy noeviction: start it, or set REDIS_URL.`
  );
}
