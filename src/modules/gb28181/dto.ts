import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { ArrayMinSize, IsIn, IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min, MinLength, ValidateIf } from 'class-validator';
import { IsStrictDateTime } from '../../infra/http/dates';
import { AREA_KINDS, GB_ID_PATTERN } from '../registry';
import { type Charset, CHARSETS } from './charset';
import { BoundedArray } from '../../infra/http/body-bounds';

const toBool = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

export class GbPage {
  @ApiPropertyOptional({ minimum: 1, maximum: 500 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ minimum: 0 }) @IsOptional() @Type(() => Number) @IsInt() @Min(0) @Max(10_000_000) offset?: number;
}

export class GbDeviceQuery extends GbPage {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ description: 'only devices whose registration is (not) current' })
  @IsOptional()
  @Transform(toBool)
  @IsIn([true, false])
  registered?: boolean;
}

export class GbChannelQuery extends GbPage {
  @ApiPropertyOptional() @IsOptional() @Matches(GB_ID_PATTERN, { message: 'deviceId must be a 20-digit GB/T 28181 id' }) deviceId?: string;
  @ApiPropertyOptional({ description: 'true: channels not yet placed as cameras' }) @IsOptional() @Transform(toBool) @IsIn([true, false]) unassigned?: boolean;
}

export class UpdateGbDeviceDto {
  @ApiPropertyOptional({ description: 'the device SIP password (stored as digest HA1); null = the district default' })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsString()
  @MinLength(6)
  @MaxLength(64)
  password?: string | null;

  @ApiPropertyOptional({
    description:
      'the digest username the device registers with when it is not its device id (some firmware and lower platforms); null = the device id. ' +
      'Changing it on a device with its own password needs the password again (the stored HA1 is bound to the username)',
  })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsString()
  @Matches(/^[\x21\x23-\x5b\x5d-\x7e]{1,64}$/, { message: 'authUsername must be 1-64 visible ASCII characters without " or \\' })
  authUsername?: string | null;

  @ApiPropertyOptional({ description: 'the school the device belongs to (its reported channels are placed there); null = none' })
  @IsOptional()
  @ValidateIf((_, v) => v !== null)
  @IsUUID()
  schoolId?: string | null;

  @ApiPropertyOptional({
    enum: CHARSETS,
    description: 'how its MANSCDP bodies are decoded: auto (declared encoding when valid, else detected), or always GB18030 / UTF-8',
  })
  @IsOptional()
  @IsIn(CHARSETS)
  charset?: Charset;
}

export class AssignChannelDto {
  @ApiProperty() @Matches(GB_ID_PATTERN, { message: 'deviceId must be a 20-digit GB/T 28181 id' }) deviceId: string;
  @ApiProperty() @Matches(GB_ID_PATTERN, { message: 'channelId must be a 20-digit GB/T 28181 id' }) channelId: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) @MaxLength(200) name?: string;
  @ApiPropertyOptional({ enum: AREA_KINDS }) @IsOptional() @IsIn(AREA_KINDS) areaKind?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(200) location?: string;
}

export class AssignChannelsDto {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ type: [AssignChannelDto] })
  @BoundedArray(1000, () => AssignChannelDto)
  @ArrayMinSize(1)
  channels: AssignChannelDto[];
}

/** The target of a DeviceControl command: a channel of the device, or (absent) the device itself. */
export class GbControlTargetDto {
  @ApiPropertyOptional({ description: 'a channel of the device (its 20-digit id); absent = the device itself' })
  @IsOptional()
  @Matches(GB_ID_PATTERN, { message: 'channelId must be a 20-digit GB/T 28181 id' })
  channelId?: string;
}

/** DeviceStatus of the device or (channelId) one of its channels. */
export class GbStatusQuery {
  @ApiPropertyOptional({ description: 'a channel of the device (its 20-digit id); absent = the device itself' })
  @IsOptional()
  @Matches(GB_ID_PATTERN, { message: 'channelId must be a 20-digit GB/T 28181 id' })
  channelId?: string;
}

export class GbGuardDto extends GbControlTargetDto {
  @ApiProperty({ description: 'true: arm (GuardCmd SetGuard), false: disarm (ResetGuard)' })
  @IsIn([true, false], { message: 'arm must be true or false' })
  arm: boolean;
}

export class GbRecordDto extends GbControlTargetDto {
  @ApiProperty({ description: 'true: start recording on the device (RecordCmd Record), false: stop (StopRecord)' })
  @IsIn([true, false], { message: 'start must be true or false' })
  start: boolean;
}

export class GbResetAlarmDto extends GbControlTargetDto {
  @ApiPropertyOptional({ description: 'only alarms of this AlarmMethod (GB/T 28181-2016 §A.2.6.4: 1 telephone … 7 other); absent = all' })
  @IsOptional()
  @Matches(/^[1-7]$/, { message: 'alarmMethod must be 1-7' })
  alarmMethod?: string;

  @ApiPropertyOptional({ description: 'only alarms of this AlarmType (with alarmMethod)' })
  @IsOptional()
  @Matches(/^\d{1,2}$/, { message: 'alarmType must be 1-2 digits' })
  alarmType?: string;
}

export const RECORD_TYPES = ['all', 'time', 'alarm', 'manual'] as const;

export class GbRecordInfoQuery {
  @ApiProperty({ description: 'from (ISO 8601 date-time with offset, e.g. 2026-11-30T08:00:00+08:00; a bare day is refused)' })
  @IsStrictDateTime()
  start: string;

  @ApiProperty({ description: 'until (ISO 8601 date-time with offset; a bare day is refused); after start, at most gb28181.recordInfoMaxRangeHours later' })
  @IsStrictDateTime()
  end: string;

  @ApiPropertyOptional({ enum: RECORD_TYPES, description: 'recording type (GB/T 28181-2016 §A.2.4.5); default all' })
  @IsOptional()
  @IsIn(RECORD_TYPES)
  type?: (typeof RECORD_TYPES)[number];
}
