import { auth, seedMinimal, startApp, TestApp, TIMETABLE } from '../support/harness';

/**
 * Attack pass 12 on body bounds (BoundedArray): arrays inside a nested object (a school's timetable and
 * calendar) and in PartialType update DTOs (PATCH) must be refused by length before anything walks
 * their items, with a field-level 400 naming the field, as a bounded array at the top of a POST is.
 */
describe('bounded arrays nested in objects and in PATCH bodies (attack pass 12)', () => {
  let t: TestApp;
  let h: { Authorization: string };
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let postId: string;
  let deviceId: string;

  beforeAll(async () => {
    t = await startApp();
    h = auth((await t.userToken('admin')).token);
    seed = await seedMinimal(t, h.Authorization.slice(7));
    postId = (
      await t
        .http()
        .post('/api/v1/protection-posts')
        .set(h)
        .send({ code: 'PP-A12', schoolId: seed.schoolA.id, gate: '南门', windows: [{ kind: 'arrival' }] })
        .expect(201)
    ).body.id;
    deviceId = (await t.http().post('/api/v1/alarm-devices').set(h).send({ code: 'AB-A12', schoolId: seed.schoolA.id, areaKind: 'main_gate' }).expect(201)).body
      .id;
  });
  afterAll(async () => {
    await t.close();
  });

  const school = (extra: Record<string, unknown>) => ({
    districtId: seed.district.id,
    code: 'S-A12',
    name: '攻击小学',
    type: 'primary',
    timetable: TIMETABLE,
    ...extra,
  });
  const terms = (n: number) => Array.from({ length: n }, () => ({ start: '2026-09-01', end: '2027-01-20' }));
  const holidays = (n: number) => Array.from({ length: n }, () => '2026-10-01');
  const uuids = (n: number) => Array.from({ length: n }, () => '00000000-0000-4000-8000-000000000000');

  const cases: [string, 'post' | 'patch', () => string, () => Record<string, unknown>, string, number][] = [
    ['POST school, calendar.terms', 'post', () => '/api/v1/schools', () => school({ calendar: { terms: terms(24_000), holidays: [] } }), 'calendar.terms', 20],
    [
      'POST school, calendar.holidays',
      'post',
      () => '/api/v1/schools',
      () => school({ calendar: { terms: [], holidays: holidays(140_000) } }),
      'calendar.holidays',
      366,
    ],
    [
      'POST school, timetable.weekdays',
      'post',
      () => '/api/v1/schools',
      () => school({ timetable: { ...TIMETABLE, weekdays: Array(300_000).fill(1) } }),
      'timetable.weekdays',
      7,
    ],
    [
      'PATCH school, calendar.terms',
      'patch',
      () => `/api/v1/schools/${seed.schoolA.id}`,
      () => ({ calendar: { terms: terms(24_000), holidays: [] } }),
      'calendar.terms',
      20,
    ],
    [
      'PATCH protection post, windows',
      'patch',
      () => `/api/v1/protection-posts/${postId}`,
      () => ({ windows: Array.from({ length: 24_000 }, () => ({ kind: 'arrival' })) }),
      'windows',
      8,
    ],
    [
      'PATCH alarm device, linkedCameraIds',
      'patch',
      () => `/api/v1/alarm-devices/${deviceId}`,
      () => ({ linkedCameraIds: uuids(50_000) }),
      'linkedCameraIds',
      64,
    ],
  ];

  it.each(cases)('%s: refused by length at once, naming the field', async (_name, method, path, body, field, max) => {
    const payload = JSON.stringify(body());
    const t0 = Date.now();
    const res = await t.http()[method](path()).set(h).set('Content-Type', 'application/json').send(payload);
    const ms = Date.now() - t0;
    expect(res.status).toBe(400);
    // Only the length: not a reason per item.
    expect(res.body.error.details?.fields ?? res.body.error.fields ?? res.body.error).toEqual(
      expect.arrayContaining([expect.objectContaining({ field, reason: expect.stringContaining(`no more than ${max}`) })]),
    );
    expect(JSON.stringify(res.body).length).toBeLessThan(2000);
    // Parsing the 2 MB body is most of it; walking the items as well took 0.9–1.9 s here.
    expect(ms).toBeLessThan(800);
  });

  it('an object with a length key, or a string, where an array is expected is a field-level 400', async () => {
    for (const v of [{ length: 1e9 }, 'x'.repeat(100_000), { 0: 'a', length: 2 }]) {
      const res = await t.http().patch(`/api/v1/protection-posts/${postId}`).set(h).send({ windows: v });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain('windows');
    }
  });
});
