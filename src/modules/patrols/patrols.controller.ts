import { Body, Controller, Delete, Get, HttpCode, Inject, Patch, Post, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { HeavyReads } from '../../infra/http/heavy-reads';
import { PageQuery } from '../../infra/http/pagination';
import { UuidParam } from '../../infra/http/params';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser } from '../../infra/access/roles';
import { AuditsService } from './audits.service';
import {
  CheckInDto,
  CheckinQuery,
  CloseTaskDto,
  CoverageQuery,
  CreatePlanDto,
  FindingQuery,
  GateEventDto,
  GuardPatrolDto,
  RoundQuery,
  RunPlanDto,
  RunQuery,
  RunSchoolsQuery,
  StartRoundDto,
  TaskQuery,
  UpdatePlanDto,
  VerdictDto,
} from './dto';
import { FieldService } from './field.service';
import { FindingsService } from './findings.service';
import { FIELD_ROLES, PLAN_ROLES, QR_ROLES, READ_ROLES, ROUND_ROLES, TASK_CLOSE_ROLES, TASK_READ_ROLES } from './patrols.constants';
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

  @Roles(...PLAN_ROLES)
  @Post()
  create(@CurrentUser() user: AuthUser, @Body() dto: CreatePlanDto) {
    return this.audits.createPlan({ ...dto, scope: dto.scope as PlanScope }, user.id);
  }

  @Roles(...READ_ROLES)
  @Get()
  list(@Query() q: PageQuery) {
    return this.audits.plans(...page(this.config, q));
  }

  @Roles(...READ_ROLES)
  @Get(':id')
  get(@UuidParam() id: string) {
    return this.audits.plan(id);
  }

  @Roles(...PLAN_ROLES)
  @Patch(':id')
  update(@UuidParam() id: string, @Body() dto: UpdatePlanDto) {
    return this.audits.updatePlan(id, { ...dto, scope: dto.scope as PlanScope | undefined });
  }

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

  @Roles(...READ_ROLES)
  @Get()
  list(@Query() q: RunQuery) {
    return this.audits.runs(q, ...page(this.config, q));
  }

  @Roles(...READ_ROLES)
  @Get(':id')
  get(@UuidParam() id: string) {
    return this.audits.runById(id);
  }

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
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Roles(...TASK_READ_ROLES)
  @Get('patrol-findings')
  list(@CurrentUser() user: AuthUser, @Query() q: FindingQuery) {
    return this.findings.findings(user, q, ...page(this.config, q));
  }

  @Roles(...TASK_READ_ROLES)
  @Get('rectification-tasks')
  tasks(@CurrentUser() user: AuthUser, @Query() q: TaskQuery) {
    return this.findings.tasks(user, q, ...page(this.config, q));
  }

  @Roles(...TASK_READ_ROLES)
  @Get('rectification-tasks/:id')
  task(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.findings.task(user, id);
  }

  @Roles(...TASK_CLOSE_ROLES)
  @Post('rectification-tasks/:id/close')
  @HttpCode(200)
  close(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: CloseTaskDto) {
    return this.findings.closeTask(user, id, dto);
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

  @Roles(...FIELD_ROLES)
  @Post('post-checkins')
  checkIn(@CurrentUser() user: AuthUser, @Body() dto: CheckInDto) {
    return this.field.checkIn(user, dto);
  }

  @Roles(...FIELD_ROLES)
  @Post('post-checkins/:id/checkout')
  @HttpCode(200)
  checkOut(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.field.checkOut(user, id);
  }

  @Roles(...TASK_READ_ROLES)
  @Get('post-checkins')
  checkins(@CurrentUser() user: AuthUser, @Query() q: CheckinQuery) {
    return this.field.checkins(user, q, ...page(this.config, q));
  }

  @Roles(...FIELD_ROLES)
  @Post('guard-patrols')
  guardPatrol(@CurrentUser() user: AuthUser, @Body() dto: GuardPatrolDto) {
    return this.field.recordGuardPatrol(user, dto);
  }

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

  @Roles(...ROUND_ROLES)
  @Post('patrol-rounds')
  start(@CurrentUser() user: AuthUser, @Body() dto: StartRoundDto) {
    return this.rounds.start(user, dto);
  }

  @Roles(...READ_ROLES)
  @Get('patrol-rounds')
  list(@Query() q: RoundQuery) {
    return this.rounds.rounds(q, ...page(this.config, q));
  }

  @Roles(...READ_ROLES)
  @Get('patrol-rounds/:id')
  get(@UuidParam() id: string) {
    return this.rounds.round(id);
  }

  @Roles(...ROUND_ROLES)
  @Post('patrol-rounds/:id/cameras/:cameraId/verdict')
  @HttpCode(200)
  verdict(@CurrentUser() user: AuthUser, @UuidParam() id: string, @UuidParam('cameraId') cameraId: string, @Body() dto: VerdictDto) {
    return this.rounds.verdict(user, id, cameraId, dto);
  }

  @Roles(...READ_ROLES)
  /** A heavy read (infra/http/heavy-reads.ts): 429 HEAVY_READ.TOO_MANY / 503 HEAVY_READ.BUSY past its limits. */
  @Get('patrol-coverage')
  coverage(@CurrentUser() user: AuthUser, @Query() q: CoverageQuery) {
    return this.heavy.run(user.id, () => this.rounds.coverage(q));
  }
}
