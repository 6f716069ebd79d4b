import { ComplianceService } from '../../src/modules/compliance/compliance.service';
import { shanghaiDate } from '../../src/modules/school-day';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';

const SECRET = 'test-police-hmac-secret-0123456789';

/** Issue 11 §3: only police-linked buttons relay; button self-tests are recorded; "networked" is measured. */
describe('alarm buttons: police link and self-tests', () => {
  let t: TestApp;
  let police: PoliceReceiver;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let n = 0;
  let op: { token: string; username: string };
  let staffA: { token: string; username: string };
  let staffB: { token: string; username: string };

  const button = async (schoolId: string, policeLinked: boolean) => {
    const dev = (
      await t
        .http()
        .post('/api/v1/alarm-devices')
        .set(auth(admin))
        .send({ code: `BTN-${++n}`, schoolId, location: `岗亭${n}`, areaKind: 'main_gate', policeLinked })
        .expect(201)
    ).body;
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'alarm_device', subjectId: dev.id }).expect(201)).body;
    return { id: dev.id as string, authorization: cred.authorization as string };
  };
  const press = (b: { authorization: string }, eventId: string, extra: object = {}) =>
    t
      .http()
      .post('/api/v1/incidents/press')
      .set('Authorization', b.authorization)
      .send({ eventId, ...extra });

  beforeAll(async () => {
    police = await startPoliceReceiver(SECRET);
    t = await startApp({
      alarms: {
        escalationSeconds: { P1: [600, 1200], P2: [600], P3: [600], P4: [600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 50, backoffMs: 50, lateAfterSeconds: 30 },
        outbox: { pollMs: 100, redispatchAfterMs: 2000, batchSize: 100 },
      },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op = await t.userToken('operator');
    staffA = await t.userToken('school_security', seed.schoolA.id);
    staffB = await t.userToken('school_security', seed.schoolB.id);
  });
  const incidentsOf = async (deviceId: string) =>
    (await t.db.query(`SELECT id FROM incidents WHERE alarm_device_id = $1`, [deviceId])).rows.map((r: { id: string }) => r.id);
  const device = async (id: string) =>
    (await t.db.query(`SELECT last_test_at, last_test_by_name, last_police_relay_at FROM alarm_devices WHERE id = $1`, [id])).rows[0];
  afterAll(async () => {
    await t.close();
    await police.close();
  });

  it('relays a press of a police-linked button and never one of a button not linked to the police', async () => {
    const linked = await button(seed.schoolA.id, true);
    const unlinked = await button(seed.schoolA.id, false);
    const a = await press(linked, 'l-1').expect(201);
    const b = await press(unlinked, 'u-1').expect(201);
    expect(a.body.relay.required).toBe(true);
    expect(b.body.relay.required).toBe(false);
    await waitFor(async () => police.accepted.has(a.body.id), 10000, 'linked relay');
    // The linked one went out; by then the unlinked one had every chance to, and did not.
    expect(police.requests.has(b.body.id)).toBe(false);
    const ob = await t.db.query(`SELECT job_name FROM alarm_outbox WHERE payload->>'incidentId' = $1`, [b.body.id]);
    expect(ob.rows.map((r) => r.job_name)).not.toContain('alarms.police-relay');
  });

  it('records a test press (device flag): when and by whom, no incident, relayed to the police marked as a test — never dispatched', async () => {
    const b = await button(seed.schoolB.id, true);
    const date = shanghaiDate(new Date());
    const before = (await t.app.get(ComplianceService).compute(date, { schoolId: seed.schoolB.id })).find((r) => r.schoolId === seed.schoolB.id)!;
    expect(before.reasons.networked).toMatchObject({ noRecentPoliceRelay: { lastPoliceRelayAt: null, withinDays: 30 } });

    // The device's flag counts inside the test mode school staff started (attack F9: never on its own).
    await t.http().post(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffB.token)).send({ minutes: 5 }).expect(200);
    const r = await press(b, 'test-1', { test: true }).expect(201);
    expect(r.body).toMatchObject({ created: true, test: { alarmDeviceId: b.id, kind: 'device_flag', policeLinked: true, relay: { required: true } } });
    expect(await incidentsOf(b.id)).toEqual([]);
    const dev = await device(b.id);
    expect(new Date(dev.last_test_at).toISOString()).toBe(r.body.test.at);
    expect(dev.last_test_by_name).toBe(r.body.test.by);
    // A retried test press is the same record.
    const again = await press(b, 'test-1', { test: true }).expect(200);
    expect(again.body).toMatchObject({ created: false, test: { id: r.body.test.id } });
    // Relayed as a test (its own key), so the link is exercised; the button's last relay is stamped.
    const key = `test-${r.body.test.id}`;
    await waitFor(async () => police.bodies.get(key), 10000, 'test relayed');
    expect(police.bodies.get(key)).toMatchObject({ test: true, kind: 'button_self_test', button: { id: b.id }, school: { id: seed.schoolB.id } });
    await waitFor(async () => (await device(b.id)).last_police_relay_at, 10000, 'relay stamped');
    expect(police.delivered.get(key)).toBe(1);
    // Console event and audit entry.
    const ev = await t.db.query(
      `SELECT payload FROM console_events WHERE type = 'button.test' AND payload->>'alarmDeviceId' = $1 AND payload->>'change' = 'tested'`,
      [b.id],
    );
    expect(ev.rows.map((x) => x.payload)).toEqual([expect.objectContaining({ change: 'tested', kind: 'device_flag', testId: r.body.test.id })]);
    const audit = await t.db.query(`SELECT action FROM audit_log WHERE entity = 'alarm_device' AND entity_id = $1 ORDER BY id`, [b.id]);
    expect(audit.rows.map((x) => x.action)).toEqual(['create', 'test_mode_start', 'test']);
    // "Networked with the police" is measured: the delivered relay now counts for the school.
    const after = (await t.app.get(ComplianceService).compute(date, { schoolId: seed.schoolB.id })).find((x) => x.schoolId === seed.schoolB.id)!;
    expect(after.reasons.networked).not.toHaveProperty('noRecentPoliceRelay');
    // The records are listed per button (school staff: their own school only).
    const list = (await t.http().get(`/api/v1/alarm-buttons/${b.id}/tests`).set(auth(staffB.token)).expect(200)).body;
    expect(list.map((x: { id: string }) => x.id)).toEqual([r.body.test.id]);
    await t.http().get(`/api/v1/alarm-buttons/${b.id}/tests`).set(auth(staffA.token)).expect(404);
  });

  it("a device's own test flag outside an approved test mode is a real alarm, never a test (attack F9)", async () => {
    const b = await button(seed.schoolA.id, false);
    const r = await press(b, 'flag-1', { test: true }).expect(201);
    expect(r.body).toMatchObject({ status: 'raised', drill: false });
    expect(r.body).not.toHaveProperty('test');
    expect(await incidentsOf(b.id)).toEqual([r.body.id]);
    expect((await device(b.id)).last_test_at).toBeNull();
  });

  it("a guard's test mode makes one button's presses tests for a few minutes; ended, presses are real again", async () => {
    const b = await button(seed.schoolA.id, false);
    await t.http().post(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffB.token)).send({}).expect(404);
    await t.http().post(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffA.token)).send({ minutes: 600 }).expect(400);
    const on = await t.http().post(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffA.token)).send({ minutes: 5 }).expect(200);
    const until = new Date(on.body.testModeUntil).getTime();
    expect(until).toBeGreaterThan(Date.now() + 4 * 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 5 * 60_000);
    const r = await press(b, 'tm-1').expect(201);
    expect(r.body.test).toMatchObject({ kind: 'test_mode', by: expect.stringContaining(staffA.username), policeLinked: false, relay: { required: false } });
    expect(await incidentsOf(b.id)).toEqual([]);
    expect((await device(b.id)).last_test_at).not.toBeNull();
    await t.http().delete(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffA.token)).expect(200);
    const real = await press(b, 'tm-2').expect(201);
    expect(real.body).toMatchObject({ status: 'raised', drill: false });
    const audit = await t.db.query(`SELECT action FROM audit_log WHERE entity = 'alarm_device' AND entity_id = $1 ORDER BY id`, [b.id]);
    expect(audit.rows.map((x) => x.action)).toEqual(['create', 'test_mode_start', 'test', 'test_mode_end']);
  });

  it('caps test modes per button and Asia/Shanghai day: back-to-back test modes cannot keep a button silent (attack F9)', async () => {
    const b = await button(seed.schoolA.id, false);
    const other = await button(seed.schoolA.id, false);
    // Three starts (alarms.buttonTests.maxTestModesPerDay), each ended or renewed; the fourth is refused, in parallel too.
    for (let i = 0; i < 3; i++) await t.http().post(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffA.token)).send({ minutes: 30 }).expect(200);
    const refused = await Promise.all([0, 1].map(() => t.http().post(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(op.token)).send({ minutes: 5 })));
    for (const r of refused) {
      expect([r.status, r.body.error.code]).toEqual([429, 'BUTTON_TEST.DAILY_LIMIT']);
      // Until the next Shanghai midnight.
      const retry = Number(r.headers['retry-after']);
      expect(retry).toBeGreaterThan(0);
      expect(retry).toBeLessThanOrEqual(86_400);
      expect(new Date(Date.now() + retry * 1000).toLocaleTimeString('en-GB', { timeZone: 'Asia/Shanghai' })).toMatch(/^00:00:0\d$/);
    }
    // Ending test mode is always allowed; the refused starts left the button's test mode as it was; another button is not affected.
    await t.http().delete(`/api/v1/alarm-buttons/${b.id}/test-mode`).set(auth(staffA.token)).expect(200);
    expect((await press(b, 'cap-1').expect(201)).body).toMatchObject({ status: 'raised' });
    await t.http().post(`/api/v1/alarm-buttons/${other.id}/test-mode`).set(auth(staffA.token)).send({ minutes: 5 }).expect(200);
    const starts = await t.db.query(`SELECT count(*)::int AS n FROM alarm_button_test_modes WHERE alarm_device_id = $1`, [b.id]);
    expect(starts.rows[0].n).toBe(3);
  });

  it('resolving an alarm with outcome test records the test at the press time, by the resolver; the audit check then passes it', async () => {
    const tested = await button(seed.schoolA.id, true);
    const untested = await button(seed.schoolA.id, true);
    const inc = (await press(tested, 'o-1').expect(201)).body;
    await t.http().post(`/api/v1/incidents/${inc.id}/acknowledge`).set(auth(op.token)).send({}).expect(200);
    await t.http().post(`/api/v1/incidents/${inc.id}/resolve`).set(auth(op.token)).send({ outcome: 'test' }).expect(200);
    const dev = await device(tested.id);
    expect(new Date(dev.last_test_at).toISOString()).toBe(inc.firstPressAt);
    expect(dev.last_test_by_name).toBe(op.username);
    const rec = (await t.http().get(`/api/v1/alarm-buttons/${tested.id}/tests`).set(auth(op.token)).expect(200)).body;
    expect(rec).toEqual([expect.objectContaining({ kind: 'outcome', incidentId: inc.id, by: op.username, at: inc.firstPressAt })]);

    // The patrol audit's alarm_button check reads it: the tested button is no longer "test overdue".
    const plan = (
      await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(admin))
        .send({ name: '一键报警', cron: '0 9 * * *', scope: { kind: 'schools', ids: [seed.schoolA.id] }, checks: ['alarm_button'] })
        .expect(201)
    ).body;
    const run = (await t.http().post(`/api/v1/patrol-plans/${plan.id}/run`).set(auth(admin)).send({}).expect(201)).body;
    const [school] = (await t.http().get(`/api/v1/patrol-runs/${run.id}/schools`).set(auth(admin)).expect(200)).body.items;
    const bad = new Map(school.results.alarm_button.bad.map((x: { id: string; problems: string[] }) => [x.id, x.problems]));
    expect(bad.get(tested.id)).toEqual(['no_heartbeat']);
    expect(bad.get(untested.id)).toEqual(['no_heartbeat', 'test_overdue']);
  });
});
