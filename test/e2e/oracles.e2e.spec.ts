import { randomUUID } from 'node:crypto';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

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
    const bodies: Record<string, object> = { notes: { note: '看看' }, cancel: { reason: '误按' }, close: { note: '已处理' } };
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
