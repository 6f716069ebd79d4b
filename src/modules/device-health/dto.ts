import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, IsUUID, Max, MaxLength, Min, MinLength } from 'class-validator';
import { IsStrictDate, IsStrictDateTime, IsNotBefore } from '../../infra/http/dates';
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
  @ApiPropertyOptional({ description: 'ISO 8601, inclusive' }) @IsOptional() @IsStrictDateTime() from?: string;
  @ApiPropertyOptional({ description: 'ISO 8601, exclusive' }) @IsOptional() @IsStrictDateTime() @IsNotBefore('from') to?: string;
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

export class OnlineRateQuery {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ example: '2026-03-02', description: 'first day (Asia/Shanghai)' }) @IsStrictDate() from: string;
  @ApiProperty({ example: '2026-03-06', description: 'last day, inclusive; at most 62 days after from' })
  @IsStrictDate()
  @IsNotBefore('from')
  to: string;
}

export class MaintenanceQuery extends LimitOffset {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

export class CreateMaintenanceWindowDto {
  @ApiPropertyOptional({ description: 'omit for a district-wide window' }) @IsOptional() @IsUUID() schoolId?: string;
  @ApiProperty() @IsStrictDateTime() startsAt: string;
  @ApiProperty() @IsStrictDateTime() endsAt: string;
  @ApiProperty({ example: '机房电源检修' }) @IsString() @MinLength(1) @MaxLength(500) reason: string;
}
