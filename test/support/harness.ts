import { INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { Client } from 'pg';
import request from 'supertest';
import { bootstrap } from '../../src/bootstrap';
import { AppConfig, loadConfig } from '../../src/config/config';
import { UsersService } from '../../src/modules/auth/users.service';
import type { UserRole } from '../../src/infra/access/roles';
import { ADMIN_DB_URL, databaseUrl, RUN_ENV, TEMPLATE_ENV } from './test-databases';

export { ADMIN_DB_URL };
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
export const PASSWORD = 'correct-horse-battery';

/**
 * A database of its own for one test file: empty, or with `migrated` a copy of the run's migrated
 * template (test-databases.js; without a global setup, empty and migrated by the app at boot).
 */
export async function createDatabase(opts: { migrated?: boolean } = {}): Promise<{ url: string; name: string }> {
  const name = `shouhu_t_${process.env[RUN_ENV] ?? process.pid}_${randomBytes(4).toString('hex')}`;
  const template = opts.migrated ? process.env[TEMPLATE_ENV] : undefined;
  const c = new Client({ connectionString: ADMIN_DB_URL });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  await c.end();
  return { url: databaseUrl(name), name };
}

export async function dropDatabase(name: string): Promise<void> {
  const c = new Client({ connectionString: ADMIN_DB_URL });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
}

/** The end of a file's database: with a global setup, dropped with the run's others when the run ends (test-databases.js). */
export async function releaseDatabase(name: string): Promise<void> {
  if (!process.env[RUN_ENV]) await dropDatabase(name);
}

/**
 * TEST_REDIS_CLUSTER_NODES (comma-separated redis:// seeds, e.g. of `node scripts/redis-cluster.js
 * 7101 7102 7103`) runs every service a test starts in cluster mode against that Redis Cluster.
 */
export const TEST_REDIS_CLUSTER_NODES = (process.env.TEST_REDIS_CLUSTER_NODES ?? '').split(',').filter(Boolean);

/** The redis section of a test's config: its prefix, on the test Redis or cluster. */
export function testRedis(keyPrefix: string, clusterNodes = TEST_REDIS_CLUSTER_NODES): Record<string, unknown> {
  return clusterNodes.length ? { mode: 'cluster', clusterNodes, url: clusterNodes[0], keyPrefix } : { url: TEST_REDIS_URL, keyPrefix };
}

/**
 * A connection for the tests' own Redis housekeeping that never retries: a node that is down (a
 * master a test killed) fails its command at once with "Connection is closed" or ECONNREFUSED, instead
 * of ioredis's default of 20 reconnects per command, ending in MaxRetriesPerRequestError (20) some
 * 11 s later — with an 'error' event on each try that, without a listener, ioredis prints as
 * "[ioredis] Unhandled error event". Connect with `connect()`; end with `disconnect()`.
 */
export function oneShotRedis(url: string): Redis {
  const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 5000 });
  r.on('error', () => undefined); // the command that failed says why
  return r;
}

/**
 * Deletes a prefix's keys: on the one Redis, or on every master of the cluster `clusterNodes` belongs
 * to (the slot map read from the first seed that answers: a SCAN sees one node's keys, and the
 * masters are not always the seeds — after a failover a seed may be a dead master or a replica).
 * A node that does not answer is skipped: its keys went with it.
 */
export async function deleteRedisPrefix(prefix: string, clusterNodes = TEST_REDIS_CLUSTER_NODES): Promise<void> {
  let urls = clusterNodes.length ? clusterNodes : [TEST_REDIS_URL];
  if (clusterNodes.length) urls = await clusterMasters(clusterNodes);
  for (const url of urls) {
    const r = oneShotRedis(url);
    try {
      await r.connect();
    } catch {
      r.disconnect();
      continue;
    }
    try {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        // One key per DEL (pipelined): on a cluster node, keys of several slots in one DEL are refused (CROSSSLOT).
        if (keys.length) await keys.reduce((p, k) => p.del(k), r.pipeline()).exec();
        cursor = next;
      } while (cursor !== '0');
    } finally {
      r.disconnect();
    }
  }
}

/** The masters (redis:// URLs) of a cluster's slot map, from the first seed that answers; the seeds themselves when none does. */
async function clusterMasters(seeds: string[]): Promise<string[]> {
  for (const seed of seeds) {
    const r = oneShotRedis(seed);
    try {
      await r.connect();
      const ranges = await r.cluster('SLOTS');
      const auth = new URL(seed);
      const creds = auth.username ? `${auth.username}:${auth.password}@` : '';
      return [...new Set(ranges.map(([, , [host, port]]) => `${auth.protocol}//${creds}${host}:${port}`))];
    } catch {
      /* the next seed */
    } finally {
      r.disconnect();
    }
  }
  return seeds;
}

export function testConfig(dbUrl: string, overrides: Record<string, unknown> = {}): AppConfig {
  const prefix = `shouhu-test-${randomBytes(4).toString('hex')}`;
  return loadConfig(
    { ...process.env, NODE_ENV: 'test' },
    deepMerge(
      {
        role: 'all',
        database: { url: dbUrl, poolSize: 5, jobsPoolSize: 5 },
        redis: testRedis(prefix),
        http: { port: 0, host: '127.0.0.1' },
      },
      overrides,
    ),
  );
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object'
        ? deepMerge(out[k] as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  http: () => ReturnType<typeof request>;
  baseUrl: string;
  db: Client;
  /** Creates a user with PASSWORD and returns an access token for it. */
  userToken: (role: UserRole, schoolId?: string, username?: string, displayName?: string) => Promise<{ token: string; userId: string; username: string }>;
  close: () => Promise<void>;
}

/**
 * Boots the real service (all roles) on a fresh migrated database and Redis prefix. `appDbUrl` changes the
 * address the service uses for its database (e.g. through a TCP proxy that a test cuts); the
 * test's own client (`db`) connects directly.
 */
export async function startApp(overrides: Record<string, unknown> = {}, opts: { appDbUrl?: (url: string) => string } = {}): Promise<TestApp> {
  const { url, name } = await createDatabase({ migrated: true });
  const config = testConfig(opts.appDbUrl ? opts.appDbUrl(url) : url, overrides);
  const app = (await bootstrap(config)) as INestApplication;
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const db = new Client({ connectionString: url });
  await db.connect();
  let n = 0;
  const t: TestApp = {
    app,
    config,
    baseUrl,
    db,
    http: () => request(app.getHttpServer()),
    userToken: async (role, schoolId, username, displayName) => {
      const uname = username ?? `${role.replace('_', '')}${++n}`;
      const user = await app.get(UsersService).create({ username: uname, password: PASSWORD, role, schoolId, displayName });
      const res = await request(app.getHttpServer()).post('/api/v1/auth/login').send({ username: uname, password: PASSWORD });
      if (res.status !== 200) throw new Error(`login failed for ${uname}: ${res.status} ${JSON.stringify(res.body)}`);
      return { token: res.body.accessToken, userId: user.id, username: uname };
    },
    close: async () => {
      await db.end();
      await app.close();
      await releaseDatabase(name);
      await deleteRedisPrefix(config.redis.keyPrefix, config.redis.mode === 'cluster' ? config.redis.clusterNodes : []);
    },
  };
  return t;
}

export const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A minimal district: one district, zone, group and two schools (A and B). */
export async function seedMinimal(t: TestApp, adminToken: string) {
  const h = auth(adminToken);
  const district = (await t.http().post('/api/v1/districts').set(h).send({ code: 'd1', name: '测试区' }).expect(201)).body;
  const zone = (await t.http().post('/api/v1/zones').set(h).send({ districtId: district.id, code: 'Z1', name: '一学区', level: 'primary' }).expect(201)).body;
  const group = (await t.http().post('/api/v1/groups').set(h).send({ districtId: district.id, code: 'G1', name: '一集团' }).expect(201)).body;
  const school = (code: string, name: string) =>
    t
      .http()
      .post('/api/v1/schools')
      .set(h)
      .send({
        districtId: district.id,
        zoneId: zone.id,
        groupId: group.id,
        code,
        name,
        type: 'primary',
        studentCount: 800,
        staffCount: 60,
        timetable: TIMETABLE,
      })
      .expect(201)
      .then((r) => r.body);
  const schoolA = await school('SA', '甲小学');
  const schoolB = await school('SB', '乙小学');
  return { district, zone, group, schoolA, schoolB };
}

export const TIMETABLE = {
  weekdays: [1, 2, 3, 4, 5],
  arrival: { start: '07:30', end: '08:10' },
  dismissal: { start: '16:30', end: '17:10' },
  schoolHours: { start: '07:30', end: '17:30' },
};
