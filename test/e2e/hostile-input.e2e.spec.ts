import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Input no test of ours anticipated: every documented route gets malformed bodies, odd query
 * strings and odd path parameters from an authorised caller. Whatever it is, the answer is a
 * 4xx in the common error shape — never a 5xx, never a crash.
 */
describe('hostile input on every route', () => {
  let t: TestApp;
  let admin: string;
  let doc: { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };
  let realIds: string[];

  beforeAll(async () => {
    t = await startApp();
    admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    realIds = [seed.schoolA.id, seed.zone.id];
    doc = (await t.http().get('/api/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  const long = 'x'.repeat(70_000);
  const bodies: unknown[] = [
    [],
    [{ a: 1 }],
    'just a string',
    42,
    null,
    JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'),
    { id: long, name: long, code: long, schoolId: long, note: long, location: long },
    { schoolId: 12, type: ['intrusion'], name: { $ne: null }, limit: 'all', password: 7, heartbeats: 'many' },
    { a: { b: { c: { d: { e: { f: { g: { h: { i: { j: {} } } } } } } } } } },
    { schoolId: "'; DROP TABLE schools; --", code: '../../etc/passwd', name: '<script>alert(1)</script>' },
    { timetable: { weekdays: [0, 8, 'x'], arrival: { start: '25:99', end: null } }, windows: [{}], linkedCameraIds: ['nope'] },
  ];
  const queries = [
    'limit=-1&offset=abc&sort=;drop',
    'limit=1e309&offset=-0',
    'sort=__proto__&q=%00%ff',
    'schoolId=a&schoolId=b&zoneId[]=x',
    `q=${'%E5%AE%88'.repeat(40)}&from=yesterday&to=2026-13-45`,
    'date=2026-02-30&format=pdf&unassigned=maybe',
  ];
  const ids = ['not-a-uuid', '00000000-0000-0000-0000-000000000000', '%2e%2e%2f', 'A'.repeat(300)];

  // Runs first: the sweep below logs the admin out and deletes what it can.
  it('answers text Postgres cannot store (NUL bytes, lone surrogates) with a 400 in our words', async () => {
    const token = (await t.userToken('admin')).token;
    const districtId = (await t.http().get('/api/v1/districts').set(auth(token)).expect(200)).body.items[0].id;
    let n = 0;
    const writes: Record<string, (text: string) => Promise<{ status: number; body: { error?: { code: string } } }>> = {
      'incident location': (text) => t.http().post('/api/v1/incidents').set(auth(token)).send({ schoolId: realIds[0], type: 'intrusion', location: text }),
      'zone name': (text) =>
        t
          .http()
          .post('/api/v1/zones')
          .set(auth(token))
          .send({ districtId, code: `ZH${++n}`, name: text, level: 'primary' }),
      'school rename': (text) => t.http().patch(`/api/v1/schools/${realIds[0]}`).set(auth(token)).send({ name: text }),
    };
    const wrong: string[] = [];
    for (const [what, write] of Object.entries(writes)) {
      const control = await write('南门 ok');
      if (control.status >= 300) wrong.push(`${what} (control) → ${control.status}`);
      for (const bad of ['门卫\u0000室', '\udc00', 'a\ud800b']) {
        const res = await write(bad);
        const leaked = /invalid byte sequence|Unicode (low|high) surrogate|0x00|cannot be converted|invalid input syntax/i.test(JSON.stringify(res.body)); // Postgres's words
        if (res.status !== 400 || res.body.error?.code !== 'VALIDATION_FAILED' || leaked)
          wrong.push(`${what} ${JSON.stringify(bad)} → ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('answers every malformed request with a 4xx in the error shape', async () => {
    const failures: string[] = [];
    let requests = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const variants = path.includes('{') ? [...ids, ...realIds] : [''];
        for (const id of variants) {
          const url = path.replace(/\{[^}]+\}/g, encodeURIComponent(id)).replace(/%25/g, '%');
          const attempts: (() => Promise<{ status: number; body: { error?: unknown } }>)[] = [];
          for (const q of queries) attempts.push(() => t.http()[method as 'get'](`${url}?${q}`).set(auth(admin)));
          if (method !== 'get' && method !== 'delete') {
            for (const b of bodies)
              attempts.push(() => t.http()[method as 'post'](url).set(auth(admin)).set('Content-Type', 'application/json').send(JSON.stringify(b)));
            attempts.push(() => t.http()[method as 'post'](url).set(auth(admin)).set('Content-Type', 'application/json').send('{"unterminated": '));
            attempts.push(() => t.http()[method as 'post'](url).set(auth(admin)).set('Content-Type', 'text/plain').send('hello'));
          }
          // The variants of one method and URL together (a DELETE's, with different queries, race
          // each other as a double-click would); routes and ids one after another, in order.
          for (const res of await Promise.all(attempts.map((attempt) => attempt()))) {
            requests++;
            const ok = res.status < 500 && (res.status < 400 || typeof res.body?.error === 'object');
            if (!ok) failures.push(`${method.toUpperCase()} ${url} → ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`);
          }
        }
      }
    }
    expect(failures.slice(0, 20)).toEqual([]);
    expect(requests).toBeGreaterThan(500);
    // and the service is still healthy afterwards
    await t.http().get('/health/ready').expect(200);
    const polluted = ({} as Record<string, unknown>).polluted;
    expect(polluted).toBeUndefined();
  }, 300_000); // ~6,300 requests one after another: on a shared 2-core machine well past the default 60 s (a budget, not a speed target)
});
