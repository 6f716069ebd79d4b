import { randomUUID } from 'node:crypto';
import { ModulesContainer } from '@nestjs/core';
import { ACCESS_KEY } from '../../src/infra/access/decorators';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

/*
 * The documented API swept route by route, in four parts that each boot a service of their own
 * (they create, delete and log out as they go): who may call each route, what no answer may carry,
 * what school staff learn of another school's records, strict dates on every date field. One file
 * rather than four because each test file pays for loading the service's modules (2-5 s here).
 */

/**
 * Every route, present and future, declares who may call it, and refuses a caller without
 * credentials. Routes are discovered, not listed by hand, so a new route cannot slip through.
 */
describe('route access', () => {
  let t: TestApp;
  let doc: { paths: Record<string, Record<string, unknown>> };
  beforeAll(async () => {
    t = await startApp();
    doc = (await t.http().get('/api/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  it('every controller method declares its access rule', () => {
    const modules = [...t.app.get(ModulesContainer).values()];
    const undeclared: string[] = [];
    let methods = 0;
    for (const wrapper of modules.flatMap((m) => [...m.controllers.values()])) {
      const cls = wrapper.metatype as (new () => unknown) | null;
      if (!cls) continue;
      for (const name of Object.getOwnPropertyNames(cls.prototype)) {
        const fn = (cls.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof fn !== 'function' || Reflect.getMetadata('path', fn) === undefined) continue;
        methods++;
        if (!Reflect.getMetadata(ACCESS_KEY, fn) && !Reflect.getMetadata(ACCESS_KEY, cls)) undeclared.push(`${cls.name}.${name}`);
      }
    }
    expect(undeclared).toEqual([]);
    expect(methods).toBeGreaterThan(30);
  });

  it('answers 401 without credentials on every non-public route', async () => {
    const PUBLIC = new Set(['POST /api/v1/auth/login', 'POST /api/v1/auth/refresh', 'GET /health/live', 'GET /health/ready', 'GET /metrics']);
    const id = '00000000-0000-4000-8000-000000000000';
    const wrong: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const key = `${method.toUpperCase()} ${path}`;
        if (PUBLIC.has(key)) continue;
        const url = path.replace(/\{[^}]+\}/g, id);
        const res = await t.http()[method as 'get'](url).send({});
        checked++;
        if (res.status !== 401) wrong.push(`${key} → ${res.status}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(30);
  });

  it('refuses write routes to the read-only auditor with 403', async () => {
    // POSTs that only read (start watching a camera the auditor may see, live or its recording).
    const READ_POSTS = new Set(['POST /api/v1/cameras/{id}/stream', 'POST /api/v1/cameras/{id}/playback']);
    const auditor = (await t.userToken('auditor')).token;
    const id = '00000000-0000-4000-8000-000000000000';
    const allowed: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (path.startsWith('/api/v1/auth/') || path.startsWith('/api/v1/device/')) continue;
      for (const method of Object.keys(ops).filter((m) => m !== 'get' && !READ_POSTS.has(`${m.toUpperCase()} ${path}`))) {
        const http = t.http();
        const res = await http[method as 'post'](path.replace(/\{[^}]+\}/g, id))
          .set(auth(auditor))
          .send({});
        const deviceRoute = res.status === 401 && String(res.body.error?.code).startsWith('AUTH.DEVICE_');
        if (res.status !== 403 && !deviceRoute) allowed.push(`${method.toUpperCase()} ${path} → ${res.status}`);
      }
    }
    expect(allowed).toEqual([]);
  });

  it('answers 400 with field errors to a malformed body on every route that takes one', async () => {
    const admin = (await t.userToken('admin')).token;
    const id = '00000000-0000-4000-8000-000000000000';
    const wrong: string[] = [];
    let checked = 0;
    type Op = { requestBody?: { content?: Record<string, unknown> } };
    for (const [path, ops] of Object.entries(doc.paths) as [string, Record<string, Op>][]) {
      for (const [method, op] of Object.entries(ops)) {
        if (!['post', 'put', 'patch'].includes(method) || !op.requestBody?.content?.['application/json']) continue;
        // A logout ends its session whatever the body says (auth.e2e: odd bodies still log out); it is not refused.
        if (`${method.toUpperCase()} ${path}` === 'POST /api/v1/auth/logout') continue;
        const http = t.http();
        const res = await http[method as 'post'](path.replace(/\{[^}]+\}/g, id))
          .set(auth(admin))
          .send({ unexpectedField: { nested: [1, 2] } });
        if (res.status === 401 && String(res.body.error?.code).startsWith('AUTH.DEVICE_')) continue; // device route
        checked++;
        if (res.status !== 400 || !Array.isArray(res.body.error?.details?.fields))
          wrong.push(`${method.toUpperCase()} ${path} → ${res.status} ${res.body.error?.code}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(15);
  });

  it('serves the OpenAPI UI and document', async () => {
    await t.http().get('/api/docs').redirects(1).expect(200);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/schools', '/api/v1/cameras/{id}', '/api/v1/auth/login']));
  });
});

type Doc = { paths: Record<string, Record<string, unknown>> };

/** Keys no answer may carry (issue 12 §5). */
const SECRET_KEY = /password|hash|secret/i;
/** Where a secret is the point of the answer: a device credential's secret is shown once, when it is created. */
const SHOWN_ONCE = new Set(['POST /api/v1/device-credentials']);
/** The audit trail records that a secret changed, never the secret: its value is this marker. */
const REDACTED = '[redacted]';

/** Every `path.to.key` whose name looks like a secret, with a value other than the redaction marker. */
function secretKeys(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretKeys(v, `${path}${i}.`));
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(SECRET_KEY.test(k) && v !== REDACTED ? [`${path}${k}`] : []), ...secretKeys(v, `${path}${k}.`)]);
}

/**
 * Responses are built from an allow-list per resource, never from an entity (issue 12 §5): every
 * documented route is called with real ids and valid bodies (creates and updates included) and
 * no answer may carry a password, hash or secret.
 */
describe('response allow-lists', () => {
  let t: TestApp;
  let admin: string;
  let doc: Doc;

  beforeAll(async () => {
    t = await startApp();
    admin = (await t.userToken('admin')).token;
    doc = (await t.http().get('/api/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  it('no route answers with a password, hash or secret', async () => {
    const seed = await seedMinimal(t, admin);
    const A = seed.schoolA.id;
    const make = async (path: string, body: object, token = admin) => {
      const res = await t.http().post(`/api/v1/${path}`).set(auth(token)).send(body);
      if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const camera = await make('cameras', {
      schoolId: A,
      deviceId: '50011300001320000001',
      channelId: '50011300001310000001',
      name: '南门',
      areaKind: 'main_gate',
    });
    const button = await make('alarm-devices', { schoolId: A, code: 'AB-1', areaKind: 'gatehouse', linkedCameraIds: [camera.id] });
    const guard = await make('guards', { schoolId: A, name: '张伟', licenceNo: 'LIC-0001' });
    const post = await make('protection-posts', { schoolId: A, code: 'PP-1', gate: '南门', windows: [{ kind: 'arrival' }] });
    await make('users', { username: 'walker.staff', password: 'walker-password-1', role: 'school_security', schoolId: A });
    const user = await make('users', { username: 'walker.other', password: 'walker-password-1', role: 'auditor' });
    const cred = await make('device-credentials', { kind: 'alarm_device', subjectId: button.id });
    const gateway = await make('device-credentials', { kind: 'gateway', schoolId: A });
    const staffLogin = (await t.http().post('/api/v1/auth/login').send({ username: 'walker.staff', password: 'walker-password-1' }).expect(200)).body;
    const incident = await make('incidents', { schoolId: A, type: 'intrusion', location: '南门' });
    const incident2 = await make('incidents', { schoolId: A, type: 'medical', location: '操场' });
    const plan = await make('patrol-plans', { name: '巡查', cron: '0 9 * * *', scope: { kind: 'district' }, checks: ['guard_staffing', 'gate_open'] });
    const run = (await t.http().post(`/api/v1/patrol-plans/${plan.id}/run`).set(auth(admin)).send({}).expect(201)).body;
    const checkin = await make('post-checkins', { postId: post.id, personName: '王警官', personRole: 'police' });
    // Maintenance windows are bounded from now (liveness.maintenance*): a fixed date would be refused one day.
    const maintenance = await make('device-health/maintenance-windows', {
      schoolId: A,
      startsAt: new Date(Date.now() + 3_600_000).toISOString(),
      endsAt: new Date(Date.now() + 7_200_000).toISOString(),
      reason: '检修',
    });
    const round = await make('patrol-rounds', { size: 1 }, (await t.userToken('operator')).token);
    await t.db.query(
      `INSERT INTO rectification_tasks (school_id, subject_key, check_name, title, deadline) VALUES ($1, 'walker', 'gate_open', '南门', now() + interval '1 day')`,
      [A],
    );
    const task = (await t.http().get('/api/v1/rectification-tasks').set(auth(admin)).expect(200)).body.items[0];
    // A photo of the fix for the closing to name (its row only: the walk sends JSON, not the upload's multipart).
    const [{ id: taskPhoto }] = (
      await t.db.query(
        `INSERT INTO video_evidence (school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, source)
         VALUES ($1, to_char(now(), 'YYYY-MM-DD') || '/' || gen_random_uuid() || '.jpg', repeat('0', 64), 1, 64, 48, 'rectification.photo', $2, now(), 'upload') RETURNING id`,
        [A, task.id],
      )
    ).rows;

    const ids: Record<string, string> = {
      users: user.id,
      'device-credentials': cred.id,
      districts: seed.district.id,
      zones: seed.zone.id,
      groups: seed.group.id,
      schools: A,
      cameras: camera.id,
      'alarm-devices': button.id,
      guards: guard.id,
      'protection-posts': post.id,
      incidents: incident.id,
      'patrol-plans': plan.id,
      'patrol-runs': run.id,
      'rectification-tasks': task.id,
      'post-checkins': checkin.id,
      'patrol-rounds': round.id,
      'device-health/devices': camera.id,
      'device-health/schools': A,
      'device-health/maintenance-windows': maintenance.id,
      'device-health/outages': '00000000-0000-4000-8000-000000000000',
    };
    const bodies: Record<string, object> = {
      'POST /api/v1/auth/login': { username: 'walker.staff', password: 'walker-password-1' },
      'POST /api/v1/auth/refresh': { refreshToken: staffLogin.refreshToken },
      'POST /api/v1/auth/password': { currentPassword: 'walker-password-1', newPassword: 'walker-password-9' },
      'POST /api/v1/auth/logout': {},
      'POST /api/v1/users': { username: 'walker.op', password: 'walker-password-2', role: 'operator' },
      'PATCH /api/v1/users/{id}': { displayName: '巡查员', password: 'walker-password-3' },
      'POST /api/v1/device-credentials': { kind: 'gateway', schoolId: A },
      'POST /api/v1/districts': { code: 'd2', name: '二区' },
      'PATCH /api/v1/districts/{id}': { name: '测试区' },
      'POST /api/v1/zones': { districtId: seed.district.id, code: 'Z2', name: '二学区', level: 'middle' },
      'PATCH /api/v1/zones/{id}': { name: '一学区' },
      'POST /api/v1/groups': { districtId: seed.district.id, code: 'G2', name: '二集团' },
      'PATCH /api/v1/groups/{id}': { name: '一集团' },
      'POST /api/v1/schools': { districtId: seed.district.id, code: 'SC', name: '丙小学', type: 'primary', timetable: seed.schoolA.timetable },
      'PATCH /api/v1/schools/{id}': { address: '南街 1 号' },
      'POST /api/v1/cameras': { schoolId: A, deviceId: '50011300001320000002', channelId: '50011300001310000002', name: '北门', areaKind: 'side_gate' },
      'PATCH /api/v1/cameras/{id}': { location: '门外' },
      'POST /api/v1/alarm-devices': { schoolId: A, code: 'AB-2', areaKind: 'dormitory' },
      'PATCH /api/v1/alarm-devices/{id}': { location: '门卫室' },
      'POST /api/v1/guards': { schoolId: A, name: '李四', licenceNo: 'LIC-0002' },
      'PATCH /api/v1/guards/{id}': { phone: '023-1234567' },
      'POST /api/v1/protection-posts': { schoolId: A, code: 'PP-2', gate: '北门', windows: [{ kind: 'dismissal' }] },
      'PATCH /api/v1/protection-posts/{id}': { requiredHeadcount: 3 },
      'POST /api/v1/device-health/maintenance-windows': {
        startsAt: new Date(Date.now() + 3_600_000).toISOString(),
        endsAt: new Date(Date.now() + 7_200_000).toISOString(),
        reason: '全区检修',
      },
      'PATCH /api/v1/device-health/maintenance-windows/{id}': { reason: '检修（改）' },
      'POST /api/v1/incidents/press': { eventId: 'walker-1' },
      'POST /api/v1/incidents/device-reports': { eventId: 'walker-2', type: 'video_alarm', cameraId: camera.id },
      'POST /api/v1/device/heartbeats': { heartbeats: [{ deviceId: camera.id, kind: 'camera' }] },
      'POST /api/v1/incidents': { schoolId: A, type: 'fire', location: '食堂' },
      // Drill windows are bounded from now (alarms.drills): a fixed date would be refused one day.
      'POST /api/v1/incidents/drill-windows': {
        schoolId: A,
        startsAt: new Date(Date.now() + 3_600_000).toISOString(),
        endsAt: new Date(Date.now() + 5_400_000).toISOString(),
      },
      'POST /api/v1/incidents/{id}/resolve': { outcome: 'false_alarm' },
      'POST /api/v1/incidents/{id}/cancel': { reason: '误按' },
      'POST /api/v1/incidents/{id}/notes': { note: '已到场' },
      'POST /api/v1/patrol-plans': { name: '夜巡', cron: '0 22 * * *', scope: { kind: 'district' }, checks: ['gate_open'] },
      'PATCH /api/v1/patrol-plans/{id}': { name: '巡查 2' },
      'POST /api/v1/rectification-tasks/{id}/close': { note: '已关门', photoIds: [taskPhoto] },
      'POST /api/v1/post-checkins': { postId: post.id, personName: '张伟' }, // a guard on the roster (attack F8a)
      'POST /api/v1/guard-patrols': { schoolId: A, guardName: '张伟' },
      'POST /api/v1/gate-events': { schoolId: A, gate: '南门', state: 'closed' },
      'POST /api/v1/patrol-rounds/{id}/cameras/{cameraId}/verdict': { verdict: 'ok' },
      'POST /api/v1/compliance/snapshots': {},
    };
    const queries: Record<string, object> = { 'GET /api/v1/device-health/online-rate': { schoolId: A, from: '2026-03-02', to: '2026-03-03' } };
    // The incident walked through its lifecycle; the second one is the one cancelled.
    const incidentFor: Record<string, string> = { cancel: incident2.id };

    const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ path, method })));
    const SESSION = ['GET /api/v1/auth/me', 'POST /api/v1/auth/login', 'POST /api/v1/auth/refresh', 'POST /api/v1/auth/password', 'POST /api/v1/auth/logout'];
    const order = (o: { path: string; method: string }) =>
      o.path.startsWith('/api/v1/auth/') ? 10 + SESSION.indexOf(`${o.method.toUpperCase()} ${o.path}`) : ['get', 'post', 'patch', 'delete'].indexOf(o.method);
    ops.sort((a, b) => order(a) - order(b)); // reads first, deletes after, then the staff user's own session (password change, logout)
    /** Routes called as someone else than the admin: devices with their credential, the staff user's session routes. */
    const caller = (key: string, path: string) =>
      key === 'POST /api/v1/incidents/press'
        ? { Authorization: cred.authorization }
        : path.startsWith('/api/v1/device/') || key === 'POST /api/v1/incidents/device-reports'
          ? { Authorization: gateway.authorization }
          : path.startsWith('/api/v1/auth/')
            ? auth(staffLogin.accessToken)
            : auth(admin);
    const leaks: string[] = [];
    let answered = 0;
    for (const { path, method } of ops) {
      const key = `${method.toUpperCase()} ${path}`;
      const base = path.replace(/^\/api\/v1\//, '').replace(/\/\{.*$/, '');
      const url = path
        .replace('{cameraId}', camera.id)
        .replace('{schoolId}', A)
        .replace('{deviceId}', '50011300001320000001')
        .replace('{id}', incidentFor[path.split('/').pop()!] ?? ids[base] ?? '00000000-0000-4000-8000-000000000000');
      const http = t.http();
      const req = http[method as 'get'](url).set(caller(key, path));
      const res = await (method === 'get' || method === 'delete' ? req.query(queries[key] ?? {}) : req.send(bodies[key] ?? {}));
      if (res.status < 300) answered++;
      else if (process.env.SURFACE_DEBUG) console.log(`NON2XX ${key} ${res.status} ${JSON.stringify(res.body).slice(0, 150)}`);
      const found = res.headers['content-type']?.includes('json') && !SHOWN_ONCE.has(key) ? secretKeys(res.body) : [];
      if (found.length) leaks.push(`${key} → ${res.status}: ${found.join(', ')}`);
    }
    expect(leaks).toEqual([]);
    // The walk reached the routes' answers, not just their refusals — but for the commands sent to a GB/T 28181
    // device, which need one on the other end (no SIP server runs here): their answers are walked in
    // gb28181-fleet (§6: BasicParam's Password never comes back).
    // Likewise the video routes, which need a camera with a stream (walked in the video specs: video-gb28181, video-rtsp).
    const DEVICE_COMMANDS = /^\/api\/v1\/gb28181\/devices\/\{deviceId\}\/(reboot|guard|alarm-reset|record|basic-param|status|query|channels\/)/;
    const VIDEO_ROUTES = /^\/api\/v1\/cameras\/\{id\}\/(stream|snapshot|evidence|playback)$/;
    expect(answered).toBeGreaterThan(ops.filter((o) => !DEVICE_COMMANDS.test(o.path) && !VIDEO_ROUTES.test(o.path)).length * 0.75);
  }, 180_000); // walks every route (~190 operations) one request at a time: 35 s on a quiet machine, over 60 s on a loaded one
});

/**
 * No existence oracles (issue 12 §10): to school staff, a record of another school answers
 * exactly like an id that does not exist — on every route that takes a record id — and a
 * duplicate value held by another school's record never gives that record's id away.
 */
describe('no existence oracles', () => {
  let t: TestApp;
  let admin: string;
  let staffA: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  /** Path template → a real id of school B's record for it. */
  const idsOfB: Record<string, string> = {};

  beforeAll(async () => {
    t = await startApp();
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    staffA = (await t.userToken('school_security', seed.schoolA.id)).token;
    const post = (path: string, body: object) =>
      t
        .http()
        .post(`/api/v1/${path}`)
        .set(auth(admin))
        .send(body)
        .then((r) => {
          if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
          return r.body as { id: string };
        });
    const B = seed.schoolB.id;
    const camera = await post('cameras', {
      schoolId: B,
      deviceId: '50011300001320000009',
      channelId: '50011300001310000009',
      name: '北门',
      areaKind: 'main_gate',
    });
    const button = await post('alarm-devices', { schoolId: B, code: 'AB-B-1', areaKind: 'gatehouse' });
    const guard = await post('guards', { schoolId: B, name: '赵六', licenceNo: 'B-LIC-0001' });
    const postB = await post('protection-posts', { schoolId: B, code: 'PP-B-1', gate: '北门', windows: [{ kind: 'arrival' }] });
    const incident = await post('incidents', { schoolId: B, type: 'intrusion', location: '北门' });
    const checkin = await post('post-checkins', { postId: postB.id, personName: '王警官', personRole: 'police' });
    const [{ id: task }] = (
      await t.db.query(
        `INSERT INTO rectification_tasks (school_id, subject_key, check_name, title, deadline) VALUES ($1, 'oracle-test', 'gate_open', '北门', now() + interval '1 day') RETURNING id`,
        [B],
      )
    ).rows;
    Object.assign(idsOfB, {
      '/api/v1/schools/{id}': B,
      '/api/v1/cameras/{id}': camera.id,
      '/api/v1/alarm-devices/{id}': button.id,
      '/api/v1/guards/{id}': guard.id,
      '/api/v1/protection-posts/{id}': postB.id,
      '/api/v1/incidents/{id}': incident.id,
      '/api/v1/incidents/{id}/notes': incident.id,
      '/api/v1/incidents/{id}/cancel': incident.id,
      '/api/v1/post-checkins/{id}/checkout': checkin.id,
      '/api/v1/rectification-tasks/{id}': task,
      '/api/v1/rectification-tasks/{id}/close': task,
      '/api/v1/device-health/schools/{schoolId}': B,
      '/api/v1/device-health/devices/{id}': camera.id,
    });
  });
  afterAll(() => t.close());

  it("answers another school's record exactly like a missing one, on every route by id", async () => {
    const doc = (await t.http().get('/api/docs-json').expect(200)).body as { paths: Record<string, Record<string, unknown>> };
    // A valid body, so that what is compared is the record's lookup, not the body's validation.
    const bodies: Record<string, object> = { notes: { note: '看看' }, cancel: { reason: '误按' }, close: { note: '已处理', photoIds: [randomUUID()] } };
    const differ: string[] = [];
    let compared = 0;
    for (const [template, id] of Object.entries(idsOfB)) {
      const methods = Object.keys(doc.paths[template] ?? {});
      expect([template, methods.length > 0]).toEqual([template, true]);
      for (const method of methods) {
        const send = (anId: string) => {
          const http = t.http();
          return http[method as 'get'](template.replace(/\{[^}]+\}/, anId))
            .set(auth(staffA))
            .send(bodies[template.split('/').pop()!] ?? {});
        };
        const [real, random] = await Promise.all([send(id), send(randomUUID())]);
        const shape = (r: { status: number; body: { error?: { code?: string } } }) => [r.status, r.body.error?.code];
        // Identical answers; a 404, unless the role may not use the route at all (the same 403 for any id).
        const same = JSON.stringify(shape(real)) === JSON.stringify(shape(random));
        if (!same || (real.status !== 404 && real.body.error?.code !== 'AUTH.ROLE_FORBIDDEN'))
          differ.push(`${method.toUpperCase()} ${template}: theirs ${shape(real)} vs random ${shape(random)}`);
        if (real.status === 404) compared++;
      }
    }
    expect(differ).toEqual([]);
    expect(compared).toBeGreaterThanOrEqual(13);
    // Nothing was changed by the attempts.
    const { rows } = await t.db.query(`SELECT status FROM incidents WHERE id = $1`, [idsOfB['/api/v1/incidents/{id}']]);
    expect(rows[0].status).toBe('raised');
  });

  it("does not give away the id of another school's record holding a duplicate value", async () => {
    const staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
    const mine = await t.http().post('/api/v1/guards').set(auth(staffA)).send({ schoolId: seed.schoolA.id, name: '张三', licenceNo: 'A-LIC-0001' }).expect(201);
    const theirs = await t
      .http()
      .post('/api/v1/guards')
      .set(auth(staffB))
      .send({ schoolId: seed.schoolB.id, name: '张三', licenceNo: 'A-LIC-0001' })
      .expect(409);
    expect(theirs.body.error).toMatchObject({ code: 'GUARD.DUPLICATE', details: { fields: ['licenceNo'] } });
    expect(JSON.stringify(theirs.body)).not.toContain(mine.body.id);
    // The owner's school and the control center still learn which record it is.
    const own = await t.http().post('/api/v1/guards').set(auth(staffA)).send({ schoolId: seed.schoolA.id, name: '张三', licenceNo: 'A-LIC-0001' }).expect(409);
    expect(own.body.error.details.existingId).toBe(mine.body.id);
    const center = await t
      .http()
      .post('/api/v1/guards')
      .set(auth(admin))
      .send({ schoolId: seed.schoolB.id, name: '张三', licenceNo: 'A-LIC-0001' })
      .expect(409);
    expect(center.body.error.details.existingId).toBe(mine.body.id);
  });
});

type Param = { name: string; in: string; schema?: { type?: string } };
type Op = { parameters?: Param[]; requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> } };
type Schema = { properties?: Record<string, { type?: string; items?: unknown; $ref?: string }>; required?: string[] };

/** Names of the date and time fields of our DTOs: every one of them must refuse an impossible day. */
const DATE_FIELD = /^(date|from|to|at|slot|startsAt|endsAt|start|end)$/;

/**
 * Dates are strict everywhere (issue 12 §11): every documented date parameter and body field
 * refuses `2026-02-31` and year 0001; patrol plans cannot run more often than configured, and a
 * manual run cannot take a future slot (which would block the real scheduled run) or one from
 * another era.
 */
describe('dates and schedules', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let doc: { paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, Schema> } };

  beforeAll(async () => {
    t = await startApp();
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    doc = (await t.http().get('/api/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  it('refuses an impossible day in every documented date query parameter', async () => {
    const accepted: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      const op = ops.get;
      for (const p of op?.parameters ?? []) {
        if (p.in !== 'query' || !DATE_FIELD.test(p.name)) continue;
        for (const bad of ['2026-02-31', '0001-01-01', '2026-02-31T08:00:00Z']) {
          const url = path.replace(/\{[^}]+\}/g, seed.schoolA.id);
          const res = await t
            .http()
            .get(url)
            .query({ schoolId: seed.schoolA.id, from: '2026-03-01', to: '2026-03-02', [p.name]: bad })
            .set(auth(admin));
          checked++;
          const named = (res.body.error?.details?.fields ?? []).some((f: { field: string }) => f.field === p.name);
          if (res.status !== 400 || !named) accepted.push(`GET ${path}?${p.name}=${bad} → ${res.status}`);
        }
      }
    }
    expect(accepted).toEqual([]);
    expect(checked).toBeGreaterThan(20); // post-checkins, compliance, incidents, device health, findings, rounds…
  });

  it('refuses an impossible day in every documented date body field', async () => {
    const accepted: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const ref = op.requestBody?.content?.['application/json']?.schema?.$ref;
        const schema = ref ? doc.components.schemas[ref.split('/').pop()!] : undefined;
        for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
          if (!DATE_FIELD.test(name) || prop.type !== 'string') continue;
          const url = path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
          const http = t.http();
          const res = await http[method as 'post'](url)
            .set(auth(admin))
            .send({ [name]: '2026-02-31T08:00:00Z' });
          checked++;
          const named = (res.body.error?.details?.fields ?? []).some((f: { field: string }) => f.field === name);
          if (res.status !== 400 || !named) accepted.push(`${method.toUpperCase()} ${path} ${name} → ${res.status}`);
        }
      }
    }
    expect(accepted).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(4); // drill windows, maintenance windows, gate events, plan runs
  });

  it('answers post check-ins of 2026-02-31 with 400 (and of a real day with 200)', async () => {
    const bad = await t.http().get('/api/v1/post-checkins').query({ date: '2026-02-31' }).set(auth(admin)).expect(400);
    expect(bad.body.error.details.fields).toEqual([{ field: 'date', reason: expect.stringContaining('no such day') }]);
    await t.http().get('/api/v1/post-checkins').query({ date: '2026-02-28' }).set(auth(admin)).expect(200);
  });

  it('refuses a plan that runs more often than patrols.minCronIntervalSeconds', async () => {
    const plan = (cron: string) =>
      t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(admin))
        .send({ name: 'p', cron, scope: { kind: 'district' }, checks: ['gate_open'] });
    for (const cron of ['* * * * * *', '*/30 * * * * *', '* * * * *', '*/4 * * * *', '0,1 9 * * *']) {
      const res = await plan(cron);
      expect([cron, res.status, res.body.error?.details?.fields?.[0]?.field]).toEqual([cron, 400, 'cron']);
    }
    const ok = await plan('*/5 7-18 * * 1-5').expect(201);
    const patch = await t.http().patch(`/api/v1/patrol-plans/${ok.body.id}`).set(auth(admin)).send({ cron: '* * * * *' });
    expect(patch.status).toBe(400);
    const { rows } = await t.db.query(`SELECT cron FROM patrol_plans WHERE id = $1`, [ok.body.id]);
    expect(rows[0].cron).toBe('*/5 7-18 * * 1-5');
  });

  it('refuses a manual run for a future slot or one from another era, so the real run of a slot is never blocked', async () => {
    const plan = (
      await t
        .http()
        .post('/api/v1/patrol-plans')
        .set(auth(admin))
        .send({ name: '手动', cron: '0 9 * * *', scope: { kind: 'district' }, checks: ['gate_open'] })
        .expect(201)
    ).body;
    const run = (slot?: string) =>
      t
        .http()
        .post(`/api/v1/patrol-plans/${plan.id}/run`)
        .set(auth(admin))
        .send(slot ? { slot } : {});
    const soon = new Date(Date.now() + 5 * 60_000).toISOString();
    for (const slot of ['2030-03-02T01:00:00Z', soon, '0001-01-01T00:00:00Z', '1999-01-01T00:00:00Z', new Date(Date.now() - 400 * 3_600_000).toISOString()]) {
      const res = await run(slot);
      expect([slot, res.status, res.body.error?.details?.fields?.[0]?.field]).toEqual([slot, 400, 'slot']);
    }
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM patrol_runs WHERE plan_id = $1`, [plan.id]);
    expect(rows[0].n).toBe(0);
    await run(new Date(Date.now() - 2 * 3_600_000).toISOString()).expect(201);
    await run().expect(201);
  });
});
