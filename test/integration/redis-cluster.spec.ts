import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { bootstrap } from '../../src/bootstrap';
import { QueueService } from '../../src/infra/queue/queue.service';
import { QueueName } from '../../src/infra/queue/queue.catalogue';
import { ConsoleGateway } from '../../src/modules/console/console.gateway';
import { DeviceHealthService, shardKeys } from '../../src/modules/device-health/device-health.service';
import { TestConsole } from '../support/console-client';
import { createButton, press } from '../support/devices';
import { auth, PASSWORD, seedMinimal, startApp, TestApp, testConfig, testRedis } from '../support/harness';
import { waitFor } from '../support/police-receiver';

const { startRedisCluster } = require('../../scripts/redis-cluster.js') as {
  startRedisCluster: (ports: number[]) => Promise<{ urls: string[]; stop: () => Promise<void> }>;
};

/** The cluster's own ports (bus: +10000); TEST_REDIS_CLUSTER_PORTS=a,b,c to move them. */
const PORTS = (process.env.TEST_REDIS_CLUSTER_PORTS ?? '7101,7102,7103').split(',').map(Number);

/**
 * Redis Cluster (issue 17 §6): a three-master cluster of Debian's redis-server, started here, and the
 * service in cluster mode on it — process A (role all) and process B (role api) sharing it:
 * an alarm press on A reaches a console on B, B's console is seen from A through the sharded
 * socket.io adapter (SPUBLISH/SSUBSCRIBE), the escalation timer (a delayed BullMQ job) fires, the
 * scheduled liveness sweep marks a silent device offline at its deadline, a logged-out token is
 * refused. Then every key the run wrote is checked: under the prefix, each queue's keys in one slot,
 * each liveness shard's pair in one slot and the shards spread over the masters — and no node
 * refused a command with CROSSSLOT.
 */
describe('redis cluster (three masters)', () => {
  jest.setTimeout(120_000);
  let cluster: { urls: string[]; stop: () => Promise<void> };
  let t: TestApp;
  let b: INestApplication | undefined;
  let urlB: string;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const consoles: TestConsole[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(PORTS);
    t = await startApp({
      redis: testRedis('shouhu-cluster-test', cluster.urls), // fixed: the slots of its tags (asserted below) are known
      // The button's P1 escalates half a second after the press (the timer is a delayed job).
      alarms: { escalationSeconds: { P1: [0.5, 600], P2: [600], P3: [600], P4: [600] }, outbox: { pollMs: 100, redispatchAfterMs: 2000, batchSize: 100 } },
      // A device is offline 2 s after its last heartbeat; the sweep is a job scheduler every 200 ms.
      liveness: { intervalSeconds: 1, missedBeforeOffline: 2, sweepEveryMs: 200, bootGraceSeconds: 60, shards: 16 },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    const configB = testConfig(t.config.database.url, { role: 'api', redis: testRedis(t.config.redis.keyPrefix, cluster.urls), console: { pollMs: 200 } });
    b = (await bootstrap(configB, { migrate: false })) as INestApplication;
    urlB = `http://127.0.0.1:${(b.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const c of consoles) c.close();
    await b?.close();
    await t?.close();
    await cluster?.stop();
  });

  it('runs in cluster mode on three masters', async () => {
    expect(t.config.redis.mode).toBe('cluster');
    await t.http().get('/health/ready').expect(200);
    const r = new Redis(cluster.urls[0]);
    const nodes = (await r.cluster('NODES')) as string;
    await r.quit();
    expect(nodes.split('\n').filter((l) => l.includes('master')).length).toBe(3);
  });

  it('delivers a press on A to a console on B, sees B’s console from A through the sharded adapter, and fires the escalation timer', async () => {
    const op = await t.userToken('operator');
    const onB = await new TestConsole(urlB, op.token).ready();
    consoles.push(onB);
    // fetchSockets from A asks every api process over sharded pub/sub (SHARDNUMSUB counts them, SPUBLISH asks).
    const gatewayA = t.app.get(ConsoleGateway);
    const seen = await gatewayA.server.fetchSockets();
    expect(seen.map((s) => s.id)).toContain(onB.socket.id);

    const button = await createButton(t, admin, { schoolId: seed.schoolA.id, code: 'CL-BTN-1' });
    const res = await press(t.baseUrl, button, 'cluster-press-1');
    expect(res.status).toBe(201);
    const incidentId = ((await res.json()) as { id: string }).id;
    await onB.until(() => onB.events.some((e) => e.type === 'incident.raised' && e.payload.incidentId === incidentId), 'the press on the console of B');
    await waitFor(
      async () => (await t.db.query(`SELECT escalation_level AS l FROM incidents WHERE id = $1`, [incidentId])).rows[0].l === 1,
      20_000,
      'the escalation timer (a delayed job on the cluster)',
    );
    await onB.until(() => onB.events.some((e) => e.type === 'incident.escalated' && e.payload.incidentId === incidentId), 'the escalation on the console of B');
  });

  it('marks a silent device offline at its deadline through the scheduled sweep', async () => {
    const cam = (
      await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: seed.schoolA.id, deviceId: '50011300001320000101', channelId: '50011300001310000101', name: '集群', areaKind: 'perimeter' })
        .expect(201)
    ).body;
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'camera', subjectId: cam.id }).expect(201)).body;
    await t.app.get(DeviceHealthService).refreshIndex({ seed: true });
    await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.authorization).expect(200);
    const status = async () => (await t.db.query(`SELECT status FROM cameras WHERE id = $1`, [cam.id])).rows[0].status as string;
    await waitFor(async () => (await status()) === 'online', 10_000, 'online after its heartbeat');
    const [{ at: onlineAt }] = (await t.db.query(`SELECT at FROM device_transitions WHERE device_id = $1 AND to_status = 'online'`, [cam.id])).rows;
    await waitFor(async () => (await status()) === 'offline', 20_000, 'offline after 2 s of silence');
    const [{ at: offlineAt }] = (await t.db.query(`SELECT at FROM device_transitions WHERE device_id = $1 AND to_status = 'offline'`, [cam.id])).rows;
    // Recorded at its deadline: last heartbeat + 2 × 1 s.
    expect(new Date(offlineAt).getTime() - new Date(onlineAt).getTime()).toBe(2000);
  });

  it('refuses a logged-out token on both processes', async () => {
    await t.userToken('auditor', undefined, 'cl.aud');
    const s = (await t.http().post('/api/v1/auth/login').send({ username: 'cl.aud', password: PASSWORD }).expect(200)).body;
    await t.http().post('/api/v1/auth/logout').set(auth(s.accessToken)).send({ refreshToken: s.refreshToken }).expect(204);
    expect((await t.http().get('/api/v1/auth/me').set(auth(s.accessToken)).expect(401)).body.error.code).toBe('AUTH.TOKEN_REVOKED');
    await waitFor(async () => (await fetch(`${urlB}/api/v1/auth/me`, { headers: auth(s.accessToken) })).status === 401, 10_000, 'refused on B');
  });

  it('keeps every multi-key operation of the run in one slot', async () => {
    const prefix = t.config.redis.keyPrefix;
    const keys: string[] = [];
    const slotOf = new Map<string, number>();
    const crossslot: string[] = [];
    for (const url of cluster.urls) {
      const r = new Redis(url);
      let cursor = '0';
      do {
        const [next, found] = await r.scan(cursor, 'COUNT', 1000);
        keys.push(...found);
        cursor = next;
      } while (cursor !== '0');
      for (const k of keys) if (!slotOf.has(k)) slotOf.set(k, (await r.cluster('KEYSLOT', k)) as number);
      // Every command a node refused for keys in several slots since it started.
      const stats = (await r.info('errorstats')) as string;
      if (/CROSSSLOT/.test(stats)) crossslot.push(`${url}: ${stats}`);
      await r.quit();
    }
    expect(crossslot).toEqual([]);
    const ours = keys.filter((k) => k.startsWith(`${prefix}:`));
    expect(ours.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !k.startsWith(`${prefix}:`))).toEqual([]);
    // BullMQ: each queue's keys share the slot of its tag.
    const queues = t.app.get(QueueService);
    for (const q of Object.values(QueueName)) {
      const mine = ours.filter((k) => k.startsWith(`${queues.prefixOf(q)}:`));
      expect(new Set(mine.map((k) => slotOf.get(k))).size).toBeLessThanOrEqual(1);
    }
    expect(ours.filter((k) => k.startsWith(`${prefix}:{${prefix}:bull:alarms}:alarms:`)).length).toBeGreaterThan(0);
    // Liveness: each shard's pair in one slot, the 16 shards over several slots and masters.
    const shards = shardKeys(t.config);
    for (const s of shards)
      expect(slotOf.get(s.deadlines) ?? (await clusterSlot(cluster.urls[0], s.deadlines))).toBe(await clusterSlot(cluster.urls[0], s.down));
    const shardSlots = await Promise.all(shards.map((s) => clusterSlot(cluster.urls[0], s.deadlines)));
    expect(new Set(shardSlots).size).toBe(16);
    const owners = await Promise.all(shardSlots.map((slot) => ownerOf(cluster.urls[0], slot)));
    expect(new Set(owners).size).toBe(3);
    // The write probe (pingMasters): one expiring key on each master.
    const probes = ours.filter((k) => k.startsWith(`${prefix}:{${prefix}:probe:`));
    expect(new Set(await Promise.all(probes.map((k) => ownerOf(cluster.urls[0], slotOf.get(k)!)))).size).toBe(3);
    // No key outside the layout: queues, liveness shards, the layout marker, the probes.
    const unexplained = ours.filter(
      (k) =>
        !k.startsWith(`${prefix}:{${prefix}:bull:`) &&
        !k.startsWith(`${prefix}:{${prefix}:liveness:`) &&
        k !== `${prefix}:liveness:layout` &&
        !probes.includes(k),
    );
    expect(unexplained).toEqual([]);
  });
});

async function clusterSlot(url: string, key: string): Promise<number> {
  const r = new Redis(url);
  try {
    return (await r.cluster('KEYSLOT', key)) as number;
  } finally {
    await r.quit();
  }
}

/** The master (host:port) serving a slot. */
async function ownerOf(url: string, slot: number): Promise<string> {
  const r = new Redis(url);
  try {
    const ranges = await r.cluster('SLOTS');
    const hit = ranges.find(([from, to]) => slot >= from && slot <= to)!;
    return `${hit[2][0]}:${hit[2][1]}`;
  } finally {
    await r.quit();
  }
}
