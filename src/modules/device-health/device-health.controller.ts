import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { HeavyReads } from '../../infra/http/heavy-reads';
import { ParsePool } from '../../infra/tabular/tabular';
import { UuidParam } from '../../infra/http/params';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import { ALL_ROLES, AuthUser } from '../../infra/access/roles';
import { assertRecordInScope, assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { DeviceHealthQueries } from './device-health.queries';
import { MaintenanceWindowsService } from './maintenance-windows.service';
import { OnlineTimeService } from './online-time.service';
import {
  CreateMaintenanceWindowDto,
  DeviceListQuery,
  MaintenanceQuery,
  OnlineRateExportQuery,
  OnlineRateQuery,
  OutageQuery,
  OverdueQuery,
  SummaryQuery,
  TransitionQuery,
  UpdateMaintenanceWindowDto,
} from './dto';

/** Who declares maintenance windows: the control center. */
const MAINTENANCE_ROLES = ['admin', 'operator'] as const;

/** What operators see of device liveness. School security staff see their own school only. */
@ApiTags('device-health')
@ApiBearerAuth()
@Controller('device-health')
export class DeviceHealthController {
  constructor(
    private readonly q: DeviceHealthQueries,
    private readonly onlineTime: OnlineTimeService,
    private readonly maintenanceWindows: MaintenanceWindowsService,
    private readonly tabular: ParsePool,
    private readonly heavy: HeavyReads,
  ) {}

  /** Online / offline / unknown counts, online rate per zone and a page of schools (worst first). */
  @Roles(...ALL_ROLES)
  @Get('summary')
  summary(@Query() query: SummaryQuery, @CurrentUser() user: AuthUser) {
    return this.q.summary({ zoneId: query.zoneId, schoolId: scopedSchoolId(user) ?? undefined }, query.limit, query.offset);
  }

  /** One school's device health: counts by state, its devices not online, open outages. */
  @Roles(...ALL_ROLES)
  @Get('schools/:schoolId')
  school(@UuidParam('schoolId') schoolId: string, @CurrentUser() user: AuthUser) {
    assertRecordInScope(user, schoolId, () => Errors.notFound(ErrorCode.SCHOOL.NOT_FOUND, schoolId));
    return this.q.school(schoolId);
  }

  /** Lists devices (cameras and alarm buttons) by school, state and kind, with their last sign of life. */
  @Roles(...ALL_ROLES)
  @Get('devices')
  devices(@Query() query: DeviceListQuery, @CurrentUser() user: AuthUser) {
    return this.q.devices({ schoolId: effectiveSchoolFilter(user, query.schoolId), status: query.status, kind: query.kind }, query.limit, query.offset);
  }

  /** One device's health: state, last seen, open fault. */
  @Roles(...ALL_ROLES)
  @Get('devices/:id')
  async device(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    const d = await this.q.device(id);
    assertRecordInScope(user, d.schoolId, () => Errors.notFound(ErrorCode.DEVICE.NOT_FOUND, id));
    return d;
  }

  /** Device state transitions (online / offline / fault) by device, school and time. */
  @Roles(...ALL_ROLES)
  @Get('transitions')
  transitions(@Query() query: TransitionQuery, @CurrentUser() user: AuthUser) {
    return this.q.transitions({ ...query, schoolId: effectiveSchoolFilter(user, query.schoolId) }, query.limit, query.offset);
  }

  /** Lists outages (a school's devices going offline together) by school, state and time. */
  @Roles(...ALL_ROLES)
  @Get('outages')
  outages(@Query() query: OutageQuery, @CurrentUser() user: AuthUser) {
    return this.q.outages({ ...query, schoolId: effectiveSchoolFilter(user, query.schoolId) }, query.limit, query.offset);
  }

  /** One outage by id. */
  @Roles(...ALL_ROLES)
  @Get('outages/:id')
  async outage(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    const o = await this.q.outage(id);
    assertRecordInScope(user, o.schoolId as string, () => Errors.notFound(ErrorCode.OUTAGE.NOT_FOUND, id));
    return o;
  }

  /** Faults open longer than liveness.faultOverdueHours (GB/T 29315: 24 h), flagged for rectification. */
  @Roles(...ALL_ROLES)
  @Get('faults/overdue')
  overdue(@Query() query: OverdueQuery, @CurrentUser() user: AuthUser) {
    return this.q.overdueFaults({ schoolId: effectiveSchoolFilter(user, query.schoolId) }, query.limit, query.offset);
  }

  /** Online rate per day for one school, school hours (up to now) only, maintenance windows excluded. */
  @Roles(...ALL_ROLES)
  @Get('online-rate')
  onlineRate(@Query() query: OnlineRateQuery, @CurrentUser() user: AuthUser) {
    assertSchoolScope(user, query.schoolId);
    return this.onlineTime.dailyRate(query.schoolId, query.from, query.to);
  }

  /**
   * The online rate of every school (of a zone, or one school) per day from `from` to `to` (at most 31 days; days after
   * today left out), as CSV (UTF-8 with BOM) or XLSX (default): the report's figure — online device-time over school
   * hours up to now, maintenance windows left out, cameras and alarm buttons. School staff get their own school. A heavy
   * read (429 HEAVY_READ.TOO_MANY / 503 HEAVY_READ.BUSY past its limits); the file is built in the tabular worker pool.
   */
  @Roles(...ALL_ROLES)
  @Get('online-rate/export')
  async onlineRateExport(@Query() query: OnlineRateExportQuery, @CurrentUser() user: AuthUser, @Res({ passthrough: true }) res: Response) {
    const { format = 'xlsx', from, to, zoneId } = query;
    const schoolId = effectiveSchoolFilter(user, query.schoolId);
    const rows = await this.heavy.run(user.id, () => this.onlineTime.dailyRates({ zoneId: scopedSchoolId(user) ? undefined : zoneId, schoolId }, from, to));
    const header = ['日期', '学校代码', '学校名称', '上课日', '统计时长（小时）', '设备数', '在线率（%）'];
    const table = rows.map((r) => [
      r.date,
      r.school.code,
      r.school.name,
      r.rate.schoolDay ? '是' : '否',
      Math.round(r.rate.countedSeconds / 36) / 100,
      r.rate.devices,
      r.rate.onlineRate === null ? '' : Math.round(r.rate.onlineRate * 10_000) / 100,
    ]);
    const body = await this.tabular.exclusive(user.id, 'export', () => this.tabular.write(format, '设备在线率', header, table));
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    res.setHeader(
      'Content-Disposition',
      `attachment; filename="online-rate_${from}_${to}.${format}"; filename*=UTF-8''${encodeURIComponent(`设备在线率_${from}_${to}.${format}`)}`,
    );
    return new StreamableFile(body);
  }

  /** Maintenance windows (维护时段) of the caller's scope: a school's staff see their school's (its devices' too) and the district-wide ones. */
  @Roles(...ALL_ROLES)
  @Get('maintenance-windows')
  maintenance(@Query() query: MaintenanceQuery, @CurrentUser() user: AuthUser) {
    return this.maintenanceWindows.list(user, query);
  }

  /** One maintenance window by id. */
  @Roles(...ALL_ROLES)
  @Get('maintenance-windows/:id')
  maintenanceWindow(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    return this.maintenanceWindows.get(user, id);
  }

  /**
   * Declares a window for the district, a school or one device. Bounded (liveness.maintenanceMaxHours long,
   * maintenanceMaxLeadDays ahead, no earlier than maintenanceMaxStartPastMinutes ago): else a field-level 400.
   * A device going offline inside it is maintenance, not an outage fault. Audited. 409 MAINTENANCE_WINDOW.OVERLAP
   * when it overlaps or comes within liveness.maintenanceMinGapMinutes of another window covering the same devices;
   * a district-wide one is admin only (403 MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY).
   */
  @Roles(...MAINTENANCE_ROLES)
  @Post('maintenance-windows')
  createMaintenance(@Body() dto: CreateMaintenanceWindowDto, @CurrentUser() user: AuthUser) {
    return this.maintenanceWindows.create(user, dto);
  }

  /** Changes a window not yet over (start only before it begins; end not in the past; reason). 409 MAINTENANCE_WINDOW.OVER / OVERLAP; a district one: admin only. */
  @Roles(...MAINTENANCE_ROLES)
  @Patch('maintenance-windows/:id')
  updateMaintenance(@UuidParam() id: string, @Body() dto: UpdateMaintenanceWindowDto, @CurrentUser() user: AuthUser) {
    return this.maintenanceWindows.update(user, id, dto);
  }

  /** Ends a window in force now; devices still offline then become outage faults. 409 NOT_STARTED / OVER. */
  @Roles(...MAINTENANCE_ROLES)
  @Post('maintenance-windows/:id/end')
  @HttpCode(200)
  endMaintenance(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    return this.maintenanceWindows.end(user, id);
  }

  /** Deletes a window that has not begun (one that has is part of the record: 409 MAINTENANCE_WINDOW.STARTED, end it instead). */
  @Roles(...MAINTENANCE_ROLES)
  @Delete('maintenance-windows/:id')
  @HttpCode(204)
  async deleteMaintenance(@UuidParam() id: string): Promise<void> {
    await this.maintenanceWindows.delete(id);
  }
}
