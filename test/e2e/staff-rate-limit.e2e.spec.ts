import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

const BURST = 3;
const RAISE_BURST = 4;

/** One account cannot flood the operators' consoles (attack F17): per-user limits with a clear 429; repeated alarms fold. */
describe('per-user limits on incident notes and raises; a user’s repeated alarm folds', () => {
  let t: TestApp;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;

  beforeAll(async () => {
    t = await startApp({ alarms: { userNotesPerSecond: 0.01, userNotesBurst: BURST, userRaisesPerMinute: 0.1, userRaiseBurst: RAISE_BURST } });
    seed = await seedMinimal(t, (await t.userToken('admin')).token);
  });
  afterAll(() => t.close());

  it('takes a burst of notes from one user, then answers 429 with Retry-After; another user is not affected', async () => {
    const op = (await t.userToken('operator')).token;
    const other = (await t.userToken('operator')).token;
    const inc = (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '南门' }).expect(201))
      .body;
    for (let i = 0; i < BURST; i++)
      await t
        .http()
        .post(`/api/v1/incidents/${inc.id}/notes`)
        .set(auth(op))
        .send({ note: `n${i}` })
        .expect(200);
    const refused = await t.http().post(`/api/v1/incidents/${inc.id}/notes`).set(auth(op)).send({ note: 'spam' });
    expect([refused.status, refused.body.error.code, refused.headers['retry-after']]).toEqual([429, 'INCIDENT.TOO_MANY_NOTES', expect.stringMatching(/^\d+$/)]);
    await t.http().post(`/api/v1/incidents/${inc.id}/notes`).set(auth(other)).send({ note: '另一位值班员' }).expect(200);
  });

  it('folds a school user’s repeated alarm (same school, type, place) into one incident with a press count, also when sent at once', async () => {
    const staff = await t.userToken('school_security', seed.schoolA.id);
    const send = (body: object = {}) =>
      t
        .http()
        .post('/api/v1/incidents')
        .set(auth(staff.token))
        .send({ schoolId: seed.schoolA.id, type: 'violence', location: '操场', ...body });
    const first = await send().expect(201);
    expect(first.body).toMatchObject({ created: true, folded: false, pressCount: 1 });
    // Ten more presses of the same alarm, five of them in parallel: all fold, none refused (the raise limit is for new incidents).
    for (let i = 0; i < 5; i++) expect((await send({ note: `第${i + 2}次` }).expect(200)).body).toMatchObject({ id: first.body.id, folded: true });
    const parallel = await Promise.all([0, 1, 2, 3, 4].map(() => send()));
    expect(parallel.map((r) => [r.status, r.body.id])).toEqual(Array(5).fill([200, first.body.id]));
    const { rows } = await t.db.query(`SELECT id, press_count FROM incidents WHERE source = 'staff' AND raised_by_id = $1`, [staff.userId]);
    expect(rows).toEqual([{ id: first.body.id, press_count: 11 }]);
    const presses = await t.db.query(`SELECT count(*)::int AS n FROM incident_timeline WHERE incident_id = $1 AND action = 'press'`, [first.body.id]);
    expect(presses.rows[0].n).toBe(10);
    // Another place, another type, or another user: their own incidents.
    expect((await send({ location: '食堂' }).expect(201)).body.id).not.toBe(first.body.id);
    expect((await send({ type: 'medical' }).expect(201)).body.id).not.toBe(first.body.id);
    const colleague = await t.userToken('school_security', seed.schoolA.id);
    await t.http().post('/api/v1/incidents').set(auth(colleague.token)).send({ schoolId: seed.schoolA.id, type: 'violence', location: '操场' }).expect(201);
    // Once the alarm is resolved, the same alarm again is a new incident.
    const op = (await t.userToken('operator')).token;
    await t.http().post(`/api/v1/incidents/${first.body.id}/acknowledge`).set(auth(op)).send({}).expect(200);
    await t.http().post(`/api/v1/incidents/${first.body.id}/resolve`).set(auth(op)).send({ outcome: 'false_alarm' }).expect(200);
    expect((await send().expect(201)).body.id).not.toBe(first.body.id);
  });

  it('limits the new incidents one user raises: 429 INCIDENT.TOO_MANY_RAISES with Retry-After; another user is not affected', async () => {
    const op = (await t.userToken('operator')).token;
    for (let i = 0; i < RAISE_BURST; i++)
      await t
        .http()
        .post('/api/v1/incidents')
        .set(auth(op))
        .send({ schoolId: seed.schoolB.id, type: 'other', location: `${i} 号楼` })
        .expect(201);
    const refused = await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolB.id, type: 'other', location: '刷屏' });
    expect([refused.status, refused.body.error.code, refused.headers['retry-after']]).toEqual([
      429,
      'INCIDENT.TOO_MANY_RAISES',
      expect.stringMatching(/^\d+$/),
    ]);
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incidents WHERE location = '刷屏'`);
    expect(rows[0].n).toBe(0);
    const other = (await t.userToken('operator')).token;
    await t.http().post('/api/v1/incidents').set(auth(other)).send({ schoolId: seed.schoolB.id, type: 'other', location: '刷屏' }).expect(201);
  });
});
