import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { JobName, QueueName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log/audit.service';
import { RegistryService } from '../registry/registry.service';
import { DayFact, DayFactsService } from './day-facts.service';
import { unstaffedFinding } from './field.service';
import { FindingsService, NewFinding } from './findings.service';
import { CheckName, CHECKS } from './patrols.constants';
import { schoolHours, shanghaiDate, TZ } from '../school-day/calendar';
import { cronProblem, cronSlot, toMinute } from './schedule';

export type PlanScope = { kind: 'district' } | { kind: 'zone' | 'group' | 'schools'; ids: string[] };
export interface PlanInput {
  name: string;
  cron: string;
  scope: PlanScope;
  checks: CheckName[];
  enabled?: boolean;
}

/** One check's verdict for one school in a run. */
export interface CheckResult {
  status: 'pass' | 'fail' | 'n/a';
  [k: string]: unknown;
}

const PLAN_COLS = `id, name, cron, scope, checks, enabled, created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt"`;
const RUN_COLS = `id, plan_id AS "planId", slot, evaluated_at AS "evaluatedAt", trigger, checks, school_count AS "schoolCount", failed_school_count AS "failedSchoolCount",
  finding_count AS "findingCount", duration_ms AS "durationMs", created_at AS "createdAt"`;
export const schedulerId = (planId: string) => `patrol-plan:${planId}`;
const LIST_CAP = 20; // devices named in one school's result (the count is always complete)

/**
 * Scheduled patrol audits: plans (cron in Asia/Shanghai, scope, checks) mirrored as BullMQ job
 * schedulers, and runs. A run is idempotent per plan and time slot: its row is unique on
 * (plan, slot) and is committed together with its results and findings, so a retried or
 * concurrent run of the same slot commits nothing more.
 */
@Injectable()
export class AuditsService {
  private readonly logger = new Logger('PatrolAudits');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    @Inject(QueueService) private readonly queue: QueueService,
    private readonly registry: RegistryService,
    private readonly dayFacts: DayFactsService,
    private readonly findingsSvc: FindingsService,
    private readonly audit: AuditService,
  ) {}

  private get cfg() {
    return this.config.patrols;
  }

  // ------------------------------------------------------------------ plans

  private validate(p: Partial<PlanInput>): void {
    const fields: { field: string; reason: string }[] = [];
    if (p.cron !== undefined) {
      const why = cronProblem(p.cron);
      if (why) fields.push({ field: 'cron', reason: why });
    }
    if (p.scope) {
      const ids = (p.scope as { ids?: string[] }).ids;
      if (p.scope.kind === 'district' && ids?.length) fields.push({ field: 'scope.ids', reason: 'must be empty for the whole district' });
      if (p.scope.kind !== 'district' && !ids?.length) fields.push({ field: 'scope.ids', reason: `required for scope ${p.scope.kind}` });
    }
    if (fields.length) throw Errors.validation(fields);
  }

  async createPlan(dto: PlanInput, userId: string) {
    this.validate(dto);
    const plan = await this.db.transaction(async (m) => {
      const [row] = await m.query(
        `INSERT INTO patrol_plans (name, cron, scope, checks, enabled, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${PLAN_COLS}`,
        [dto.name.trim(), dto.cron.trim(), JSON.stringify(normScope(dto.scope)), [...new Set(dto.checks)], dto.enabled ?? true, userId],
      );
      await this.audit.record(m, { action: 'create', entity: 'patrol_plan', entityId: row.id, after: row });
      return row;
    });
    await this.syncScheduler(plan);
    return plan;
  }

  async updatePlan(id: string, dto: Partial<PlanInput>) {
    this.validate(dto);
    const plan = await this.db.transaction(async (m) => {
      const [before] = await m.query(`SELECT ${PLAN_COLS} FROM patrol_plans WHERE id = $1 FOR UPDATE`, [id]);
      if (!before) throw Errors.notFound(ErrorCode.PATROL_PLAN.NOT_FOUND, id);
      const [after] = returningRows<Record<string, unknown>>(
        await m.query(
          `UPDATE patrol_plans SET name = COALESCE($2, name), cron = COALESCE($3, cron), scope = COALESCE($4, scope), checks = COALESCE($5, checks),
                  enabled = COALESCE($6, enabled), updated_at = now() WHERE id = $1 RETURNING ${PLAN_COLS}`,
          [id, dto.name?.trim() ?? null, dto.cron?.trim() ?? null, dto.scope ? JSON.stringify(normScope(dto.scope)) : null, dto.checks ? [...new Set(dto.checks)] : null, dto.enabled ?? null],
        ),
      );
      await this.audit.record(m, { action: 'update', entity: 'patrol_plan', entityId: id, before, after });
      return after;
    });
    await this.syncScheduler(plan as { id: string; cron: string; enabled: boolean });
    return plan;
  }

  async deletePlan(id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const [before] = returningRows<Record<string, unknown>>(await m.query(`DELETE FROM patrol_plans WHERE id = $1 RETURNING ${PLAN_COLS}`, [id]));
      if (!before) throw Errors.notFound(ErrorCode.PATROL_PLAN.NOT_FOUND, id);
      await this.audit.record(m, { action: 'delete', entity: 'patrol_plan', entityId: id, before });
    });
    await this.queue.removeScheduler(JobName.PatrolRun, schedulerId(id));
  }

  async plan(id: string) {
    const [row] = await this.db.query(`SELECT ${PLAN_COLS} FROM patrol_plans WHERE id = $1`, [id]);
    if (!row) throw Errors.notFound(ErrorCode.PATROL_PLAN.NOT_FOUND, id);
    return row;
  }

  async plans(limit: number, offset: number): Promise<Page<unknown>> {
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${PLAN_COLS} FROM patrol_plans ORDER BY created_at, id LIMIT $1 OFFSET $2`, [limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_plans`),
    ]);
    return { items, total, limit, offset };
  }

  private async syncScheduler(plan: { id: string; cron: string; enabled: boolean }): Promise<void> {
    if (plan.enabled) await this.queue.upsertScheduler(schedulerId(plan.id), JobName.PatrolRun, { pattern: plan.cron, tz: TZ }, { planId: plan.id });
    else await this.queue.removeScheduler(JobName.PatrolRun, schedulerId(plan.id));
  }

  /** At boot: one scheduler per enabled plan, none for deleted or disabled plans (Redis may have been emptied, or a change lost). */
  async reconcileSchedulers(): Promise<{ upserted: number; removed: number }> {
    const plans: { id: string; cron: string; enabled: boolean }[] = await this.db.query(`SELECT id, cron, enabled FROM patrol_plans`);
    const wanted = new Set(plans.filter((p) => p.enabled).map((p) => schedulerId(p.id)));
    const existing = await this.queue.queue(QueueName.Patrols).getJobSchedulers(0, -1);
    let removed = 0;
    for (const s of existing) {
      const id = s.key ?? (s as { id?: string }).id;
      if (id?.startsWith('patrol-plan:') && !wanted.has(id)) {
        await this.queue.removeScheduler(JobName.PatrolRun, id);
        removed++;
      }
    }
    for (const p of plans) await this.syncScheduler(p);
    return { upserted: wanted.size, removed };
  }

  // ------------------------------------------------------------------ runs

  /**
   * Runs a plan for a time slot (default: the cron occurrence at or before `now`). Returns the
   * run and whether it had already been done for that slot. A plan deleted meanwhile: null.
   */
  async runPlan(planId: string, opts: { slot?: Date; now?: Date; trigger?: 'schedule' | 'manual' } = {}) {
    const now = opts.now ?? new Date();
    const [plan] = await this.db.query(`SELECT ${PLAN_COLS} FROM patrol_plans WHERE id = $1`, [planId]);
    if (!plan) return null;
    const slot = toMinute(opts.slot ?? cronSlot(plan.cron, now));
    const done = await this.findRun(planId, slot);
    if (done) return { run: done, duplicate: true };

    const started = Date.now();
    const schools = await this.schoolsOf(plan.scope as PlanScope);
    const loaded = Date.now();
    const { results, findings } = await this.evaluate(schools, plan.checks as CheckName[], now, (plan.scope as PlanScope).kind === 'district');
    const evaluated = Date.now();
    const failed = [...results.values()].filter((r) => Object.values(r).some((c) => c.status === 'fail')).length;

    const run = await this.db.transaction(async (m) => {
      const [row] = await m.query(
        `INSERT INTO patrol_runs (plan_id, slot, evaluated_at, trigger, checks, school_count, failed_school_count, finding_count, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) ON CONFLICT (plan_id, slot) DO NOTHING RETURNING id`,
        [planId, slot, now, opts.trigger ?? 'schedule', plan.checks, schools.length, failed, findings.length],
      );
      if (!row) return null; // another attempt committed this slot while we computed
      // One JSON document per 5,000 schools: Postgres parses it far faster than a jsonb[] array literal.
      const ids = [...results.keys()];
      for (let i = 0; i < ids.length; i += 5000) {
        const chunk = ids.slice(i, i + 5000).map((id) => ({ s: id, p: !Object.values(results.get(id)!).some((c) => c.status === 'fail'), r: results.get(id) }));
        await m.query(`INSERT INTO patrol_run_schools (run_id, school_id, passed, results) SELECT $1, s, p, r FROM jsonb_to_recordset($2::jsonb) AS x(s uuid, p boolean, r jsonb)`, [
          row.id,
          JSON.stringify(chunk),
        ]);
      }
      const stored = await this.findingsSvc.record(m, findings.map((f) => ({ ...f, runId: row.id })), now);
      await m.query(`UPDATE patrol_runs SET finding_count = $2, duration_ms = $3 WHERE id = $1`, [row.id, stored.length, Date.now() - started]);
      await this.audit.record(m, { action: 'run', entity: 'patrol_plan', entityId: planId, after: { runId: row.id, slot, schools: schools.length, failed, findings: stored.length } });
      return row.id as string;
    });
    if (!run) return { run: await this.findRun(planId, slot), duplicate: true };
    this.logger.log(`plan ${planId} slot ${slot.toISOString()}: ${schools.length} schools, ${failed} failing, ${findings.length} findings in ${Date.now() - started} ms (schools ${loaded - started}, checks ${evaluated - loaded}, write ${Date.now() - evaluated})`);
    return { run: await this.runById(run), duplicate: false };
  }

  private async findRun(planId: string, slot: Date) {
    const [row] = await this.db.query(`SELECT ${RUN_COLS} FROM patrol_runs WHERE plan_id = $1 AND slot = $2`, [planId, slot]);
    return row ?? null;
  }

  async runById(id: string) {
    const [row] = await this.db.query(`SELECT ${RUN_COLS} FROM patrol_runs WHERE id = $1`, [id]);
    if (!row) throw Errors.notFound(ErrorCode.PATROL_RUN.NOT_FOUND, id);
    return row;
  }

  async runs(f: { planId?: string }, limit: number, offset: number): Promise<Page<unknown>> {
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${RUN_COLS} FROM patrol_runs WHERE ($1::uuid IS NULL OR plan_id = $1) ORDER BY slot DESC, id LIMIT $2 OFFSET $3`, [f.planId ?? null, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_runs WHERE ($1::uuid IS NULL OR plan_id = $1)`, [f.planId ?? null]),
    ]);
    return { items, total, limit, offset };
  }

  /** A run's per-school results, failing schools first. */
  async runSchools(runId: string, f: { failedOnly?: boolean }, limit: number, offset: number): Promise<Page<unknown>> {
    await this.runById(runId);
    const where = `WHERE run_id = $1 AND ($2::boolean IS NOT TRUE OR NOT passed)`;
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT school_id AS "schoolId", passed, results FROM patrol_run_schools ${where} ORDER BY passed, school_id LIMIT $3 OFFSET $4`, [runId, f.failedOnly ?? null, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_run_schools ${where}`, [runId, f.failedOnly ?? null]),
    ]);
    return { items, total, limit, offset };
  }

  private schoolsOf(scope: PlanScope) {
    switch (scope.kind) {
      case 'zone':
        return this.registry.schoolsIn({ zoneIds: scope.ids });
      case 'group':
        return this.registry.schoolsIn({ groupIds: scope.ids });
      case 'schools':
        return this.registry.schoolsIn({ ids: scope.ids });
      default:
        return this.registry.schoolsIn();
    }
  }

  // ------------------------------------------------------------------ checks

  /**
   * Evaluates checks for schools at `now` (Asia/Shanghai day of `now`). The facts the checks
   * read are loaded once for all schools (DayFactsService): a district of 5,000 schools and
   * 100,000 cameras is a handful of queries, not one per school.
   */
  async evaluate(schools: Awaited<ReturnType<RegistryService['schoolsIn']>>, checks: CheckName[], now: Date, wholeDistrict = false) {
    const want = new Set(checks.filter((c) => (CHECKS as readonly string[]).includes(c)));
    const date = shanghaiDate(now);
    const results = new Map<string, Record<string, CheckResult>>(schools.map((s) => [s.id, {}]));
    const findings: NewFinding[] = [];
    const set = (schoolId: string, check: string, r: CheckResult) => (results.get(schoolId)![check] = r);
    if (schools.length === 0) return { results, findings };
    const facts = await this.dayFacts.load(schools, date, now, [...want].map((c) => CHECK_FACT[c]), { wholeDistrict, now });
    const factsOf = (id: string) => facts.get(id)!;

    if (want.has('camera_online_rate')) {
      const threshold = this.cfg.onlineRateThreshold;
      for (const s of schools) {
        const o = factsOf(s.id).online!;
        const camCount = o.devices.camera;
        if (!o.hours || now <= o.hours.start || camCount === 0) {
          set(s.id, 'camera_online_rate', { status: 'n/a', reason: !o.hours ? 'no school today' : camCount === 0 ? 'no cameras' : 'before school hours' });
          continue;
        }
        const total = camCount * (o.window.end.getTime() - o.window.start.getTime());
        const offline = o.notAlwaysOnline.map((d) => ({ id: d.id, name: d.name, onlineRate: d.windowMs ? round4(d.onlineMs / d.windowMs) : 0 }));
        const rate = total ? round4(o.onlineMs.camera / total) : 1;
        const ok = rate >= threshold;
        set(s.id, 'camera_online_rate', { status: ok ? 'pass' : 'fail', rate, threshold, cameras: camCount, notAlwaysOnline: offline.length, worst: offline.sort((a, b) => a.onlineRate - b.onlineRate).slice(0, LIST_CAP) });
        if (!ok)
          findings.push({
            source: 'audit',
            check: 'camera_online_rate',
            schoolId: s.id,
            subjectKind: 'school',
            subjectLabel: s.name,
            message: `${s.name} 上课时段摄像机在线率 ${pct(rate)}，低于 ${pct(threshold)}`,
            detail: { rate, threshold, cameras: camCount, worst: offline.slice(0, LIST_CAP) },
            at: now,
          });
      }
    }

    if (want.has('alarm_button')) {
      const testCutoff = now.getTime() - this.cfg.alarmTestOverdueDays * 86_400_000;
      for (const s of schools) {
        const buttons = factsOf(s.id).buttons!;
        const bad: { id: string; name: string; problems: string[] }[] = [];
        for (const b of buttons) {
          const problems: string[] = [];
          if (b.status !== 'online') problems.push('no_heartbeat');
          if (!b.policeLinked) problems.push('not_police_linked');
          if (!b.lastTestAt || new Date(b.lastTestAt).getTime() < testCutoff) problems.push('test_overdue');
          if (problems.length) {
            bad.push({ id: b.id, name: b.name, problems });
            findings.push({
              source: 'audit',
              check: 'alarm_button',
              schoolId: s.id,
              subjectKind: 'alarm_device',
              subjectId: b.id,
              subjectLabel: b.name,
              message: `一键报警 ${b.name}：${problems.map((p) => BUTTON_PROBLEM[p]).join('、')}`,
              detail: { problems, status: b.status, lastTestAt: b.lastTestAt },
              at: now,
            });
          }
        }
        set(s.id, 'alarm_button', buttons.length === 0 ? { status: 'fail', buttons: 0, reason: 'no alarm button' } : { status: bad.length ? 'fail' : 'pass', buttons: buttons.length, bad: bad.slice(0, LIST_CAP) });
        if (buttons.length === 0)
          findings.push({ source: 'audit', check: 'alarm_button', schoolId: s.id, subjectKind: 'school', subjectLabel: s.name, message: `${s.name} 未配备一键报警`, at: now });
      }
    }

    if (want.has('device_offline_24h')) {
      for (const s of schools) {
        const list = factsOf(s.id).overdueFaults!;
        set(s.id, 'device_offline_24h', { status: list.length ? 'fail' : 'pass', devices: list.length, list: list.slice(0, LIST_CAP).map((f) => ({ id: f.deviceId, kind: f.kind, name: f.name ?? '', since: f.since })) });
        for (const f of list) {
          const hours = Math.floor((now.getTime() - new Date(f.since).getTime()) / 3_600_000);
          const name = f.name ?? f.deviceId;
          findings.push({
            source: 'audit',
            check: 'device_offline_24h',
            schoolId: s.id,
            subjectKind: f.kind,
            subjectId: f.deviceId,
            subjectLabel: name,
            message: `${f.kind === 'camera' ? '摄像机' : '一键报警'} ${name} 已离线 ${hours} 小时`,
            detail: { since: f.since, hours },
            at: now,
          });
        }
      }
    }

    if (want.has('guard_staffing')) {
      for (const s of schools) {
        const { required, actual, rule } = factsOf(s.id).guards!;
        set(s.id, 'guard_staffing', { status: actual >= required ? 'pass' : 'fail', required, actual, short: Math.max(0, required - actual), rule });
        if (actual < required)
          findings.push({
            source: 'audit',
            check: 'guard_staffing',
            schoolId: s.id,
            subjectKind: 'school',
            subjectLabel: s.name,
            message: `${s.name} 专职保安员 ${actual} 人，应配 ${required} 人，缺 ${required - actual} 人`,
            detail: { required, actual, rule },
            at: now,
          });
      }
    }

    if (want.has('post_unstaffed')) {
      for (const s of schools) {
        const list = factsOf(s.id).posts!;
        const bad = list.filter((w) => !w.staffed);
        set(s.id, 'post_unstaffed', list.length ? { status: bad.length ? 'fail' : 'pass', windows: list.length, unstaffed: bad.map(windowReason) } : { status: 'n/a', reason: 'no post window due yet today' });
        for (const w of bad) findings.push(unstaffedFinding(w, 'audit', null));
      }
    }

    if (want.has('gate_open')) {
      for (const s of schools) {
        const list = factsOf(s.id).gates!;
        const hours = schoolHours(s.timetable, s.calendar, date);
        set(s.id, 'gate_open', !hours ? { status: 'n/a', reason: 'no school today' } : { status: list.length ? 'fail' : 'pass', openings: list.map((o) => ({ gate: o.gate, at: o.at, source: o.source })) });
        // Round verdicts already are findings; gate events become one here.
        for (const o of list.filter((x) => x.source === 'gate_event'))
          findings.push({
            source: 'audit',
            check: 'gate_open',
            schoolId: s.id,
            subjectKind: 'gate',
            subjectLabel: o.gate,
            message: `${s.name} ${o.gate} 上课时段开启超过 ${this.cfg.gateOpenToleranceMinutes} 分钟`,
            detail: { at: o.at, eventId: o.eventId },
            dedupKey: `gate:${o.eventId}`,
            at: o.at,
          });
      }
    }

    if (want.has('guard_patrol_count')) {
      const min = this.cfg.guardPatrolDailyMinimum;
      for (const s of schools) {
        const hours = schoolHours(s.timetable, s.calendar, date);
        const n = factsOf(s.id).guardPatrols!;
        if (!hours || now < hours.end) {
          set(s.id, 'guard_patrol_count', { status: 'n/a', count: n, minimum: min, reason: !hours ? 'no school today' : 'judged after school hours' });
          continue;
        }
        set(s.id, 'guard_patrol_count', { status: n >= min ? 'pass' : 'fail', count: n, minimum: min });
        if (n < min)
          findings.push({
            source: 'audit',
            check: 'guard_patrol_count',
            schoolId: s.id,
            subjectKind: 'school',
            subjectLabel: s.name,
            message: `${s.name} 今日保安巡查 ${n} 次，少于 ${min} 次`,
            detail: { count: n, minimum: min, date },
            dedupKey: `guard_patrols:${s.id}:${date}`,
            at: now,
          });
      }
    }
    return { results, findings };
  }
}

/** The day fact each check judges. */
const CHECK_FACT: Record<CheckName, DayFact> = {
  camera_online_rate: 'cameraOnline',
  device_offline_24h: 'overdueFaults',
  alarm_button: 'buttons',
  post_unstaffed: 'posts',
  guard_staffing: 'guards',
  gate_open: 'gates',
  guard_patrol_count: 'guardPatrols',
};

const BUTTON_PROBLEM: Record<string, string> = { no_heartbeat: '无心跳', not_police_linked: '未与公安联网', test_overdue: '测试超期' };
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const normScope = (s: PlanScope): PlanScope => (s.kind === 'district' ? { kind: 'district' } : { kind: s.kind, ids: [...new Set(s.ids)] });

export function windowReason(w: { postId: string; postCode: string; gate: string; kind: string; start: Date; required: number; present: number }) {
  return { postId: w.postId, post: w.postCode, gate: w.gate, window: w.kind, start: w.start, required: w.required, present: w.present };
}
