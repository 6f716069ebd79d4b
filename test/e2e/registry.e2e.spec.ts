import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

describe('registry over HTTP', () => {
  let t: TestApp;
  let admin: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;

  beforeAll(async () => {
    t = await startApp();
    admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
  });
  afterAll(() => t.close());

  it('creates a camera and lists it with filters and sorting', async () => {
    const cam = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolA.id, deviceId: '50011300001320000001', channelId: '50011300001310000001', name: '南大门', areaKind: 'main_gate' })
      .expect(201);
    expect(cam.body).toMatchObject({ status: 'unknown', areaKind: 'main_gate', schoolId: seed.schoolA.id });
    const list = await t.http().get('/api/v1/cameras').query({ zoneId: seed.zone.id, areaKind: 'main_gate', sort: '-name' }).set(auth(admin)).expect(200);
    expect(list.body.total).toBe(1);
    expect(list.body.items[0].id).toBe(cam.body.id);
  });

  it('rejects a bad camera with field-level errors', async () => {
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: 'nope', deviceId: '123', channelId: '50011300001310000001', name: '', areaKind: 'roof' })
      .expect(400);
    expect(res.body.error.code).toBe('VALIDATION_FAILED');
    const fields = res.body.error.details.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(expect.arrayContaining(['schoolId', 'deviceId', 'name', 'areaKind']));
  });

  it('reports a missing referenced school as a field error, not a 500', async () => {
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({
        schoolId: '00000000-0000-4000-8000-000000000000',
        deviceId: '50011300001320000009',
        channelId: '50011300001310000009',
        name: 'x',
        areaKind: 'perimeter',
      })
      .expect(400);
    expect(res.body.error.details.fields).toEqual([{ field: 'schoolId', reason: 'no such school' }]);
  });

  it('answers 409 on a duplicate natural key', async () => {
    const res = await t
      .http()
      .post('/api/v1/cameras')
      .set(auth(admin))
      .send({ schoolId: seed.schoolB.id, deviceId: '50011300001320000001', channelId: '50011300001310000001', name: 'dup', areaKind: 'perimeter' })
      .expect(409);
    expect(res.body.error.code).toBe('CAMERA.DUPLICATE');
  });

  it('writes the audit log in the same transaction as the change', async () => {
    const { rows } = await t.db.query(`SELECT action, entity, actor_name FROM audit_log WHERE entity = 'camera'`);
    expect(rows).toEqual([expect.objectContaining({ action: 'create', entity: 'camera' })]);
  });

  it('scopes school security staff to their own school', async () => {
    const staff = (await t.userToken('school_security', seed.schoolA.id)).token;
    const own = await t.http().get('/api/v1/cameras').set(auth(staff)).expect(200);
    expect(own.body.items.every((c: { schoolId: string }) => c.schoolId === seed.schoolA.id)).toBe(true);
    await t.http().get('/api/v1/cameras').query({ schoolId: seed.schoolB.id }).set(auth(staff)).expect(403);
    await t.http().get(`/api/v1/schools/${seed.schoolB.id}`).set(auth(staff)).expect(404); // another school: as if missing
    await t.http().get(`/api/v1/schools/${seed.schoolA.id}`).set(auth(staff)).expect(200);
    await t.http().post('/api/v1/guards').set(auth(staff)).send({ schoolId: seed.schoolB.id, name: '李四', licenceNo: 'LIC-0001' }).expect(403);
    await t.http().post('/api/v1/guards').set(auth(staff)).send({ schoolId: seed.schoolA.id, name: '李四', licenceNo: 'LIC-0001' }).expect(201);
  });

  it('answers 401 without credentials and 403 for the wrong role', async () => {
    await t.http().get('/api/v1/schools').expect(401);
    const auditor = (await t.userToken('auditor')).token;
    await t.http().get('/api/v1/schools').set(auth(auditor)).expect(200);
    await t.http().post('/api/v1/zones').set(auth(auditor)).send({}).expect(403);
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    await t.http().get('/api/v1/schools/00000000-0000-4000-8000-000000000000').set(auth(admin)).expect(404);
    const bad = await t.http().get('/api/v1/schools/not-a-uuid').set(auth(admin)).expect(400);
    expect(bad.body.error.details.fields[0].field).toBe('id');
  });

  it('refuses to delete a school that still has cameras (409)', async () => {
    const res = await t.http().delete(`/api/v1/schools/${seed.schoolA.id}`).set(auth(admin)).expect(409);
    expect(res.body.error.code).toBe('CONFLICT.REFERENCE');
  });
});
