import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMinSize,
  ArrayUnique,
  IsBoolean,
  IsIn,
  IsInt,
  IsLatitude,
  IsLongitude,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { PageQuery } from '../../infra/http/pagination';
import { IsStrictDate } from '../../infra/http/dates';
import {
  AREA_KINDS,
  AreaKind,
  CODE_PATTERN,
  DEVICE_STATUSES,
  GB_ID_PATTERN,
  HHMM_PATTERN,
  POST_WINDOW_KINDS,
  PostWindowKind,
  SCHOOL_TYPES,
  SchoolType,
  ZONE_LEVELS,
  ZoneLevel,
} from './registry.constants';
import { BoundedArray } from '../../infra/http/body-bounds';

const CODE_MSG = { message: '$property: letters, digits and _.- (at most 64), starting with a letter or digit' };
const HHMM_MSG = { message: '$property: a time HH:mm (00:00–23:59)' };
const GB_MSG = { message: '$property: a GB/T 28181 id of exactly 20 digits' };
const PHONE = /^$|^\+?[0-9-]{5,20}$/;
const PHONE_MSG = { message: 'phone: digits and dashes, optional leading +' };
/** Query booleans arrive as strings. */
const QueryBool = () => Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value));

// ---------- district structure ----------

export class CreateDistrictDto {
  @ApiProperty({ example: 'banan' }) @Matches(CODE_PATTERN, CODE_MSG) code: string;
  @ApiProperty({ example: '巴南区' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiPropertyOptional({ example: 'Asia/Shanghai' }) @IsOptional() @IsIn(Intl.supportedValuesOf('timeZone')) timezone?: string;
}
export class UpdateDistrictDto extends PartialType(CreateDistrictDto) {}

export class CreateZoneDto {
  @ApiProperty() @IsUUID() districtId: string;
  @ApiProperty({ example: 'Z-P01' }) @Matches(CODE_PATTERN, CODE_MSG) code: string;
  @ApiProperty({ example: '鱼洞小学学区' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiProperty({ enum: ZONE_LEVELS }) @IsIn(ZONE_LEVELS) level: ZoneLevel;
}
export class UpdateZoneDto extends PartialType(CreateZoneDto) {}

export class CreateGroupDto {
  @ApiProperty() @IsUUID() districtId: string;
  @ApiProperty({ example: 'G-01' }) @Matches(CODE_PATTERN, CODE_MSG) code: string;
  @ApiProperty({ example: '巴南中学教育集团' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
}
export class UpdateGroupDto extends PartialType(CreateGroupDto) {}

// ---------- schools ----------

export class TimeWindowDto {
  @ApiProperty({ example: '07:30' }) @Matches(HHMM_PATTERN, HHMM_MSG) start: string;
  @ApiProperty({ example: '08:10' }) @Matches(HHMM_PATTERN, HHMM_MSG) end: string;
}

export class TimetableDto {
  @ApiProperty({ example: [1, 2, 3, 4, 5], description: 'ISO weekdays that are school days' })
  @BoundedArray(7)
  @ArrayMinSize(1)
  @ArrayUnique()
  @IsInt({ each: true })
  @Min(1, { each: true })
  @Max(7, { each: true })
  weekdays: number[];
  @ApiProperty() @ValidateNested() @Type(() => TimeWindowDto) arrival: TimeWindowDto;
  @ApiProperty() @ValidateNested() @Type(() => TimeWindowDto) dismissal: TimeWindowDto;
  @ApiProperty() @ValidateNested() @Type(() => TimeWindowDto) schoolHours: TimeWindowDto;
}

export class DateRangeDto {
  @ApiProperty({ example: '2026-09-01' }) @IsStrictDate() start: string;
  @ApiProperty({ example: '2027-01-20' }) @IsStrictDate() end: string;
}

export class CalendarDto {
  @ApiProperty({ type: [DateRangeDto] }) @BoundedArray(20, () => DateRangeDto) terms: DateRangeDto[];
  @ApiProperty({ example: ['2026-10-01'] }) @BoundedArray(366) @IsStrictDate({ each: true }) holidays: string[];
}

export class CreateSchoolDto {
  @ApiProperty() @IsUUID() districtId: string;
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @IsUUID() zoneId?: string | null;
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @IsUUID() groupId?: string | null;
  @ApiProperty({ example: 'BN-P-001' }) @Matches(CODE_PATTERN, CODE_MSG) code: string;
  @ApiProperty({ example: '箭滩河小学' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiProperty({ enum: SCHOOL_TYPES }) @IsIn(SCHOOL_TYPES) type: SchoolType;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(300) address?: string;
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @IsLatitude() lat?: number | null;
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @IsLongitude() lng?: number | null;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(100000) studentCount?: number;
  @ApiPropertyOptional() @IsOptional() @IsInt() @Min(0) @Max(20000) staffCount?: number;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() boarding?: boolean;
  @ApiPropertyOptional({ example: '李安' }) @IsOptional() @IsString() @MaxLength(100) securityChiefName?: string;
  @ApiPropertyOptional({ example: '023-66881234' }) @IsOptional() @Matches(PHONE, PHONE_MSG) securityChiefPhone?: string;
  @ApiPropertyOptional({ example: '王校长' }) @IsOptional() @IsString() @MaxLength(100) principalName?: string;
  @ApiPropertyOptional() @IsOptional() @Matches(PHONE, PHONE_MSG) principalPhone?: string;
  @ApiPropertyOptional({ example: '鱼洞派出所', description: 'the police station of the area (辖区派出所)' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  policeStationName?: string;
  @ApiPropertyOptional() @IsOptional() @Matches(PHONE, PHONE_MSG) policeStationPhone?: string;
  @ApiProperty() @ValidateNested() @Type(() => TimetableDto) timetable: TimetableDto;
  @ApiPropertyOptional() @IsOptional() @ValidateNested() @Type(() => CalendarDto) calendar?: CalendarDto;
}
export class UpdateSchoolDto extends PartialType(CreateSchoolDto) {}

// ---------- devices ----------

export class CreateCameraDto {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ example: '50011300001320000001' }) @Matches(GB_ID_PATTERN, GB_MSG) deviceId: string;
  @ApiProperty({ example: '50011300001310000001' }) @Matches(GB_ID_PATTERN, GB_MSG) channelId: string;
  @ApiProperty({ example: '南大门 1' }) @IsString() @MinLength(1) @MaxLength(100) name: string;
  @ApiPropertyOptional({ example: '南大门岗亭外' }) @IsOptional() @IsString() @MaxLength(200) location?: string;
  @ApiProperty({ enum: AREA_KINDS }) @IsIn(AREA_KINDS) areaKind: AreaKind;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(100) vendor?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(100) model?: string;
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(500)
  @Matches(/^$|^(rtsp|rtmp|https?|webrtc):\/\/\S+$/, { message: 'streamUrl: an rtsp/rtmp/http(s)/webrtc URL' })
  streamUrl?: string;
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @IsInt() @Min(1) @Max(86400) keepaliveSeconds?: number | null;
}
export class UpdateCameraDto extends PartialType(CreateCameraDto) {}

export class CreateAlarmDeviceDto {
  @ApiProperty({ example: 'AB-BN-P-001-01' }) @Matches(CODE_PATTERN, CODE_MSG) code: string;
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiPropertyOptional({ example: '门卫室' }) @IsOptional() @IsString() @MaxLength(200) location?: string;
  @ApiProperty({ enum: AREA_KINDS }) @IsIn(AREA_KINDS) areaKind: AreaKind;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() policeLinked?: boolean;
  @ApiPropertyOptional({ type: [String] })
  @IsOptional()
  @BoundedArray(64)
  @ArrayUnique()
  @IsUUID(undefined, { each: true })
  linkedCameraIds?: string[];
  @ApiPropertyOptional({ nullable: true }) @IsOptional() @IsInt() @Min(1) @Max(86400) keepaliveSeconds?: number | null;
}
export class UpdateAlarmDeviceDto extends PartialType(CreateAlarmDeviceDto) {}

// ---------- people and posts ----------

export class CreateGuardDto {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ example: '张伟' }) @IsString() @MinLength(1) @MaxLength(50) name: string;
  /**
   * The 保安员证 number, without regard to case (`cq-ba-2021-00017` is the same licence): stored trimmed and upper-cased
   * here and in imports (columns.ts), so one licence can never be two guards (attack pass 8).
   */
  @ApiProperty({ example: 'CQ-BA-2021-00017', description: 'case-insensitive: stored trimmed and upper-cased' })
  @Transform(({ value }) => (typeof value === 'string' ? value.trim().toUpperCase() : value))
  @Matches(/^[A-Za-z0-9-]{4,32}$/, { message: 'licenceNo: 4–32 letters, digits or dashes' })
  licenceNo: string;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() fullTime?: boolean;
  @ApiPropertyOptional() @IsOptional() @Matches(PHONE, PHONE_MSG) phone?: string;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() active?: boolean;
}
export class UpdateGuardDto extends PartialType(CreateGuardDto) {}

export class PostWindowDto {
  @ApiProperty({ enum: POST_WINDOW_KINDS }) @IsIn(POST_WINDOW_KINDS) kind: PostWindowKind;
  @ApiPropertyOptional({ description: 'override of the timetable start' }) @IsOptional() @Matches(HHMM_PATTERN, HHMM_MSG) start?: string;
  @ApiPropertyOptional({ description: 'override of the timetable end' }) @IsOptional() @Matches(HHMM_PATTERN, HHMM_MSG) end?: string;
}

export class CreateProtectionPostDto {
  @ApiProperty({ example: 'PP-BN-P-001-1' }) @Matches(CODE_PATTERN, CODE_MSG) code: string;
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ example: '南大门' }) @IsString() @MinLength(1) @MaxLength(100) gate: string;
  @ApiProperty({ type: [PostWindowDto] })
  @BoundedArray(8, () => PostWindowDto)
  @ArrayMinSize(1)
  windows: PostWindowDto[];
  @ApiPropertyOptional({ minimum: 1, maximum: 50 }) @IsOptional() @IsInt() @Min(1) @Max(50) requiredHeadcount?: number;
  @ApiPropertyOptional({ description: "the camera that sees the gate (a camera of the post's school); null unlinks", nullable: true })
  @IsOptional()
  @IsUUID()
  gateCameraId?: string | null;
}
export class UpdateProtectionPostDto extends PartialType(CreateProtectionPostDto) {}

// ---------- list queries ----------

export class DistrictQuery extends PageQuery {}

export class ZoneQuery extends PageQuery {
  @ApiPropertyOptional({ enum: ZONE_LEVELS }) @IsOptional() @IsIn(ZONE_LEVELS) level?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(100) q?: string;
}

export class GroupQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(100) q?: string;
}

export class SchoolQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() groupId?: string;
  @ApiPropertyOptional({ enum: SCHOOL_TYPES }) @IsOptional() @IsIn(SCHOOL_TYPES) type?: string;
  @ApiPropertyOptional() @IsOptional() @QueryBool() @IsBoolean() boarding?: boolean;
  @ApiPropertyOptional({ description: 'name or code contains' }) @IsOptional() @IsString() @MaxLength(100) q?: string;
}

/** Filters shared by everything that belongs to a school. */
export class SchoolOwnedQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() groupId?: string;
  @ApiPropertyOptional({ description: 'name, code or location contains' }) @IsOptional() @IsString() @MaxLength(100) q?: string;
}

export class CameraQuery extends SchoolOwnedQuery {
  @ApiPropertyOptional({ enum: DEVICE_STATUSES }) @IsOptional() @IsIn(DEVICE_STATUSES) status?: string;
  @ApiPropertyOptional({ enum: AREA_KINDS }) @IsOptional() @IsIn(AREA_KINDS) areaKind?: string;
  @ApiPropertyOptional() @IsOptional() @Matches(GB_ID_PATTERN, GB_MSG) deviceId?: string;
}

export class AlarmDeviceQuery extends SchoolOwnedQuery {
  @ApiPropertyOptional({ enum: DEVICE_STATUSES }) @IsOptional() @IsIn(DEVICE_STATUSES) status?: string;
  @ApiPropertyOptional({ enum: AREA_KINDS }) @IsOptional() @IsIn(AREA_KINDS) areaKind?: string;
  @ApiPropertyOptional() @IsOptional() @QueryBool() @IsBoolean() policeLinked?: boolean;
}

export class GuardQuery extends SchoolOwnedQuery {
  @ApiPropertyOptional() @IsOptional() @QueryBool() @IsBoolean() fullTime?: boolean;
  @ApiPropertyOptional({ description: 'verified by the bureau (true) or only declared by the school (false)' })
  @IsOptional()
  @QueryBool()
  @IsBoolean()
  verified?: boolean;
  @ApiPropertyOptional() @IsOptional() @QueryBool() @IsBoolean() active?: boolean;
}

export class ProtectionPostQuery extends SchoolOwnedQuery {}
