import { readTable } from '../../src/infra/tabular/tabular';
import { HeavyReads } from '../../src/infra/http/heavy-reads';
import { createButtons, press, TestButton } from '../support/devices';
import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

/**
 * Alarm history (issue 13): closed incidents found again by outcome, school, type, time and words,
 * people shown by display name, and the same filters exported as CSV/XLSX through the export rules
 * (UTF-8 BOM, formula-like text neutralised, Asia/Shanghai times), bounded by alarms.exportMaxRows.
 */
describe('incident history: filters, search, display names, export', () => {
  let t: TestApp;
  let op: string;
  let staffB: string;
  let auditor: string;
  let seed: Awaited<ReturnType<typeof seedMinimal>>;
  let button: TestButton;
  const ids: Record<string, string> = {};

  const raise = async (schoolId: string, type: string, location: string, note?: string) =>
    (await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId, type, location, note }).expect(201)).body.id as string;
  const step = (id: string, action: string, body: object = {}) => t.http().post(`/api/v1/incidents/${id}/${action}`).set(auth(op)).send(body).expect(200);
  const list = (query: Record<string, string>, token = op) =>
    t
      .http()
      .get('/api/v1/incidents')
      .set(auth(token))
      .query(query)
      .then((r) => r.body);
  const found = async (query: Record<string, string>, token = op) => ((await list(query, token)).items as { id: string }[]).map((i) => i.id).sort();

  beforeAll(async () => {
    t = await startApp({ alarms: { exportMaxRows: 4 } });
    const admin = (await t.userToken('admin')).token;
    seed = await seedMinimal(t, admin);
    op = (await t.userToken('operator', undefined, 'op.zhang', '值班员张三')).token;
    staffB = (await t.userToken('school_security', seed.schoolB.id)).token;
    auditor = (await t.userToken('auditor')).token;
    [button] = await createButtons(t, admin, seed.schoolB.id, 1, 'HIST');
    ids.fire = await raise(seed.schoolA.id, 'fire', '=HYPERLINK("http://evil.example","点我")', '厨房冒烟');
    await step(ids.fire, 'acknowledge');
    await step(ids.fire, 'notes', { note: '消防已到场，灭火器扑灭' });
    await step(ids.fire, 'resolve', { outcome: 'genuine' });
    ids.medical = await raise(seed.schoolB.id, 'medical', '操场');
    await step(ids.medical, 'acknowledge');
    await step(ids.medical, 'resolve', { outcome: 'false_alarm', note: '学生摔倒，已自行恢复' });
    ids.cancelled = await raise(seed.schoolA.id, 'intrusion', '北门');
    await step(ids.cancelled, 'cancel', { reason: '误按' });
    ids.open = await raise(seed.schoolA.id, 'violence', '100%_食堂');
    ids.other = await raise(seed.schoolB.id, 'other', '图书馆');
  });
  afterAll(() => t.close());

  it('records who acknowledged and resolved by display name, in the view and the timeline', async () => {
    const d = (await t.http().get(`/api/v1/incidents/${ids.fire}`).set(auth(op)).expect(200)).body;
    expect(d.acknowledgedBy.name).toBe('值班员张三');
    expect(d.resolvedBy).toBe('值班员张三');
    expect(d.raisedBy).toBe('值班员张三');
    expect(new Set(d.timeline.filter((e: { actorType: string }) => e.actorType === 'user').map((e: { actorName: string }) => e.actorName))).toEqual(
      new Set(['值班员张三']),
    );
  });

  it('filters by outcome, status, school, type and time', async () => {
    expect(await found({ outcome: 'false_alarm' })).toEqual([ids.medical]);
    expect(await found({ outcome: 'genuine,false_alarm' })).toEqual([ids.fire, ids.medical].sort());
    expect(await found({ status: 'resolved,cancelled', schoolId: seed.schoolA.id })).toEqual([ids.fire, ids.cancelled].sort());
    expect(await found({ type: 'medical' })).toEqual([ids.medical]);
    expect((await list({ to: '2000-01-01T00:00:00+08:00' })).total).toBe(0);
    expect((await list({ from: '2000-01-01T00:00:00+08:00', status: 'resolved,cancelled' })).total).toBe(3);
  });

  it('searches words in place, notes added later, cancel reason and names; wildcards are literal', async () => {
    expect(await found({ q: '灭火器' })).toEqual([ids.fire]);
    expect(await found({ q: '误按' })).toEqual([ids.cancelled]);
    expect(await found({ q: '操场 自行恢复' })).toEqual([ids.medical]);
    expect(await found({ q: '操场 灭火器' })).toEqual([]);
    expect(await found({ q: '100%_' })).toEqual([ids.open]);
    expect(await found({ q: '%' })).toEqual([ids.open]);
    expect(await found({ q: '张三', status: 'resolved' })).toEqual([ids.fire, ids.medical].sort());
    // School staff: their own school only, whatever they search.
    expect(await found({ q: '操场' }, staffB)).toEqual([ids.medical]);
    expect(await found({ q: '灭火器' }, staffB)).toEqual([]);
  });

  it('counts closed and false alarms in the response statistics (the false-alarm rate)', async () => {
    const stats = (await t.http().get('/api/v1/incidents/stats').set(auth(op)).expect(200)).body;
    const day = stats.byDay.reduce(
      (n: { closed: number; falseAlarms: number; count: number }, d: typeof n) => ({
        count: n.count + d.count,
        closed: n.closed + d.closed,
        falseAlarms: n.falseAlarms + d.falseAlarms,
      }),
      { count: 0, closed: 0, falseAlarms: 0 },
    );
    expect(day).toEqual({ count: 5, closed: 2, falseAlarms: 1 });
    const b = stats.bySchool.find((r: { schoolId: string }) => r.schoolId === seed.schoolB.id);
    expect(b).toMatchObject({ count: 2, closed: 1, falseAlarms: 1 });
  });

  it('exports the response statistics: per school and per day, the false-alarm rate, seconds', async () => {
    const res = await t.http().get('/api/v1/incidents/stats/export').set(auth(auditor)).query({ format: 'csv' }).buffer(true).expect(200);
    const buf = Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.text, 'utf8');
    const table = await readTable(buf);
    expect(table.header.slice(0, 6)).toEqual(['分组', '名称', '报警数', '已处置', '误报', '误报率']);
    const b = table.rows.find((r) => r.cells[0] === '学校' && r.cells[1] === '乙小学')!.cells;
    expect(b.slice(2, 6)).toEqual(['2', '1', '1', '100.0%']);
    expect(table.rows.some((r) => r.cells[0] === '日期')).toBe(true);
    await t.http().get('/api/v1/incidents/stats/export').set(auth(auditor)).query({ format: 'pdf' }).expect(400);
  });

  it('answers field-level 400s to bad filters', async () => {
    const bad = async (query: Record<string, string>, field: string) => {
      const res = await t.http().get('/api/v1/incidents').set(auth(op)).query(query).expect(400);
      expect(JSON.stringify(res.body.error)).toContain(field);
    };
    await bad({ outcome: 'maybe' }, 'outcome');
    await bad({ q: 'x'.repeat(101) }, 'q');
    const res = await t.http().get('/api/v1/incidents/export').set(auth(op)).query({ format: 'pdf' }).expect(400);
    expect(JSON.stringify(res.body.error)).toContain('format');
  });

  it('exports the filtered incidents as CSV with a BOM, zh-CN names, Shanghai times and neutralised formulas', async () => {
    const res = await t.http().get('/api/v1/incidents/export').set(auth(auditor)).query({ format: 'csv', schoolId: seed.schoolA.id }).buffer(true).expect(200);
    expect(res.headers['content-type']).toContain('text/csv');
    const buf = Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.text, 'utf8');
    expect([...buf.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const table = await readTable(buf);
    expect(table.header).toContain('处置结果');
    expect(table.rows).toHaveLength(3);
    const raw = buf.toString('utf8');
    expect(raw).toContain(`'=HYPERLINK`);
    const fire = table.rows.find((r) => r.cells[0] === ids.fire)!.cells;
    const col = (name: string) => fire[table.header.indexOf(name)];
    expect(col('类型')).toBe('火情');
    expect(col('处置结果')).toBe('真实警情');
    expect(col('处置人')).toBe('值班员张三');
    // The first press, written as the district's wall clock.
    const d = (await t.http().get(`/api/v1/incidents/${ids.fire}`).set(auth(op)).expect(200)).body;
    const shanghai = new Date(Date.parse(d.firstPressAt) + 8 * 3600_000).toISOString().replace('T', ' ').slice(0, 19);
    expect(col('报警时间')).toBe(shanghai);
  });

  it('exports XLSX by default; school staff get their own school; too many rows is a 400 asking for a narrower range', async () => {
    const x = await t
      .http()
      .get('/api/v1/incidents/export')
      .set(auth(staffB))
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      })
      .expect(200);
    expect(x.headers['content-type']).toContain('spreadsheetml');
    const table = await readTable(x.body as Buffer);
    expect(table.rows.map((r) => r.cells[0]).sort()).toEqual([ids.medical, ids.other].sort());
    const tooMany = await t.http().get('/api/v1/incidents/export').set(auth(op)).query({ format: 'csv' }).expect(400);
    expect(tooMany.body.error.details?.fields ?? tooMany.body.error).toEqual(expect.anything());
    expect(JSON.stringify(tooMany.body.error)).toContain('from');
  });

  describe('heavy reads are bounded per process and per user (attack A14)', () => {
    const HEAVY = [
      '/api/v1/compliance/district?limit=500',
      '/api/v1/compliance/schools?limit=500',
      '/api/v1/patrol-coverage',
      '/api/v1/incidents/stats',
      '/api/v1/incidents?q=操场',
    ];

    it('answers 30 parallel heavy reads of one auditor with 200, 429 or 503 (never more than the limits), and a press meanwhile is taken', async () => {
      const reader = (await t.userToken('auditor')).token;
      const { userBurst } = t.config.heavyReads;
      // Sent now (supertest sends on then), all 30 at once.
      const reads = Array.from({ length: 30 }, (_, i) =>
        t
          .http()
          .get(HEAVY[i % HEAVY.length])
          .set(auth(reader))
          .then((r) => r),
      );
      // A press of a button sent while the reads run: answered within the bound (press aborts after it).
      const pressed = await press(t.baseUrl, button, 'a14-during-reads', 5000);
      expect(pressed.status).toBe(201);
      const answers = await Promise.all(reads);
      const by = (status: number) => answers.filter((r) => r.status === status);
      expect(answers.map((r) => r.status).filter((s) => ![200, 429, 503].includes(s))).toEqual([]);
      // The user's burst, and a token or two refilled meanwhile, at most: the rest are refused at once.
      expect(by(200).length + by(503).length).toBeLessThanOrEqual(userBurst + 3);
      expect(by(429).length).toBeGreaterThanOrEqual(30 - userBurst - 3);
      for (const r of by(429)) expect([r.body.error.code, r.headers['retry-after']]).toEqual(['HEAVY_READ.TOO_MANY', expect.stringMatching(/^\d+$/)]);
      for (const r of by(503)) expect([r.body.error.code, r.headers['retry-after']]).toEqual(['HEAVY_READ.BUSY', expect.stringMatching(/^\d+$/)]);
      expect(t.app.get(HeavyReads).counts()).toEqual({ running: 0, queued: 0 });
    });

    it('answers 503 HEAVY_READ.BUSY with Retry-After when heavyReads.maxConcurrent run and heavyReads.maxQueued wait, and serves again once they end', async () => {
      const gate = t.app.get(HeavyReads);
      const { maxConcurrent, maxQueued } = t.config.heavyReads;
      const releases: (() => void)[] = [];
      // Other users' reads hold every slot and every place in the queue (distinct users: no per-user limit meets them).
      const held = Array.from({ length: maxConcurrent + maxQueued }, (_, i) => gate.run(`holder-${i}`, () => new Promise<void>((r) => releases.push(r))));
      expect(gate.counts()).toEqual({ running: maxConcurrent, queued: maxQueued });
      const busy = await t.http().get('/api/v1/compliance/district').set(auth(auditor));
      expect([busy.status, busy.body.error.code, busy.headers['retry-after']]).toEqual([503, 'HEAVY_READ.BUSY', expect.stringMatching(/^\d+$/)]);
      // The console's own incident list (no search) is not a heavy read.
      await t.http().get('/api/v1/incidents?limit=5').set(auth(op)).expect(200);
      // Each waiting read starts (and can be released) once one before it ends.
      let settled = 0;
      held.forEach((p) => void p.then(() => settled++));
      while (settled < held.length) {
        releases.splice(0).forEach((r) => r());
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(gate.counts()).toEqual({ running: 0, queued: 0 });
      await t.http().get('/api/v1/compliance/district').set(auth(auditor)).expect(200);
    });
  });
});

/**
 * (In this file, with its own service, rather than a file of its own: each file loads the service's
 * modules again.) Shift handover (issue 13): what the leaving operator hands over (open alarms now, oldest first;
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
