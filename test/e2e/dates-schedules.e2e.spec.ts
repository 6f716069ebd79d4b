import { auth, seedMinimal, startApp, TestApp } from '../support/harness';

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
