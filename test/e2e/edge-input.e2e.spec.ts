import { auth, PASSWORD, seedMinimal, startApp, TestApp } from '../support/harness';
import { TestConsole } from '../support/console-client';

/**
 * What the edge refuses before validation, services or Postgres see it (issue 12 §1, §2, §10):
 * ill-formed text anywhere (NUL, lone surrogates) as a field-level 400, JSON too deep or too
 * wide, bodies that are not JSON; and what the operations surface shows (docs, metrics).
 */
describe('edge input', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;

  beforeAll(async () => {
    t = await startApp({ http: { jsonMaxDepth: 16, jsonMaxKeys: 200 }, ops: { metricsToken: 'metrics-token-for-tests' } });
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });
  afterAll(() => t.close());

  const fieldsOf = (body: { error?: { details?: { fields?: { field: string }[] } } }) => (body.error?.details?.fields ?? []).map((f) => f.field);
  const POSTGRES_WORDS = /invalid byte sequence|Unicode (low|high) surrogate|0x00|cannot be converted|invalid input syntax/i;

  describe('ill-formed text is a 400 naming the field, wherever it is', () => {
    const BAD = ['ad\u0000min', '\ud800', 'a\udc00b', '\udbff\udbff'];

    it.each(BAD)('in an unauthenticated login body (%j)', async (bad) => {
      const res = await t.http().post('/api/v1/auth/login').send({ username: bad, password: 'x' });
      expect([res.status, res.body.error.code, fieldsOf(res.body)]).toEqual([400, 'VALIDATION_FAILED', ['username']]);
      expect(JSON.stringify(res.body)).not.toMatch(POSTGRES_WORDS);
    });

    it('in a query string, a nested body field, an object key and a path', async () => {
      const q = await t.http().get('/api/v1/cameras?q=%00').set(auth(admin));
      expect([q.status, fieldsOf(q.body)]).toEqual([400, ['q']]);
      const nested = await t
        .http()
        .patch(`/api/v1/schools/${seed.schoolA.id}`)
        .set(auth(admin))
        .send({ calendar: { terms: [], holidays: ['2026-10-01', '2026\u0000'] } });
      expect([nested.status, fieldsOf(nested.body)]).toEqual([400, ['calendar.holidays.1']]);
      const key = await t
        .http()
        .post('/api/v1/guards')
        .set(auth(admin))
        .send({ schoolId: seed.schoolA.id, name: '张伟', licenceNo: 'KEY-0001', ['ph\u0000one']: '1' });
      expect([key.status, fieldsOf(key.body)]).toEqual([400, ['ph\\0one']]);
      const path = await t.http().get('/api/v1/cameras/%00').set(auth(admin));
      expect(path.status).toBe(400);
      expect(fieldsOf(path.body)).toEqual(['(path)']);
    });

    it('never stores a lone surrogate (the driver would silently turn it into U+FFFD)', async () => {
      const guard = (
        await t.http().post('/api/v1/guards').set(auth(admin)).send({ schoolId: seed.schoolA.id, name: '王五', licenceNo: 'SUR-0001' }).expect(201)
      ).body;
      for (const name of ['王\ud800五', '\udfff', '王\ud83d']) {
        const res = await t.http().patch(`/api/v1/guards/${guard.id}`).set(auth(admin)).send({ name });
        expect([name, res.status, fieldsOf(res.body)]).toEqual([name, 400, ['name']]);
      }
      const ok = await t.http().patch(`/api/v1/guards/${guard.id}`).set(auth(admin)).send({ name: '王五😀' }).expect(200); // a real pair is fine
      expect(ok.body.name).toBe('王五😀');
      const { rows } = await t.db.query(`SELECT name FROM guards WHERE id = $1`, [guard.id]);
      expect(rows[0].name).toBe('王五😀');
    });

    it('over the console socket, with the same answer as REST', async () => {
      const op = (await t.userToken('operator')).token;
      const inc = (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolA.id, type: 'intrusion', location: '南门' }).expect(201))
        .body;
      const c = await new TestConsole(t.baseUrl, op).ready();
      try {
        for (const bad of ['门卫\u0000', '\ud800门卫']) {
          const rest = (await t.http().post(`/api/v1/incidents/${inc.id}/notes`).set(auth(op)).send({ note: bad }).expect(400)).body.error;
          expect(fieldsOf({ error: rest })).toEqual(['note']);
          const socket = await c.emitAck<{ ok: boolean; error: Record<string, unknown> }>('incident:note', { id: inc.id, note: bad });
          expect(socket).toEqual({ ok: false, error: { status: 400, code: rest.code, message: rest.message, details: rest.details } });
        }
      } finally {
        c.close();
      }
      const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM incident_timeline WHERE incident_id = $1 AND action = 'note'`, [inc.id]);
      expect(rows[0].n).toBe(0);
    });
  });

  describe('JSON bodies are bounded before they are parsed', () => {
    it('refuses 20,000 levels of nesting with a 400, not a stack overflow', async () => {
      const deep = `{"username":${'['.repeat(20_000)}${']'.repeat(20_000)},"password":"x"}`;
      const res = await t.http().post('/api/v1/auth/login').set('Content-Type', 'application/json').send(deep);
      expect([res.status, res.body.error.code]).toEqual([400, 'BODY_TOO_COMPLEX']);
      const objects = `${'{"a":'.repeat(17)}1${'}'.repeat(17)}`;
      expect((await t.http().post('/api/v1/auth/login').set('Content-Type', 'application/json').send(objects)).body.error.code).toBe('BODY_TOO_COMPLEX');
      // Brackets inside strings are text, not nesting.
      const inString = await t
        .http()
        .post('/api/v1/auth/login')
        .send({ username: '['.repeat(60), password: '{"a":['.repeat(40) });
      expect(inString.status).toBe(401);
    });

    it('refuses more keys than configured', async () => {
      const wide = Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`k${i}`, i]));
      const res = await t.http().post('/api/v1/auth/login').send(wide);
      expect([res.status, res.body.error.code]).toEqual([400, 'BODY_TOO_COMPLEX']);
    });

    it('takes JSON in UTF-8 only, and no form or text bodies (no cross-site login)', async () => {
      await t.http().post('/api/v1/auth/login').send({ username: 'admin1', password: PASSWORD }).expect(200);
      const form = await t.http().post('/api/v1/auth/login').type('form').send({ username: 'admin1', password: PASSWORD });
      expect([form.status, form.body.error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
      const text = await t
        .http()
        .post('/api/v1/auth/login')
        .set('Content-Type', 'text/plain')
        .send(JSON.stringify({ username: 'admin1', password: PASSWORD }));
      expect(text.status).toBe(415);
      const multipart = await t.http().post('/api/v1/auth/login').field('username', 'admin1').field('password', PASSWORD);
      expect(multipart.status).toBe(415);
      const utf16 = await t
        .http()
        .post('/api/v1/auth/login')
        .set('Content-Type', 'application/json; charset=utf-16le')
        .send(Buffer.from(JSON.stringify({ username: 'admin1', password: PASSWORD }), 'utf16le'));
      expect(utf16.status).toBe(415);
    });
  });

  describe('operations surface', () => {
    it('serves the API document with a CSP and no framing', async () => {
      const ui = await t.http().get('/api/docs/').expect(200);
      expect(ui.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(ui.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
      expect(ui.headers['x-frame-options']).toBe('DENY');
      const json = await t.http().get('/api/docs-json').expect(200);
      expect(json.headers['x-frame-options']).toBe('DENY');
    });

    it('answers metrics only with the metrics token', async () => {
      await t.http().get('/metrics').expect(401);
      await t.http().get('/metrics').set(auth(admin)).expect(401);
      await t.http().get('/metrics').set('Authorization', 'Bearer metrics-token-for-test').expect(401);
      const ok = await t.http().get('/metrics').set('Authorization', 'Bearer metrics-token-for-tests').expect(200);
      expect(ok.text).toContain('shouhu_http_request_duration_seconds');
    });

    it('does not serve the API document when ops.apiDocs is off (production)', async () => {
      const prod = await startApp({ ops: { apiDocs: false } });
      try {
        await prod.http().get('/api/docs-json').expect(404);
        await prod.http().get('/api/docs/').expect(404);
      } finally {
        await prod.close();
      }
    });
  });
});
