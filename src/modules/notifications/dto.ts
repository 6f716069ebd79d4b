import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { ArrayMinSize, IsBoolean, IsIn, IsInt, Max, Min, IsObject, IsOptional, IsString, IsUUID, MaxLength, MinLength } from 'class-validator';
import { MAX_ESCALATION_LEVELS } from '../../config/sections';
import { BoundedArray, BoundedJson } from '../../infra/http/body-bounds';
import { VisibleText } from '../../infra/text/person-name';
import { IsStrictDateTime, IsStrictDateTimeOrDay, IsNotBefore } from '../../infra/http/dates';
import { CHANNEL_KINDS, DUTY_ROLES } from './notifications.constants';
import type { ChannelKind, DutyRole } from './notifications.constants';

/**
 * A duty shift (值班): who holds a duty role from when to when — ISO 8601 date-times with their offset
 * (e.g. 2026-12-01T08:00:00+08:00; a bare day is refused), kept to the millisecond.
 */
export class CreateShiftDto {
  @ApiProperty({ enum: DUTY_ROLES }) @IsIn(DUTY_ROLES) dutyRole: DutyRole;
  @ApiProperty() @IsUUID() userId: string;
  @ApiProperty({ example: '2026-12-01T08:00:00+08:00', description: 'at most notifications.rosterMaxBackdateMinutes in the past' })
  @IsStrictDateTime()
  startsAt: string;
  @ApiProperty({ example: '2026-12-01T20:00:00+08:00', description: 'after startsAt, in the future' }) @IsStrictDateTime() endsAt: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(500) note?: string;
}

/** What may change depends on where the shift stands: ended — its note only; on duty now — its end and note; not yet begun — anything. */
export class UpdateShiftDto {
  @ApiPropertyOptional({ description: 'only before the shift begins (on duty: hand it over)' }) @IsOptional() @IsUUID() userId?: string;
  @ApiPropertyOptional({ description: 'only before the shift begins; at most notifications.rosterMaxBackdateMinutes in the past' })
  @IsOptional()
  @IsStrictDateTime()
  startsAt?: string;
  @ApiPropertyOptional({ description: 'not in the past; not once the shift has ended' }) @IsOptional() @IsStrictDateTime() endsAt?: string;
  @ApiPropertyOptional({ description: 'also of a shift that has ended (audited)' }) @IsOptional() @IsString() @MaxLength(500) note?: string;
}

/** 交接班: the shift on duty now ends now, and the incoming person holds the role until the shift's end. */
export class HandoverDto {
  @ApiProperty() @IsUUID() toUserId: string;
  @ApiPropertyOptional({ description: 'what the incoming person must know (交接事项)' }) @IsOptional() @IsString() @MaxLength(2000) note?: string;
}

export class ShiftQuery {
  @ApiPropertyOptional({ description: 'default: 1 day ago' }) @IsOptional() @IsStrictDateTimeOrDay() from?: string;
  @ApiPropertyOptional({ description: 'default: 7 days ahead (at most 62 days after from)' })
  @IsOptional()
  @IsStrictDateTimeOrDay()
  @IsNotBefore('from')
  to?: string;
  @ApiPropertyOptional({ enum: DUTY_ROLES }) @IsOptional() @IsIn(DUTY_ROLES) dutyRole?: DutyRole;
}

export class GapQuery {
  @ApiPropertyOptional({ description: 'hours ahead to look (default notifications.rosterLookaheadHours)', minimum: 1, maximum: 744 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(744)
  hours?: number;
}

/**
 * Longest SMS gateway template, as JSON text (characters). The body is a few fields (phone, text, sign name); it
 * is stored on the channel, listed to every control-center role and read with every delivery batch: a 1.9 MB one
 * made each of those heavy (attack pass 9 #5). Checked on the raw body (BoundedJson), before it is copied.
 */
export const TEMPLATE_MAX_CHARS = 8192;

export class CreateChannelDto {
  @ApiProperty({ enum: CHANNEL_KINDS }) @IsIn(CHANNEL_KINDS) kind: ChannelKind;
  /** Shown on the console, in timelines and the audit log: not blank, no control or invisible characters (attack pass 9 #6). */
  @ApiProperty({ example: '指挥中心值班群' })
  @VisibleText(100, { notBlank: true })
  name: string;
  @ApiProperty({ description: 'the robot webhook (with its key/access_token) or the gateway URL; write-only, answered masked' })
  @IsString()
  @MaxLength(2000)
  webhookUrl: string;
  @ApiPropertyOptional({ description: 'DingTalk 加签 / Feishu 签名校验 secret, SMS gateway HMAC key; write-only' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  secret?: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: `SMS gateway: JSON body with {{phone}}, {{text}}, {{link}}, {{incidentId}}, {{level}}… in its strings; at most ${TEMPLATE_MAX_CHARS} characters as JSON`,
  })
  @IsOptional()
  @IsObject()
  @BoundedJson(TEMPLATE_MAX_CHARS)
  template?: Record<string, unknown>;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

export class UpdateChannelDto {
  @ApiPropertyOptional()
  @IsOptional()
  @VisibleText(100, { notBlank: true })
  name?: string;
  @ApiPropertyOptional({ description: 'omit to keep' }) @IsOptional() @IsString() @MaxLength(2000) webhookUrl?: string;
  @ApiPropertyOptional({ description: 'omit to keep' }) @IsOptional() @IsString() @MaxLength(200) secret?: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: `SMS gateway only; at most ${TEMPLATE_MAX_CHARS} characters as JSON; omit to keep`,
  })
  @IsOptional()
  @IsObject()
  @BoundedJson(TEMPLATE_MAX_CHARS)
  template?: Record<string, unknown>;
  @ApiPropertyOptional() @IsOptional() @IsBoolean() enabled?: boolean;
}

const toBool = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

/** Deleting or disabling a channel that escalation levels name (409 NOTIFICATION_CHANNEL.IN_USE otherwise). */
export class ChannelReleaseQuery {
  @ApiPropertyOptional({
    description:
      'true: also take the channel out of the escalation policy levels that name it (channel lists and group targets), in the same transaction (audited); still refused (409 NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE) when a level would be left unable to notify the people it names',
  })
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  detach?: boolean;
}

/** Silences a channel for a maintenance window (never the console: it is not a channel). */
export class SilenceChannelDto {
  @ApiProperty({ description: 'end of the maintenance window (at most 7 days ahead)' }) @IsStrictDateTime() until: string;
  @ApiProperty({ example: '运营商短信网关维护' }) @IsString() @MinLength(1) @MaxLength(500) reason: string;
}

const TARGET_KINDS = ['duty', 'user', 'group'] as const;

/** Whom a level tells: the person on duty in a role, a named user, or a group channel as such. */
export class PolicyTargetDto {
  @ApiProperty({ enum: TARGET_KINDS }) @IsIn(TARGET_KINDS) kind: (typeof TARGET_KINDS)[number];
  @ApiPropertyOptional({ enum: DUTY_ROLES, description: 'kind duty' }) @IsOptional() @IsIn(DUTY_ROLES) dutyRole?: DutyRole;
  @ApiPropertyOptional({ description: 'kind user' }) @IsOptional() @IsUUID() userId?: string;
  @ApiPropertyOptional({ description: 'kind group' }) @IsOptional() @IsUUID() channelId?: string;
}

/**
 * Most targets one escalation level names: its duty roles (three), the people named besides them and a group
 * or two. Twenty is far more than a level that someone must still read at 3 a.m. holds.
 */
export const LEVEL_TARGETS_MAX = 20;
/** Most channels one level's people are told through: a handful of robots and a gateway (four kinds), with room to spare. */
export const LEVEL_CHANNELS_MAX = 20;

export class PolicyLevelDto {
  @ApiProperty({ type: [PolicyTargetDto], minItems: 1, maxItems: LEVEL_TARGETS_MAX })
  @BoundedArray(LEVEL_TARGETS_MAX, () => PolicyTargetDto)
  @ArrayMinSize(1)
  targets: PolicyTargetDto[];
  @ApiPropertyOptional({
    type: [String],
    nullable: true,
    maxItems: LEVEL_CHANNELS_MAX,
    description: 'channels for the people of this level; null or omitted = every enabled channel',
  })
  @IsOptional()
  @BoundedArray(LEVEL_CHANNELS_MAX)
  @IsUUID('all', { each: true })
  channelIds?: string[] | null;
}

export class UpdatePolicyDto {
  /** Arrays longer than their bound (here and in each level) are refused before any item is looked at (array-bounds.ts). */
  @ApiProperty({
    type: [PolicyLevelDto],
    minItems: 1,
    maxItems: MAX_ESCALATION_LEVELS,
    description: 'one entry per escalation level of the priority (alarms.escalationSeconds)',
  })
  @BoundedArray(MAX_ESCALATION_LEVELS, () => PolicyLevelDto)
  @ArrayMinSize(1)
  levels: PolicyLevelDto[];
}
