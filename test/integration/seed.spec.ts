import { AuditsService } from '../../src/modules/patrols/audits.service';
import { DEMO_PLANS, DEMO_ROSTER_DAYS, seedDemoDistrict, SeedSummary } from '../../src/tools/seed';
import { buildDistrict, requiredGuards } from '../../src/tools/seed/district';
import { GB_ID_PATTERN } from '../../src/modules/registry/registry.constants';
import { auth, startApp, TestApp } from '../support/harness';

const NAMED = [
  '箭滩河小学',
  '鱼洞二小（龙泽路校区）',
  '鱼洞四小',
  '典雅小学',
  '渝汇小学',
  '南温泉小学',
  '清华小学',
  '华南城中学',
  '云水苑幼儿园',
  '大城小学',
  '融汇小学',
  '田家炳中学',
];

describe('demo district seed', () => {
  let t: TestApp;
  let production: SeedSummary;
  let usersAfterProduction: number;
  let first: SeedSummary;
  const messages: string[] = [];
  const count = async (sql: string, params: unknown[] = []) => Number((await t.db.query(sql, params)).rows[0].n);

  beforeAll(async () => {
    t = await startApp();
    // First as production would run it (district, no demo users), then as development.
    production = await seedDemoDistrict(t.app, { ...t.config, env: 'production' }, { progress: (m) => messages.push(m) });
    usersAfterProduction = await count(`SELECT count(*) AS n FROM users`);
    first = await seedDemoDistrict(t.app, t.config, { progress: (m) => messages.push(m) });
  });
  afterAll(() => t.close());

  it('builds exactly 4534 cameras across about 200 schools in 14 zones and a dozen groups', async () => {
    expect(await count(`SELECT count(*) AS n FROM cameras`)).toBe(4534);
    const schools = await count(`SELECT count(*) AS n FROM schools`);
    expect(schools).toBeGreaterThanOrEqual(190);
    expect(schools).toBeLessThanOrEqual(210);
    expect(await count(`SELECT count(*) AS n FROM school_zones WHERE level = 'middle'`)).toBe(4);
    expect(await count(`SELECT count(*) AS n FROM school_zones WHERE level = 'primary'`)).toBe(10);
    expect(await count(`SELECT count(*) AS n FROM education_groups`)).toBe(12);
    // Every school has cameras, and the bigger half has more of them than the smaller half.
    expect(await count(`SELECT count(*) AS n FROM schools s WHERE NOT EXISTS (SELECT 1 FROM cameras c WHERE c.school_id = s.id)`)).toBe(0);
    const { rows } = await t.db.query(
      `SELECT s.student_count + s.staff_count AS people, count(c.id)::int AS cams FROM schools s JOIN cameras c ON c.school_id = s.id GROUP BY s.id ORDER BY people`,
    );
    const half = Math.floor(rows.length / 2);
    const avg = (xs: { cams: number }[]) => xs.reduce((a, r) => a + r.cams, 0) / xs.length;
    expect(avg(rows.slice(half))).toBeGreaterThan(avg(rows.slice(0, half)));
    expect(messages.some((m) => m.includes('cameras'))).toBe(true);
  });

  it('has every school the report names, with its zone and realistic fields', async () => {
    const { rows } = await t.db.query(`SELECT name, type, zone_id, address, lat, lng, student_count, timetable, calendar FROM schools WHERE name = ANY($1)`, [
      NAMED,
    ]);
    expect(rows.map((r) => r.name).sort()).toEqual([...NAMED].sort());
    for (const r of rows) {
      expect(r.zone_id).not.toBeNull();
      expect(r.address).toMatch(/^重庆市巴南区/);
      expect(Math.abs(r.lat - 29.38)).toBeLessThan(0.4);
      expect(Math.abs(r.lng - 106.54)).toBeLessThan(0.5);
      expect(r.student_count).toBeGreaterThan(0);
      expect(r.timetable.arrival.start < r.timetable.arrival.end).toBe(true);
      expect(r.calendar.holidays).toContain('2026-10-01');
    }
    expect(
      await count(`SELECT count(*) AS n FROM schools s JOIN education_groups g ON g.id = s.group_id WHERE s.name = '渝汇小学' AND g.name = '清华小学教育集团'`),
    ).toBe(1);
  });

  it('gives every camera valid GB/T 28181 ids (500113 prefix, NVR 118 / camera 132) and dormitory cameras only to boarding schools', async () => {
    const { rows } = await t.db.query(`SELECT device_id, channel_id FROM cameras`);
    const bad = rows.filter(
      (r) =>
        !GB_ID_PATTERN.test(r.device_id) ||
        !GB_ID_PATTERN.test(r.channel_id) ||
        !r.device_id.startsWith('500113') ||
        r.device_id.slice(10, 13) !== '118' ||
        r.channel_id.slice(10, 13) !== '132',
    );
    expect(bad).toEqual([]);
    expect(rows).toHaveLength(4534);
    expect(await count(`SELECT count(*) AS n FROM cameras c JOIN schools s ON s.id = c.school_id WHERE c.area_kind = 'dormitory' AND NOT s.boarding`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM cameras WHERE area_kind = 'dormitory'`)).toBeGreaterThan(0);
  });

  it('puts a police-linked alarm button at every gatehouse, linked to that school’s gate cameras', async () => {
    expect(
      await count(`SELECT count(*) AS n FROM schools s WHERE NOT EXISTS (
        SELECT 1 FROM alarm_devices a WHERE a.school_id = s.id AND a.area_kind = 'gatehouse' AND a.police_linked AND cardinality(a.linked_camera_ids) > 0)`),
    ).toBe(0);
    // Linked cameras belong to the same school and cover the gate.
    expect(
      await count(`SELECT count(*) AS n FROM alarm_devices a CROSS JOIN unnest(a.linked_camera_ids) AS l(id) JOIN cameras c ON c.id = l.id
        WHERE a.area_kind = 'gatehouse' AND (c.school_id <> a.school_id OR c.area_kind NOT IN ('gatehouse','main_gate'))`),
    ).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM (SELECT school_id FROM alarm_devices GROUP BY school_id HAVING count(*) > 1) x`)).toBeGreaterThan(0);
  });

  it('staffs most schools by the rule and leaves some deliberately short; posts cover both windows', async () => {
    const { rows } = await t.db.query(
      `SELECT s.student_count + s.staff_count AS people, (SELECT count(*)::int FROM guards g WHERE g.school_id = s.id AND g.full_time AND g.active) AS guards FROM schools s`,
    );
    const short = rows.filter((r) => r.guards < requiredGuards(r.people)).length;
    expect(short).toBeGreaterThan(0);
    expect(short).toBeLessThan(rows.length * 0.2);
    expect(
      await count(`SELECT count(*) AS n FROM schools s WHERE NOT EXISTS (SELECT 1 FROM protection_posts p WHERE p.school_id = s.id AND p.gate = '校门口')`),
    ).toBe(0);
    const { rows: posts } = await t.db.query(`SELECT windows FROM protection_posts`);
    for (const p of posts) expect(p.windows.map((w: { kind: string }) => w.kind).sort()).toEqual(['arrival', 'dismissal']);
  });

  it('never creates demo users in production, but builds the district there', () => {
    expect(production.created.cameras).toBe(4534);
    expect(production.usersCreated).toEqual([]);
    expect(usersAfterProduction).toBe(0);
    expect(messages.some((m) => m.includes('never in production'))).toBe(true);
    expect(first.created.cameras).toBe(0);
  });

  it('creates the demo users, who can log in and are scoped to their school', async () => {
    expect(first.usersCreated).toEqual(expect.arrayContaining(['admin', 'operator1', 'operator2', 'supervisor1', 'auditor1', 'jth.security']));
    expect(first.users.filter((u) => u.role === 'school_security')).toHaveLength(NAMED.length);
    const login = await t.http().post('/api/v1/auth/login').send({ username: 'jth.security', password: t.config.demo.userPassword }).expect(200);
    const mine = await t.http().get('/api/v1/schools').set(auth(login.body.accessToken)).expect(200);
    expect(mine.body.items.map((s: { name: string }) => s.name)).toEqual(['箭滩河小学']);
    const admin = await t.http().post('/api/v1/auth/login').send({ username: 'admin', password: t.config.demo.userPassword }).expect(200);
    const cams = await t.http().get('/api/v1/cameras').query({ areaKind: 'gatehouse', limit: 1 }).set(auth(admin.body.accessToken)).expect(200);
    expect(cams.body.total).toBe(await count(`SELECT count(*) AS n FROM cameras WHERE area_kind = 'gatehouse'`));
  });

  it('seeds day and night patrol plans for the whole district: scheduled, and an audit runs out of the box', async () => {
    const supervisor = await t.http().post('/api/v1/auth/login').send({ username: 'supervisor1', password: t.config.demo.userPassword }).expect(200);
    const token = supervisor.body.accessToken as string;
    const plans = (await t.http().get('/api/v1/patrol-plans').set(auth(token)).expect(200)).body.items as {
      id: string;
      name: string;
      cron: string;
      enabled: boolean;
      scope: { kind: string };
      checks: string[];
    }[];
    expect(plans.map((p) => p.name).sort()).toEqual(DEMO_PLANS.map((p) => p.name).sort());
    for (const p of plans) expect(p).toMatchObject({ enabled: true, scope: { kind: 'district' } });
    expect(plans.flatMap((p) => p.checks)).toEqual(expect.arrayContaining(['camera_online_rate', 'guard_staffing', 'guard_patrol_count']));
    // Their schedulers follow the plans table (at boot and every reconcile).
    expect(await t.app.get(AuditsService).reconcileSchedulers()).toMatchObject({ upserted: DEMO_PLANS.length });
    // A supervisor runs the day plan now: every school audited, the short-staffed ones found.
    const day = plans.find((p) => p.cron === '0 9 * * 1-5')!;
    const run = await t.http().post(`/api/v1/patrol-plans/${day.id}/run`).set(auth(token)).send({}).expect(201);
    expect(run.body.schoolCount).toBe(await count(`SELECT count(*) AS n FROM schools`));
    expect(run.body.failedSchoolCount).toBeGreaterThan(0);
    expect(await count(`SELECT count(*) AS n FROM patrol_findings WHERE check_name = 'guard_staffing'`)).toBeGreaterThan(0);
  });

  it('keeps a demo duty roster: someone on duty now for every role, no gap ahead, in 12-hour operator shifts', async () => {
    const supervisor = await t.http().post('/api/v1/auth/login').send({ username: 'supervisor1', password: t.config.demo.userPassword }).expect(200);
    const now = (
      await t
        .http()
        .get('/api/v1/duty/now')
        .set(auth(supervisor.body.accessToken as string))
        .expect(200)
    ).body as {
      onDuty: Record<string, { username?: string; userName?: string }[]>;
      gaps: unknown[];
    };
    expect(Object.keys(now.onDuty).sort()).toEqual(['bureau_leader', 'duty_supervisor', 'operator_desk']);
    for (const [role, people] of Object.entries(now.onDuty)) expect({ role, n: people.length }).toEqual({ role, n: 1 });
    expect(now.gaps).toEqual([]);
    // The desk: operator1 by day, operator2 by night (Asia/Shanghai), for DEMO_ROSTER_DAYS days ahead.
    const desk = (
      await t.db.query(
        `SELECT u.username, to_char(s.starts_at AT TIME ZONE 'Asia/Shanghai', 'HH24:MI') AS f, (extract(epoch FROM s.ends_at - s.starts_at) / 3600)::int AS h
           FROM duty_shifts s JOIN users u ON u.id = s.user_id WHERE s.duty_role = 'operator_desk'`,
      )
    ).rows as { username: string; f: string; h: number }[];
    expect(new Set(desk.map((d) => `${d.username} ${d.f} ${d.h}h`))).toEqual(new Set(['operator1 08:00 12h', 'operator2 20:00 12h']));
    expect(desk.length).toBe(2 * (DEMO_ROSTER_DAYS + 1));
  });

  it('changes nothing when run a second time', async () => {
    const snapshot = async () =>
      (
        await t.db.query(`SELECT
          (SELECT count(*) FROM audit_log) AS audit, (SELECT max(id) FROM audit_log) AS last_audit,
          (SELECT count(*) FROM users) AS users, (SELECT max(updated_at) FROM users) AS users_at,
          (SELECT count(*) || '/' || max(updated_at) FROM patrol_plans) AS patrol_plans,
          (SELECT count(*) || '/' || max(updated_at) FROM duty_shifts) AS duty_shifts,
          ${['schools', 'cameras', 'alarm_devices', 'guards', 'protection_posts', 'school_zones', 'education_groups']
            .map((tb) => `(SELECT count(*) || '/' || max(updated_at) FROM ${tb}) AS ${tb}`)
            .join(', ')}`)
      ).rows[0];
    const before = await snapshot();
    const second = await seedDemoDistrict(t.app, t.config);
    expect(Object.values(second.created).every((n) => n === 0)).toBe(true);
    expect(second.usersCreated).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it('is deterministic: the district is built the same way every time', () => {
    const a = buildDistrict();
    const b = buildDistrict();
    expect(b).toEqual(a);
    expect(new Set(a.cameras.map((c) => c.channelId)).size).toBe(a.cameras.length);
  });
});
