import { DataSource } from 'typeorm';
import { DeviceCredentialsService } from '../../src/modules/auth/device-credentials.service';
import { malformedInput } from '../../src/infra/observability/metrics';
import { DeviceHealthService } from '../../src/modules/device-health/device-health.service';
import { OnlineTimeService } from '../../src/modules/device-health/online-time.service';
import { readTable } from '../../src/infra/tabular/tabular';
import { simulate } from '../../src/tools/simulate';
import { auth, seedMinimal, startApp, TestApp, TIMETABLE } from '../support/harness';

/**
 * Liveness rules are driven with an explicit clock: heartbeats go through the service (the
 * protocol-agnostic entry) at virtual times, and sweeps run with an explicit `now`. The HTTP
 * intake is exercised for auth, batches and recovery. The scheduled sweep is off (sweepEveryMs 0).
 */
describe('device health (liveness)', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let svc: DeviceHealthService;
  const cams: Record<string, { id: string; deviceId: string; channelId: string }> = {};
  let alarm: { id: string; code: string };
  const cred: Record<string, string> = {};
  const credId: Record<string, string> = {};
  const MIN = 60_000;
  const THRESHOLD = 3 * MIN; // 60 s × 3 missed (GB/T 28181 defaults)
  const V = Date.now() + 7 * 86_400_000; // virtual time, far from anything real

  const status = async (id: string) => (await t.db.query(`SELECT status, last_seen_at FROM cameras WHERE id = $1`, [id])).rows[0];
  const transitions = async (id: string) =>
    (await t.db.query(`SELECT from_status, to_status, at FROM device_transitions WHERE device_id = $1 ORDER BY id`, [id])).rows;
  const openOutage = async (schoolId: string) =>
    (await t.db.query(`SELECT * FROM device_outages WHERE school_id = $1 AND closed_at IS NULL`, [schoolId])).rows[0];

  beforeAll(async () => {
    t = await startApp({ liveness: { sweepEveryMs: 0, flapCount: 2, flapWindowMinutes: 60 } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    svc = t.app.get(DeviceHealthService);
    const mk = async (name: string, schoolId: string, n: number) => {
      const deviceId = `5001130000132${String(n).padStart(7, '0')}`;
      const channelId = `5001130000131${String(n).padStart(7, '0')}`;
      const res = await t.http().post('/api/v1/cameras').set(auth(admin)).send({ schoolId, deviceId, channelId, name, areaKind: 'perimeter' }).expect(201);
      cams[name] = { id: res.body.id, deviceId, channelId };
    };
    await mk('A1', seed.schoolA.id, 1);
    await mk('A2', seed.schoolA.id, 2);
    await mk('A3', seed.schoolA.id, 3);
    await mk('B1', seed.schoolB.id, 4);
    alarm = (
      await t.http().post('/api/v1/alarm-devices').set(auth(admin)).send({ code: 'SA-BTN-01', schoolId: seed.schoolA.id, areaKind: 'main_gate' }).expect(201)
    ).body;
    const mkCred = async (name: string, body: Record<string, unknown>) => {
      const res = await t.http().post('/api/v1/device-credentials').set(auth(admin)).send(body).expect(201);
      cred[name] = res.body.authorization;
      credId[name] = res.body.id;
    };
    await mkCred('camA2', { kind: 'camera', subjectId: cams.A2.id });
    await mkCred('alarm', { kind: 'alarm_device', subjectId: alarm.id });
    await mkCred('gateway', { kind: 'gateway' });
    await mkCred('gatewayA', { kind: 'gateway', schoolId: seed.schoolA.id });
    await mkCred('revoked', { kind: 'camera', subjectId: cams.A1.id });
    // What the periodic refresh does for devices registered after boot.
    await svc.loadIndex({ seedAt: Date.now() });
  });
  afterAll(() => t.close());

  describe('intake', () => {
    it('accepts the good entries of a mixed batch and reports the bad ones by index', async () => {
      const before = (await malformedInput.get()).values.find((v) => v.labels.reason === 'heartbeat_entry')?.value ?? 0;
      const res = await t
        .http()
        .post('/api/v1/device/heartbeats')
        .set('Authorization', cred.gateway)
        .send({
          heartbeats: [
            { deviceId: cams.A1.deviceId, channelId: cams.A1.channelId },
            { deviceId: '123', channelId: cams.A1.channelId },
            { code: 'NO-SUCH-BUTTON' },
            42,
            { code: alarm.code },
            { deviceId: cams.B1.deviceId, channelId: cams.B1.channelId, code: 'x' },
          ],
        })
        .expect(200);
      expect(res.body.accepted).toBe(2);
      expect(res.body.rejected).toEqual([
        { index: 1, reason: 'malformed' },
        { index: 2, reason: 'unknown_device' },
        { index: 3, reason: 'malformed' },
        { index: 5, reason: 'malformed' },
      ]);
      const after = (await malformedInput.get()).values.find((v) => v.labels.reason === 'heartbeat_entry')?.value ?? 0;
      expect(after - before).toBe(3);
      // Seen for the first time: online at once (unknown → online), recorded in history.
      expect((await status(cams.A1.id)).status).toBe('online');
      expect(await transitions(cams.A1.id)).toEqual([expect.objectContaining({ from_status: 'unknown', to_status: 'online' })]);
      const a = (await t.db.query(`SELECT status FROM alarm_devices WHERE id = $1`, [alarm.id])).rows[0];
      expect(a.status).toBe('online');
    });

    it('refuses a malformed or oversized batch as a whole with a field error', async () => {
      const bad = await t.http().post('/api/v1/device/heartbeats').set('Authorization', cred.gateway).send({ beats: [] }).expect(400);
      expect(bad.body.error.details.fields[0].field).toBe('heartbeats');
      const big = Array.from({ length: 1001 }, () => ({ code: alarm.code }));
      await t.http().post('/api/v1/device/heartbeats').set('Authorization', cred.gateway).send({ heartbeats: big }).expect(400);
    });

    it('lets a device report for itself', async () => {
      await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.camA2).expect(200);
      expect((await status(cams.A2.id)).status).toBe('online');
      await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.alarm).expect(200);
    });

    it('refuses wrong, revoked and wrong-kind credentials, and a gateway outside its school', async () => {
      await t.http().post('/api/v1/device/heartbeat').expect(401);
      await t.http().post('/api/v1/device/heartbeat').set('Authorization', 'Device dk_nope:secret').expect(401);
      await t
        .http()
        .post('/api/v1/device/heartbeat')
        .set(
          'Authorization',
          cred.camA2.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')),
        )
        .expect(401);
      await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.revoked).expect(200);
      await t.http().delete(`/api/v1/device-credentials/${credId.revoked}`).set(auth(admin)).expect(204);
      const revoked = await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.revoked).expect(401);
      expect(revoked.body.error.code).toBe('AUTH.DEVICE_CREDENTIALS_INVALID');
      const kind = await t
        .http()
        .post('/api/v1/device/heartbeats')
        .set('Authorization', cred.camA2)
        .send({ heartbeats: [{ code: alarm.code }] })
        .expect(403);
      expect(kind.body.error.code).toBe('AUTH.WRONG_DEVICE_KIND');
      await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.gateway).expect(403);
      const scoped = await t
        .http()
        .post('/api/v1/device/heartbeats')
        .set('Authorization', cred.gatewayA)
        .send({ heartbeats: [{ deviceId: cams.B1.deviceId, channelId: cams.B1.channelId }, { code: alarm.code }] })
        .expect(200);
      expect(scoped.body).toMatchObject({ accepted: 1, rejected: [{ index: 0, reason: 'out_of_scope' }] });
    });
    it('keeps known credentials through a flood of unknown key ids: those go in a bounded cache of their own', async () => {
      const creds = t.app.get(DeviceCredentialsService);
      const lookups = jest.spyOn(t.app.get(DataSource), 'query');
      const looked = () => lookups.mock.calls.filter(([sql]) => String(sql).includes('FROM device_credentials')).length;
      const cfg = t.config.auth;
      const saved = cfg.deviceCredentialNegativeCacheMax;
      cfg.deviceCredentialNegativeCacheMax = 100;
      try {
        expect((await creds.verify(cred.camA2)).subjectId).toBe(cams.A2.id); // known, cached
        // 250 made-up key ids (more than the 100 the negative cache holds): each one 401, as before.
        const flood = Array.from({ length: 250 }, (_, i) => `Device dk_flood${i}:not-a-secret`);
        for (let i = 0; i < flood.length; i += 50) {
          const answers = await Promise.allSettled(flood.slice(i, i + 50).map((h) => creds.verify(h)));
          expect(answers.every((a) => a.status === 'rejected')).toBe(true);
        }
        lookups.mockClear();
        // The known device still answers from memory: no lookup.
        expect((await creds.verify(cred.camA2)).subjectId).toBe(cams.A2.id);
        expect(looked()).toBe(0);
        // The last unknown ids are remembered; the first were forgotten (bounded): a lookup again.
        await expect(creds.verify(flood[249])).rejects.toMatchObject({ status: 401 });
        expect(looked()).toBe(0);
        await expect(creds.verify(flood[0])).rejects.toMatchObject({ status: 401 });
        expect(looked()).toBe(1);
      } finally {
        cfg.deviceCredentialNegativeCacheMax = saved;
        lookups.mockRestore();
      }
    });

    it('marks a camera registered after boot online at its first heartbeat, however the index learned of it (attack pass 3)', async () => {
      // A camera the sweeping role's seeded refresh has not seen yet was never put in the "not online" set: its first
      // heartbeats were taken and it stayed `unknown` until that refresh (liveness.indexRefreshSeconds) and the heartbeat after.
      const mkNew = async (n: number) => {
        const deviceId = `500113000013277${String(n).padStart(5, '0')}`;
        const channelId = `500113000013177${String(n).padStart(5, '0')}`;
        const res = await t
          .http()
          .post('/api/v1/cameras')
          .set(auth(admin))
          .send({ schoolId: seed.schoolB.id, deviceId, channelId, name: `N${n}`, areaKind: 'perimeter' })
          .expect(201);
        expect((await status(res.body.id)).status).toBe('unknown');
        return { id: res.body.id as string, deviceId, channelId };
      };
      const beat = (c: { deviceId: string; channelId: string }) =>
        t
          .http()
          .post('/api/v1/device/heartbeats')
          .set('Authorization', cred.gateway)
          .send({ heartbeats: [{ deviceId: c.deviceId, channelId: c.channelId }] })
          .expect(200);
      // 1. The index learns of it from the heartbeat itself (the refresh on a miss, at most once a second).
      const first = await mkNew(1);
      await new Promise((r) => setTimeout(r, 1100));
      const t0 = Date.now();
      expect((await beat(first)).body).toMatchObject({ accepted: 1, rejected: [] });
      expect((await status(first.id)).status).toBe('online');
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await transitions(first.id)).toEqual([expect.objectContaining({ from_status: 'unknown', to_status: 'online' })]);
      // 2. From a refresh that seeds nothing (an api process's periodic one) before its first heartbeat.
      const second = await mkNew(2);
      await svc.periodicRefresh(false);
      expect(svc.isIndexed(second.id)).toBe(true);
      expect((await beat(second)).body.accepted).toBe(1);
      expect((await status(second.id)).status).toBe('online');
      expect(await transitions(second.id)).toEqual([expect.objectContaining({ from_status: 'unknown', to_status: 'online' })]);
      // A known camera already online is not put back in the set by a reload: its next heartbeat records nothing.
      await svc.loadIndex({ full: true });
      await beat(second);
      expect(await transitions(second.id)).toHaveLength(1);
      for (const c of [first, second]) await t.http().delete(`/api/v1/cameras/${c.id}`).set(auth(admin)).expect(204);
    });
  });

  describe('liveness rules (explicit clock)', () => {
    it('is offline after 3 missed intervals and not after 2', async () => {
      await svc.recordHeartbeats([cams.A1.id, cams.A2.id, cams.B1.id], new Date(V));
      await svc.sweep(V + 2 * MIN);
      await svc.sweep(V + THRESHOLD - 1);
      for (const c of ['A1', 'A2']) expect((await status(cams[c].id)).status).toBe('online');
      const res = await svc.sweep(V + THRESHOLD);
      expect(res.offline).toBeGreaterThanOrEqual(3);
      for (const c of ['A1', 'A2', 'B1']) {
        const s = await status(cams[c].id);
        expect(s.status).toBe('offline');
        expect(new Date(s.last_seen_at).getTime()).toBe(V);
      }
      expect((await transitions(cams.A1.id)).at(-1)).toMatchObject({ from_status: 'online', to_status: 'offline', at: new Date(V + THRESHOLD) });
    });

    it('groups offline devices into one outage per school and batches console events per school', async () => {
      const a = await openOutage(seed.schoolA.id);
      expect(a).toBeDefined();
      const faults = (await t.db.query(`SELECT device_id FROM device_faults WHERE outage_id = $1 AND recovered_at IS NULL`, [a.id])).rows.map(
        (r) => r.device_id,
      );
      expect(faults).toEqual(expect.arrayContaining([cams.A1.id, cams.A2.id]));
      expect(a.offline_count).toBe(faults.length);
      expect((await openOutage(seed.schoolB.id)).offline_count).toBe(1);
      const events = (
        await t.db.query(`SELECT school_id, payload FROM console_events WHERE type = 'device.status_batch' AND payload::text LIKE '%"to": "offline"%'`)
      ).rows;
      const forA = events.filter((e) => e.school_id === seed.schoolA.id && e.payload.changes.some((c: { deviceId: string }) => c.deviceId === cams.A1.id));
      expect(forA).toHaveLength(1); // one event per school for the whole sweep, not one per device
      expect(forA[0].payload.changes.map((c: { deviceId: string }) => c.deviceId)).toEqual(expect.arrayContaining([cams.A1.id, cams.A2.id]));
      const outageEvents = (await t.db.query(`SELECT payload FROM console_events WHERE type = 'device.outage' AND school_id = $1`, [seed.schoolA.id])).rows;
      expect(outageEvents.at(-1).payload).toMatchObject({ status: 'open', offline: faults.length });
    });

    it('recovers at once when seen again and closes the outage when all have recovered', async () => {
      await svc.recordHeartbeats([cams.A1.id, alarm.id, cams.A3.id], new Date(V + 200_000));
      expect((await status(cams.A1.id)).status).toBe('online');
      expect((await transitions(cams.A1.id)).at(-1)).toMatchObject({ from_status: 'offline', to_status: 'online' });
      const still = await openOutage(seed.schoolA.id);
      expect(still.offline_count).toBe(1); // A2 still down
      // A2 comes back over HTTP (real time): online immediately, no sweep needed.
      await t.http().post('/api/v1/device/heartbeat').set('Authorization', cred.camA2).expect(200);
      expect((await status(cams.A2.id)).status).toBe('online');
      expect(await openOutage(seed.schoolA.id)).toBeUndefined();
      const closed = (await t.db.query(`SELECT * FROM device_outages WHERE id = $1`, [still.id])).rows[0];
      expect(closed).toMatchObject({ offline_count: 0, peak_count: expect.any(Number) });
      expect(closed.closed_at).not.toBeNull();
      const user = (await t.userToken('operator')).token;
      const page = await t.http().get('/api/v1/device-health/outages').query({ schoolId: seed.schoolA.id, status: 'closed' }).set(auth(user)).expect(200);
      expect(page.body.items[0]).toMatchObject({ id: still.id, status: 'closed', offline: 0 });
    });

    it('records each transition once when two sweeps run concurrently', async () => {
      const V2 = V + 1000 * 1000;
      await svc.recordHeartbeats([cams.A1.id, cams.A2.id], new Date(V2));
      const n0 = (await transitions(cams.A1.id)).length + (await transitions(cams.A2.id)).length;
      await Promise.all([svc.runSweep(V2 + THRESHOLD), svc.runSweep(V2 + THRESHOLD), svc.runSweep(V2 + THRESHOLD)]);
      await svc.runSweep(V2 + THRESHOLD);
      const n1 = (await transitions(cams.A1.id)).length + (await transitions(cams.A2.id)).length;
      expect(n1 - n0).toBe(2);
      expect((await t.db.query(`SELECT count(*)::int AS n FROM device_outages WHERE school_id = $1 AND closed_at IS NULL`, [seed.schoolA.id])).rows[0].n).toBe(
        1,
      );
    });

    it('loads the index one load at a time: a refresh asked for during a load gets one load that starts after it (shared), with the seed asked for', async () => {
      let inFlight = 0;
      let most = 0;
      const starts: boolean[] = []; // seeded?
      const load = svc.loadIndex.bind(svc);
      const spy = jest.spyOn(svc, 'loadIndex').mockImplementation(async (o) => {
        starts.push(o?.seedAt !== undefined);
        most = Math.max(most, ++inFlight);
        try {
          return await load(o);
        } finally {
          inFlight--;
        }
      });
      try {
        const running = svc.periodicRefresh(false);
        const before = starts.length; // the running load has started (it may have read before the callers' commits)
        const asked = [svc.refreshIndex(), svc.refreshIndex({ seed: true }), svc.refreshIndex(), svc.periodicRefresh(false)];
        await Promise.all([running, ...asked]);
        expect(most).toBe(1);
        expect(starts.slice(before)).toContain(true); // a load after the callers asked, seeding as one of them asked
        expect(starts.length - before).toBeLessThanOrEqual(2); // one follow-up for all of them (a periodic tick may add one)
      } finally {
        spy.mockRestore();
      }
    });

    it('flags a fault open longer than 24 h as overdue, for rectification', async () => {
      // B1 has been offline since V + THRESHOLD.
      await svc.sweep(V + THRESHOLD + 23 * 3_600_000);
      expect((await openOutage(seed.schoolB.id)).overdue_at).toBeNull();
      const res = await svc.sweep(V + THRESHOLD + 24 * 3_600_000);
      expect(res.overdue).toBeGreaterThanOrEqual(1);
      expect((await openOutage(seed.schoolB.id)).overdue_at).not.toBeNull();
      const op = (await t.userToken('operator')).token;
      const list = await t.http().get('/api/v1/device-health/faults/overdue').set(auth(op)).expect(200);
      expect(list.body.items.map((f: { deviceId: string }) => f.deviceId)).toContain(cams.B1.id);
      const ev = (
        await t.db.query(`SELECT payload FROM console_events WHERE type = 'device.outage' AND school_id = $1 ORDER BY seq DESC LIMIT 1`, [seed.schoolB.id])
      ).rows[0];
      expect(ev.payload).toMatchObject({ overdue: true, newlyOverdue: [{ deviceId: cams.B1.id, kind: 'camera' }] });
    });

    it('reports a flapping device once, not on every bounce', async () => {
      const V3 = V + 2 * 86_400_000;
      for (let k = 0; k < 5; k++) {
        const at = V3 + k * 10 * MIN;
        await svc.recordHeartbeats([cams.A3.id], new Date(at));
        await svc.sweep(at + THRESHOLD);
        expect((await status(cams.A3.id)).status).toBe('offline');
      }
      const flaps = (await t.db.query(`SELECT payload FROM console_events WHERE type = 'device.flapping'`)).rows.filter((r) =>
        r.payload.devices.some((d: { deviceId: string }) => d.deviceId === cams.A3.id),
      );
      expect(flaps).toHaveLength(1);
      expect(flaps[0].payload.devices[0]).toMatchObject({ deviceId: cams.A3.id, bounces: 3 });
      const row = (await t.db.query(`SELECT bounces FROM device_flapping WHERE device_id = $1`, [cams.A3.id])).rows[0];
      expect(row.bounces).toBe(5);
      // Quiet for a whole window: the flag clears.
      await svc.sweep(V3 + 5 * 10 * MIN + 61 * MIN);
      expect((await t.db.query(`SELECT 1 FROM device_flapping WHERE device_id = $1`, [cams.A3.id])).rowCount).toBe(0);
    });

    it('after a restart, declares a device never heard from offline only after a full threshold since boot', async () => {
      const res = await t
        .http()
        .post('/api/v1/cameras')
        .set(auth(admin))
        .send({
          schoolId: seed.schoolA.id,
          deviceId: '50011300001189999901',
          channelId: '50011300001329999901',
          name: 'A9',
          areaKind: 'perimeter',
        })
        .expect(201);
      const boot = V + 10 * 86_400_000;
      // A1 was last heard long before the (simulated) downtime: its stale deadline is lifted too.
      await svc.recordHeartbeats([cams.A1.id], new Date(boot - 86_400_000));
      await svc.seedAtBoot(boot);
      await svc.sweep(boot + THRESHOLD - 1);
      expect((await status(res.body.id)).status).toBe('unknown');
      expect((await status(cams.A1.id)).status).toBe('online');
      await svc.sweep(boot + THRESHOLD + 1);
      const s = await status(res.body.id);
      expect(s.status).toBe('offline');
      expect(s.last_seen_at).toBeNull(); // never heard: no invented last-seen time
      expect((await status(cams.A1.id)).status).toBe('offline');
    });
  });

  describe('user endpoints', () => {
    it('summarises the district with counts and online rate per school and zone', async () => {
      const op = (await t.userToken('operator')).token;
      const res = await t.http().get('/api/v1/device-health/summary').set(auth(op)).expect(200);
      expect(res.body.totals.total).toBe(6);
      expect(res.body.totals.online + res.body.totals.offline + res.body.totals.unknown + res.body.totals.fault).toBe(6);
      expect(res.body.zones).toHaveLength(1);
      expect(res.body.schools.total).toBe(2);
      const dev = await t.http().get('/api/v1/device-health/devices').query({ schoolId: seed.schoolA.id, kind: 'camera', limit: 2 }).set(auth(op)).expect(200);
      expect(dev.body).toMatchObject({ total: 4, limit: 2 });
      expect(dev.body.items).toHaveLength(2);
      const one = await t.http().get(`/api/v1/device-health/devices/${cams.A1.id}`).set(auth(op)).expect(200);
      expect(one.body).toMatchObject({ id: cams.A1.id, kind: 'camera', status: 'offline' });
      const hist = await t.http().get('/api/v1/device-health/transitions').query({ deviceId: cams.A1.id, limit: 3 }).set(auth(op)).expect(200);
      expect(hist.body.items).toHaveLength(3);
      expect(hist.body.total).toBeGreaterThan(3);
      const school = await t.http().get(`/api/v1/device-health/schools/${seed.schoolA.id}`).set(auth(op)).expect(200);
      expect(school.body.openOutage.faults.length).toBeGreaterThan(0);
    });

    it('computes the online rate per day over school hours, excluding maintenance windows', async () => {
      // B1 (school B's only device): online 07:30–12:30 on Monday 2025-03-03 (Asia/Shanghai), school hours 07:30–17:30.
      await t.db.query(
        `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at) VALUES
           ($1, 'camera', $2, 'unknown', 'online', '2025-03-03T07:30:00+08:00'), ($1, 'camera', $2, 'online', 'offline', '2025-03-03T12:30:00+08:00')`,
        [cams.B1.id, seed.schoolB.id],
      );
      const op = (await t.userToken('operator')).token;
      const q = { schoolId: seed.schoolB.id, from: '2025-03-03', to: '2025-03-08' };
      const r1 = await t.http().get('/api/v1/device-health/online-rate').query(q).set(auth(op)).expect(200);
      expect(r1.body.days[0]).toMatchObject({ date: '2025-03-03', schoolDay: true, countedSeconds: 36000, devices: 1, onlineRate: 0.5 });
      expect(r1.body.days[1]).toMatchObject({ date: '2025-03-04', onlineRate: 0 });
      expect(r1.body.days[5]).toMatchObject({ date: '2025-03-08', schoolDay: false, onlineRate: null });
      // Windows of the past as if declared then (the API takes none that start more than a few minutes ago).
      const window = async (cols: { schoolId: string; deviceId?: string }) =>
        (
          await t.db.query(
            `INSERT INTO maintenance_windows (school_id, device_id, device_kind, starts_at, ends_at, reason)
             VALUES ($1, $2, $3, '2025-03-03T12:30:00+08:00', '2025-03-03T17:30:00+08:00', '机房电源检修') RETURNING id`,
            [cols.schoolId, cols.deviceId ?? null, cols.deviceId ? 'camera' : null],
          )
        ).rows[0].id as string;
      const schoolWindow = await window({ schoolId: seed.schoolB.id });
      const r2 = await t.http().get('/api/v1/device-health/online-rate').query(q).set(auth(op)).expect(200);
      expect(r2.body.days[0]).toMatchObject({ countedSeconds: 18000, onlineRate: 1 });
      await t.db.query(`DELETE FROM maintenance_windows WHERE id = $1`, [schoolWindow]);
      // A device's own window leaves that device's time out (the school's hours stay counted for the others).
      const deviceWindow = await window({ schoolId: seed.schoolB.id, deviceId: cams.B1.id });
      const r3 = await t.http().get('/api/v1/device-health/online-rate').query(q).set(auth(op)).expect(200);
      expect(r3.body.days[0]).toMatchObject({ countedSeconds: 36000, onlineRate: 1 });
      await t.db.query(`DELETE FROM maintenance_windows WHERE id = $1`, [deviceWindow]);
    });

    it('counts online time one way for the report and the audits: up to now, from the current status when there is no history', async () => {
      // School C's only camera was registered online (as an import or a seed does) and has no transitions at all.
      const schoolC = (
        await t
          .http()
          .post('/api/v1/schools')
          .set(auth(admin))
          .send({ districtId: seed.district.id, code: 'SC', name: '丙小学', type: 'primary', timetable: TIMETABLE })
          .expect(201)
      ).body;
      const c1 = (
        await t
          .http()
          .post('/api/v1/cameras')
          .set(auth(admin))
          .send({ schoolId: schoolC.id, deviceId: '50011300001187777701', channelId: '50011300001327777701', name: 'C1', areaKind: 'perimeter' })
          .expect(201)
      ).body;
      await t.db.query(`UPDATE cameras SET status = 'online' WHERE id = $1`, [c1.id]);
      const online = t.app.get(OnlineTimeService);
      const noon = new Date('2025-03-03T12:30:00+08:00'); // Monday; school hours 07:30–17:30
      // Online all along; only the 5 h of school hours before `now` count, and the next day has not begun.
      let r = await online.dailyRate(schoolC.id, '2025-03-03', '2025-03-04', noon);
      expect(r.days).toEqual([
        { date: '2025-03-03', schoolDay: true, countedSeconds: 18000, devices: 1, onlineRate: 1 },
        { date: '2025-03-04', schoolDay: true, countedSeconds: 0, devices: 1, onlineRate: null },
      ]);
      // Offline 10:30–11:30: 4 h of 5 h, in the report and in the audits' per-school figures alike.
      await t.db.query(
        `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at) VALUES
           ($1, 'camera', $2, 'online', 'offline', '2025-03-03T10:30:00+08:00'), ($1, 'camera', $2, 'offline', 'online', '2025-03-03T11:30:00+08:00')`,
        [c1.id, schoolC.id],
      );
      r = await online.dailyRate(schoolC.id, '2025-03-03', '2025-03-03', noon);
      expect(r.days[0]).toMatchObject({ countedSeconds: 18000, onlineRate: 0.8 });
      const school = { id: schoolC.id, timetable: TIMETABLE, calendar: null };
      const day = (await online.inSchoolHours([school], '2025-03-03', noon, { kinds: ['camera', 'alarm_device'], now: noon })).get(schoolC.id)!;
      expect(day).toMatchObject({ devices: { camera: 1, alarm_device: 0 }, onlineMs: { camera: 4 * 3_600_000, alarm_device: 0 } });
      expect(day.notAlwaysOnline).toEqual([{ id: c1.id, kind: 'camera', name: 'C1', onlineMs: 4 * 3_600_000, windowMs: 5 * 3_600_000 }]);
      // Leave the fleet as the later tests count it.
      await t.http().delete(`/api/v1/cameras/${c1.id}`).set(auth(admin)).expect(204);
    });

    it('exports the online rate of every school per day, the same figures as the report (issue 13: exports of online rates)', async () => {
      const op = (await t.userToken('operator')).token;
      const range = { from: '2025-03-03', to: '2025-03-08' };
      const res = await t
        .http()
        .get('/api/v1/device-health/online-rate/export')
        .query({ ...range, format: 'csv' })
        .set(auth(op))
        .buffer(true)
        .expect(200);
      expect(res.headers['content-type']).toContain('text/csv');
      const buf = Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.text, 'utf8');
      expect([...buf.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const table = await readTable(buf);
      expect(table.header).toEqual(['日期', '学校代码', '学校名称', '上课日', '统计时长（小时）', '设备数', '在线率（%）']);
      // Six days of every school (A and B, and C of the test before, with no device left: no rate).
      expect(table.rows.filter((r) => [seed.schoolA.name, seed.schoolB.name].includes(String(r.cells[2])))).toHaveLength(6 * 2);
      expect(table.rows.filter((r) => r.cells[2] === '丙小学').every((r) => (r.cells[6] ?? '') === '')).toBe(true);
      // Each line says what the per-school report says for that school and day.
      for (const school of [seed.schoolA, seed.schoolB]) {
        const report = (
          await t
            .http()
            .get('/api/v1/device-health/online-rate')
            .query({ schoolId: school.id, ...range })
            .set(auth(op))
            .expect(200)
        ).body.days as { date: string; schoolDay: boolean; devices: number; onlineRate: number | null }[];
        const lines = table.rows.filter((r) => r.cells[2] === school.name).map((r) => r.cells);
        expect(lines.map((c) => [c[0], c[3], Number(c[5]), (c[6] ?? '') === '' ? null : Number(c[6])])).toEqual(
          report.map((d) => [d.date, d.schoolDay ? '是' : '否', d.devices, d.onlineRate === null ? null : Math.round(d.onlineRate * 10_000) / 100]),
        );
      }
      const b = table.rows.filter((r) => r.cells[2] === seed.schoolB.name).map((r) => r.cells);
      expect(b[0]).toEqual(['2025-03-03', 'SB', seed.schoolB.name, '是', '10', '1', '50']);
      // School staff: their own school, whatever they ask; XLSX by default; a range over 31 days is a field-level 400.
      const staff = (await t.userToken('school_security', seed.schoolA.id)).token;
      const mine = await t
        .http()
        .get('/api/v1/device-health/online-rate/export')
        .query({ ...range, format: 'csv' })
        .set(auth(staff))
        .buffer(true)
        .expect(200);
      const own = await readTable(Buffer.isBuffer(mine.body) ? mine.body : Buffer.from(mine.text, 'utf8'));
      expect(new Set(own.rows.map((r) => r.cells[2]))).toEqual(new Set([seed.schoolA.name]));
      await t
        .http()
        .get('/api/v1/device-health/online-rate/export')
        .query({ ...range, schoolId: seed.schoolB.id })
        .set(auth(staff))
        .expect(403);
      const xlsx = await t.http().get('/api/v1/device-health/online-rate/export').query(range).set(auth(op)).buffer(true).expect(200);
      expect(xlsx.headers['content-type']).toContain('spreadsheetml');
      const long = await t.http().get('/api/v1/device-health/online-rate/export').query({ from: '2025-03-01', to: '2025-04-01' }).set(auth(op)).expect(400);
      expect(long.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['to']);
      await t.http().get('/api/v1/device-health/online-rate/export').query(range).expect(401);
    });

    it('answers 401 without a token, 403 outside role or school, 400 on bad input', async () => {
      await t.http().get('/api/v1/device-health/summary').expect(401);
      const staff = (await t.userToken('school_security', seed.schoolA.id)).token;
      const own = await t.http().get('/api/v1/device-health/summary').set(auth(staff)).expect(200);
      expect(own.body.schools.items.map((s: { schoolId: string }) => s.schoolId)).toEqual([seed.schoolA.id]);
      await t.http().get(`/api/v1/device-health/schools/${seed.schoolB.id}`).set(auth(staff)).expect(404);
      await t.http().get('/api/v1/device-health/devices').query({ schoolId: seed.schoolB.id }).set(auth(staff)).expect(403);
      await t.http().get(`/api/v1/device-health/devices/${cams.B1.id}`).set(auth(staff)).expect(404);
      await t
        .http()
        .get('/api/v1/device-health/online-rate')
        .query({ schoolId: seed.schoolB.id, from: '2025-03-03', to: '2025-03-03' })
        .set(auth(staff))
        .expect(403);
      const op = (await t.userToken('operator')).token;
      const auditor = (await t.userToken('auditor')).token;
      await t
        .http()
        .post('/api/v1/device-health/maintenance-windows')
        .set(auth(auditor))
        .send({ startsAt: '2025-03-03T12:30:00Z', endsAt: '2025-03-03T13:30:00Z', reason: 'x' })
        .expect(403);
      const bad = await t.http().get('/api/v1/device-health/online-rate').query({ schoolId: seed.schoolB.id, from: 'yesterday' }).set(auth(op)).expect(400);
      expect(bad.body.error.code).toBe('VALIDATION_FAILED');
      await t.http().get('/api/v1/device-health/devices').query({ status: 'sleepy' }).set(auth(op)).expect(400);
      await t.http().get('/api/v1/device-health/transitions').query({ from: 'last week' }).set(auth(op)).expect(400);
      await t.http().get('/api/v1/device-health/devices/not-a-uuid').set(auth(op)).expect(400);
      await t
        .http()
        .post('/api/v1/device-health/maintenance-windows')
        .set(auth(admin))
        .send({ startsAt: '2025-03-03T12:30:00Z', endsAt: '2025-03-03T11:30:00Z', reason: 'x' })
        .expect(400);
    });

    it('maintenance windows: declared by the control center for the district, a school or a device, bounded, changed, ended, deleted, audited', async () => {
      const op = (await t.userToken('operator')).token;
      const staffA = (await t.userToken('school_security', seed.schoolA.id)).token;
      const iso = (ms: number) => new Date(Date.now() + ms).toISOString();
      const H = 3_600_000;
      const post = (token: string, body: object) => t.http().post('/api/v1/device-health/maintenance-windows').set(auth(token)).send(body);
      // Bounds (liveness.maintenance*: 72 h long, 30 days ahead, 5 min in the past), each a field-level 400.
      const fields = async (body: object) => (await post(op, body).expect(400)).body.error.details.fields.map((f: { field: string }) => f.field);
      expect(await fields({ schoolId: seed.schoolA.id, startsAt: iso(-H), endsAt: iso(H), reason: '补登' })).toEqual(['startsAt']);
      expect(await fields({ schoolId: seed.schoolA.id, startsAt: iso(H), endsAt: iso(74 * H), reason: '太长' })).toEqual(['endsAt']);
      expect(await fields({ schoolId: seed.schoolA.id, startsAt: iso(31 * 24 * H), endsAt: iso(31 * 24 * H + H), reason: '太远' })).toEqual(['startsAt']);
      expect(await fields({ deviceId: cams.B1.id, schoolId: seed.schoolA.id, startsAt: iso(H), endsAt: iso(2 * H), reason: 'x' })).toEqual(['deviceId']);
      await post(staffA, { schoolId: seed.schoolA.id, startsAt: iso(H), endsAt: iso(2 * H), reason: 'x' }).expect(403);
      // A school's, a device's (its school from the registry) and a district-wide one; the operator may declare them.
      const school = (await post(op, { schoolId: seed.schoolA.id, startsAt: iso(H), endsAt: iso(3 * H), reason: '机房电源检修' }).expect(201)).body;
      expect(school).toMatchObject({ schoolId: seed.schoolA.id, deviceId: null, status: 'upcoming' });
      const device = (await post(op, { deviceId: cams.B1.id, startsAt: iso(0), endsAt: iso(2 * H), reason: '更换摄像机' }).expect(201)).body;
      expect(device).toMatchObject({ schoolId: seed.schoolB.id, deviceId: cams.B1.id, deviceKind: 'camera', status: 'active' });
      // A district-wide window silences every device: the admin's (403 for an operator). It may not meet the others (below).
      expect((await post(op, { startsAt: iso(10 * H), endsAt: iso(11 * H), reason: '全区网络割接' }).expect(403)).body.error.code).toBe(
        'MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY',
      );
      const district = (await post(admin, { startsAt: iso(10 * H), endsAt: iso(11 * H), reason: '全区网络割接' }).expect(201)).body;
      // Windows covering the same devices never overlap, touch or come within liveness.maintenanceMinGapMinutes (60) of each
      // other — chained 71 h apart, 72 h each, they kept a school silent 355 h: 409 naming the window in the way.
      const overlap = async (token: string, body: object, windowId: string) =>
        expect((await post(token, body).expect(409)).body.error).toMatchObject({
          code: 'MAINTENANCE_WINDOW.OVERLAP',
          details: { windowId, startsAt: expect.stringMatching(/^\d{4}-.*Z$/), minGapMinutes: 60 },
        });
      await overlap(op, { schoolId: seed.schoolA.id, startsAt: iso(H), endsAt: iso(3 * H), reason: '重复' }, school.id); // identical
      await overlap(op, { schoolId: seed.schoolA.id, startsAt: iso(3 * H), endsAt: iso(74 * H), reason: '接着' }, school.id); // adjacent
      await overlap(op, { schoolId: seed.schoolA.id, startsAt: iso(3 * H + 30 * 60_000), endsAt: iso(6 * H), reason: '紧接' }, school.id);
      await overlap(op, { deviceId: cams.A1.id, startsAt: iso(2 * H), endsAt: iso(5 * H), reason: '设备' }, school.id); // its school's
      await overlap(op, { deviceId: cams.B1.id, startsAt: iso(H), endsAt: iso(4 * H), reason: '同设备' }, device.id);
      await overlap(op, { schoolId: seed.schoolB.id, startsAt: iso(H), endsAt: iso(4 * H), reason: '其设备' }, device.id); // a device of it
      await overlap(op, { schoolId: seed.schoolA.id, startsAt: iso(11 * H), endsAt: iso(12 * H), reason: '全区后' }, district.id);
      await overlap(admin, { startsAt: iso(9 * H + 30 * 60_000), endsAt: iso(9 * H + 45 * 60_000), reason: '全区' }, district.id);
      // Far enough apart, or another school: fine (deleted again below).
      const later = (await post(op, { schoolId: seed.schoolA.id, startsAt: iso(4 * H + 60_000), endsAt: iso(5 * H), reason: '另一次' }).expect(201)).body;
      // A change that would make one meet another is refused the same way.
      expect(
        (
          await t
            .http()
            .patch(`/api/v1/device-health/maintenance-windows/${later.id}`)
            .set(auth(op))
            .send({ endsAt: iso(9 * H + 30 * 60_000) })
            .expect(409)
        ).body.error.code,
      ).toBe('MAINTENANCE_WINDOW.OVERLAP');
      await t.http().delete(`/api/v1/device-health/maintenance-windows/${later.id}`).set(auth(op)).expect(204);
      // A school's staff read their school's and the district's, not another school's device window.
      const seen = await t.http().get('/api/v1/device-health/maintenance-windows').set(auth(staffA)).expect(200);
      expect(seen.body.items.map((w: { id: string }) => w.id).sort()).toEqual([school.id, district.id].sort());
      await t.http().get(`/api/v1/device-health/maintenance-windows/${device.id}`).set(auth(staffA)).expect(404);
      const active = await t.http().get('/api/v1/device-health/maintenance-windows').query({ status: 'active' }).set(auth(op)).expect(200);
      expect(active.body.items.map((w: { id: string }) => w.id)).toEqual([device.id]);
      // The console's status: windows in force.
      const summary = await t.http().get('/api/v1/device-health/summary').set(auth(op)).expect(200);
      expect(summary.body.maintenance).toMatchObject({ windowsTotal: 1, devicesOffline: expect.any(Number) });
      // Changes: an upcoming window's times and reason; a started one keeps its start; ended early; deleted only before it starts.
      const patch = (id: string, body: object) => t.http().patch(`/api/v1/device-health/maintenance-windows/${id}`).set(auth(op)).send(body);
      expect((await patch(school.id, { endsAt: iso(4 * H), reason: '机房电源检修（延长）' }).expect(200)).body).toMatchObject({
        reason: '机房电源检修（延长）',
      });
      expect((await patch(device.id, { startsAt: iso(-30 * 60_000) }).expect(400)).body.error.details.fields[0].field).toBe('startsAt');
      expect((await patch(device.id, { endsAt: iso(80 * H) }).expect(400)).body.error.details.fields[0].field).toBe('endsAt');
      expect((await t.http().delete(`/api/v1/device-health/maintenance-windows/${device.id}`).set(auth(op)).expect(409)).body.error.code).toBe(
        'MAINTENANCE_WINDOW.STARTED',
      );
      // Its details' times are ISO strings (a Date went out as {}).
      expect((await t.http().post(`/api/v1/device-health/maintenance-windows/${school.id}/end`).set(auth(op)).expect(409)).body.error).toMatchObject({
        code: 'MAINTENANCE_WINDOW.NOT_STARTED',
        details: { startsAt: new Date(school.startsAt).toISOString() },
      });
      const ended = (await t.http().post(`/api/v1/device-health/maintenance-windows/${device.id}/end`).set(auth(op)).expect(200)).body;
      expect(ended).toMatchObject({ status: 'ended', endedBy: expect.any(String) });
      expect(ended.endedEarlyAt).not.toBeNull();
      expect((await t.http().post(`/api/v1/device-health/maintenance-windows/${device.id}/end`).set(auth(op)).expect(409)).body.error.code).toBe(
        'MAINTENANCE_WINDOW.OVER',
      );
      expect((await patch(device.id, { reason: '晚了' }).expect(409)).body.error.code).toBe('MAINTENANCE_WINDOW.OVER');
      await t.http().delete(`/api/v1/device-health/maintenance-windows/${school.id}`).set(auth(op)).expect(204);
      // Ending early or deleting a district window only brings alerting back: an operator may; changing it may not.
      expect((await patch(district.id, { reason: '改' }).expect(403)).body.error.code).toBe('MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY');
      await t.http().delete(`/api/v1/device-health/maintenance-windows/${district.id}`).set(auth(op)).expect(204);
      const audit = await t.db.query(`SELECT action FROM audit_log WHERE entity = 'maintenance_window' AND entity_id = ANY($1::text[]) ORDER BY id`, [
        [school.id, device.id, district.id],
      ]);
      expect(audit.rows.map((r) => r.action)).toEqual(['create', 'create', 'create', 'update', 'end', 'delete', 'delete']);
      const events = await t.db.query(`SELECT payload->>'change' AS change FROM console_events WHERE type = 'device.maintenance' ORDER BY seq`);
      expect(events.rows.map((r) => r.change)).toEqual(['created', 'created', 'created', 'created', 'deleted', 'updated', 'ended', 'deleted', 'deleted']);
    });

    it('a device going offline inside a maintenance window is maintenance, not an outage; still offline after it, a fault from its end', async () => {
      const m1 = (
        await t
          .http()
          .post('/api/v1/cameras')
          .set(auth(admin))
          .send({ schoolId: seed.schoolA.id, deviceId: '50011300001188888801', channelId: '50011300001328888801', name: 'M1', areaKind: 'perimeter' })
          .expect(201)
      ).body;
      await svc.loadIndex({ seedAt: Date.now() });
      const W = V + 40 * 86_400_000;
      const H = 3_600_000;
      // M1's own window W … W+2h (in virtual time: inserted as if declared then).
      await t.db.query(
        `INSERT INTO maintenance_windows (school_id, device_id, device_kind, starts_at, ends_at, reason) VALUES ($1, $2, 'camera', $3, $4, '更换摄像机')`,
        [seed.schoolA.id, m1.id, new Date(W), new Date(W + 2 * H)],
      );
      const fault = async () => (await t.db.query(`SELECT since, recovered_at FROM device_faults WHERE device_id = $1 ORDER BY since DESC`, [m1.id])).rows;
      await svc.recordHeartbeats([m1.id], new Date(W + MIN));
      await svc.sweep(W + MIN + THRESHOLD);
      expect((await status(m1.id)).status).toBe('offline');
      expect(await fault()).toEqual([]);
      const batch = (
        await t.db.query(`SELECT payload FROM console_events WHERE type = 'device.status_batch' AND payload::text LIKE $1 ORDER BY seq DESC LIMIT 1`, [
          `%${m1.id}%`,
        ])
      ).rows[0];
      expect(batch.payload.changes.find((c: { deviceId: string }) => c.deviceId === m1.id)).toMatchObject({ to: 'offline', maintenance: true });
      const op = (await t.userToken('operator')).token;
      const list = await t.http().get('/api/v1/device-health/devices').query({ schoolId: seed.schoolA.id, status: 'offline' }).set(auth(op)).expect(200);
      expect(list.body.items.find((d: { id: string }) => d.id === m1.id)).toMatchObject({ maintenance: true });
      expect((await t.http().get('/api/v1/device-health/summary').set(auth(op)).expect(200)).body.maintenance.devicesOffline).toBe(1);
      // Still inside the window: nothing changes.
      await svc.sweep(W + H);
      expect(await fault()).toEqual([]);
      // The window is over and M1 is still offline: a fault (and the school's outage) from the window's end.
      await svc.sweep(W + 2 * H + MIN);
      expect((await fault()).map((f) => new Date(f.since).getTime())).toEqual([W + 2 * H]);
      const outage = (
        await t.db.query(`SELECT payload FROM console_events WHERE type = 'device.outage' AND school_id = $1 ORDER BY seq DESC LIMIT 1`, [seed.schoolA.id])
      ).rows[0];
      expect(outage.payload.wentOffline).toEqual([m1.id]);
      expect((await t.http().get('/api/v1/device-health/summary').set(auth(op)).expect(200)).body.maintenance.devicesOffline).toBe(0);
      // Back: the fault recovers as any other.
      await svc.recordHeartbeats([m1.id], new Date(W + 3 * H));
      expect((await fault())[0].recovered_at).not.toBeNull();
      await t.http().delete(`/api/v1/cameras/${m1.id}`).set(auth(admin)).expect(204);
    });
  });

  describe('simulator', () => {
    it('plays the registered devices through the HTTP batch API', async () => {
      const lines: string[] = [];
      await simulate(t.app, t.config, { url: t.baseUrl, offline: 0, flap: 0, durationMs: 1, progress: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(/devices\s+6 .*\n.*sent 6, accepted 6, rejected 0/);
      for (const c of ['A1', 'A2', 'A3', 'B1']) expect((await status(cams[c].id)).status).toBe('online');
    });

    it('started again with a fixed credential label, keeps one live gateway credential', async () => {
      const label = 'demo simulator (test)';
      for (let i = 0; i < 2; i++) await simulate(t.app, t.config, { url: t.baseUrl, offline: 0, flap: 0, durationMs: 1, credentialLabel: label });
      const { rows } = await t.db.query(`SELECT revoked_at FROM device_credentials WHERE label = $1 ORDER BY created_at`, [label]);
      expect(rows.map((r: { revoked_at: Date | null }) => r.revoked_at === null)).toEqual([false, true]);
    });
  });
});
