import { ApiHideProperty, ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsBoolean,
  IsEmpty,
  IsIn,
  IsInt,
  IsNumber,
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
import { AREA_KINDS } from '../registry';
import { IsStrictDateTime, IsStrictDateTimeOrDay, IsNotBefore } from '../../infra/http/dates';
import { DEVICE_REPORT_TYPES, DRILL_WINDOW_STATUSES, INCIDENT_TYPES, MANUAL_TYPES, OUTCOMES, PRIORITIES, STATUSES } from './alarms.constants';
import type { IncidentStatus, IncidentType, Outcome, Priority } from './alarms.constants';

const EVENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const EVENT_ID_MSG = { message: 'eventId: 1–128 letters, digits or _.:-' };
const toBool = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

/** A one-click alarm button press (device credential). */
export class DevicePressDto {
  @ApiProperty({ description: "the device's own event id; a retry with the same id returns the same incident" })
  @Matches(EVENT_ID, EVENT_ID_MSG)
  eventId: string;
  @ApiPropertyOptional({ enum: INCIDENT_TYPES }) @IsOptional() @IsIn(INCIDENT_TYPES) type?: IncidentType;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(500) note?: string;
  @ApiPropertyOptional({ description: 'ignored: a press is a drill (演练) only inside an approved drill window (issue 11 §2)' })
  @IsOptional()
  @IsBoolean()
  drill?: boolean;
  @ApiPropertyOptional({ description: "a self-test press (测试): recorded as the button's test, no incident, never dispatched (issue 11 §3)" })
  @IsOptional()
  @IsBoolean()
  test?: boolean;
}

/** An alarm a camera (or its gateway) reports: video analytics, tamper, fault. */
export class DeviceReportDto {
  @ApiProperty() @Matches(EVENT_ID, EVENT_ID_MSG) eventId: string;
  @ApiProperty({ enum: DEVICE_REPORT_TYPES }) @IsIn(DEVICE_REPORT_TYPES) type: IncidentType;
  @ApiPropertyOptional({
    enum: PRIORITIES,
    description: "more urgent than the type's default (alarms.priorityByType) is kept; less urgent is raised at the default, said in the note",
  })
  @IsOptional()
  @IsIn(PRIORITIES)
  priority?: Priority;
  @ApiPropertyOptional({
    description:
      "a gateway's: the camera the event concerns. Without a usable one (missing, not a UUID, unknown, another school's) the alarm is raised at the gateway's school without a camera, said in the note",
  })
  @IsOptional()
  @IsUUID()
  cameraId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(500) note?: string;
}

/** The position of the phone that raises an alarm (navigator.geolocation, WGS-84). */
export class ReporterPositionDto {
  @ApiProperty({ example: 29.382756, minimum: -90, maximum: 90 }) @IsNumber({ allowNaN: false, allowInfinity: false }) @Min(-90) @Max(90) latitude: number;
  @ApiProperty({ example: 106.540184, minimum: -180, maximum: 180 })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-180)
  @Max(180)
  longitude: number;
  @ApiProperty({ example: 15, minimum: 0, maximum: 100000, description: "the phone's accuracy radius in metres" })
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(100000)
  accuracyM: number;
}

/** An alarm raised by school security staff or a control-center user. */
export class RaiseIncidentDto {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ enum: MANUAL_TYPES }) @IsIn(MANUAL_TYPES) type: IncidentType;
  @ApiProperty({ example: '南门' }) @IsString() @MinLength(1) @MaxLength(200) location: string;
  @ApiPropertyOptional({ enum: AREA_KINDS }) @IsOptional() @IsIn(AREA_KINDS) areaKind?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2000) note?: string;
  @ApiPropertyOptional({ enum: PRIORITIES }) @IsOptional() @IsIn(PRIORITIES) priority?: Priority;
  @ApiPropertyOptional() @IsOptional() @IsUUID() alarmDeviceId?: string;
  @ApiPropertyOptional({
    type: ReporterPositionDto,
    description:
      "the raising phone's position, when its user allows it (stored with the incident, shown to operators; the incident returns it as `reporterPosition`)",
  })
  @IsOptional()
  @ValidateNested()
  @Type(() => ReporterPositionDto)
  position?: ReporterPositionDto;
  /** The name the incident returns the position under: sent, it is told where the position goes (not just "should not exist"). */
  @ApiHideProperty()
  @IsEmpty({ message: 'send the phone position as `position` (`reporterPosition` is the name the incident returns it under)' })
  reporterPosition?: unknown;
  @ApiPropertyOptional({ description: 'control-center roles only (school staff: 403; their drills come from approved drill windows)' })
  @IsOptional()
  @IsBoolean()
  drill?: boolean;
  @ApiPropertyOptional({
    description:
      "the client's own event id (or the Idempotency-Key header), unique per user: a retry with the same id and body returns the same incident (200); the same id with another body is 409 INCIDENT.CLIENT_EVENT_REUSED",
    example: '6f1c2a5e-3b9d-4c1a-9e2f-0a7b8c9d1e2f',
  })
  @IsOptional()
  @Matches(EVENT_ID, { message: 'clientEventId: 1–128 letters, digits or _.:-' })
  clientEventId?: string;
}

/** The `Idempotency-Key` header of `POST /incidents`: the same rule as `clientEventId`. */
export const CLIENT_EVENT_ID = EVENT_ID;

export class NoteDto {
  @ApiProperty() @IsString() @MinLength(1) @MaxLength(2000) note: string;
}

export class OptionalNoteDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2000) note?: string;
}

export class ResolveDto {
  @ApiProperty({ enum: OUTCOMES }) @IsIn(OUTCOMES) outcome: Outcome;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2000) note?: string;
}

/** A guard's test mode for one button: presses within it are test presses. */
export class TestModeDto {
  @ApiPropertyOptional({ description: 'minutes (default alarms.buttonTests.testModeMinutes, at most testModeMaxMinutes)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(60)
  minutes?: number;
}

export class CancelDto {
  @ApiProperty({ example: '误按' }) @IsString() @MinLength(1) @MaxLength(500) reason: string;
}

export class IncidentQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional({ description: 'comma-separated statuses' })
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' ? value.split(',') : value))
  @ArrayMaxSize(6)
  @IsIn(STATUSES, { each: true })
  status?: IncidentStatus[];
  @ApiPropertyOptional({ enum: INCIDENT_TYPES }) @IsOptional() @IsIn(INCIDENT_TYPES) type?: IncidentType;
  @ApiPropertyOptional({ enum: PRIORITIES }) @IsOptional() @IsIn(PRIORITIES) priority?: Priority;
  @ApiPropertyOptional({ description: 'comma-separated outcomes of closed incidents (genuine, false_alarm, drill, test)' })
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' ? value.split(',') : value))
  @ArrayMaxSize(4)
  @IsIn(OUTCOMES, { each: true })
  outcome?: Outcome[];
  @ApiPropertyOptional({
    description: 'words found (case-insensitive) in the school name, place, notes, cancel reason or the names of who raised, acknowledged or resolved it',
  })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  q?: string;
  @ApiPropertyOptional() @IsOptional() @Transform(toBool) @IsBoolean() drill?: boolean;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() from?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() @IsNotBefore('from') to?: string;
  @ApiPropertyOptional() @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(10000) limit?: number;
  @ApiPropertyOptional() @IsOptional() @Type(() => Number) @IsInt() @Min(0) @Max(10_000_000) offset?: number;
}

/** POST /handovers: what the leaving operator adds to the record. */
export class ShiftHandoverDto {
  @ApiPropertyOptional({ description: 'for the next operator: what to watch, what was promised' }) @IsOptional() @IsString() @MaxLength(2000) note?: string;
  @ApiPropertyOptional({ description: 'start of the shift handed over (ISO 8601); default: the last handover, else alarms.handoverDefaultShiftHours ago' })
  @IsOptional()
  @IsStrictDateTime()
  since?: string;
}

export class ShiftHandoverQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 100 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(100) limit?: number;
  @ApiPropertyOptional({ description: 'only those not yet acknowledged' }) @IsOptional() @Transform(toBool) @IsBoolean() pending?: boolean;
}

/** GET /incidents/export: the list's filters (no paging) and the file format. */
export class IncidentExportQuery extends IncidentQuery {
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'], default: 'xlsx' }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

export class StatsQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() from?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() @IsNotBefore('from') to?: string;
}

export class StatsExportQuery extends StatsQuery {
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'], default: 'xlsx' }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

/**
 * A drill window (演练). Bounded by alarms.drills: at most maxWindowMinutes long (default 120),
 * starting no earlier than maxStartPastMinutes ago (default 5) and within maxLeadDays; else a
 * field-level 400. School staff get a pending request, control-center users an approved window.
 */
export class DrillWindowDto {
  @ApiProperty() @IsUUID() schoolId: string;
  @ApiProperty({ description: 'ISO 8601 with offset; not more than alarms.drills.maxStartPastMinutes ago' }) @IsStrictDateTime() startsAt: string;
  @ApiProperty({ description: 'ISO 8601 with offset; after startsAt, at most alarms.drills.maxWindowMinutes later' }) @IsStrictDateTime() endsAt: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(500) note?: string;
}

export class DrillWindowQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ description: 'only approved windows in force now' }) @IsOptional() @Transform(toBool) @IsBoolean() active?: boolean;
  @ApiPropertyOptional({ enum: DRILL_WINDOW_STATUSES }) @IsOptional() @IsIn(DRILL_WINDOW_STATUSES) status?: (typeof DRILL_WINDOW_STATUSES)[number];
}
