import { createHash } from 'node:crypto';
import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Post, Query, Req, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { DeviceBodyLimits, readDeviceBody } from '../../infra/http/device-body';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { ParsePool } from '../../infra/tabular/tabular';
import { RateLimiter } from '../../infra/http/rate-limit';
import { HeavyReads } from '../../infra/http/heavy-reads';
import { UuidParam } from '../../infra/http/params';
import { currentContext, SYSTEM_ACTOR } from '../../infra/http/request-context';
import { CurrentDevice, CurrentUser, DeviceRoute, Roles } from '../../infra/access/decorators';
import type { AuthDevice, AuthUser } from '../../infra/access/roles';
import { AlarmIntakeService, GATEWAY_UNPLACED, RaiseResult } from './alarm-intake.service';
import { ACT_ROLES, CANCEL_ROLES, RAISE_ROLES, READ_ROLES } from './alarms.access';
import { ButtonTestsService } from './button-tests.service';
import { DrillWindowsService } from './drill-windows.service';
import { IncidentLifecycleService } from './incident-lifecycle.service';
import { incidentExportRows, statsExportRows } from './incident-export';
import { IncidentQueriesService } from './incident-queries.service';
import {
  CLIENT_EVENT_ID,
  CancelDto,
  DevicePressDto,
  DeviceReportDto,
  DrillWindowDto,
  DrillWindowQuery,
  IncidentExportQuery,
  IncidentQuery,
  NoteDto,
  OptionalNoteDto,
  RaiseIncidentDto,
  ResolveDto,
  StatsExportQuery,
  StatsQuery,
} from './dto';
import { DEVICE_BODY_FIELDS, noteWithProblems, readDevicePress, readDeviceReport } from './device-alarm-body';

/** The key a gateway's reports without a usable camera are pressed, locked and folded under (a uuid-shaped digest of its credential). */
function gatewayKey(credentialId: string): string {
  const h = createHash('sha256').update(`gateway\n${credentialId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** New incident: 201; a retried event or a press folded into an open incident: 200. */
function answer(res: Response, r: RaiseResult) {
  res.status(r.created ? 201 : 200);
  return { ...r.incident, created: r.created, folded: r.folded };
}

@ApiTags('incidents')
@ApiBearerAuth()
@Controller('incidents')
export class AlarmsController {
  /** Per button (this process): a flood from one device is refused, the presses within it fold (PressFoldingService). */
  private readonly presses: RateLimiter;
  private readonly notes: RateLimiter;
  /** Per user (this process): alarms raised over REST that open a new incident (attack F17; repeats fold first). */
  private readonly raises: RateLimiter;
  private readonly deviceBody: Omit<DeviceBodyLimits, 'timeoutMs'>;

  constructor(
    private readonly intake: AlarmIntakeService,
    private readonly lifecycle: IncidentLifecycleService,
    private readonly queries: IncidentQueriesService,
    private readonly drills: DrillWindowsService,
    private readonly tests: ButtonTestsService,
    private readonly tabular: ParsePool,
    private readonly heavy: HeavyReads,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.presses = new RateLimiter(config.alarms.pressesPerSecond, config.alarms.pressBurst);
    this.notes = new RateLimiter(config.alarms.userNotesPerSecond, config.alarms.userNotesBurst);
    this.raises = new RateLimiter(config.alarms.userRaisesPerMinute / 60, config.alarms.userRaiseBurst);
    this.deviceBody = { maxBytes: config.alarms.deviceBodyMaxKb * 1024, maxDepth: config.http.jsonMaxDepth, salvage: DEVICE_BODY_FIELDS };
  }

  /** The device body limits; the timeout read per request (config may change at run time in tests). */
  private bodyLimits(): DeviceBodyLimits {
    return { ...this.deviceBody, timeoutMs: this.config.alarms.deviceBodyTimeoutMs };
  }

  /** A one-click alarm button's press (device credential): a new incident (201) or folded into the button's open one (200). Never refused for an odd body. */
  @ApiSecurity('device')
  @DeviceRoute('alarm_device')
  @Post('press')
  @ApiBody({
    type: DevicePressDto,
    description:
      'read tolerantly (device-alarm-body.ts): any Content-Type/charset, cut past alarms.deviceBodyMaxKb, odd fields never refuse the alarm, they go into its note',
  })
  async press(@CurrentDevice() device: AuthDevice, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    if (!device.subjectId) throw Errors.forbidden(ErrorCode.AUTH.WRONG_DEVICE_KIND, 'credential has no alarm device');
    const wait = this.presses.take(device.subjectId);
    if (wait) throw Errors.tooMany(ErrorCode.INCIDENT.TOO_MANY_PRESSES, '报警按钮请求过于频繁', Math.ceil(wait / 1000));
    // Read here, after the credential (AuthGuard) and the rate limit: no byte of an unauthenticated body is kept (A1).
    const raw = await readDeviceBody(req, this.bodyLimits());
    const { dto, problems } = readDevicePress(raw.value, raw);
    const actor = currentContext()?.actor ?? SYSTEM_ACTOR;
    // The press happened when the request arrived (its headers), not when a slow device's last body byte came.
    const at = currentContext()?.receivedAt ?? new Date();
    // A self-test (issue 11 §3): recorded, no incident, never dispatched — only inside the button's approved test mode.
    // The device's own `test` flag alone never downgrades a press (attack F9: a real press sent as a test is an alarm lost);
    // outside test mode it is a real alarm, the flag noted.
    const inTestMode = this.tests.inTestMode(device.subjectId);
    const test = inTestMode ? (dto.test === true ? 'device_flag' : 'test_mode') : null;
    if (dto.test === true && !inTestMode) problems.push('test 标记不在测试模式内，按真实报警处理');
    if (test) {
      const r = await this.tests.pressed(device.subjectId, dto.eventId, test, actor, at);
      res.status(r.created ? 201 : 200);
      return { test: r.test, created: r.created };
    }
    // A device's own drill flag is not trusted (it would silence escalation): a press is a drill only inside an approved drill window.
    const { test: _t, drill: _d, ...press } = dto;
    return answer(
      res,
      await this.intake.raiseFromDevice(
        {
          deviceKind: 'alarm_device',
          deviceId: device.subjectId,
          ...press,
          eventIdFromBytes: raw.digest !== null && press.eventId === raw.digest,
          note: noteWithProblems(press.note, problems),
          at,
        },
        actor,
      ),
    );
  }

  /** A camera's or gateway's alarm report (device credential): raised at the camera's school, or at the gateway's without a camera; never refused for its camera reference. */
  @ApiSecurity('device')
  @DeviceRoute('camera', 'gateway')
  @Post('device-reports')
  @ApiBody({ type: DeviceReportDto, description: 'read tolerantly (device-alarm-body.ts): odd fields never refuse the alarm, they go into its note' })
  async deviceReport(@CurrentDevice() device: AuthDevice, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const raw = await readDeviceBody(req, this.bodyLimits()); // after the credential (AuthGuard): see press
    const { dto, problems, cameraIdInvalid } = readDeviceReport(raw.value, raw);
    // Never refused for its camera reference (A1: a 4xx is an alarm lost). A camera reports for itself: another cameraId is
    // ignored (said in the note). A gateway names its camera; without a usable one (missing, not a UUID, unknown, another
    // school's) the alarm is raised at the gateway's school without a camera (AlarmIntakeService: gateway).
    let cameraId: string;
    if (device.kind === 'camera') {
      if (dto.cameraId !== undefined && dto.cameraId !== device.subjectId) problems.push('cameraId 与设备凭证的摄像机不符，已忽略');
      if (cameraIdInvalid) problems.push('cameraId 格式不符，已忽略');
      cameraId = device.subjectId!;
    } else {
      // Where the alarm goes: the gateway's school, or (a district gateway) no school — said truly either way.
      const where = device.schoolId ? '按网关所属学校报警' : GATEWAY_UNPLACED;
      if (cameraIdInvalid) problems.push(`cameraId 格式不符，${where}`);
      else if (!dto.cameraId) problems.push(`缺少摄像机编号 cameraId，${where}`);
      cameraId = dto.cameraId ?? gatewayKey(device.credentialId);
    }
    // The rate limit before any read (a refused flood costs no query): a camera's own report and a gateway's report naming
    // no camera have their bucket now (the camera; the gateway) and take it here. A gateway naming a camera is refused now
    // when that camera's bucket is empty; the intake takes the bucket once the lookup says whose it is (the camera if one of
    // the gateway's school, else the gateway's).
    const bucket = (key: string, take: boolean) => {
      const wait = take ? this.presses.take(`camera:${key}`) : this.presses.wait(`camera:${key}`);
      if (wait) throw Errors.tooMany(ErrorCode.INCIDENT.TOO_MANY_PRESSES, '设备报警请求过于频繁', Math.ceil(wait / 1000));
    };
    const decided = device.kind === 'camera' || cameraId === gatewayKey(device.credentialId);
    bucket(cameraId, decided);
    // Never less urgent than the type's default: decided by the intake (device-priority.ts), like every device path.
    const actor = currentContext()?.actor ?? SYSTEM_ACTOR;
    const r = await this.intake.raiseFromDevice(
      {
        deviceKind: 'camera',
        deviceId: cameraId,
        eventId: dto.eventId,
        eventIdFromBytes: raw.digest !== null && dto.eventId === raw.digest,
        type: dto.type,
        priority: dto.priority,
        note: noteWithProblems(dto.note, problems),
        gatewaySchoolId: device.kind === 'gateway' ? device.schoolId : null,
        gateway: device.kind === 'gateway' ? { key: gatewayKey(device.credentialId), name: device.keyId } : undefined,
        // Per camera; per gateway when its report names no camera of its school (the key the intake takes it under).
        limit: decided ? undefined : (key) => bucket(key, true),
        at: currentContext()?.receivedAt, // when the request arrived (see press)
      },
      actor,
    );
    return answer(res, r);
  }

  /**
   * New incident: 201; a retry of a client event id (body `clientEventId` or `Idempotency-Key`) already taken: 200, the same incident;
   * a school-security user's repeat of their own open alarm (same school, type, location, priority, within alarms.staffFoldSeconds):
   * 200 `folded: true`, the same incident with its press count raised (attack F17). More new incidents from one user than
   * alarms.userRaisesPerMinute/userRaiseBurst: 429 INCIDENT.TOO_MANY_RAISES with Retry-After.
   */
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'the client event id (same rule as clientEventId; both given must agree)' })
  @Roles(...RAISE_ROLES)
  @Post()
  async raise(
    @CurrentUser() user: AuthUser,
    @Body() dto: RaiseIncidentDto,
    @Headers('idempotency-key') header: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ) {
    // A drill silences escalation: school staff get one only through an approved drill window (issue 11 §2).
    if (dto.drill === true && !ACT_ROLES.includes(user.role))
      throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, '学校报警不能自行标记为演练：请申请演练时段，由监控中心批准');
    if (header !== undefined) {
      if (!CLIENT_EVENT_ID.test(header)) throw Errors.validation([{ field: 'Idempotency-Key', reason: '1–128 letters, digits or _.:-' }]);
      if (dto.clientEventId !== undefined && dto.clientEventId !== header) {
        throw Errors.validation([{ field: 'clientEventId', reason: 'differs from the Idempotency-Key header' }]);
      }
    }
    // 429 only for a new incident: a retry of a client event or a repeat that folds is always taken (AlarmIntakeService.raiseManual).
    const limit = () => {
      const wait = this.raises.take(user.id);
      if (wait) throw Errors.tooMany(ErrorCode.INCIDENT.TOO_MANY_RAISES, '报警提交过于频繁', Math.ceil(wait / 1000));
    };
    const { reporterPosition: _returnedName, ...body } = dto; // only ever empty here (RaiseIncidentDto)
    return answer(res, await this.intake.raiseManual(user, { ...body, clientEventId: dto.clientEventId ?? header }, limit));
  }

  /**
   * The incident list. A history search (`q`: words over names, places and notes of every incident) is a
   * heavy read (infra/http/heavy-reads.ts: 429 HEAVY_READ.TOO_MANY / 503 HEAVY_READ.BUSY past its limits);
   * the console's own list (no `q`) is not limited.
   */
  @Roles(...READ_ROLES)
  @Get()
  list(@CurrentUser() user: AuthUser, @Query() q: IncidentQuery) {
    const read = () => this.queries.list(user, q, this.config.registry.maxPageSize, this.config.registry.defaultPageSize);
    return q.q ? this.heavy.run(user.id, read) : read();
  }

  /** Response-time statistics: a heavy read (infra/http/heavy-reads.ts). */
  @Roles(...READ_ROLES)
  @Get('stats')
  stats(@CurrentUser() user: AuthUser, @Query() q: StatsQuery) {
    return this.heavy.run(user.id, () => this.queries.stats(user, q));
  }

  /** The response-time statistics (same range and school as GET /incidents/stats) as CSV (BOM) or XLSX (default), zh-CN headers, seconds. */
  @Roles(...READ_ROLES)
  @Get('stats/export')
  async statsExport(@CurrentUser() user: AuthUser, @Query() q: StatsExportQuery, @Res({ passthrough: true }) res: Response) {
    const { format = 'xlsx', ...range } = q;
    const stats = await this.queries.stats(user, range);
    const table = statsExportRows(stats as unknown as Parameters<typeof statsExportRows>[0]);
    const body = await this.tabular.exclusive(user.id, 'export', () => this.tabular.write(format, '响应统计', table.header, table.rows));
    const span = `${stats.from.slice(0, 10)}_${stats.to.slice(0, 10)}`;
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="response-stats_${span}.${format}"; filename*=UTF-8''${encodeURIComponent(`响应统计_${span}.${format}`)}`,
    );
    return new StreamableFile(body);
  }

  /**
   * The incidents the list's filters match (outcome, search, school, type, time …), oldest first, as
   * CSV (UTF-8 with BOM) or XLSX (default): zh-CN headers, Asia/Shanghai times, formula-like text
   * neutralised. More than alarms.exportMaxRows matching: 400 on `from` (narrow the range).
   */
  @Roles(...READ_ROLES)
  @Get('export')
  async export(@CurrentUser() user: AuthUser, @Query() q: IncidentExportQuery, @Res({ passthrough: true }) res: Response) {
    const { format = 'xlsx', limit: _l, offset: _o, ...filters } = q;
    // Bounded per process and per user (ParsePool.exclusive) and built in a worker thread: never on the loop that takes presses.
    const body = await this.tabular.exclusive(user.id, 'export', async () => {
      const table = incidentExportRows(await this.queries.all(user, filters, this.config.alarms.exportMaxRows));
      return this.tabular.write(format, '报警记录', table.header, table.rows);
    });
    const day = new Date().toISOString().slice(0, 10);
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="incidents_${day}.${format}"; filename*=UTF-8''${encodeURIComponent(`报警记录_${day}.${format}`)}`,
    );
    return new StreamableFile(body);
  }

  /** Control center: an approved window (201); school staff: a pending request (201, status 'pending') for an operator to approve. */
  @Roles(...RAISE_ROLES)
  @Post('drill-windows')
  createDrill(@CurrentUser() user: AuthUser, @Body() dto: DrillWindowDto) {
    return this.drills.createDrillWindow(user, dto);
  }

  /** Lists drill windows (演练) of the caller's scope: pending, approved, active, ended. */
  @Roles(...READ_ROLES)
  @Get('drill-windows')
  listDrills(@CurrentUser() user: AuthUser, @Query() q: DrillWindowQuery) {
    return this.drills.listDrillWindows(user, q);
  }

  /** Approves a school's pending drill window request (control center). Audited. */
  @Roles(...ACT_ROLES)
  @Post('drill-windows/:id/approve')
  @HttpCode(200)
  approveDrill(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.drills.approve(user, id);
  }

  /** Ends a drill window now. Audited. */
  @Roles(...ACT_ROLES)
  @Post('drill-windows/:id/end')
  @HttpCode(200)
  endDrill(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.drills.end(user, id);
  }

  /** Control center: any window; school staff: withdraw a pending request of their school. 204. */
  @Roles(...RAISE_ROLES)
  @Delete('drill-windows/:id')
  @HttpCode(204)
  async deleteDrill(@CurrentUser() user: AuthUser, @UuidParam() id: string): Promise<void> {
    await this.drills.remove(user, id);
  }

  /** One incident with its timeline. */
  @Roles(...READ_ROLES)
  @Get(':id')
  get(@CurrentUser() user: AuthUser, @UuidParam() id: string) {
    return this.queries.get(user, id);
  }

  /** Acknowledges an alarm (first one wins: 409 ALARM.ALREADY_ACKNOWLEDGED after); cancels its pending escalations. */
  @Roles(...ACT_ROLES)
  @Post(':id/acknowledge')
  @HttpCode(200)
  acknowledge(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: OptionalNoteDto) {
    return this.lifecycle.acknowledge(user, id, dto.note);
  }

  /** Marks an acknowledged alarm dispatched (someone is on the way). */
  @Roles(...ACT_ROLES)
  @Post(':id/dispatch')
  @HttpCode(200)
  dispatch(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: OptionalNoteDto) {
    return this.lifecycle.dispatch(user, id, dto.note);
  }

  /** Marks that someone is on the scene. */
  @Roles(...ACT_ROLES)
  @Post(':id/on-scene')
  @HttpCode(200)
  onScene(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: OptionalNoteDto) {
    return this.lifecycle.onScene(user, id, dto.note);
  }

  /** Closes an alarm with its outcome (real, false alarm, test …) and a note. */
  @Roles(...ACT_ROLES)
  @Post(':id/resolve')
  @HttpCode(200)
  resolve(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: ResolveDto) {
    return this.lifecycle.resolve(user, id, dto.outcome, dto.note);
  }

  /** A drill turned into a real alarm with one action: relayed as real, escalates (issue 11 §2). */
  @Roles(...ACT_ROLES)
  @Post(':id/make-real')
  @HttpCode(200)
  makeReal(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: OptionalNoteDto) {
    return this.lifecycle.makeReal(user, id, dto.note);
  }

  /** Cancels an unacknowledged alarm as false, with a reason (school staff: only an alarm they raised). */
  @Roles(...CANCEL_ROLES)
  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: CancelDto) {
    return this.lifecycle.cancel(user, id, dto.reason);
  }

  /** Adds a note to an incident's timeline (rate limited per user: 429 INCIDENT.TOO_MANY_NOTES). */
  @Roles(...RAISE_ROLES)
  @Post(':id/notes')
  @HttpCode(200)
  note(@CurrentUser() user: AuthUser, @UuidParam() id: string, @Body() dto: NoteDto) {
    // Per user, not per route (attack F17: 300 notes = 300 console events for every operator).
    const wait = this.notes.take(user.id);
    if (wait) throw Errors.tooMany(ErrorCode.INCIDENT.TOO_MANY_NOTES, '备注提交过于频繁，请稍后再试', Math.ceil(wait / 1000));
    return this.lifecycle.addNote(user, id, dto.note);
  }
}
