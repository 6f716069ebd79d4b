import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUUID, Max, MaxLength, Min, MinLength } from 'class-validator';
import { IsStrictDate, IsStrictDateTime, IsStrictDateTimeOrDay, IsNotBefore } from '../../infra/http/dates';
import { DEVICE_STATUSES, DeviceStatus, type WatchedDeviceKind } from '../registry';

const KINDS = ['camera', 'alarm_device'] as const;

export class LimitOffset {
  @ApiPropertyOptional({ minimum: 1, maximum: 500 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ minimum: 0 }) @IsOptional() @Type(() => Number) @IsInt() @Min(0) @Max(10_000_000) offset?: number;
}

export class SummaryQuery extends LimitOffset {
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
}

export class DeviceListQuery extends LimitOffset {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ enum: DEVICE_STATUSES }) @IsOptional() @IsIn(DEVICE_STATUSES) status?: DeviceStatus;
  @ApiPropertyOptional({ enum: KINDS }) @IsOptional() @IsIn(KINDS) kind?: WatchedDeviceKind;
}

export class TransitionQuery extends LimitOffset {
  @ApiPropertyOptional() @IsOptional() @IsUUID() deviceId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ description: 'ISO 8601, inclusive' }) @IsOptional() @IsStrictDateTimeOrDay() from?: string;
  @ApiPropertyOptional({ description: 'ISO 8601, exclusive' }) @IsOptional() @IsStrictDateTimeOrDay() @IsNotBefore('from') to?: string;
}

export class OutageQuery extends LimitOffset {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ enum: ['open', 'closed'] }) @IsOptional() @IsIn(['open', 'closed']) status?: 'open' | 'closed';
  @ApiPropertyOptional()
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsIn([true, false])
  overdue?: boolean;
}

export class OverdueQuery extends LimitOffset {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

/** GET /device-health/online-rate/export: every school of the district (or a zone, or one school) per day. */
export class OnlineRateExportQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiProperty({ example: '2026-03-02', description: 'first day (Asia/Shanghai)' }) @IsStrictDate() from: string;
  @ApiProperty({ example: '2026-03-06', description: 'last day, inclusive; at most 31 days from `from`; days after today are left out' })
  @IsStrictDate()
  @IsNotBefore('from')
  to: string;
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'], default: 'xlsx' }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

export class OnlineRateQuery {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ example: '2026-03-02', description: 'first day (Asia/Shanghai)' }) @IsStrictDate() from: string;
  @ApiProperty({ example: '2026-03-06', description: 'last day, inclusive; at most 62 days after from' })
  @IsStrictDate()
  @IsNotBefore('from')
  to: string;
}

const MAINTENANCE_STATUSES = ['upcoming', 'active', 'ended'] as const;

export class MaintenanceQuery extends LimitOffset {
  @ApiPropertyOptional({ description: "a school's windows (its devices' too) and the district-wide ones" }) @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() deviceId?: string;
  @ApiPropertyOptional({ enum: MAINTENANCE_STATUSES }) @IsOptional() @IsIn(MAINTENANCE_STATUSES) status?: (typeof MAINTENANCE_STATUSES)[number];
}

export class CreateMaintenanceWindowDto {
  @ApiPropertyOptional({ description: 'a school (omit both schoolId and deviceId for a district-wide window)' })
  @IsOptional()
  @IsUUID()
  schoolId?: string;
  @ApiPropertyOptional({ description: 'one camera or alarm button (its school is taken from the registry)' }) @IsOptional() @IsUUID() deviceId?: string;
  @ApiProperty({ description: 'no earlier than liveness.maintenanceMaxStartPastMinutes ago, at most maintenanceMaxLeadDays ahead' })
  @IsStrictDateTime()
  startsAt: string;
  @ApiProperty({ description: 'after startsAt, at most liveness.maintenanceMaxHours after it' }) @IsStrictDateTime() endsAt: string;
  @ApiProperty({ example: '机房电源检修' }) @IsString() @MinLength(1) @MaxLength(500) reason: string;
}

export class UpdateMaintenanceWindowDto {
  @ApiPropertyOptional({ description: 'only before the window begins' }) @IsOptional() @IsStrictDateTime() startsAt?: string;
  @ApiPropertyOptional({ description: 'not in the past (ending now: POST …/end)' }) @IsOptional() @IsStrictDateTime() endsAt?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) @MaxLength(500) reason?: string;
}
