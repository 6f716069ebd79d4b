import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { createButton, press } from '../support/devices';
import { PoliceReceiver, startPoliceReceiver, waitFor } from '../support/police-receiver';

const SECRET = 'test-police-hmac-secret-0123456789';
const MIN = 60_000;

/** Issue 11 §2: drill windows can no longer silence real alarms. */
describe('drill windows (governed) and drills made real', () => {
  let t: TestApp;
  let police: PoliceReceiver;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let op: string;
  let staffA: string;
  let staffB: string;

  beforeAll(async () => {
    police = await startPoliceReceiver(SECRET);
    t = await startApp({
      alarms: {
        // P1 escalates fast here: a drill's timers must do nothing, a drill made real must escalate.
        escalationSeconds: { P1: [0.3, 0.6], P2: [600], P3: [600], P4: [600] },
        policeRelay: { url: police.url, hmacSecret: SECRET, timeoutMs: 2000, attempts: 50, backoffMs: 50, lateAfterSeconds: 0.5 },
        outbox: { pollMs: 100, redispatchAfterMs: 2000, batchSize: 100 },
        drills: { maxWindowMinutes: 120, maxStartPastMinutes: 5, maxLeadDays: 90, relay: 'marked', relayLabel: '演练' },
      },
    });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op = (await t.userToken('operator')).token;
    staffA = (await t.userToken('school_security', seed.schoolA.id)).token;
    staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
  });
  afterAll(async () => {
    await t.close();
    await police.close();
  });

  // "Now" is read once per window: two reads a millisecond apart made the longest allowed window 1 ms too long.
  const window = (token: string, schoolId: string, fromMs: number, toMs: number, note = '消防演练') => {
    const now = Date.now();
    return t
      .http()
      .post('/api/v1/incidents/drill-windows')
      .set(auth(token))
      .send({ schoolId, startsAt: new Date(now + fromMs).toISOString(), endsAt: new Date(now + toMs).toISOString(), note });
  };
  // A place of its own each time: a user's repeat of their own open alarm at one place folds into it (attack F17).
  let room = 0;
  const raise = (token: string, schoolId: string, type = 'fire') =>
    t
      .http()
      .post('/api/v1/incidents')
      .set(auth(token))
      .send({ schoolId, type, location: `实验楼 ${++room} 室` })
      .expect(201);
  const fields = (body: { error: { details: { fields: { field: string }[] } } }) => body.error.details.fields.map((f) => f.field).sort();

  it('refuses an unbounded window with a field-level 400 (the 100-year window), for staff and operators alike', async () => {
    for (const token of [staffA, op]) {
      const r = await t
        .http()
        .post('/api/v1/incidents/drill-windows')
        .set(auth(token))
        .send({ schoolId: seed.schoolA.id, startsAt: '0001-01-01T00:00:00Z', endsAt: '9999-12-31T23:59:59Z' })
        .expect(400);
      expect(r.body.error.code).toBe('VALIDATION_FAILED');
      expect(fields(r.body)).toEqual(['endsAt', 'startsAt']);
    }
    // A century from now on, with well-formed dates: still bounded by length.
    for (const token of [staffA, op]) expect(fields((await window(token, seed.schoolA.id, -MIN, 100 * 365 * 86_400_000).expect(400)).body)).toEqual(['endsAt']);
    // Longer than alarms.drills.maxWindowMinutes; starting further back than maxStartPastMinutes; beyond maxLeadDays; end before start.
    expect(fields((await window(op, seed.schoolA.id, MIN, 122 * MIN).expect(400)).body)).toEqual(['endsAt']);
    expect(fields((await window(op, seed.schoolA.id, -10 * MIN, 30 * MIN).expect(400)).body)).toEqual(['startsAt']);
    expect(fields((await window(op, seed.schoolA.id, 91 * 86_400_000, 91 * 86_400_000 + MIN).expect(400)).body)).toEqual(['startsAt']);
    expect(fields((await window(op, seed.schoolA.id, 30 * MIN, 10 * MIN).expect(400)).body)).toEqual(['endsAt']);
    // The longest allowed window, starting within the allowed past, is taken.
    const ok = await window(op, seed.schoolA.id, -4 * MIN, 116 * MIN).expect(201);
    await t.http().delete(`/api/v1/incidents/drill-windows/${ok.body.id}`).set(auth(op)).expect(204);
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM drill_windows`);
    expect(rows[0].n).toBe(0);
  });

  it('refuses chained, back-to-back or overlapping windows that would silence a school longer than maxWindowMinutes in silencePeriodHours (attack F9)', async () => {
    const schoolC = (
      await t
        .http()
        .post('/api/v1/schools')
        .set(auth(admin))
        .send({ districtId: seed.district.id, code: 'SC', name: '丙小学', type: 'primary', timetable: seed.schoolA.timetable })
        .expect(201)
    ).body.id as string;
    const H = 60 * MIN;
    await window(op, schoolC, H, H + 90 * MIN).expect(201);
    // Back to back (90 + 60 min), and overlapping so that the union grows past 120 min: refused with the figures.
    const chained = await window(op, schoolC, H + 90 * MIN, H + 150 * MIN).expect(409);
    expect(chained.body.error).toMatchObject({ code: 'DRILL_WINDOW.SILENCE_LIMIT', details: { silencedMinutes: 150, maxWindowMinutes: 120, periodHours: 24 } });
    expect((await window(op, schoolC, H + 80 * MIN, H + 140 * MIN).expect(409)).body.error.code).toBe('DRILL_WINDOW.SILENCE_LIMIT');
    // Before it, with a gap: every window within the period counts.
    expect((await window(op, schoolC, H - 60 * MIN, H - 20 * MIN).expect(409)).body.error.details.silencedMinutes).toBe(130);
    // Overlapping within the cap, and a window more than the period later, are fine.
    await window(op, schoolC, H + 30 * MIN, H + 100 * MIN).expect(201);
    await window(op, schoolC, H + 90 * MIN + 24 * H, H + 200 * MIN + 24 * H).expect(201);
    // Two requests at once that each fit alone but not together: one is taken.
    const both = await Promise.all([0, 1].map((i) => window(op, schoolC, 3 * 24 * H + i * 70 * MIN, 3 * 24 * H + (i + 1) * 70 * MIN)));
    expect(both.map((r) => r.status).sort()).toEqual([201, 409]);
    // Other schools are not affected.
    const a = await window(op, seed.schoolA.id, 10 * 24 * H, 10 * 24 * H + 100 * MIN).expect(201);
    await t.http().delete(`/api/v1/incidents/drill-windows/${a.body.id}`).set(auth(op)).expect(204);
    await t.db.query(`DELETE FROM drill_windows WHERE school_id = $1`, [schoolC]);
  });

  it("makes school staff's window a pending request that marks nothing until an operator approves it", async () => {
    const req = await window(staffB, seed.schoolB.id, -MIN, 30 * MIN).expect(201);
    expect(req.body).toMatchObject({ status: 'pending', schoolId: seed.schoolB.id, schoolName: '乙小学', approvedBy: null });
    // Pending: a real alarm stays real.
    expect((await raise(staffB, seed.schoolB.id)).body.drill).toBe(false);
    // Staff can neither approve nor end; another school's staff do not see it.
    await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/approve`).set(auth(staffB)).expect(403);
    await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/end`).set(auth(staffB)).expect(403);
    await t.http().delete(`/api/v1/incidents/drill-windows/${req.body.id}`).set(auth(staffA)).expect(404);
    const ok = await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/approve`).set(auth(op)).expect(200);
    expect(ok.body).toMatchObject({ status: 'approved', approvedBy: expect.any(String) });
    const again = await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/approve`).set(auth(op)).expect(409);
    expect(again.body.error.code).toBe('DRILL_WINDOW.NOT_PENDING');
    // Approved: the school's alarms are drills; school A's are not.
    expect((await raise(staffB, seed.schoolB.id)).body.drill).toBe(true);
    expect((await raise(staffA, seed.schoolA.id)).body.drill).toBe(false);
    // Staff may not delete an approved window (only withdraw a pending request).
    await t.http().delete(`/api/v1/incidents/drill-windows/${req.body.id}`).set(auth(staffB)).expect(403);

    // Visible on the console while active, and audited.
    const active = (await t.http().get('/api/v1/incidents/drill-windows').query({ active: true }).set(auth(op)).expect(200)).body;
    expect(active.map((w: { id: string }) => w.id)).toEqual([req.body.id]);
    const ev = await t.db.query(
      `SELECT payload->>'change' AS change, school_id FROM console_events WHERE type = 'drill.window' AND payload->>'id' = $1 ORDER BY seq`,
      [req.body.id],
    );
    expect(ev.rows).toEqual([
      { change: 'requested', school_id: seed.schoolB.id },
      { change: 'approved', school_id: seed.schoolB.id },
    ]);

    // Ended early: alarms from now on are real again; it is no longer active.
    const ended = await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/end`).set(auth(op)).expect(200);
    expect(new Date(ended.body.endsAt).getTime()).toBeLessThanOrEqual(Date.now());
    expect((await raise(staffB, seed.schoolB.id)).body.drill).toBe(false);
    expect((await t.http().get('/api/v1/incidents/drill-windows').query({ active: true }).set(auth(staffB)).expect(200)).body).toEqual([]);
    expect((await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/end`).set(auth(op)).expect(409)).body.error.code).toBe('DRILL_WINDOW.OVER');
    await t.http().delete(`/api/v1/incidents/drill-windows/${req.body.id}`).set(auth(op)).expect(204);
    const audit = await t.db.query(`SELECT action FROM audit_log WHERE entity = 'drill_window' AND entity_id = $1 ORDER BY id`, [req.body.id]);
    expect(audit.rows.map((r) => r.action)).toEqual(['create', 'approve', 'end', 'delete']);
  });

  it('refuses a drill flag from school staff (403) and ignores one from a device: outside an approved window an alarm is real', async () => {
    const r = await t
      .http()
      .post('/api/v1/incidents')
      .set(auth(staffA))
      .send({ schoolId: seed.schoolA.id, type: 'fire', location: '实验楼', drill: true })
      .expect(403);
    expect(r.body.error.code).toBe('AUTH.ROLE_FORBIDDEN');
    const dev = (
      await t
        .http()
        .post('/api/v1/alarm-devices')
        .set(auth(admin))
        .send({ code: 'BTN-DRILL', schoolId: seed.schoolA.id, location: '门卫室', areaKind: 'gatehouse', policeLinked: true })
        .expect(201)
    ).body;
    const cred = (await t.http().post('/api/v1/device-credentials').set(auth(admin)).send({ kind: 'alarm_device', subjectId: dev.id }).expect(201)).body;
    const press = await t.http().post('/api/v1/incidents/press').set('Authorization', cred.authorization).send({ eventId: 'd-1', drill: true }).expect(201);
    expect(press.body.drill).toBe(false);
    await waitFor(
      async () => (await t.db.query(`SELECT escalation_level FROM incidents WHERE id = $1`, [press.body.id])).rows[0].escalation_level >= 1,
      10000,
      'escalated',
    );
    // A control-center user may still mark an alarm raised for an exercise as a drill.
    expect(
      (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolA.id, type: 'fire', location: '操场', drill: true }).expect(201)).body
        .drill,
    ).toBe(true);
  });

  it('a real press after the window has ended opens its own real incident instead of joining the open drill (adversarial pass F11)', async () => {
    const button = await createButton(t, admin, { schoolId: seed.schoolB.id, code: 'BTN-F11', policeLinked: true });
    const win = await window(op, seed.schoolB.id, -MIN, 30 * MIN).expect(201);
    const during = await press(t.baseUrl, button, 'f11-1');
    expect(during.status).toBe(201);
    const drill = (await during.json()) as { id: string; drill: boolean };
    expect(drill.drill).toBe(true);
    // A second press inside the window folds into the drill.
    expect(((await (await press(t.baseUrl, button, 'f11-2')).json()) as { id: string }).id).toBe(drill.id);
    await t.http().post(`/api/v1/incidents/drill-windows/${win.body.id}/end`).set(auth(op)).expect(200);
    const after = await press(t.baseUrl, button, 'f11-3');
    expect(after.status).toBe(201);
    const real = (await after.json()) as { id: string; drill: boolean; relay: { required: boolean } };
    expect(real.id).not.toBe(drill.id);
    expect(real).toMatchObject({ drill: false, relay: { required: true } });
    await waitFor(
      async () => (await t.db.query(`SELECT escalation_level FROM incidents WHERE id = $1`, [real.id])).rows[0].escalation_level >= 1,
      10000,
      'real one escalated',
    );
    // And the drill itself is still a drill, its press count untouched by the real press.
    expect((await t.db.query(`SELECT drill, press_count FROM incidents WHERE id = $1`, [drill.id])).rows[0]).toEqual({ drill: true, press_count: 2 });
    // The drill is made real although the button has an open real incident (attack A5: was 409 CONFLICT.DUPLICATE):
    // exactly one of concurrent attempts wins, the others are told it is no longer a drill.
    const attempts = await Promise.all(
      Array.from({ length: 6 }, () => t.http().post(`/api/v1/incidents/${drill.id}/make-real`).set(auth(op)).send({ note: '确为真实警情' })),
    );
    expect(attempts.map((r) => r.status).sort((a, b) => a - b)).toEqual([200, 409, 409, 409, 409, 409]);
    expect(attempts.filter((r) => r.status === 409).map((r) => r.body.error.code)).toEqual(Array(5).fill('ALARM.NOT_A_DRILL'));
    expect(attempts.find((r) => r.status === 200)!.body).toMatchObject({ id: drill.id, drill: false, status: 'raised' });
    await waitFor(async () => police.bodies.get(`${drill.id}-real`), 10000, 'the drill relayed as real');
    const open = await t.db.query(`SELECT id, drill FROM incidents WHERE alarm_device_id = $1 AND status = 'raised' ORDER BY first_press_at`, [button.id]);
    expect(open.rows).toEqual([
      { id: drill.id, drill: false },
      { id: real.id, drill: false },
    ]);
    // Further presses fold into the newest open real incident.
    expect(((await (await press(t.baseUrl, button, 'f11-4')).json()) as { id: string }).id).toBe(real.id);
  });

  it('lets the school withdraw its own pending request, and answers 404 for a missing window', async () => {
    const req = await window(staffA, seed.schoolA.id, 60 * MIN, 90 * MIN).expect(201);
    await t.http().delete(`/api/v1/incidents/drill-windows/${req.body.id}`).set(auth(staffA)).expect(204);
    await t.http().post(`/api/v1/incidents/drill-windows/${req.body.id}/approve`).set(auth(op)).expect(404);
    await t.http().post('/api/v1/incidents/drill-windows/not-a-uuid/approve').set(auth(op)).expect(400);
  });

  it('a drill does not escalate; one action makes it real: relayed to the police as real, and it escalates', async () => {
    const w = await window(op, seed.schoolA.id, -MIN, 30 * MIN).expect(201);
    expect(w.body.status).toBe('approved');
    const drill = (await raise(staffA, seed.schoolA.id)).body;
    expect(drill.drill).toBe(true);
    // Its level-1 timer ran (its outbox row is done) and changed nothing.
    await waitFor(
      async () => (await t.db.query(`SELECT done_at FROM alarm_outbox WHERE job_id = $1`, [`esc-${drill.id}-2`])).rows[0]?.done_at,
      10000,
      'drill timers ran',
    );
    expect((await t.db.query(`SELECT escalation_level FROM incidents WHERE id = $1`, [drill.id])).rows[0].escalation_level).toBe(0);
    // It went to the police marked as a drill (alarms.drills.relay 'marked').
    await waitFor(async () => police.bodies.get(drill.id), 10000, 'drill relayed');
    expect(police.bodies.get(drill.id)).toMatchObject({ drill: true, drillLabel: '演练' });

    await t.http().post(`/api/v1/incidents/${drill.id}/make-real`).set(auth(staffA)).send({}).expect(403);
    const real = await t.http().post(`/api/v1/incidents/${drill.id}/make-real`).set(auth(op)).send({ note: '不是演练' }).expect(200);
    expect(real.body).toMatchObject({ drill: false, status: 'raised' });
    await waitFor(async () => police.bodies.get(`${drill.id}-real`), 10000, 'relayed as real');
    expect(police.bodies.get(`${drill.id}-real`)).toMatchObject({ incidentId: drill.id, drill: false, madeRealFromDrill: true });
    await waitFor(
      async () => (await t.db.query(`SELECT escalation_level FROM incidents WHERE id = $1`, [drill.id])).rows[0].escalation_level === 2,
      10000,
      'escalated',
    );
    const tl = (await t.http().get(`/api/v1/incidents/${drill.id}`).set(auth(op)).expect(200)).body.timeline.map((e: { action: string }) => e.action);
    expect(tl).toEqual(expect.arrayContaining(['made_real', 'escalated']));
    const again = await t.http().post(`/api/v1/incidents/${drill.id}/make-real`).set(auth(op)).send({}).expect(409);
    expect(again.body.error.code).toBe('ALARM.NOT_A_DRILL');
    const audit = await t.db.query(`SELECT action FROM audit_log WHERE entity = 'incident' AND entity_id = $1 AND action = 'make_real'`, [drill.id]);
    expect(audit.rows).toHaveLength(1);
    await t.http().post(`/api/v1/incidents/drill-windows/${w.body.id}/end`).set(auth(op)).expect(200);
  });

  it('keeps drills from the police when configured (alarms.drills.relay none), and still relays one made real', async () => {
    t.config.alarms.drills.relay = 'none';
    try {
      const w = await window(op, seed.schoolB.id, -MIN, 30 * MIN).expect(201);
      const drill = (await raise(staffB, seed.schoolB.id)).body;
      expect(drill.drill).toBe(true);
      await waitFor(
        async () => (await t.db.query(`SELECT done_at FROM alarm_outbox WHERE job_id = $1`, [`relaywatch-${drill.id}`])).rows[0]?.done_at,
        10000,
        'relay and watch ran',
      );
      expect(police.requests.has(drill.id)).toBe(false);
      expect((await t.db.query(`SELECT relay_late FROM incidents WHERE id = $1`, [drill.id])).rows[0].relay_late).toBe(false);
      await t.http().post(`/api/v1/incidents/${drill.id}/make-real`).set(auth(op)).send({}).expect(200);
      await waitFor(async () => police.bodies.get(`${drill.id}-real`), 10000, 'relayed as real');
      expect(police.bodies.get(`${drill.id}-real`)).toMatchObject({ drill: false });
      expect(police.badSignatures).toBe(0);
      await t.http().delete(`/api/v1/incidents/drill-windows/${w.body.id}`).set(auth(op)).expect(204);
    } finally {
      t.config.alarms.drills.relay = 'marked';
    }
  });
});
