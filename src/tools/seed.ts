import type { INestApplicationContext } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { AppConfig } from '../config/config';
import { requestContext } from '../infra/http/request-context';
import { AuditRecord, AuditService } from '../modules/audit-log';
import type { UserRole } from '../infra/access/roles';
import { UsersService } from '../modules/auth';
import { newQrToken } from '../modules/registry';
import { buildDistrict, DISTRICT, GROUPS, ZONES } from './seed/district';

export interface SeedOptions {
  progress?: (message: string) => void;
}

export interface SeedSummary {
  /** Rows inserted by this run, per table (0 everywhere on a second run). */
  created: Record<string, number>;
  /** Rows of the demo district present after the run, per table. */
  present: Record<string, number>;
  usersCreated: string[];
  users: { username: string; role: UserRole; school?: string }[];
}

const DEMO_STAFF: { username: string; role: UserRole; displayName: string }[] = [
  { username: 'admin', role: 'admin', displayName: '系统管理员' },
  { username: 'operator1', role: 'operator', displayName: '巡查中心值班员一' },
  { username: 'operator2', role: 'operator', displayName: '巡查中心值班员二' },
  { username: 'supervisor1', role: 'supervisor', displayName: '安全科科长' },
  { username: 'auditor1', role: 'auditor', displayName: '督导室审计员' },
];

/**
 * The demo's scheduled patrol audits (issue 13: "the demo seeds patrol plans so that audits run out of
 * the box"), day and night over the whole district, cron in Asia/Shanghai. Matched by name: a second
 * run adds none; one an admin changed is left as it is.
 */
export const DEMO_PLANS: { name: string; cron: string; checks: string[] }[] = [
  {
    name: '日间巡查（工作日 9:00）',
    cron: '0 9 * * 1-5',
    checks: ['camera_online_rate', 'device_offline_24h', 'alarm_button', 'post_unstaffed', 'guard_staffing', 'gate_open'],
  },
  { name: '夜间巡查（每日 22:00）', cron: '0 22 * * *', checks: ['device_offline_24h', 'alarm_button', 'guard_patrol_count'] },
];

/** Days of demo roster kept ahead of today (each seed, and so each `npm start`, tops it up). */
export const DEMO_ROSTER_DAYS = 14;

/**
 * The demo's duty roster (值班表, issue 14), so that a newcomer sees who is on duty and escalations
 * reach someone instead of "无人值班" and roster-gap banners: the operator desk in two 12-hour shifts
 * (operator1 08:00–20:00, operator2 20:00–08:00, Asia/Shanghai), the duty supervisor (supervisor1)
 * and the bureau leader (admin) a day at a time, from yesterday (so that now is covered) for DEMO_ROSTER_DAYS days ahead. A slot already
 * covered by any shift of its role (an admin's own roster) is left alone: a second run adds nothing
 * until the days move on. Returns the shifts inserted.
 */
async function seedDemoRoster(db: DataSource, audit: AuditService): Promise<number> {
  return db.transaction(async (m) => {
    const rows: Row[] = await m.query(
      `WITH day AS (
         SELECT (date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') + make_interval(days => g)) AS d FROM generate_series(-1, $1::int - 1) g),
       slot AS (
         SELECT 'operator_desk' AS role, 'operator1' AS who, d + interval '8 hours' AS f, d + interval '20 hours' AS t FROM day
         UNION ALL SELECT 'operator_desk', 'operator2', d + interval '20 hours', d + interval '32 hours' FROM day
         UNION ALL SELECT 'duty_supervisor', 'supervisor1', d + interval '8 hours', d + interval '32 hours' FROM day
         UNION ALL SELECT 'bureau_leader', 'admin', d + interval '8 hours', d + interval '32 hours' FROM day)
       INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at, note)
       SELECT s.role, u.id, s.f AT TIME ZONE 'Asia/Shanghai', s.t AT TIME ZONE 'Asia/Shanghai', '演示排班'
         FROM slot s JOIN users u ON lower(u.username) = s.who AND NOT u.disabled
        WHERE NOT EXISTS (SELECT 1 FROM duty_shifts x WHERE x.duty_role = s.role
                            AND x.starts_at < s.t AT TIME ZONE 'Asia/Shanghai' AND x.ends_at > s.f AT TIME ZONE 'Asia/Shanghai')
       RETURNING *`,
      [DEMO_ROSTER_DAYS],
    );
    if (rows.length)
      await audit.record(
        m,
        rows.map((r) => ({ action: 'seed_create', entity: 'duty_shift', entityId: r.id as string, schoolId: null, after: r })),
      );
    return rows.length;
  });
}

type Row = Record<string, unknown>;
const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const camelRow = (r: Row): Row => Object.fromEntries(Object.entries(r).map(([k, v]) => [camel(k), v]));

/**
 * Inserts rows that are not there yet, in batches, and returns the ones it inserted.
 * Why SQL here rather than ResourceService.upsertRows: that path costs several round trips per
 * row (≈ 20 s for the district); this costs one statement per 1000 rows. Existing rows (matched
 * by any unique key: code, device+channel, licence number, school name) are left untouched,
 * which is what makes a second run change nothing. The raw SQL stays inside src/tools/seed.
 */
async function insertMissing(m: EntityManager, table: string, columns: Record<string, string>, rows: Row[]): Promise<Row[]> {
  const cols = Object.keys(columns).map(snake);
  const typed = Object.entries(columns)
    .map(([k, t]) => `${snake(k)} ${t}`)
    .join(', ');
  const inserted: Row[] = [];
  for (let i = 0; i < rows.length; i += 1000) {
    const batch = rows.slice(i, i + 1000).map((r) => Object.fromEntries(Object.keys(columns).map((k) => [snake(k), r[k]])));
    const out: Row[] = await m.query(
      `INSERT INTO ${table} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM jsonb_to_recordset($1::jsonb) AS x(${typed}) ON CONFLICT DO NOTHING RETURNING *`,
      [JSON.stringify(batch)],
    );
    inserted.push(...out.map(camelRow));
  }
  return inserted;
}

async function idsByCode(m: EntityManager, table: string, codes: string[]): Promise<Map<string, string>> {
  const rows: { id: string; code: string }[] = await m.query(`SELECT id, code FROM ${table} WHERE code = ANY($1)`, [codes]);
  return new Map(rows.map((r) => [r.code, r.id]));
}

/**
 * Builds the demo district (巴南区: ~200 schools, 4534 cameras, alarm buttons, guards, posts)
 * and the demo users. Deterministic and idempotent: a second run inserts nothing and writes no
 * audit entries. Existing rows and users are never modified.
 */
export async function seedDemoDistrict(ctx: INestApplicationContext, config: AppConfig, opts: SeedOptions = {}): Promise<SeedSummary> {
  const say = opts.progress ?? (() => {});
  const password = config.demo.userPassword;
  const withUsers = password !== '' && config.env !== 'production';
  if (withUsers && password.length < config.auth.minPasswordLength)
    throw new Error(`demo.userPassword must have at least ${config.auth.minPasswordLength} characters (auth.minPasswordLength)`);

  const started = Date.now();
  const d = buildDistrict();
  say(
    `seed: demo district ${DISTRICT.name} — ${d.schools.length} schools, ${d.cameras.length} cameras, ${d.alarms.length} alarm buttons, ${d.guards.length} guards, ${d.posts.length} protection posts`,
  );

  const db = ctx.get(DataSource);
  const audit = ctx.get(AuditService);
  const created: Record<string, number> = {};
  const actor = { requestId: `seed-${started}`, ip: null, actor: { type: 'system' as const, id: null, name: 'seed' } };

  await requestContext.run(actor, () =>
    db.transaction(async (m) => {
      // One seed at a time (two `npm start`s at once): the second waits, then finds everything present.
      await m.query(`SELECT pg_advisory_xact_lock(hashtext('shouhu.seed'))`);
      const step = async (entity: string, table: string, columns: Record<string, string>, rows: Row[], schoolOf?: (r: Row) => string | null) => {
        const inserted = await insertMissing(m, table, columns, rows);
        created[table] = inserted.length;
        const recs: AuditRecord[] = inserted.map((r) => ({
          action: 'seed_create',
          entity,
          entityId: r.id as string,
          schoolId: schoolOf?.(r) ?? null,
          after: r,
        }));
        await audit.record(m, recs);
        say(`seed: ${table.padEnd(16)} ${String(rows.length).padStart(5)} (${inserted.length} new)`);
      };

      await step('district', 'districts', { code: 'text', name: 'text', timezone: 'text' }, [DISTRICT]);
      const [{ id: districtId }] = await m.query(`SELECT id FROM districts WHERE code = $1`, [DISTRICT.code]);
      await step(
        'zone',
        'school_zones',
        { districtId: 'uuid', code: 'text', name: 'text', level: 'text' },
        ZONES.map((z) => ({ ...z, districtId })),
      );
      await step(
        'group',
        'education_groups',
        { districtId: 'uuid', code: 'text', name: 'text' },
        GROUPS.map((g) => ({ ...g, districtId })),
      );
      const zoneIds = await idsByCode(
        m,
        'school_zones',
        ZONES.map((z) => z.code),
      );
      const groupIds = await idsByCode(
        m,
        'education_groups',
        GROUPS.map((g) => g.code),
      );

      await step(
        'school',
        'schools',
        {
          districtId: 'uuid',
          zoneId: 'uuid',
          groupId: 'uuid',
          code: 'text',
          name: 'text',
          type: 'text',
          address: 'text',
          lat: 'float8',
          lng: 'float8',
          studentCount: 'int',
          staffCount: 'int',
          boarding: 'bool',
          securityChiefName: 'text',
          securityChiefPhone: 'text',
          principalName: 'text',
          principalPhone: 'text',
          policeStationName: 'text',
          policeStationPhone: 'text',
          timetable: 'jsonb',
          calendar: 'jsonb',
        },
        d.schools.map((s) => ({
          ...s,
          districtId,
          zoneId: s.zoneCode ? zoneIds.get(s.zoneCode) : null,
          groupId: s.groupCode ? groupIds.get(s.groupCode) : null,
        })),
        (r) => r.id as string,
      );
      const schoolIds = await idsByCode(
        m,
        'schools',
        d.schools.map((s) => s.code),
      );
      const missing = d.schools.filter((s) => !schoolIds.has(s.code));
      // A school of the same name under another code blocks ours: say so rather than half-seed.
      if (missing.length)
        throw new Error(`seed: schools not present after insert (name taken by another code?): ${missing.map((s) => `${s.code} ${s.name}`).join(', ')}`);
      const bySchool = (code: string) => schoolIds.get(code)!;
      const ownSchool = (r: Row) => r.schoolId as string;

      await step(
        'camera',
        'cameras',
        { schoolId: 'uuid', deviceId: 'text', channelId: 'text', name: 'text', location: 'text', areaKind: 'text', vendor: 'text', model: 'text' },
        d.cameras.map((c) => ({ ...c, schoolId: bySchool(c.schoolCode) })),
        ownSchool,
      );
      const linked = d.alarms.flatMap((a) => a.linkedCameras);
      const camRows: { id: string; device_id: string; channel_id: string; school_id: string }[] = await m.query(
        `SELECT c.id, c.device_id, c.channel_id, c.school_id FROM cameras c JOIN unnest($1::bpchar[], $2::bpchar[]) AS k(d, ch) ON c.device_id = k.d AND c.channel_id = k.ch`,
        [linked.map((l) => l.deviceId), linked.map((l) => l.channelId)],
      );
      const camId = new Map(camRows.map((c) => [`${c.device_id}/${c.channel_id}|${c.school_id}`, c.id]));

      const seededAt = new Date().toISOString();
      await step(
        'alarm_device',
        'alarm_devices',
        { schoolId: 'uuid', code: 'text', location: 'text', areaKind: 'text', policeLinked: 'bool', linkedCameraIds: 'uuid[]' },
        d.alarms.map((a) => {
          const schoolId = bySchool(a.schoolCode);
          // Only cameras of the same school (a pre-existing camera elsewhere with our ids is skipped).
          const ids = a.linkedCameras.map((l) => camId.get(`${l.deviceId}/${l.channelId}|${schoolId}`)).filter((x): x is string => !!x);
          return { ...a, schoolId, linkedCameraIds: ids };
        }),
        ownSchool,
      );
      await step(
        'guard',
        'guards',
        { schoolId: 'uuid', name: 'text', licenceNo: 'text', fullTime: 'bool', phone: 'text', verifiedAt: 'timestamptz', verifiedByName: 'text' },
        // The demo district's roster stands for one the bureau has verified (only verified guards count, attack F8e).
        d.guards.map((g) => ({ ...g, schoolId: bySchool(g.schoolCode), verifiedAt: seededAt, verifiedByName: '' })),
        ownSchool,
      );
      // QR tokens are secrets printed at the gate: random, only generated for posts not yet present.
      await step(
        'protection_post',
        'protection_posts',
        { schoolId: 'uuid', code: 'text', gate: 'text', windows: 'jsonb', requiredHeadcount: 'int', qrToken: 'text' },
        d.posts.map((p) => ({ ...p, schoolId: bySchool(p.schoolCode), qrToken: newQrToken() })),
        ownSchool,
      );
      // Patrol plans have no unique key: one per name, inserted only when that name is absent (the advisory lock above keeps two seeds apart).
      const plans: Row[] = await m.query(
        `INSERT INTO patrol_plans (name, cron, scope, checks)
         SELECT x.name, x.cron, '{"kind":"district"}'::jsonb, x.checks FROM jsonb_to_recordset($1::jsonb) AS x(name text, cron text, checks text[])
         WHERE NOT EXISTS (SELECT 1 FROM patrol_plans p WHERE p.name = x.name) RETURNING *`,
        [JSON.stringify(DEMO_PLANS)],
      );
      created.patrol_plans = plans.length;
      await audit.record(
        m,
        plans.map((r) => ({ action: 'seed_create', entity: 'patrol_plan', entityId: r.id as string, schoolId: null, after: r })),
      );
      // Their job schedulers come from the plans table: at boot (npm start seeds first) or at the next reconcile (queue.schedulerReconcileMs).
      say(`seed: ${'patrol_plans'.padEnd(16)} ${String(DEMO_PLANS.length).padStart(5)} (${plans.length} new)`);
    }),
  );

  // Fresh statistics, so the first queries on the new district get sensible plans.
  if (Object.values(created).some((n) => n > 0)) await db.query(`ANALYZE schools, cameras, alarm_devices, guards, protection_posts`);

  // Users go through UsersService (argon2 hash, audit), after the district has committed.
  const users: SeedSummary['users'] = [
    ...DEMO_STAFF.map(({ username, role }) => ({ username, role })),
    ...d.schools.filter((s) => s.securityUser).map((s) => ({ username: s.securityUser!, role: 'school_security' as const, school: s.name })),
  ];
  const usersCreated: string[] = [];
  if (!withUsers) {
    say(`seed: demo users skipped (${config.env === 'production' ? 'never in production' : 'demo.userPassword is empty'})`);
  } else {
    const usersService = ctx.get(UsersService);
    const schoolIds = await idsByCode(
      db.manager,
      'schools',
      d.schools.map((s) => s.code),
    );
    const existing = new Set<string>(
      (await db.query(`SELECT lower(username) AS u FROM users WHERE lower(username) = ANY($1)`, [users.map((u) => u.username.toLowerCase())])).map(
        (r: { u: string }) => r.u,
      ),
    );
    await requestContext.run(actor, async () => {
      for (const spec of DEMO_STAFF.filter((u) => !existing.has(u.username))) {
        await usersService.create({ username: spec.username, password, role: spec.role, displayName: spec.displayName });
        usersCreated.push(spec.username);
      }
      for (const s of d.schools.filter((x) => x.securityUser && !existing.has(x.securityUser))) {
        await usersService.create({
          username: s.securityUser!,
          password,
          role: 'school_security',
          schoolId: schoolIds.get(s.code),
          displayName: `${s.name}保卫干部`,
        });
        usersCreated.push(s.securityUser!);
      }
    });
    say(`seed: demo users (${usersCreated.length} new; password from demo.userPassword):`);
    for (const u of users) say(`  ${u.username.padEnd(20)} ${u.role}${u.school ? ` · ${u.school}` : ''}`);
    const shifts = await seedDemoRoster(db, audit);
    say(`seed: ${'duty_shifts'.padEnd(16)} ${String(DEMO_ROSTER_DAYS).padStart(5)} days (${shifts} new shifts)`);
  }

  const present: Record<string, number> = {};
  for (const t of ['schools', 'cameras', 'alarm_devices', 'guards', 'protection_posts']) {
    const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM ${t}`);
    present[t] = n;
  }
  say(`seed: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { created, present, usersCreated, users };
}
