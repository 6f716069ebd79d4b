import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Shift handover (issue 13): what the leaving operator hands over (open alarms now, oldest first;
 * the shift's events and notes; a note), taken over once by another operator; roles, 400s, 404, 409s.
 */
describe('shift handovers', () => {
  let t: TestApp;
  let op1: string;
  let op2: string;
  let auditor: string;
  let staff: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  const ids: string[] = [];

  beforeAll(async () => {
    t = await startApp();
    const admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op1 = (await t.userToken('operator', undefined, 'night.op', '夜班值班员')).token;
    op2 = (await t.userToken('operator', undefined, 'day.op', '白班值班员')).token;
    auditor = (await t.userToken('auditor')).token;
    staff = (await t.userToken('school_security', seed.schoolA.id)).token;
    for (const location of ['南门', '北门', '食堂']) {
      ids.push((await t.http().post('/api/v1/incidents').set(auth(op1)).send({ schoolId: seed.schoolA.id, type: 'other', location }).expect(201)).body.id);
    }
    await t.http().post(`/api/v1/incidents/${ids[1]}/acknowledge`).set(auth(op1)).send({}).expect(200);
    await t.http().post(`/api/v1/incidents/${ids[1]}/notes`).set(auth(op1)).send({ note: '已电话联系保卫干部' }).expect(200);
    await t.http().post(`/api/v1/incidents/${ids[2]}/acknowledge`).set(auth(op1)).send({}).expect(200);
    await t.http().post(`/api/v1/incidents/${ids[2]}/resolve`).set(auth(op1)).send({ outcome: 'false_alarm' }).expect(200);
  });
  afterAll(() => t.close());

  it('records the open alarms oldest first, the shift events and notes; the next operator takes over once', async () => {
    const h = (await t.http().post('/api/v1/handovers').set(auth(op1)).send({ note: '南门报警待派出所回电' }).expect(201)).body;
    expect(h.fromName).toBe('夜班值班员');
    expect(h.note).toBe('南门报警待派出所回电');
    expect(h.summary).toMatchObject({ open: 2, unacknowledged: 1, raised: 3, resolved: 1, falseAlarms: 1, notes: 1 });
    expect(h.summary.oldestOpen.map((i: { id: string }) => i.id)).toEqual([ids[0], ids[1]]);
    expect(h.summary.latestNotes[0]).toMatchObject({ incidentId: ids[1], actorName: '夜班值班员', note: '已电话联系保卫干部' });

    const own = await t.http().post(`/api/v1/handovers/${h.id}/acknowledge`).set(auth(op1)).send({}).expect(409);
    expect(own.body.error.code).toBe('HANDOVER.OWN');
    const pending = (await t.http().get('/api/v1/handovers?pending=true').set(auth(auditor)).expect(200)).body.items;
    expect(pending.map((x: { id: string }) => x.id)).toEqual([h.id]);

    const taken = (await t.http().post(`/api/v1/handovers/${h.id}/acknowledge`).set(auth(op2)).send({}).expect(200)).body;
    expect(taken.acknowledgedBy.name).toBe('白班值班员');
    const again = await t.http().post(`/api/v1/handovers/${h.id}/acknowledge`).set(auth(op2)).send({}).expect(409);
    expect(again.body.error.code).toBe('HANDOVER.ALREADY_ACKNOWLEDGED');
    expect((await t.http().get('/api/v1/handovers?pending=true').set(auth(op2)).expect(200)).body.items).toEqual([]);

    // The next shift starts where this one was handed over: nothing raised since.
    const next = (await t.http().post('/api/v1/handovers').set(auth(op2)).send({}).expect(201)).body;
    expect(next.shiftFrom).toBe(h.at);
    expect(next.summary).toMatchObject({ open: 2, raised: 0, resolved: 0, notes: 0 });
  });

  it('refuses other roles, bad input and unknown handovers', async () => {
    await t.http().post('/api/v1/handovers').set(auth(auditor)).send({}).expect(403);
    await t.http().get('/api/v1/handovers').set(auth(staff)).expect(403);
    const bad = async (body: object, field: string) => {
      const res = await t.http().post('/api/v1/handovers').set(auth(op1)).send(body).expect(400);
      expect(JSON.stringify(res.body.error.details.fields)).toContain(field);
    };
    await bad({ note: 'x'.repeat(2001) }, 'note');
    await bad({ since: 'yesterday' }, 'since');
    await bad({ since: new Date(Date.now() + 3_600_000).toISOString() }, 'since');
    const missing = await t.http().post('/api/v1/handovers/00000000-0000-4000-8000-000000000000/acknowledge').set(auth(op2)).send({}).expect(404);
    expect(missing.body.error.code).toBe('HANDOVER.NOT_FOUND');
  });
});
