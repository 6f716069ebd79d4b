import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

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
    const maintenance = await make('device-health/maintenance-windows', {
      schoolId: A,
      startsAt: '2026-03-02T08:00:00+08:00',
      endsAt: '2026-03-02T09:00:00+08:00',
      reason: '检修',
    });
    const round = await make('patrol-rounds', { size: 1 }, (await t.userToken('operator')).token);
    await t.db.query(
      `INSERT INTO rectification_tasks (school_id, subject_key, check_name, title, deadline) VALUES ($1, 'walker', 'gate_open', '南门', now() + interval '1 day')`,
      [A],
    );
    const task = (await t.http().get('/api/v1/rectification-tasks').set(auth(admin)).expect(200)).body.items[0];

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
      'POST /api/v1/device-health/maintenance-windows': { startsAt: '2026-03-03T08:00:00Z', endsAt: '2026-03-03T09:00:00Z', reason: '全区检修' },
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
      'POST /api/v1/rectification-tasks/{id}/close': { note: '已关门' },
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
      const found = res.headers['content-type']?.includes('json') && !SHOWN_ONCE.has(key) ? secretKeys(res.body) : [];
      if (found.length) leaks.push(`${key} → ${res.status}: ${found.join(', ')}`);
    }
    expect(leaks).toEqual([]);
    // The walk reached the routes' answers, not just their refusals.
    expect(answered).toBeGreaterThan(ops.length * 0.75);
  });
});
