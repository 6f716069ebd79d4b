import { QueueService } from '../../src/infra/queue/queue.service';
import { AlarmsJobs } from '../../src/modules/alarms/alarms.jobs';
import { DeviceHealthService, shardKeys } from '../../src/modules/device-health/device-health.service';
import { TestConsole } from '../support/console-client';
import { createButton, press, TestButton } from '../support/devices';
import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';
import { freePort, Proc, start, startRedis, stop, until } from '../support/processes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeReceiver, startFakeReceiver } from '../support/fake-receivers';
import Redis from 'ioredis';

/**
 * Issue 11 §1/§1b: alarm intake and logins do not depend on Redis. The service runs on a
 * redis-server of this test's own, which is killed mid-run (no persistence: it comes back
 * empty) while the service keeps running. While it is down, button presses, a staff alarm and a
 * login are each answered 2xx within 1 s (a request that does not answer in time is aborted and
 * fails the test), committed with the time they arrived. Escalations do not wait for Redis (attack
 * note F18): once Redis has been unreachable for queue.outage.afterMs, the escalations falling due,
 * the police relay and the duty group's WeCom message run from Postgres in the service itself. When
 * Redis is back (empty): nothing is sent twice, the job schedulers are back (readiness), a logged-out
 * token is still refused, and the console connected throughout got every event once, in order, with no gap.
 */
const N = 12;
const SECRET = 'redis-outage-hmac-secret-0123456789';
const ESCALATE_AFTER_S = 2;

describe('intake with Redis down (slow)', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  let redis: Proc | undefined;
  let redisPort: number;
  let police: PoliceReceiver;
  let wecom: FakeReceiver;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const buttons: TestButton[] = [];
  const consoles: TestConsole[] = [];

  beforeAll(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    police = await startPoliceReceiver(SECRET);
    wecom = await startFakeReceiver('wecom');
    t = await startApp({
      redis: { url: `redis://127.0.0.1:${redisPort}/0` },
      alarms: {
        escalationSeconds: { P1: [ESCALATE_AFTER_S, 3600], P2: [ESCALATE_AFTER_S, 3600], P3: [3600], P4: [3600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 50, backoffMs: 200, lateAfterSeconds: 3600 },
        // Far out: what catches up after the outage must not be the periodic re-dispatch.
        outbox: { pollMs: 200, redispatchAfterMs: 600_000, batchSize: 200 },
      },
      // The periodic check is far out too: schedulers come back because Redis reconnected.
      queue: { schedulerReconcileMs: 600_000, outage: { afterMs: 1000, pollMs: 200, leaseMs: 5000, batchSize: 100 } },
      ops: { stateEveryMs: 300 },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    // Level 1 of every priority tells the duty group by WeCom (level 2 is an hour out).
    const channel = (
      await t.http().post('/api/v1/notifications/channels').set(auth(admin)).send({ kind: 'wecom', name: '值班群', webhookUrl: wecom.url }).expect(201)
    ).body;
    for (const p of ['P1', 'P2'])
      await t
        .http()
        .put(`/api/v1/notifications/policies/${p}`)
        .set(auth(admin))
        .send({ levels: [{ targets: [{ kind: 'group', channelId: channel.id }] }, { targets: [{ kind: 'group', channelId: channel.id }] }] })
        .expect(200);
    for (let i = 0; i < N; i++)
      buttons.push(await createButton(t, admin, { schoolId: seed.schoolA.id, code: `RO-${i}`, location: `岗亭${i}`, policeLinked: true }));
  });

  afterAll(async () => {
    for (const c of consoles) c.close();
    await t?.close();
    await stop(redis);
    await police?.close();
    await wecom?.close();
  });

  /** A request that must be answered within 1 s (else it is aborted and the test fails). */
  const within1s = (path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown }) =>
    fetch(`${t.baseUrl}${path}`, {
      method: init.method ?? 'GET',
      headers: { 'Content-Type': 'application/json', ...init.headers },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(1000),
    });

  it('takes presses, staff alarms and logins while Redis is down, and catches up once it is back', async () => {
    const operator = await t.userToken('operator');
    const staff = await t.userToken('school_security', seed.schoolA.id);
    const leaver = await t.userToken('operator');
    const steady = new TestConsole(t.baseUrl, operator.token, { reconnection: true });
    consoles.push(steady);
    const states: { redis: string; database: string }[] = [];
    steady.socket.on('system_state', (st: { redis: string; database: string }) => states.push(st));
    await steady.ready();
    const startSeq = steady.snapshots[0].seq;
    await t.http().post('/api/v1/auth/logout').set(auth(leaver.token)).send({}).expect(204);
    await t.http().get('/api/v1/incidents').set(auth(leaver.token)).expect(401);
    await t.http().get('/health/ready').expect(200);

    await stop(redis); // SIGKILL: Redis is gone, and comes back empty
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const sentAt = Date.now();
      const res = await press(t.baseUrl, buttons[i], `down-${i}`, 1000);
      expect(res.status).toBe(201);
      const body = (await res.json()) as { id: string; firstPressAt: string };
      // The press time is when the request arrived, not when Redis came back.
      expect(new Date(body.firstPressAt).getTime()).toBeGreaterThanOrEqual(sentAt - 5);
      expect(new Date(body.firstPressAt).getTime()).toBeLessThanOrEqual(Date.now());
      ids.push(body.id);
    }
    // A retried press (same event id) while Redis is down: the same incident.
    const again = await press(t.baseUrl, buttons[0], 'down-0', 1000);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(ids[0]);
    const raised = await within1s('/api/v1/incidents', {
      method: 'POST',
      headers: auth(staff.token),
      body: { schoolId: seed.schoolA.id, type: 'intrusion', location: '北门' },
    });
    expect(raised.status).toBe(201);
    ids.push(((await raised.json()) as { id: string }).id);
    const login = await within1s('/api/v1/auth/login', { method: 'POST', body: { username: staff.username, password: PASSWORD } });
    expect(login.status).toBe(200);
    const fresh = ((await login.json()) as { accessToken: string }).accessToken;
    expect((await within1s('/api/v1/incidents?limit=5', { headers: auth(fresh) })).status).toBe(200);
    // The logged-out token stays refused (revocations live in Postgres, not only in Redis).
    const refused = await within1s('/api/v1/incidents', { headers: auth(leaver.token) });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('AUTH.TOKEN_REVOKED');
    // Readiness tells the load balancer and the operator.
    const notReady = await fetch(`${t.baseUrl}/health/ready`, { signal: AbortSignal.timeout(5000) });
    expect(notReady.status).toBe(503);
    const notReadyText = await notReady.text();
    const notReadyBody = JSON.parse(notReadyText) as { checks: { redis: { ok: boolean; error: string } } };
    expect(notReadyBody.checks.redis).toEqual({ ok: false, error: expect.stringMatching(/^(unreachable|timeout)$/) });
    // A public endpoint: a fixed word, never the driver's message with addresses and ports.
    expect(notReadyText).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|:\d{4,5}/);

    // Redis still down: the escalations fall due and run from Postgres, the police hear of every alarm, the duty group is told.
    await waitFor(
      async () => (await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE id = ANY($1) AND escalation_level = 1`, [ids])).rows[0].n === ids.length,
      20_000,
      'every escalation while Redis is down',
    );
    await waitFor(async () => ids.every((id) => police.accepted.get(id) === 1), 15_000, 'every alarm relayed while Redis is down');
    await waitFor(async () => wecom.received.length >= ids.length, 15_000, 'the duty group told of every alarm while Redis is down');
    // Recorded sent once the receiver's answer is back (the receiver counts the message before that): waited for, not read at once.
    await waitFor(
      async () =>
        (await t.db.query(`SELECT count(*)::int AS n FROM notification_deliveries WHERE incident_id = ANY($1) AND status = 'sent'`, [ids])).rows[0].n ===
        ids.length,
      15_000,
      'every delivery recorded sent',
    );
    // The console was told (degraded-state banner), while it still shows incidents live.
    expect(states[0]).toMatchObject({ redis: 'ok', database: 'ok' });
    expect(states.at(-1)).toMatchObject({ redis: 'down', database: 'ok' });
    expect(t.app.get(QueueService).redisReady).toBe(false);

    redis = await startRedis(redisPort); // back, empty: what ran meanwhile is done in Postgres and is not handed to BullMQ again
    await waitFor(async () => (await fetch(`${t.baseUrl}/health/ready`)).status === 200, 10_000, 'job schedulers re-created');
    await steady.until(() => states.at(-1)?.redis === 'ok', 'the banner cleared');

    // Each escalation and relay went out once.
    const esc = await t.db.query(
      `SELECT incident_id, count(*)::int AS n FROM incident_timeline WHERE action = 'escalated' AND incident_id = ANY($1) GROUP BY incident_id`,
      [ids],
    );
    expect(esc.rows).toHaveLength(ids.length);
    expect(esc.rows.every((r) => r.n === 1)).toBe(true);
    expect(ids.every((id) => police.delivered.get(id) === 1)).toBe(true);
    expect(police.badSignatures).toBe(0);
    // One WeCom message per alarm (the group's level 1), none again after Redis returned; timelines say it arrived.
    expect(wecom.received).toHaveLength(ids.length);
    expect(wecom.rejected).toEqual([]);
    const notified = await t.db.query(
      `SELECT count(DISTINCT incident_id)::int AS n FROM incident_timeline WHERE action = 'notified' AND incident_id = ANY($1)`,
      [ids],
    );
    expect(notified.rows[0].n).toBe(ids.length);
    // Still refused after Redis came back empty.
    await t.http().get('/api/v1/incidents').set(auth(leaver.token)).expect(401);

    // The console got every event once, in order, with no gap (raised and escalated alike).
    const last = Number((await t.db.query(`SELECT max(seq) AS s FROM console_events`)).rows[0].s);
    await steady.until(() => steady.lastSeq >= last, 'every event', 15_000);
    const stored = (await t.db.query(`SELECT seq FROM console_events WHERE seq > $1 AND seq <= $2 ORDER BY seq`, [startSeq, last])).rows.map((r) =>
      Number(r.seq),
    );
    const seqs = steady.events.map((e) => e.seq).filter((s) => s <= last);
    expect(seqs).toEqual(stored);
    expect(steady.reorders).toEqual([]);
    const raisedIds = steady.events.filter((e) => e.type === 'incident.raised').map((e) => e.payload.incidentId);
    expect(new Set(raisedIds)).toEqual(new Set(ids));
    expect(steady.events.filter((e) => e.type === 'incident.escalated')).toHaveLength(ids.length);
  });

  it('readiness fails while a job scheduler is missing from an emptied Redis, and passes once it is re-created', async () => {
    await t.http().get('/health/ready').expect(200);
    const r = new Redis(`redis://127.0.0.1:${redisPort}/0`);
    await r.flushall(); // emptied without a disconnect (no reconnect to trigger the reconcile)
    await r.quit();
    const res = await t.http().get('/health/ready').expect(503);
    expect(res.body.checks.schedulers).toMatchObject({ ok: false, error: 'missing_schedulers' });
    expect(res.body.checks.schedulers.missing).toEqual(expect.arrayContaining(['auth.prune-refresh-tokens']));
    await t.app.get(QueueService).reconcile({ reconnect: false }); // what the periodic check (queue.schedulerReconcileMs) runs
    await t.http().get('/health/ready').expect(200);
  });
});

/**
 * A restart during a Redis outage (the engineer's first move) must not leave the service down: it
 * boots without Redis, takes presses and logins, and builds what needs Redis (schedulers, liveness
 * deadlines) once Redis answers. Here the in-process outage runner is kept off (queue.outage.afterMs
 * far out), so an escalation falling due meanwhile waits for Redis — and then runs at once, its timer
 * re-created from the outbox with the due time from the raise time.
 */
describe('boot with Redis down (slow)', () => {
  jest.setTimeout(90_000);
  let t: TestApp;
  let redis: Proc | undefined;
  let redisPort: number;

  beforeAll(async () => {
    redisPort = await freePort(); // nothing listens there yet
    t = await startApp({
      redis: { url: `redis://127.0.0.1:${redisPort}/0` },
      queue: { schedulerReconcileMs: 1000, outage: { afterMs: 600_000, pollMs: 200, leaseMs: 5000, batchSize: 100 } },
      alarms: { escalationSeconds: { P1: [1, 3600], P2: [1, 3600], P3: [3600], P4: [3600] } },
    });
  });
  afterAll(async () => {
    await t?.close();
    await stop(redis);
  });

  it('boots, takes a press and a login, and is ready once Redis answers', async () => {
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const button = await createButton(t, admin, { schoolId: seed.schoolA.id, code: 'BOOT-1', location: '西门' });
    const res = await press(t.baseUrl, button, 'boot-1', 1000);
    expect(res.status).toBe(201);
    const incidentId = ((await res.json()) as { id: string }).id;
    await t.http().get('/health/ready').expect(503);
    const level = async () => (await t.db.query(`SELECT escalation_level AS l FROM incidents WHERE id = $1`, [incidentId])).rows[0].l as number;
    await new Promise((r) => setTimeout(r, 1500)); // due after 1 s: nothing runs it without Redis when the outage runner is off
    expect(await level()).toBe(0);
    redis = await startRedis(redisPort);
    await waitFor(async () => (await level()) === 1, 15_000, 'the overdue escalation once Redis is back');
    await waitFor(async () => (await fetch(`${t.baseUrl}/health/ready`)).status === 200, 15_000, 'ready once Redis answers');
    // The button gets its liveness deadline: seeded by the reconcile hooks, which run after the
    // schedulers that make it ready (a single read right after readiness lost that race under load).
    const r = new Redis(`redis://127.0.0.1:${redisPort}/0`);
    const zcards = async () => (await Promise.all(shardKeys(t.config).map((k) => r.zcard(k.deadlines)))).reduce((x, y) => x + y, 0);
    const deadlines = await waitFor(zcards, 15_000, 'the liveness deadline once Redis answers');
    await r.quit();
    expect(deadlines).toBeGreaterThanOrEqual(1);
  });
});

/**
 * A HUNG Redis (attack note, outage round 2): the process is SIGSTOPped, so TCP still accepts and the
 * connection stays "ready", but no command is ever answered. That must count as an outage exactly
 * like a refused connection: once Redis has not answered for queue.outage.afterMs, the police relay,
 * the escalation, the duty group's message and a withdrawal run from Postgres in the service, and no
 * request or in-process job waits on the stopped Redis. After SIGCONT nothing is sent twice.
 * A relay delivered after its late-watch's due time is marked late whatever order the two ran in.
 */
describe('hung Redis (SIGSTOP) (slow)', () => {
  jest.setTimeout(120_000);
  let t: TestApp;
  let redis: Proc | undefined;
  let stopped = false;
  let police: PoliceReceiver;
  let wecom: FakeReceiver;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    police = await startPoliceReceiver(SECRET);
    wecom = await startFakeReceiver('wecom');
    t = await startApp({
      redis: { url: `redis://127.0.0.1:${port}/0`, commandTimeoutMs: 500 },
      alarms: {
        escalationSeconds: { P1: [ESCALATE_AFTER_S, 3600], P2: [ESCALATE_AFTER_S, 3600], P3: [3600], P4: [3600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 50, backoffMs: 200, lateAfterSeconds: 3600 },
        outbox: { pollMs: 200, redispatchAfterMs: 600_000, batchSize: 200 },
      },
      queue: { schedulerReconcileMs: 600_000, outage: { afterMs: 1000, pollMs: 200, leaseMs: 5000, batchSize: 100 } },
    });
  });

  afterAll(async () => {
    if (stopped) redis?.child.kill('SIGCONT'); // never leave a stopped redis-server behind
    await t?.close();
    await stop(redis);
    await police?.close();
    await wecom?.close();
  });

  it('treats a Redis that never answers as down: relay, escalation, notification and withdrawal run from Postgres', async () => {
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const channel = (
      await t.http().post('/api/v1/notifications/channels').set(auth(admin)).send({ kind: 'wecom', name: '值班群', webhookUrl: wecom.url }).expect(201)
    ).body;
    await t
      .http()
      .put(`/api/v1/notifications/policies/P1`)
      .set(auth(admin))
      .send({ levels: [{ targets: [{ kind: 'group', channelId: channel.id }] }, { targets: [{ kind: 'group', channelId: channel.id }] }] })
      .expect(200);
    const button = await createButton(t, admin, { schoolId: seed.schoolA.id, code: 'HUNG-1', location: '门卫室', policeLinked: true });
    const other = await createButton(t, admin, { schoolId: seed.schoolA.id, code: 'HUNG-2', location: '北门', policeLinked: true });
    const operator = (await t.userToken('operator')).token;
    const queue = t.app.get(QueueService);
    await waitFor(async () => queue.redisReady, 10_000, 'redis answering before the test');

    redis!.child.kill('SIGSTOP');
    stopped = true;
    await waitFor(async () => !queue.redisReady, 10_000, 'a connected Redis that answers nothing counted as down');
    const res = await press(t.baseUrl, button, 'hung-1', 5000);
    expect(res.status).toBe(201);
    const id = ((await res.json()) as { id: string }).id;
    const res2 = await press(t.baseUrl, other, 'hung-2', 5000);
    expect(res2.status).toBe(201);
    const id2 = ((await res2.json()) as { id: string }).id;

    // Still stopped: everything that must not wait for Redis runs here.
    await waitFor(async () => police.accepted.get(id) === 1 && police.accepted.get(id2) === 1, 20_000, 'the alarms relayed while Redis hangs');
    const level = async (x: string) => (await t.db.query(`SELECT escalation_level AS l FROM incidents WHERE id = $1`, [x])).rows[0].l as number;
    await waitFor(async () => (await level(id)) === 1, 20_000, 'the escalation while Redis hangs');
    await waitFor(async () => wecom.received.length >= 1, 20_000, 'the duty group told while Redis hangs');
    // Resolved as a drill while Redis hangs (no request waits on it): the police are told to stand down.
    const ack = await fetch(`${t.baseUrl}/api/v1/incidents/${id2}/acknowledge`, {
      method: 'POST',
      headers: { ...auth(operator), 'Content-Type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(3000),
    });
    expect(ack.status).toBe(200);
    const resolved = await fetch(`${t.baseUrl}/api/v1/incidents/${id2}/resolve`, {
      method: 'POST',
      headers: { ...auth(operator), 'Content-Type': 'application/json' },
      body: JSON.stringify({ outcome: 'drill' }),
      signal: AbortSignal.timeout(3000),
    });
    expect(resolved.status).toBe(200);
    await waitFor(async () => police.accepted.get(`${id2}-withdraw`) === 1, 20_000, 'the withdrawal while Redis hangs');
    const withdrawn = async () => (await t.db.query(`SELECT note FROM incident_timeline WHERE incident_id = $1 AND action = 'relay_withdrawn'`, [id2])).rows;
    await waitFor(async () => (await withdrawn()).length > 0, 20_000, 'the withdrawal on the timeline while Redis hangs');
    expect(queue.redisReady).toBe(false);

    redis!.child.kill('SIGCONT');
    stopped = false;
    await waitFor(async () => queue.redisReady, 15_000, 'redis answering again');
    await waitFor(async () => (await fetch(`${t.baseUrl}/health/ready`)).status === 200, 15_000, 'ready again');
    // Nothing twice: one delivery per alarm, one escalation entry, one withdrawal on the timeline.
    expect(police.delivered.get(id)).toBe(1);
    expect(police.delivered.get(id2)).toBe(1);
    expect(police.delivered.get(`${id2}-withdraw`)).toBe(1);
    const esc = await t.db.query(`SELECT count(*)::int AS n FROM incident_timeline WHERE incident_id = $1 AND action = 'escalated'`, [id]);
    expect(esc.rows[0].n).toBe(1);
    const wd = await withdrawn();
    expect(wd).toHaveLength(1);
    expect(wd[0].note).toContain('演练');
  });

  it('marks a relay delivered after its watch was due as late, even when the watch runs after the delivery', async () => {
    const jobs = t.app.get(AlarmsJobs);
    const [row] = (await t.db.query(`SELECT id FROM incidents WHERE relay_delivered_at IS NOT NULL AND NOT relay_late LIMIT 2`)).rows as { id: string }[];
    expect(row).toBeDefined();
    // After an outage the relay ran first (89 s late in the attack); the watch, due at press + lateAfterSeconds, comes after it.
    await t.db.query(`UPDATE incidents SET relay_delivered_at = first_press_at + make_interval(secs => $2 + 89) WHERE id = $1`, [
      row.id,
      t.config.alarms.policeRelay.lateAfterSeconds,
    ]);
    await t.db.query(
      `UPDATE alarm_outbox SET available_at = (SELECT first_press_at FROM incidents WHERE id = $1) + make_interval(secs => $2) WHERE job_id = $3`,
      [row.id, t.config.alarms.policeRelay.lateAfterSeconds, `relaywatch-${row.id}`],
    );
    expect(await jobs.relayWatch(row.id)).toBe('late');
    const inc = (await t.db.query(`SELECT relay_late FROM incidents WHERE id = $1`, [row.id])).rows[0];
    expect(inc.relay_late).toBe(true);
    const entry = (await t.db.query(`SELECT note, data FROM incident_timeline WHERE incident_id = $1 AND action = 'relay_late'`, [row.id])).rows;
    expect(entry).toHaveLength(1);
    expect(entry[0].data.deliveredLateBySeconds).toBe(89);
    // A delivery within the time is on time, and stays so.
    const [onTime] = (await t.db.query(`SELECT id FROM incidents WHERE relay_delivered_at IS NOT NULL AND NOT relay_late AND id <> $1 LIMIT 1`, [row.id]))
      .rows as { id: string }[];
    expect(await jobs.relayWatch(onTime.id)).toBe('on time');
  });

  it('treats a Redis that answers PING but refuses writes (maxmemory under noeviction) as down: the escalation runs from Postgres, readiness names it', async () => {
    // Attack pass 4: readiness said ok and the escalation was 50 s late (the outbox relay's writes refused, OOM).
    const admin = (await t.userToken('admin')).token;
    const [{ id: schoolId }] = (await t.db.query(`SELECT id FROM schools ORDER BY code LIMIT 1`)).rows as { id: string }[];
    const button = await createButton(t, admin, { schoolId, code: 'OOM-1', location: '东门', policeLinked: false });
    const camera = { deviceId: '50011300001320000777', channelId: '50011300001310000777' };
    await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId, ...camera, name: 'OOM 摄像机', areaKind: 'perimeter' })
      .expect(201);
    const gateway = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'gateway' }).expect(201)).body.authorization as string;
    const queue = t.app.get(QueueService);
    await waitFor(async () => queue.redisReady, 15_000, 'redis answering before the test');
    await t.app.get(DeviceHealthService).loadIndex({ seedAt: Date.now() }); // the camera known to liveness (as the periodic refresh does)
    const direct = new Redis(`redis://127.0.0.1:${port}/0`);
    let id: string;
    try {
      await direct.config('SET', 'maxmemory', '1'); // every write refused: OOM command not allowed (noeviction)
      await waitFor(async () => !queue.redisReady, 10_000, 'a Redis refusing writes counted as down');
      const ready = await fetch(`${t.baseUrl}/health/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: { redis: { error: string } } }).checks.redis.error).toBe('refuses_writes');
      // A heartbeat Redis refuses to record: 503 UNAVAILABLE.REDIS, retryable, as for a Redis that is gone (attack pass 5: 500).
      const hb = await t
        .http()
        .post('/api/v1/device/heartbeats')
        .set('Authorization', gateway)
        .send({ heartbeats: [camera] });
      expect([hb.status, hb.body.error?.code]).toEqual([503, 'UNAVAILABLE.REDIS']);
      const res = await press(t.baseUrl, button, 'oom-1', 5000);
      expect(res.status).toBe(201);
      id = ((await res.json()) as { id: string }).id;
      const level = async () => (await t.db.query(`SELECT escalation_level AS l FROM incidents WHERE id = $1`, [id])).rows[0].l as number;
      await waitFor(async () => (await level()) === 1, 20_000, 'the escalation while Redis refuses writes');
    } finally {
      await direct.config('SET', 'maxmemory', '0');
      direct.disconnect();
    }
    await waitFor(async () => queue.redisReady, 15_000, 'redis taking writes again');
    await waitFor(async () => (await fetch(`${t.baseUrl}/health/ready`)).status === 200, 15_000, 'ready again');
    const esc = await t.db.query(`SELECT count(*)::int AS n FROM incident_timeline WHERE incident_id = $1 AND action = 'escalated'`, [id!]);
    expect(esc.rows[0].n).toBe(1);
  });
});

/**
 * Heartbeats sent while Redis is down are not recorded (the HTTP route answers 503). With a Redis that
 * keeps its data over a restart (AOF, as compose runs it), a device that kept beating through an
 * outage longer than its threshold must not go offline when Redis is back — every camera of the
 * district did, with an outage per school, before the sweep's cutoff; one that fell silent before
 * the outage still goes, and one silent since goes once the grace is over.
 */
describe('liveness across a Redis restart that keeps its data (slow)', () => {
  jest.setTimeout(90_000);
  let t: TestApp;
  let redis: Proc | undefined;
  let port: number;
  const dir = mkdtempSync(join(tmpdir(), 'shouhu-aof-'));
  /** redis-server with AOF in `dir`: a restart on the same port finds what it had. */
  const startPersistentRedis = async () => {
    const p = start(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
      ],
      process.env,
    );
    await until(() => p.output().includes('Ready to accept connections') || p.child.exitCode !== null, 10_000, 'redis-server with AOF');
    if (p.child.exitCode !== null) throw new Error(`redis-server did not start: ${p.output()}`);
    return p;
  };

  beforeAll(async () => {
    port = await freePort();
    redis = await startPersistentRedis();
    t = await startApp({
      redis: { url: `redis://127.0.0.1:${port}/0`, commandTimeoutMs: 500 },
      // Threshold 2 s (1 s × 2 missed), grace 3 s after Redis is back; swept by hand.
      liveness: { intervalSeconds: 1, missedBeforeOffline: 2, bootGraceSeconds: 3, sweepEveryMs: 0 },
      queue: { schedulerReconcileMs: 600_000, outage: { afterMs: 1000, pollMs: 200, leaseMs: 5000, batchSize: 100 } },
    });
  });

  afterAll(async () => {
    await t?.close();
    await stop(redis);
    rmSync(dir, { recursive: true, force: true });
  });

  it('does not take a device offline for heartbeats Redis could not record; one silent before the outage goes', async () => {
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const cam = async (n: number) => {
      const deviceId = `5001130000132${String(900 + n).padStart(7, '0')}`;
      const channelId = `5001130000131${String(900 + n).padStart(7, '0')}`;
      const res = await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({ schoolId: seed.schoolA.id, deviceId, channelId, name: `L${n}`, areaKind: 'perimeter' })
        .expect(201);
      return { id: res.body.id as string, deviceId, channelId };
    };
    const [beating, silentBefore] = [await cam(1), await cam(2)];
    const gateway = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'gateway' }).expect(201)).body.authorization as string;
    const svc = t.app.get(DeviceHealthService);
    const queue = t.app.get(QueueService);
    await svc.loadIndex({ seedAt: Date.now() });
    const beat = (c: { deviceId: string; channelId: string }) =>
      fetch(`${t.baseUrl}/api/v1/device/heartbeats`, {
        method: 'POST',
        headers: { Authorization: gateway, 'Content-Type': 'application/json' },
        body: JSON.stringify({ heartbeats: [{ deviceId: c.deviceId, channelId: c.channelId }] }),
        signal: AbortSignal.timeout(5000),
      }).then((r) => r.status);
    const status = async (id: string) => (await t.db.query(`SELECT status FROM cameras WHERE id = $1`, [id])).rows[0].status as string;
    const wentOffline = async (id: string) =>
      (await t.db.query(`SELECT count(*)::int AS n FROM device_transitions WHERE device_id = $1 AND to_status = 'offline'`, [id])).rows[0].n as number;

    expect([await beat(beating), await beat(silentBefore)]).toEqual([200, 200]);
    await waitFor(async () => (await status(beating.id)) === 'online' && (await status(silentBefore.id)) === 'online', 10_000, 'both online');
    await new Promise((r) => setTimeout(r, 2500)); // silentBefore's deadline passes (beating beats on)
    expect(await beat(beating)).toBe(200);

    await stop(redis, 'SIGKILL'); // the AOF (fsync always) keeps every deadline written
    await waitFor(async () => !queue.redisReady, 10_000, 'Redis counted as down');
    // Longer than the threshold; the device beats on, and is answered 503 (not recorded).
    const during: number[] = [];
    for (const end = Date.now() + 3500; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) during.push(await beat(beating));
    expect(during.every((s) => s === 503)).toBe(true);
    redis = await startPersistentRedis();
    await waitFor(async () => queue.redisReady, 15_000, 'Redis answering again');

    // At once: the device silent before the outage goes offline; the one that beat through it does not.
    await svc.sweep();
    expect(await wentOffline(silentBefore.id)).toBe(1);
    expect(await wentOffline(beating.id)).toBe(0);
    expect(await status(beating.id)).toBe('online');
    // It beats again (recorded now) and stays online past the grace: a sweep after it takes only real silences.
    expect(await beat(beating)).toBe(200);
    await new Promise((r) => setTimeout(r, 3200));
    expect(await beat(beating)).toBe(200);
    await svc.sweep();
    expect(await wentOffline(beating.id)).toBe(0);
    expect(await status(beating.id)).toBe('online');
  });
});
