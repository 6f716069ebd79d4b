import { auth, seedMinimal, startApp, TestApp } from '../support/harness';
import { type OpenApiDoc, responseValidator } from '../support/openapi-schema';

/**
 * Real answers of key routes match the schemas the OpenAPI document declares for them (Ajv against
 * the document the api serves at /api/docs-json): the response side is derived from the code's
 * types (scripts/openapi-responses.js), and this is where the types meet what is really sent —
 * a raw row with a column the view type does not name, a numeric that Postgres hands over as a
 * string, a field typed non-null that is null.
 */
describe('OpenAPI: real answers match their declared schemas', () => {
  let t: TestApp;
  let doc: OpenApiDoc;
  let admin: string;
  beforeAll(async () => {
    t = await startApp();
    doc = (await t.http().get('/api/docs-json').expect(200)).body;
    admin = (await t.userToken('admin')).token;
  }, 180_000);
  afterAll(() => t.close());

  const check = (method: string, path: string, body: unknown, status = '200') => {
    const validate = responseValidator(doc, method, path, status);
    if (!validate(body))
      throw new Error(`${method.toUpperCase()} ${path}: ${JSON.stringify(validate.errors, null, 1).slice(0, 2000)}\n${JSON.stringify(body).slice(0, 1000)}`);
  };

  it('registry, incidents, device health, users, audit log and patrol plans', async () => {
    const seed = await seedMinimal(t, admin);
    const h = auth(admin);
    const schoolId = seed.schoolA.id;
    await t.http().patch(`/api/v1/schools/${schoolId}`).set(h).send({ lat: 29.383, lng: 106.54 }).expect(200);
    const op = (await t.userToken('operator')).token;

    const raised = await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId, type: 'intrusion', location: '南门' }).expect(201);
    check('post', '/api/v1/incidents', raised.body, '201');
    const id = raised.body.id as string;
    const ack = await t.http().post(`/api/v1/incidents/${id}/acknowledge`).set(auth(op)).send({ note: '已知悉' }).expect(200);
    check('post', '/api/v1/incidents/{id}/acknowledge', ack.body);

    const gets: [string, string][] = [
      ['/api/v1/schools', '/api/v1/schools?limit=10'],
      ['/api/v1/schools/{id}', `/api/v1/schools/${schoolId}`],
      ['/api/v1/zones', '/api/v1/zones'],
      ['/api/v1/incidents', '/api/v1/incidents?limit=10'],
      ['/api/v1/incidents/{id}', `/api/v1/incidents/${id}`],
      ['/api/v1/incidents/stats', '/api/v1/incidents/stats'],
      ['/api/v1/auth/me', '/api/v1/auth/me'],
      ['/api/v1/users', '/api/v1/users'],
      ['/api/v1/device-health/summary', '/api/v1/device-health/summary'],
      ['/api/v1/device-health/schools/{schoolId}', `/api/v1/device-health/schools/${schoolId}`],
      ['/api/v1/audit-log', '/api/v1/audit-log?limit=20'],
      ['/api/v1/rectification-tasks', '/api/v1/rectification-tasks'],
      ['/api/v1/compliance/district', '/api/v1/compliance/district'],
    ];
    for (const [path, url] of gets) check('get', path, (await t.http().get(url).set(h).expect(200)).body);

    const plan = await t
      .http()
      .post('/api/v1/patrol-plans')
      .set(h)
      .send({ name: '每日巡查', cron: '0 9 * * *', scope: { kind: 'district' }, checks: ['camera_online_rate'] })
      .expect(201);
    check('post', '/api/v1/patrol-plans', plan.body, '201');
    check('get', '/api/v1/patrol-plans', (await t.http().get('/api/v1/patrol-plans').set(h).expect(200)).body);
  }, 180_000);
});
