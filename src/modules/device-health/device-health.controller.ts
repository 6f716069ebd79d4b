import { Body, Controller, Delete, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { UuidParam } from '../../infra/http/params';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import { ALL_ROLES, AuthUser } from '../../infra/access/roles';
import { assertRecordInScope, assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { DeviceHealthQueries } from './device-health.queries';
import { OnlineTimeService } from './online-time.service';
import {
  CreateMaintenanceWindowDto,
  DeviceListQuery,
  MaintenanceQuery,
  OnlineRateQuery,
  OutageQuery,
  OverdueQuery,
  SummaryQuery,
  TransitionQuery,
} from './dto';

/** What operators see of device liveness. School security staff see their own school only. */
@ApiTags('device-health')
@ApiBearerAuth()
@Controller('device-health')
export class DeviceHealthController {
  constructor(
    private readonly q: DeviceHealthQueries,
    private readonly onlineTime: OnlineTimeService,
  ) {}

  /** Online / offline / unknown counts, online rate per zone and a page of schools (worst first). */
  @Roles(...ALL_ROLES)
  @Get('summary')
  summary(@Query() query: SummaryQuery, @CurrentUser() user: AuthUser) {
    return this.q.summary({ zoneId: query.zoneId, schoolId: scopedSchoolId(user) ?? undefined }, query.limit, query.offset);
  }

  @Roles(...ALL_ROLES)
  @Get('schools/:schoolId')
  school(@UuidParam('schoolId') schoolId: string, @CurrentUser() user: AuthUser) {
    assertRecordInScope(user, schoolId, () => Errors.notFound(ErrorCode.SCHOOL.NOT_FOUND, schoolId));
    return this.q.school(schoolId);
  }

  @Roles(...ALL_ROLES)
  @Get('devices')
  devices(@Query() query: DeviceListQuery, @CurrentUser() user: AuthUser) {
    return this.q.devices({ schoolId: effectiveSchoolFilter(user, query.schoolId), status: query.status, kind: query.kind }, query.limit, query.offset);
  }

  @Roles(...ALL_ROLES)
  @Get('devices/:id')
  async device(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    const d = await this.q.device(id);
    assertRecordInScope(user, d.schoolId, () => Errors.notFound(ErrorCode.DEVICE.NOT_FOUND, id));
    return d;
  }

  @Roles(...ALL_ROLES)
  @Get('transitions')
  transitions(@Query() query: TransitionQuery, @CurrentUser() user: AuthUser) {
    return this.q.transitions({ ...query, schoolId: effectiveSchoolFilter(user, query.schoolId) }, query.limit, query.offset);
  }

  @Roles(...ALL_ROLES)
  @Get('outages')
  outages(@Query() query: OutageQuery, @CurrentUser() user: AuthUser) {
    return this.q.outages({ ...query, schoolId: effectiveSchoolFilter(user, query.schoolId) }, query.limit, query.offset);
  }

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

  @Roles(...ALL_ROLES)
  @Get('maintenance-windows')
  maintenance(@Query() query: MaintenanceQuery, @CurrentUser() user: AuthUser) {
    return this.q.listMaintenance({ schoolId: effectiveSchoolFilter(user, query.schoolId) }, query.limit, query.offset);
  }

  @Roles('admin')
  @Post('maintenance-windows')
  createMaintenance(@Body() dto: CreateMaintenanceWindowDto, @CurrentUser() user: AuthUser) {
    return this.q.createMaintenance(dto, user.id);
  }

  @Roles('admin')
  @Delete('maintenance-windows/:id')
  @HttpCode(204)
  async deleteMaintenance(@UuidParam() id: string): Promise<void> {
    await this.q.deleteMaintenance(id);
  }
}
