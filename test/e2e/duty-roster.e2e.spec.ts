import { RosterService } from '../../src/modules/notifications/roster.service';
import { TestConsole } from '../support/console-client';
import { auth, startApp, TestApp } from '../support/harness';
import { type OpenApiDoc, responseValidator } from '../support/openapi-schema';

/**
 * The duty roster as a record (attack findings F3, F4 and two low ones): what has happened is not rewritten, a
 * person who may no longer hold a duty covers nothing, what is shown is what is stored, and shift times are
 * instants with their offset. Each test uses people of its own, so the roles' state of one does not leak into another.
 */
describe('duty roster: the record of who was on duty', () => {
  jest.setTimeout(60_000);
  let t: TestApp;
  let admin: string;
  let sup: string;
  let n = 0;

  const MIN = 60_000;
  const HOUR = 3_600_000;
  const DAY = 86_400_000;
  const iso = (ms: number) => new Date(ms).toISOString();
  const person = async (role: 'operator' | 'supervisor' = 'operator') => (await t.userToken(role, undefined, `roster_p${++n}`)).userId;
  const post = (body: object) => t.http().post('/api/v1/duty/shifts').set(auth(sup)).send(body);
  const patch = (id: string, body: object) => t.http().patch(`/api/v1/duty/shifts/${id}`).set(auth(sup)).send(body);
  const del = (id: string) => t.http().delete(`/api/v1/duty/shifts/${id}`).set(auth(sup));
  const get = async (id: string) => (await t.http().get(`/api/v1/duty/shifts/${id}`).set(auth(sup)).expect(200)).body;
  const fields = (r: { body: { error: { details: { fields: { field: string }[] } } } }) => r.body.error.details.fields.map((f) => f.field);
  /** A shift as it was entered days ago (the API no longer takes one in the past): straight into the table. */
  const pastShift = async (dutyRole: string, userId: string, from: number, to: number): Promise<string> =>
    (
      await t.db.query(`INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at, note) VALUES ($1, $2, $3, $4, '昨日白班') RETURNING id`, [
        dutyRole,
        userId,
        iso(from),
        iso(to),
      ])
    ).rows[0].id;

  beforeAll(async () => {
    t = await startApp({ notifications: { rosterCheckEveryMs: 0, reconcileEveryMs: 0 } });
    admin = (await t.userToken('admin')).token;
    sup = (await t.userToken('supervisor')).token;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('a shift that has ended is the record: its person and times are not changed, it is not deleted (409 DUTY_SHIFT.ENDED); its note may be corrected (audited)', async () => {
    const [a, b] = [await person(), await person()];
    const now = Date.now();
    const yesterday = await pastShift('operator_desk', a, now - DAY - 8 * HOUR, now - DAY + 4 * HOUR);
    const before = await get(yesterday);
    for (const body of [
      { userId: b }, // who was on duty
      { startsAt: iso(now - 2 * DAY) },
      { endsAt: before.endsAt }, // even "the same" end: an ended shift's times are not written again
      { endsAt: iso(now + HOUR) }, // nor brought back
      { note: '改', endsAt: before.endsAt },
    ]) {
      const r = await patch(yesterday, body).expect(409);
      expect(r.body.error).toMatchObject({ code: 'DUTY_SHIFT.ENDED', details: { endsAt: before.endsAt } });
    }
    expect((await del(yesterday).expect(409)).body.error.code).toBe('DUTY_SHIFT.ENDED');
    expect(await get(yesterday)).toEqual(before);

    // Its note is not who or when: it may be corrected, and the audit log keeps what it said.
    const fixed = (await patch(yesterday, { note: '昨日白班（临时由电话值守）' }).expect(200)).body;
    expect(fixed).toEqual({ ...before, note: '昨日白班（临时由电话值守）' });
    const audit = await t.db.query(`SELECT before->>'note' AS was, after->>'note' AS is FROM audit_log WHERE entity = 'duty_shift' AND entity_id = $1`, [
      yesterday,
    ]);
    expect(audit.rows).toEqual([{ was: '昨日白班', is: '昨日白班（临时由电话值守）' }]);

    // A shift ended by a handover is the record too: the outgoing person does not get the role back.
    const onDuty = (await post({ dutyRole: 'duty_supervisor', userId: a, startsAt: iso(now - 10 * MIN), endsAt: iso(now + 8 * HOUR) }).expect(201)).body;
    const h = (await t.http().post(`/api/v1/duty/shifts/${onDuty.id}/handover`).set(auth(sup)).send({ toUserId: b }).expect(200)).body;
    expect((await patch(onDuty.id, { endsAt: iso(now + 8 * HOUR) }).expect(409)).body.error.code).toBe('DUTY_SHIFT.ENDED');
    expect((await patch(onDuty.id, { userId: b }).expect(409)).body.error.code).toBe('DUTY_SHIFT.ENDED');
    expect((await del(onDuty.id).expect(409)).body.error.code).toBe('DUTY_SHIFT.ENDED');
    expect(await get(onDuty.id)).toEqual(h.ended);
    const dutyNow = (await t.http().get('/api/v1/duty/now').set(auth(sup)).expect(200)).body;
    expect(dutyNow.onDuty.duty_supervisor.map((s: { userId: string }) => s.userId)).toEqual([b]);
  });

  it('a shift on duty keeps its start and person (409 DUTY_SHIFT.STARTED: hand it over); its end moves, not into the past; it is ended, not deleted', async () => {
    const [a, b] = [await person(), await person()];
    const now = Date.now();
    const s = (await post({ dutyRole: 'operator_desk', userId: a, startsAt: iso(now - 10 * MIN), endsAt: iso(now + 8 * HOUR), note: '白班' }).expect(201)).body;
    for (const body of [{ userId: b }, { startsAt: iso(now - 20 * MIN) }, { startsAt: iso(now + HOUR) }, { userId: b, note: '换人' }]) {
      const r = await patch(s.id, body).expect(409);
      expect(r.body.error).toMatchObject({ code: 'DUTY_SHIFT.STARTED', details: { startsAt: s.startsAt } });
    }
    expect((await del(s.id).expect(409)).body.error.code).toBe('DUTY_SHIFT.STARTED');
    // Its start and person sent again unchanged (a form sends the whole shift) are no change; its end and note move.
    const moved = (await patch(s.id, { userId: a, startsAt: s.startsAt, endsAt: iso(now + 4 * HOUR), note: '白班（提前下班）' }).expect(200)).body;
    expect(moved).toMatchObject({ userId: a, startsAt: s.startsAt, endsAt: iso(now + 4 * HOUR), note: '白班（提前下班）' });
    const past = await patch(s.id, { endsAt: iso(Date.now() - 5 * MIN) }).expect(400);
    expect(fields(past)).toEqual(['endsAt']);
    // Ending it now: then it is the record.
    await patch(s.id, { endsAt: iso(Date.now()) }).expect(200);
    expect((await del(s.id).expect(409)).body.error.code).toBe('DUTY_SHIFT.ENDED');
    expect((await t.http().get('/api/v1/duty/now').set(auth(sup)).expect(200)).body.onDuty.operator_desk).toEqual([]);
  });

  it('a new or moved start lies at most notifications.rosterMaxBackdateMinutes in the past (field-level 400 on startsAt); a shift not begun changes freely and is deleted', async () => {
    const [a, b] = [await person(), await person('supervisor')];
    const now = Date.now();
    expect(t.config.notifications.rosterMaxBackdateMinutes).toBe(60);
    // Six days back: rewriting the past roster.
    const week = await post({ dutyRole: 'bureau_leader', userId: a, startsAt: iso(now - 6 * DAY), endsAt: iso(now + HOUR) }).expect(400);
    expect(week.body.error.details.fields).toEqual([{ field: 'startsAt', reason: 'must not be more than 60 minutes in the past' }]);
    expect(fields(await post({ dutyRole: 'bureau_leader', userId: a, startsAt: iso(now - 90 * MIN), endsAt: iso(now + HOUR) }).expect(400))).toEqual([
      'startsAt',
    ]);
    // Entered late, the shift begun this hour is taken; the bound is configuration.
    const late = (await post({ dutyRole: 'operator_desk', userId: a, startsAt: iso(now - 40 * MIN), endsAt: iso(now + HOUR) }).expect(201)).body;
    t.config.notifications.rosterMaxBackdateMinutes = 120;
    try {
      await post({ dutyRole: 'duty_supervisor', userId: a, startsAt: iso(now - 90 * MIN), endsAt: iso(now + HOUR) }).expect(201);
    } finally {
      t.config.notifications.rosterMaxBackdateMinutes = 60;
    }
    expect(late.startsAt).toBe(iso(now - 40 * MIN));

    // A shift ahead: person, start and end change; its start not moved far into the past; then deleted.
    const ahead = (await post({ dutyRole: 'duty_supervisor', userId: a, startsAt: iso(now + DAY), endsAt: iso(now + DAY + 8 * HOUR) }).expect(201)).body;
    const changed = (await patch(ahead.id, { userId: b, startsAt: iso(now + DAY + HOUR), endsAt: iso(now + DAY + 9 * HOUR) }).expect(200)).body;
    expect(changed).toMatchObject({ userId: b, startsAt: iso(now + DAY + HOUR), endsAt: iso(now + DAY + 9 * HOUR) });
    expect(fields(await patch(ahead.id, { startsAt: iso(now - 6 * DAY) }).expect(400))).toEqual(['startsAt']);
    expect(fields(await patch(ahead.id, { startsAt: iso(now - 3 * HOUR), endsAt: iso(now - 2 * HOUR) }).expect(400))).toEqual(['startsAt', 'endsAt']);
    await del(ahead.id).expect(204);
    await t.http().get(`/api/v1/duty/shifts/${ahead.id}`).set(auth(sup)).expect(404);
  });

  it('shift times are date-times with their offset: a bare day is a field-level 400 (it would be 08:00 Shanghai); range filters still take a day', async () => {
    const a = await person();
    const bareStart = await post({ dutyRole: 'operator_desk', userId: a, startsAt: '2027-01-10', endsAt: '2027-01-10T20:00:00+08:00' }).expect(400);
    expect(fields(bareStart)).toEqual(['startsAt']);
    expect(bareStart.body.error.details.fields[0].reason).toMatch(/offset.*not a bare day/);
    expect(fields(await post({ dutyRole: 'operator_desk', userId: a, startsAt: '2027-01-10T08:00:00+08:00', endsAt: '2027-01-11' }).expect(400))).toEqual([
      'endsAt',
    ]);
    expect(
      fields(await post({ dutyRole: 'operator_desk', userId: a, startsAt: '2027-01-10T08:00:00', endsAt: '2027-01-10T20:00:00+08:00' }).expect(400)),
    ).toEqual(['startsAt']);
    const ok = (await post({ dutyRole: 'operator_desk', userId: a, startsAt: '2027-01-10T08:00:00+08:00', endsAt: '2027-01-10T20:00:00+08:00' }).expect(201))
      .body;
    expect(ok.startsAt).toBe('2027-01-10T00:00:00.000Z');
    expect(fields(await patch(ok.id, { startsAt: '2027-01-10' }).expect(400))).toEqual(['startsAt']);
    // Other instants share the validator (a channel's silence end, here): the same refusal.
    const silence = await t
      .http()
      .post('/api/v1/notifications/channels/00000000-0000-4000-8000-000000000000/silence')
      .set(auth(sup))
      .send({ until: '2027-01-10', reason: 'x' })
      .expect(400);
    expect(fields(silence)).toEqual(['until']);
    // A list's range filter: a bare day is "from that day" (midnight UTC) as before.
    const listed = (await t.http().get('/api/v1/duty/shifts?from=2027-01-10&to=2027-01-11').set(auth(sup)).expect(200)).body as { id: string }[];
    expect(listed.map((s) => s.id)).toEqual([ok.id]);
  });

  it('a handover ends the shift to the millisecond: stored as shown, the next shift can start at the end shown', async () => {
    const [a, b] = [await person('supervisor'), await person('supervisor')];
    const now = Date.now();
    const s = (await post({ dutyRole: 'duty_supervisor', userId: a, startsAt: iso(now - 5 * MIN), endsAt: iso(now + 8 * HOUR) }).expect(201)).body;
    const { ended, started } = (await t.http().post(`/api/v1/duty/shifts/${s.id}/handover`).set(auth(sup)).send({ toUserId: b }).expect(200)).body;
    expect(started.startsAt).toBe(ended.endsAt);
    const stored = await t.db.query(
      `SELECT ends_at = $2::timestamptz AS same, ends_at = date_trunc('milliseconds', ends_at) AS ms FROM duty_shifts WHERE id = $1`,
      [s.id, ended.endsAt],
    );
    expect(stored.rows).toEqual([{ same: true, ms: true }]);
    // The outgoing person comes back at the end shown: adjacent, not an overlap.
    const back = await post({ dutyRole: 'duty_supervisor', userId: a, startsAt: ended.endsAt, endsAt: iso(now + 10 * HOUR) }).expect(201);
    expect(back.body.startsAt).toBe(ended.endsAt);
    // The table keeps milliseconds whoever writes it (a trigger cuts them): SQL with now() is stored to the millisecond.
    await t.db.query(`UPDATE duty_shifts SET ends_at = ends_at + interval '1 microsecond', starts_at = starts_at + interval '7 microseconds' WHERE id = $1`, [
      started.id,
    ]);
    const cut = await t.db.query(
      `SELECT starts_at = date_trunc('milliseconds', starts_at) AND ends_at = date_trunc('milliseconds', ends_at) AS ms, ends_at = $2::timestamptz AS same
         FROM duty_shifts WHERE id = $1`,
      [started.id, started.endsAt],
    );
    expect(cut.rows).toEqual([{ ms: true, same: true }]);
  });

  it('a disabled or demoted person covers nothing: not on duty now (listed apart, with why), a gap, no escalation recipient; counted again when restored', async () => {
    const roster = t.app.get(RosterService);
    const [x, y] = [await person('supervisor'), await person('supervisor')];
    const now = Date.now();
    const s = (await post({ dutyRole: 'bureau_leader', userId: x, startsAt: iso(now - 10 * MIN), endsAt: iso(now + 2 * DAY) }).expect(201)).body;
    // Four days on: y from 0 to 8 h, x from 8 to 12 h, then nobody.
    const day4 = now + 4 * DAY;
    await post({ dutyRole: 'bureau_leader', userId: y, startsAt: iso(day4), endsAt: iso(day4 + 8 * HOUR) }).expect(201);
    await post({ dutyRole: 'bureau_leader', userId: x, startsAt: iso(day4 + 8 * HOUR), endsAt: iso(day4 + 12 * HOUR) }).expect(201);
    const day4Gaps = async () =>
      (await roster.gaps(new Date(day4 + 6 * HOUR), new Date(day4 + 14 * HOUR)))
        .filter((g) => g.dutyRole === 'bureau_leader')
        .map((g) => [g.from, g.to, g.realFrom?.toISOString() ?? null]);
    const day4Edge = async () =>
      (await roster.gaps(new Date(day4 + 13 * HOUR), new Date(day4 + 14 * HOUR)))
        .filter((g) => g.dutyRole === 'bureau_leader')
        .map((g) => g.realFrom?.toISOString());
    expect(await day4Gaps()).toEqual([[iso(day4 + 12 * HOUR), null, iso(day4 + 12 * HOUR)]]);
    expect(await day4Edge()).toEqual([iso(day4 + 12 * HOUR)]);
    const state = async () => {
      const dutyNow = (await t.http().get('/api/v1/duty/now').set(auth(sup)).expect(200)).body;
      const gaps = (await t.http().get('/api/v1/duty/gaps').set(auth(sup)).expect(200)).body.gaps as { dutyRole: string; from: string; to: string | null }[];
      return {
        onDuty: dutyNow.onDuty.bureau_leader.map((v: { userId: string }) => v.userId),
        notCounted: dutyNow.notCounted.map((v: { id: string; notCounted: string }) => [v.id, v.notCounted]),
        nowGaps: dutyNow.gaps.filter((g: { dutyRole: string }) => g.dutyRole === 'bureau_leader').length,
        gaps: gaps.filter((g) => g.dutyRole === 'bureau_leader').length,
        recipients: await roster.onDutyUserIds('bureau_leader'),
        listed: (await get(s.id)).notCounted,
      };
    };
    const counted = { onDuty: [x], notCounted: [], nowGaps: 0, gaps: 0, recipients: [x], listed: null };
    expect(await state()).toEqual(counted);

    await t.http().patch(`/api/v1/users/${x}`).set(auth(admin)).send({ disabled: true }).expect(200);
    // The answers, with a shift not counted, are what the OpenAPI document declares.
    const doc = (await t.http().get('/api/docs-json').expect(200)).body as OpenApiDoc;
    for (const [path, url] of [
      ['/api/v1/duty/now', '/api/v1/duty/now'],
      ['/api/v1/duty/shifts/{id}', `/api/v1/duty/shifts/${s.id}`],
    ]) {
      const validate = responseValidator(doc, 'get', path, '200');
      const body = (await t.http().get(url).set(auth(sup)).expect(200)).body;
      expect({ path, valid: validate(body), errors: validate.errors ?? null }).toEqual({ path, valid: true, errors: null });
    }
    expect(await state()).toEqual({ onDuty: [], notCounted: [[s.id, 'user_disabled']], nowGaps: 1, gaps: 1, recipients: [], listed: 'user_disabled' });
    await t.http().patch(`/api/v1/users/${x}`).set(auth(admin)).send({ disabled: false }).expect(200);
    expect(await state()).toEqual(counted);

    // Demoted to a role that may not hold a duty (the rule that admitted them to the roster): the same.
    await t.http().patch(`/api/v1/users/${x}`).set(auth(admin)).send({ role: 'auditor' }).expect(200);
    expect(await state()).toEqual({ onDuty: [], notCounted: [[s.id, 'user_role']], nowGaps: 1, gaps: 1, recipients: [], listed: 'user_role' });
    // Later hours too: the gap begins where the last counted cover ends (y's), inside a window and at its edge
    // (a gap is reported once per real bounds: a shift that does not count must not move them).
    expect(await day4Gaps()).toEqual([[iso(day4 + 8 * HOUR), null, iso(day4 + 8 * HOUR)]]);
    expect(await day4Edge()).toEqual([iso(day4 + 8 * HOUR)]);
    await t.http().patch(`/api/v1/users/${x}`).set(auth(admin)).send({ role: 'supervisor' }).expect(200);
    expect(await state()).toEqual(counted);
    expect(await day4Gaps()).toEqual([[iso(day4 + 12 * HOUR), null, iso(day4 + 12 * HOUR)]]);
  });

  it("an operator's console hears at once when an admin disables, demotes or renames the supervisor on duty: on duty now follows; a change the roster does not show tells nobody", async () => {
    const x = (await t.userToken('supervisor', undefined, `roster_p${++n}`, '赵主任')).userId;
    const later = (await t.userToken('operator', undefined, `roster_p${++n}`, '钱值班')).userId;
    const done = (await t.userToken('operator', undefined, `roster_p${++n}`, '孙值班')).userId;
    const now = Date.now();
    const s = (await post({ dutyRole: 'duty_supervisor', userId: x, startsAt: iso(now - 10 * MIN), endsAt: iso(now + 8 * HOUR) }).expect(201)).body;
    const ahead = (await post({ dutyRole: 'operator_desk', userId: later, startsAt: iso(now + DAY), endsAt: iso(now + DAY + 8 * HOUR) }).expect(201)).body;
    await pastShift('operator_desk', done, now - DAY - 8 * HOUR, now - DAY);
    const op = await new TestConsole(t.baseUrl, (await t.userToken('operator')).token).ready();
    try {
      /** x as "on duty now" lists them among the duty supervisors (other tests' people are there too). */
      const dutySupervisors = async () =>
        ((await t.http().get('/api/v1/duty/now').set(auth(sup)).expect(200)).body.onDuty.duty_supervisor as { userId: string; userName: string }[])
          .filter((v) => v.userId === x)
          .map((v) => [v.userId, v.userName]);
      const rosterEvents = () => op.events.filter((e) => e.type === 'duty.roster_changed').map((e) => e.payload);
      /** The admin's change, and how long after it was sent the operator's console heard the roster changed (the event's payload). */
      const change = async (userId: string, body: object) => {
        const heard = rosterEvents().length;
        const sent = Date.now();
        await t.http().patch(`/api/v1/users/${userId}`).set(auth(admin)).send(body).expect(200);
        await op.until(() => rosterEvents().length > heard, 'duty.roster_changed', 5000);
        return { ms: Date.now() - sent, payloads: rosterEvents().slice(heard) };
      };
      expect(await dutySupervisors()).toEqual([[x, '赵主任']]);

      const disabled = await change(x, { disabled: true });
      expect(disabled.payloads).toEqual([{ shiftId: s.id, change: 'person', userId: x }]);
      expect(disabled.ms).toBeLessThan(1000);
      expect(await dutySupervisors()).toEqual([]);
      await change(x, { disabled: false });
      expect(await dutySupervisors()).toEqual([[x, '赵主任']]);

      const renamed = await change(x, { displayName: '赵副主任' });
      expect(renamed.payloads).toEqual([{ shiftId: s.id, change: 'person', userId: x }]);
      expect(renamed.ms).toBeLessThan(1000);
      expect(await dutySupervisors()).toEqual([[x, '赵副主任']]);

      const demoted = await change(x, { role: 'auditor' });
      expect(demoted.payloads).toEqual([{ shiftId: s.id, change: 'person', userId: x }]);
      expect(demoted.ms).toBeLessThan(1000);
      expect(await dutySupervisors()).toEqual([]);

      // Nothing the roster shows: a password, a move between two roles that may both hold a duty, the same name again;
      // someone whose shifts have all ended. Then a change to a shift ahead: the only events since are about it.
      const b = await person('supervisor');
      const bs = (await post({ dutyRole: 'bureau_leader', userId: b, startsAt: iso(now + 2 * DAY), endsAt: iso(now + 2 * DAY + HOUR) }).expect(201)).body;
      await op.until(() => rosterEvents().some((p) => p.shiftId === bs.id), 'the new shift');
      const heard = rosterEvents().length;
      await t.http().patch(`/api/v1/users/${b}`).set(auth(admin)).send({ password: 'another-horse-battery', role: 'admin' }).expect(200);
      await t.http().patch(`/api/v1/users/${x}`).set(auth(admin)).send({ displayName: '赵副主任' }).expect(200);
      await t.http().patch(`/api/v1/users/${done}`).set(auth(admin)).send({ disabled: true, displayName: '孙某' }).expect(200);
      const planned = await change(later, { disabled: true });
      expect(planned.payloads).toEqual([{ shiftId: ahead.id, change: 'person', userId: later }]);
      expect(rosterEvents().length).toBe(heard + 1);
    } finally {
      op.close();
    }
  });
});
