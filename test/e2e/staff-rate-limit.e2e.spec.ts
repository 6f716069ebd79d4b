import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

const BURST = 3;

/** One account cannot flood the operators' consoles with notes (attack F17): a per-user limit, a clear 429. */
describe('per-user limit on incident notes', () => {
  let t: TestApp;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;

  beforeAll(async () => {
    t = await startApp({ alarms: { userNotesPerSecond: 0.01, userNotesBurst: BURST } });
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
});
