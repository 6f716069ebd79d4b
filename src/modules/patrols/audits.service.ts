import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { JobName, QueueName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log';
import { RegistryService } from '../registry';
import { shanghaiDate, TZ } from '../school-day';
import { AUDIT_CHECKS, CheckContext, CheckResult } from './audit-checks';
import { DayFactsService } from './day-facts.service';
import { FindingsService, NewFinding } from './findings.service';
import { CheckName } from './patrols.constants';
import { cronMinGapSeconds, cronProblem, cronSlot, toMinute } from './schedule';
import type { PatrolPlanView, PatrolRunSchoolView, PatrolRunView } from './views';

export type PlanScope = { kind: 'district' } | { kind: 'zone' | 'group' | 'schools'; ids: string[] };
export interface PlanInput {
  name: string;
  cron: string;
  scope: PlanScope;
  checks: CheckName[];
  enabled?: boolean;
}

const PLAN_COLS = `id, name, cron, scope, checks, enabled, created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt"`;
const RUN_COLS = `id, plan_id AS "planId", slot, evaluated_at AS "evaluatedAt", trigger, checks, school_count AS "schoolCount", failed_school_count AS "failedSchoolCount",
  finding_count AS "findingCount", duration_ms AS "durationMs", created_at AS "createdAt"`;
export const schedulerId = (planId: string) => `patrol-plan:${planId}`;

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
      const min = this.cfg.minCronIntervalSeconds;
      if (why) fields.push({ field: 'cron', reason: why });
      else if (cronMinGapSeconds(p.cron) < min)
        fields.push({
          field: 'cron',
          reason: `runs more often than every ${min} s (patrols.minCronIntervalSeconds): an audit of the district needs that long`,
        });
    }
    if (p.scope) {
      const ids = (p.scope as { ids?: string[] }).ids;
      if (p.scope.kind === 'district' && ids?.length) fields.push({ field: 'scope.ids', reason: 'must be empty for the whole district' });
      if (p.scope.kind !== 'district' && !ids?.length) fields.push({ field: 'scope.ids', reason: `required for scope ${p.scope.kind}` });
    }
    if (fields.length) throw Errors.validation(fields);
  }

  async createPlan(dto: PlanInput, userId: string): Promise<PatrolPlanView> {
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

  async updatePlan(id: string, dto: Partial<PlanInput>): Promise<PatrolPlanView> {
    this.validate(dto);
    const plan = await this.db.transaction(async (m) => {
      const [before] = await m.query(`SELECT ${PLAN_COLS} FROM patrol_plans WHERE id = $1 FOR UPDATE`, [id]);
      if (!before) throw Errors.notFound(ErrorCode.PATROL_PLAN.NOT_FOUND, id);
      const [after] = returningRows<PatrolPlanView>(
        await m.query(
          `UPDATE patrol_plans SET name = COALESCE($2, name), cron = COALESCE($3, cron), scope = COALESCE($4, scope), checks = COALESCE($5, checks),
                  enabled = COALESCE($6, enabled), updated_at = now() WHERE id = $1 RETURNING ${PLAN_COLS}`,
          [
            id,
            dto.name?.trim() ?? null,
            dto.cron?.trim() ?? null,
            dto.scope ? JSON.stringify(normScope(dto.scope)) : null,
            dto.checks ? [...new Set(dto.checks)] : null,
            dto.enabled ?? null,
          ],
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
    await this.syncScheduler({ id, cron: '', enabled: false });
  }

  async plan(id: string): Promise<PatrolPlanView> {
    const [row] = await this.db.query(`SELECT ${PLAN_COLS} FROM patrol_plans WHERE id = $1`, [id]);
    if (!row) throw Errors.notFound(ErrorCode.PATROL_PLAN.NOT_FOUND, id);
    return row;
  }

  async plans(limit: number, offset: number): Promise<Page<PatrolPlanView>> {
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${PLAN_COLS} FROM patrol_plans ORDER BY created_at, id LIMIT $1 OFFSET $2`, [limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_plans`),
    ]);
    return { items, total, limit, offset };
  }

  /**
   * The plan's scheduler follows the plan (Postgres is the truth). With Redis down the change
   * waits for the next reconcile (on reconnect, and every queue.schedulerReconcileMs): the plan
   * itself is saved, so the route does not fail.
   */
  private async syncScheduler(plan: { id: string; cron: string; enabled: boolean }, opts: { throwOnRedis?: boolean } = {}): Promise<void> {
    if (!opts.throwOnRedis && !this.queue.redisReady) {
      this.logger.warn(`scheduler of patrol plan ${plan.id} left to the next reconcile: Redis is down`);
      return;
    }
    const apply = plan.enabled
      ? this.queue.upsertScheduler(schedulerId(plan.id), JobName.PatrolRun, { pattern: plan.cron, tz: TZ }, { planId: plan.id }, { wanted: false })
      : this.queue.removeScheduler(JobName.PatrolRun, schedulerId(plan.id), { wanted: false });
    await apply.catch((e: Error) => {
      if (opts.throwOnRedis) throw e;
      this.logger.warn(`scheduler of patrol plan ${plan.id} left to the next reconcile: ${e.message}`);
    });
  }

  /**
   * At boot, on every Redis (re)connect and periodically (QueueService.onReconcile): one scheduler
   * per enabled plan, none for deleted or disabled plans (Redis may have been emptied, or a change lost).
   */
  async reconcileSchedulers(): Promise<{ upserted: number; removed: number }> {
    const plans: { id: string; cron: string; enabled: boolean }[] = await this.db.query(`SELECT id, cron, enabled FROM patrol_plans`);
    const wanted = new Set(plans.filter((p) => p.enabled).map((p) => schedulerId(p.id)));
    if (!this.queue.redisReady) throw new Error('Redis is down');
    const existing = await this.queue.bounded(this.queue.queue(QueueName.Patrols).getJobSchedulers(0, -1), 'patrol plan schedulers');
    let removed = 0;
    for (const s of existing) {
      const id = s.key ?? (s as { id?: string }).id;
      if (id?.startsWith('patrol-plan:') && !wanted.has(id)) {
        await this.queue.removeScheduler(JobName.PatrolRun, id, { wanted: false });
        removed++;
      }
    }
    for (const p of plans) await this.syncScheduler(p, { throwOnRedis: true });
    return { upserted: wanted.size, removed };
  }

  // ------------------------------------------------------------------ runs

  /**
   * A manual run's slot: not in the future (it would take the slot of the real scheduled run
   * before its time) and not older than patrols.manualSlotMaxAgeHours (a run evaluates today's
   * facts: filed under a slot years ago it would be a false record). Field-level 400.
   */
  checkManualSlot(slot: Date, now = new Date()): void {
    const maxAge = this.cfg.manualSlotMaxAgeHours;
    if (toMinute(slot) > toMinute(now)) throw Errors.validation([{ field: 'slot', reason: 'must not be in the future' }]);
    if (now.getTime() - slot.getTime() > maxAge * 3_600_000)
      throw Errors.validation([{ field: 'slot', reason: `must be within the last ${maxAge} hours (patrols.manualSlotMaxAgeHours)` }]);
  }

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
        await m.query(
          `INSERT INTO patrol_run_schools (run_id, school_id, passed, results) SELECT $1, s, p, r FROM jsonb_to_recordset($2::jsonb) AS x(s uuid, p boolean, r jsonb)`,
          [row.id, JSON.stringify(chunk)],
        );
      }
      const stored = await this.findingsSvc.record(
        m,
        findings.map((f) => ({ ...f, runId: row.id })),
        now,
      );
      await m.query(`UPDATE patrol_runs SET finding_count = $2, duration_ms = $3 WHERE id = $1`, [row.id, stored.length, Date.now() - started]);
      await this.audit.record(m, {
        action: 'run',
        entity: 'patrol_plan',
        entityId: planId,
        after: { runId: row.id, slot, schools: schools.length, failed, findings: stored.length },
      });
      return row.id as string;
    });
    if (!run) return { run: await this.findRun(planId, slot), duplicate: true };
    this.logger.log(
      `plan ${planId} slot ${slot.toISOString()}: ${schools.length} schools, ${failed} failing, ${findings.length} findings in ${Date.now() - started} ms (schools ${loaded - started}, checks ${evaluated - loaded}, write ${Date.now() - evaluated})`,
    );
    return { run: await this.runById(run), duplicate: false };
  }

  private async findRun(planId: string, slot: Date): Promise<PatrolRunView | null> {
    const [row] = await this.db.query(`SELECT ${RUN_COLS} FROM patrol_runs WHERE plan_id = $1 AND slot = $2`, [planId, slot]);
    return row ?? null;
  }

  async runById(id: string): Promise<PatrolRunView> {
    const [row] = await this.db.query(`SELECT ${RUN_COLS} FROM patrol_runs WHERE id = $1`, [id]);
    if (!row) throw Errors.notFound(ErrorCode.PATROL_RUN.NOT_FOUND, id);
    return row;
  }

  async runs(f: { planId?: string }, limit: number, offset: number): Promise<Page<PatrolRunView>> {
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${RUN_COLS} FROM patrol_runs WHERE ($1::uuid IS NULL OR plan_id = $1) ORDER BY slot DESC, id LIMIT $2 OFFSET $3`, [
        f.planId ?? null,
        limit,
        offset,
      ]),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_runs WHERE ($1::uuid IS NULL OR plan_id = $1)`, [f.planId ?? null]),
    ]);
    return { items, total, limit, offset };
  }

  /** A run's per-school results, failing schools first. */
  async runSchools(runId: string, f: { failedOnly?: boolean }, limit: number, offset: number): Promise<Page<PatrolRunSchoolView>> {
    await this.runById(runId);
    const where = `WHERE run_id = $1 AND ($2::boolean IS NOT TRUE OR NOT passed)`;
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT school_id AS "schoolId", passed, results FROM patrol_run_schools ${where} ORDER BY passed, school_id LIMIT $3 OFFSET $4`, [
        runId,
        f.failedOnly ?? null,
        limit,
        offset,
      ]),
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
   * Evaluates checks for schools at `now` (Asia/Shanghai day of `now`): the facts the checks
   * read are loaded once for all schools (DayFactsService: a district of 5,000 schools and
   * 100,000 cameras is a handful of queries, not one per school), then each check
   * (audit-checks.ts) judges each school. Results per school and check; findings in check order.
   */
  async evaluate(schools: Awaited<ReturnType<RegistryService['schoolsIn']>>, checks: CheckName[], now: Date, wholeDistrict = false) {
    const want = AUDIT_CHECKS.filter((c) => checks.includes(c.name));
    const results = new Map<string, Record<string, CheckResult>>(schools.map((s) => [s.id, {}]));
    const findings: NewFinding[] = [];
    if (schools.length === 0 || want.length === 0) return { results, findings };
    const ctx: CheckContext = { now, date: shanghaiDate(now), cfg: this.cfg };
    const facts = await this.dayFacts.load(
      schools,
      ctx.date,
      now,
      want.map((c) => c.fact),
      { wholeDistrict, now },
    );
    for (const check of want)
      for (const s of schools) {
        const { result, findings: found } = check.judge(s, facts.get(s.id)!, ctx);
        results.get(s.id)![check.name] = result;
        for (const f of found) findings.push(f);
      }
    return { results, findings };
  }
}

const normScope = (s: PlanScope): PlanScope => (s.kind === 'district' ? { kind: 'district' } : { kind: s.kind, ids: [...new Set(s.ids)] });
