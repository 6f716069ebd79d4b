import { Body, Controller, Delete, Get, HttpCode, Inject, Patch, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { HeavyReads } from '../../infra/http/heavy-reads';
import { PageQuery } from '../../infra/http/pagination';
import { UuidParam } from '../../infra/http/params';
import { ParsePool } from '../../infra/tabular/tabular';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser } from '../../infra/access/roles';
import { AuditsService } from './audits.service';
import {
  CheckInDto,
  CheckinQuery,
  CloseTaskDto,
  ReopenTaskDto,
  CoverageQuery,
  CreatePlanDto,
  FindingExportQuery,
  FindingQuery,
  GateEventDto,
  GuardPatrolDto,
  RoundQuery,
  RunPlanDto,
  RunQuery,
  RunSchoolsQuery,
  StartRoundDto,
  TaskExportQuery,
  TaskListQuery,
  UpdatePlanDto,
  VerdictDto,
} from './dto';
import { FieldService } from './field.service';
import { FindingsService } from './findings.service';
import { findingExportRows, taskExportRows } from './patrol-export';
import { FIELD_ROLES, PLAN_ROLES, QR_ROLES, READ_ROLES, ROUND_ROLES, TASK_CLOSE_ROLES, TASK_READ_ROLES, TASK_REOPEN_ROLES } from './patrols.constants';
import type { PlanScope } from './audits.service';
import { RoundsService } from './rounds.service';

/** limit/offset from a page query, capped by registry.maxPageSize. */
function page(config: AppConfig, q: PageQuery): [number, number] {
  return [Math.min(q.limit ?? config.registry.defaultPageSize, config.registry.maxPageSize), q.offset ?? 0];
}

@ApiTags('patrols')
@ApiBearerAuth()
@Controller('patrol-plans')
export class PatrolPlansController {
  constructor(
    private readonly audits: AuditsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Creates a patrol plan: name, cron (Asia/Shanghai), scope (district, zones, groups or schools) and checks; its job scheduler follows. Audited. */
  @Roles(...PLAN_ROLES)
  @Post()
  create(@CurrentUser() user: AuthUser, @Body() dto: CreatePlanDto) {
    return this.audits.createPlan({ ...dto, scope: dto.scope as PlanScope }, user.id);
  }

  /** Lists patrol plans with their schedule, scope, checks and whether they are enabled. */
  @Roles(...READ_ROLES)
  @Get()
  list(@Query() q: PageQuery) {
    return this.audits.plans(...page(this.config, q));
  }

  /** One patrol plan by id. */
  @Roles(...READ_ROLES)
  @Get(':id')
  get(@UuidParam() id: string) {
    return this.audits.plan(id);
  }

  /** Changes a patrol plan (name, cron, scope, checks, enabled); its job scheduler follows. Audited. */
  @Roles(...PLAN_ROLES)
  @Patch(':id')
  update(@UuidParam() id: string, @Body() dto: UpdatePlanDto) {
    return this.audits.updatePlan(id, { ...dto, scope: dto.scope as PlanScope | undefined });
  }

  /** Deletes a patrol plan and its scheduler (its runs and findings go with it). Audited. */
  @Roles(...PLAN_ROLES)
  @Delete(':id')
  @HttpCode(204)
  async remove(@UuidParam() id: string) {
    await this.audits.deletePlan(id);
  }

  /** Runs a plan now (or for a given slot): 201 with the run, 200 if that slot had already run. */
  @Roles(...PLAN_ROLES)
  @Post(':id/run')
  async run(@UuidParam() id: string, @Body() dto: RunPlanDto, @Res({ passthrough: true }) res: Response) {
    await this.audits.plan(id);
    const slot = dto.slot ? new Date(dto.slot) : new Date();
    this.audits.checkManualSlot(slot);
    const r = await this.audits.runPlan(id, { slot, trigger: 'manual' });
    res.status(r!.duplicate ? 200 : 201);
    return { ...r!.run, duplicate: r!.duplicate };
  }
}

@ApiTags('patrols')
@ApiBearerAuth()
@Controller('patrol-runs')
export class PatrolRunsController {
  constructor(
    private readonly audits: AuditsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Lists patrol runs (latest first, by plan and time): schools audited, schools failing, findings. */
  @Roles(...READ_ROLES)
  @Get()
  list(@Query() q: RunQuery) {
    return this.audits.runs(q, ...page(this.config, q));
  }

  /** One patrol run by id. */
  @Roles(...READ_ROLES)
  @Get(':id')
  get(@UuidParam() id: string) {
    return this.audits.runById(id);
  }

  /** The schools of one patrol run with their result and reasons, failing first. */
  @Roles(...READ_ROLES)
  @Get(':id/schools')
  schools(@UuidParam() id: string, @Query() q: RunSchoolsQuery) {
    return this.audits.runSchools(id, q, ...page(this.config, q));
  }
}

@ApiTags('patrols')
@ApiBearerAuth()
@Controller()
export class FindingsController {
  constructor(
    private readonly findings: FindingsService,
    private readonly tabular: ParsePool,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Sends a table as a CSV (UTF-8 with BOM) or XLSX download, named in English and zh-CN with today's date. */
  private async file(
    user: AuthUser,
    res: Response,
    format: 'csv' | 'xlsx',
    name: { en: string; zh: string },
    table: { header: string[]; rows: (string | number)[][] },
  ) {
    // Bounded per process and per user (ParsePool.exclusive) and built in a worker thread: never on the loop that takes presses.
    const body = await this.tabular.exclusive(user.id, 'export', () => this.tabular.write(format, name.zh, table.header, table.rows));
    const day = new Date().toISOString().slice(0, 10);
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="${name.en}_${day}.${format}"; filename*=UTF-8''${encodeURIComponent(`${name.zh}_${day}.${format}`)}`,
    );
    return new StreamableFile(body);
  }

  /**
   * The findings the list's filters match (school, check, source, run, time), newest first, as CSV (UTF-8 with BOM) or
   * XLSX (default): zh-CN headers and labels, school names, Asia/Shanghai times, formula-like text neutralised. School
   * staff get their own school's. More than patrols.exportMaxRows matching: 400 on `from` (narrow the range).
   */
  @Roles(...TASK_READ_ROLES)
  @Get('patrol-findings/export')
  async exportFindings(@CurrentUser() user: AuthUser, @Query() q: FindingExportQuery, @Res({ passthrough: true }) res: Response) {
    const { format = 'xlsx', limit: _l, offset: _o, ...filters } = q;
    const rows = await this.findings.findingsForExport(user, filters, this.config.patrols.exportMaxRows);
    return this.file(user, res, format, { en: 'patrol-findings', zh: '巡查发现' }, findingExportRows(rows));
  }

  /**
   * The rectification tasks the list's filters match (school, status, overdue), open first by deadline, as CSV (UTF-8
   * with BOM) or XLSX (default): school, check, problem, status, overdue, findings, deadline, closing note, evidence and photo count,
   * times sent back and why. School staff get their own school's. More than patrols.exportMaxRows: 400 on `status`.
   */
  @Roles(...TASK_READ_ROLES)
  @Get('rectification-tasks/export')
  async exportTasks(@CurrentUser() user: AuthUser, @Query() q: TaskExportQuery, @Res({ passthrough: true }) res: Response) {
    const { format = 'xlsx', limit: _l, offset: _o, ...filters } = q;
    const now = new Date();
    const rows = await this.findings.tasksForExport(user, filters, this.config.patrols.exportMaxRows, now);
    return this.file(user, res, format, { en: 'rectification-tasks', zh: '整改任务' }, taskExportRows(rows, now));
  }

  /** Lists patrol findings (audits, video rounds, posts) by school, check, source and time; school staff get their own school's. */
  @Roles(...TASK_READ_ROLES)
  @Get('patrol-findings')
  list(@CurrentUser() user: AuthUser, @Query() q: FindingQuery) {
    return this.findings.findings(user, q, ...page(this.config, q));
  }

  /**
   * Lists rectification tasks (open, closed, overdue) by school, each with its school's name; school staff get their own
   * school's. `order=newest`: the most recently opened first (the operator's open findings), else the nearest deadline first.
   */
  @Roles(...TASK_READ_ROLES)
  @Get('rectification-tasks')
  tasks(@CurrentUser() user: AuthUser, @Query() q: TaskListQuery) {
    return this.findings.tasks(user, q, ...page(this.config, q));
  }

  /** One rectification task by id, with its findings count, deadline, closing note and closing photos (`closePhotoIds` → GET /video/evidence/{id}). */
  @Roles(...TASK_READ_ROLES)
  @Get('rectification-tasks/:id')
  task(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.findings.task(user, id);
  }

  /**
   * Closes a rectification task with what was done (`note`) and 1–6 photos of the fix (`photoIds`, uploaded first with
   * POST /rectification-tasks/{id}/photos); school staff close their own school's. No photo, or one that is not this
   * task's: 400 on `photoIds`. Audited.
   */
  @Roles(...TASK_CLOSE_ROLES)
  @Post('rectification-tasks/:id/close')
  @HttpCode(200)
  close(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: CloseTaskDto) {
    return this.findings.closeTask(user, id, dto);
  }

  /**
   * Sends a closed task back to its school with a reason (supervisors, admins): open again with a new deadline
   * (patrols.taskDeadlineHours). 409 RECTIFICATION_TASK.NOT_CLOSED / OPEN_TASK_EXISTS. Audited.
   */
  @Roles(...TASK_REOPEN_ROLES)
  @Post('rectification-tasks/:id/reopen')
  @HttpCode(200)
  reopen(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: ReopenTaskDto) {
    return this.findings.reopenTask(user, id, dto);
  }
}

@ApiTags('patrols')
@ApiBearerAuth()
@Controller()
export class FieldController {
  constructor(
    private readonly field: FieldService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The QR code to print (or show on a gatehouse screen) at a post: `{ postId, postCode, schoolId,
   * gate, payload, validFrom, validUntil, nextAt, windowMinutes }` — the console draws `payload` as
   * a QR code. Bureau roles only (school security never see a code they could scan from home,
   * attack F8b); 404 for an unknown post. The payload changes every patrols.postQrWindowMinutes.
   */
  @Roles(...QR_ROLES)
  @Get('protection-posts/:id/qr')
  postQr(@UuidParam() id: string) {
    return this.field.postQr(id);
  }

  /** A new secret for the post: every code printed so far stops working (a lost or photographed sheet); answers the new code like GET …/qr. */
  @Roles(...QR_ROLES)
  @Post('protection-posts/:id/qr/rotate')
  @HttpCode(200)
  rotatePostQr(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.field.rotatePostQr(user, id);
  }

  /** Checks in at a protection post: school staff themselves with the post's current QR code, the center on behalf of a roster guard. 429 on a burst, 409 when already checked in. */
  @Roles(...FIELD_ROLES)
  @Post('post-checkins')
  checkIn(@CurrentUser() user: AuthUser, @Body() dto: CheckInDto) {
    return this.field.checkIn(user, dto);
  }

  /** Checks out of a protection post (the check-in's own person, or the center). */
  @Roles(...FIELD_ROLES)
  @Post('post-checkins/:id/checkout')
  @HttpCode(200)
  checkOut(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.field.checkOut(user, id);
  }

  /** Lists post check-ins of a day (by school and post), with the gate camera's picture of the moment when there is one. */
  @Roles(...TASK_READ_ROLES)
  @Get('post-checkins')
  checkins(@CurrentUser() user: AuthUser, @Query() q: CheckinQuery) {
    return this.field.checkins(user, q, ...page(this.config, q));
  }

  /** Records a guard patrol check-in (who, where, when) for the school; counts for the guard_patrol_count check. */
  @Roles(...FIELD_ROLES)
  @Post('guard-patrols')
  guardPatrol(@CurrentUser() user: AuthUser, @Body() dto: GuardPatrolDto) {
    return this.field.recordGuardPatrol(user, dto);
  }

  /** Records a gate event (opened, closed) for the school; an open gate in school hours is a finding. */
  @Roles(...FIELD_ROLES)
  @Post('gate-events')
  gateEvent(@CurrentUser() user: AuthUser, @Body() dto: GateEventDto) {
    return this.field.recordGateEvent(user, dto);
  }
}

@ApiTags('patrols')
@ApiBearerAuth()
@Controller()
export class RoundsController {
  constructor(
    private readonly rounds: RoundsService,
    private readonly heavy: HeavyReads,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Starts (or resumes) the caller's video patrol round: 4 or 9 cameras picked by the server, least recently patrolled first, gates first at arrival and dismissal. */
  @Roles(...ROUND_ROLES)
  @Post('patrol-rounds')
  start(@CurrentUser() user: AuthUser, @Body() dto: StartRoundDto) {
    return this.rounds.start(user, dto);
  }

  /** Lists video patrol rounds (by operator and time). */
  @Roles(...READ_ROLES)
  @Get('patrol-rounds')
  list(@Query() q: RoundQuery) {
    return this.rounds.rounds(q, ...page(this.config, q));
  }

  /** One video patrol round with its cameras and verdicts. */
  @Roles(...READ_ROLES)
  @Get('patrol-rounds/:id')
  get(@UuidParam() id: string) {
    return this.rounds.round(id);
  }

  /** Records the verdict on one camera of a round, made on a picture taken for it; anything but normal becomes a finding and a rectification task. At most one per patrols.roundVerdictMinSeconds per operator (429). */
  @Roles(...ROUND_ROLES)
  @Post('patrol-rounds/:id/cameras/:cameraId/verdict')
  @HttpCode(200)
  verdict(@CurrentUser() user: AuthUser, @UuidParam() id: string, @UuidParam('cameraId') cameraId: string, @Body() dto: VerdictDto) {
    return this.rounds.verdict(user, id, cameraId, dto);
  }

  /**
   * Video patrol coverage over the last `periodDays` (default patrols.coveragePeriodDays): share of cameras patrolled per school
   * and zone, rounds per operator per day. A heavy read (infra/http/heavy-reads.ts): 429 HEAVY_READ.TOO_MANY / 503 HEAVY_READ.BUSY past its limits.
   */
  @Roles(...READ_ROLES)
  @Get('patrol-coverage')
  coverage(@CurrentUser() user: AuthUser, @Query() q: CoverageQuery) {
    return this.heavy.run(user.id, () => this.rounds.coverage(q));
  }
}
