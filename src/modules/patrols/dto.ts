import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
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
import { IsStrictDate, IsStrictDateTime, IsStrictDateTimeOrDay, IsNotBefore } from '../../infra/http/dates';
import { CHECKS, CLOSE_PHOTOS_MAX, VERDICTS } from './patrols.constants';
import type { CheckName, Verdict } from './patrols.constants';
import { BoundedArray } from '../../infra/http/body-bounds';

const toBool = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

export class PlanScopeDto {
  @ApiProperty({ enum: ['district', 'zone', 'group', 'schools'] }) @IsIn(['district', 'zone', 'group', 'schools']) kind:
    'district' | 'zone' | 'group' | 'schools';
  @ApiPropertyOptional({ type: [String] }) @IsOptional() @BoundedArray(10000) @IsUUID('all', { each: true }) ids?: string[];
}

export class CreatePlanDto {
  @ApiProperty({ example: '每日上午巡查' }) @IsString() @MinLength(1) @MaxLength(200) name: string;
  @ApiProperty({ example: '0 9 * * 1-5', description: 'cron in Asia/Shanghai (5 fields, or 6 with seconds)' }) @IsString() @MaxLength(200) cron: string;
  @ApiProperty({ type: PlanScopeDto }) @ValidateNested() @Type(() => PlanScopeDto) scope: PlanScopeDto;
  @ApiProperty({ enum: CHECKS, isArray: true }) @IsArray() @ArrayMinSize(1) @IsIn(CHECKS, { each: true }) checks: CheckName[];
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class UpdatePlanDto {
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) @MaxLength(200) name?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(200) cron?: string;
  @ApiPropertyOptional({ type: PlanScopeDto }) @IsOptional() @ValidateNested() @Type(() => PlanScopeDto) scope?: PlanScopeDto;
  @ApiPropertyOptional({ enum: CHECKS, isArray: true }) @IsOptional() @IsArray() @ArrayMinSize(1) @IsIn(CHECKS, { each: true }) checks?: CheckName[];
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class RunPlanDto {
  @ApiPropertyOptional({ description: 'the time slot to run (default: the latest cron occurrence); the same slot runs once' })
  @IsOptional()
  @IsStrictDateTime()
  slot?: string;
}

export class RunQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() planId?: string;
}

export class RunSchoolsQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @Transform(toBool) @IsBoolean() failedOnly?: boolean;
}

export class FindingQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(64) check?: string;
  @ApiPropertyOptional({ enum: ['audit', 'round', 'post'] }) @IsOptional() @IsIn(['audit', 'round', 'post']) source?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() runId?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() from?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() @IsNotBefore('from') to?: string;
}

/** GET /patrol-findings/export: the list's filters and the file format (default XLSX). */
export class FindingExportQuery extends FindingQuery {
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'], default: 'xlsx' }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

export class TaskQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional({ enum: ['open', 'closed'] }) @IsOptional() @IsIn(['open', 'closed']) status?: 'open' | 'closed';
  @ApiPropertyOptional() @IsOptional() @Transform(toBool) @IsBoolean() overdue?: boolean;
}

/** GET /rectification-tasks: the filters, and the order (`newest`: the most recently opened or sent back first). */
export class TaskListQuery extends TaskQuery {
  @ApiPropertyOptional({ enum: ['deadline', 'newest'], default: 'deadline' }) @IsOptional() @IsIn(['deadline', 'newest']) order?: 'deadline' | 'newest';
  @ApiPropertyOptional({ format: 'uuid', description: 'this one task only (a link to it: the console opens the list on it)' })
  @IsOptional()
  @IsUUID()
  id?: string;
}

/** GET /rectification-tasks/export: the list's filters and the file format (default XLSX). */
export class TaskExportQuery extends TaskQuery {
  @ApiPropertyOptional({ enum: ['csv', 'xlsx'], default: 'xlsx' }) @IsOptional() @IsIn(['csv', 'xlsx']) format?: 'csv' | 'xlsx';
}

export class ReopenTaskDto {
  @ApiProperty({ example: '照片显示摄像机仍无画面，请重新整改', description: 'why the closing is not accepted (the school sees it)' })
  @IsString()
  @Matches(/\S/, { message: 'reason must not be blank' })
  @MaxLength(1000)
  reason: string;
}

/**
 * Closing a task: what was done, and 1–6 photos that show it (required: a closing without one is a 400 on
 * `photoIds`). Each id is the answer of POST /rectification-tasks/{id}/photos for this task.
 */
export class CloseTaskDto {
  @ApiProperty({ example: '已更换摄像机电源', description: 'what was done (not blank)' })
  @IsString()
  @Matches(/\S/, { message: '整改说明不能为空白（note must not be blank）' })
  @MaxLength(2000)
  note: string;
  @ApiProperty({
    type: [String],
    format: 'uuid',
    minItems: 1,
    maxItems: CLOSE_PHOTOS_MAX,
    description: `the photos of the fix: 1–${CLOSE_PHOTOS_MAX} evidence ids uploaded for this task (POST /rectification-tasks/{id}/photos); another task's or school's, or a camera's picture, is a 400`,
  })
  @BoundedArray(CLOSE_PHOTOS_MAX)
  @ArrayMinSize(1, { message: 'photoIds: at least one photo of the fix (POST /rectification-tasks/{id}/photos)' })
  @ArrayUnique()
  @IsUUID('all', { each: true })
  photoIds: string[];
  @ApiPropertyOptional({ description: 'a free-text reference to other evidence (kept for older clients; the photos are photoIds)' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  evidenceRef?: string;
}

export class CheckInDto {
  @ApiPropertyOptional({ description: "what the post's QR code says (school security): the signed, rotating payload of GET /protection-posts/{id}/qr" })
  @IsOptional()
  @IsString()
  @MinLength(4)
  @MaxLength(200)
  qrToken?: string;
  @ApiPropertyOptional({ description: 'the post, for an operator checking someone in on their behalf' }) @IsOptional() @IsUUID() postId?: string;
  @ApiPropertyOptional({ example: '王建国' }) @IsOptional() @IsString() @MinLength(1) @MaxLength(100) personName?: string;
  @ApiPropertyOptional({ enum: ['guard', 'police', 'staff', 'volunteer'] }) @IsOptional() @IsIn(['guard', 'police', 'staff', 'volunteer']) personRole?: string;
}

export class CheckinQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() postId?: string;
  @ApiPropertyOptional({ example: '2026-03-02' }) @IsOptional() @IsStrictDate() date?: string;
}

export class GuardPatrolDto {
  @ApiPropertyOptional({ description: 'required for control-center users; school security record for their own school' })
  @IsOptional()
  @IsUUID()
  schoolId?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(100) guardName?: string;
  @ApiPropertyOptional({ example: '教学楼-操场-围墙' }) @IsOptional() @IsString() @MaxLength(500) route?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2000) note?: string;
}

export class GateEventDto {
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
  @ApiProperty({ example: '南大门' }) @IsString() @MinLength(1) @MaxLength(100) gate: string;
  @ApiProperty({ enum: ['open', 'closed'] }) @IsIn(['open', 'closed']) state: 'open' | 'closed';
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTime() at?: string;
}

export class StartRoundDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000 }) @IsOptional() @IsInt() @Min(1) @Max(1000) size?: number;
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional() @IsOptional() @IsUUID() schoolId?: string;
}

export class VerdictDto {
  @ApiProperty({ enum: VERDICTS }) @IsIn(VERDICTS) verdict: Verdict;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2000) note?: string;
  @ApiPropertyOptional({
    format: 'uuid',
    description:
      'the picture the verdict was made on: the id of an evidence record of this camera taken for this round (POST /cameras/{id}/evidence with purpose round.verdict and refId the round id). Required for "normal"; a URL or another record is a 400.',
  })
  @IsOptional()
  @IsUUID()
  snapshotRef?: string;
}

export class RoundQuery extends PageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() operatorId?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() from?: string;
  @ApiPropertyOptional() @IsOptional() @IsStrictDateTimeOrDay() @IsNotBefore('from') to?: string;
}

export class CoverageQuery {
  @ApiPropertyOptional() @IsOptional() @IsUUID() zoneId?: string;
  @ApiPropertyOptional({ minimum: 1, maximum: 365 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(365) periodDays?: number;
}
