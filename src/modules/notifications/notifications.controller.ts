import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiParam, ApiTags } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { PRIORITIES, type Priority } from '../../config/sections';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import { CENTER_ROLES, type AuthUser } from '../../infra/access/roles';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { UuidParam } from '../../infra/http/params';
import { IncidentQueriesService } from '../alarms';
import { verifyLink } from './ack-links';
import { ChannelsService } from './channels.service';
import { DeliveriesService } from './deliveries.service';
import {
  ChannelReleaseQuery,
  CreateChannelDto,
  CreateShiftDto,
  GapQuery,
  HandoverDto,
  ShiftQuery,
  SilenceChannelDto,
  UpdateChannelDto,
  UpdatePolicyDto,
  UpdateShiftDto,
} from './dto';
import { PolicyService } from './policy.service';
import { RosterService } from './roster.service';

class PriorityParam {
  @IsIn(PRIORITIES) priority: Priority;
}

/** Who may change the roster and silence channels; who may read them (the control center). */
const ROSTER_ROLES = ['supervisor', 'admin'] as const;

@ApiTags('duty')
@ApiBearerAuth()
@Controller('duty')
export class DutyController {
  constructor(
    private readonly roster: RosterService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Who is on duty now, per role, and the gaps in the hours ahead (notifications.rosterLookaheadHours). A shift whose
   * person was since disabled or left the control-center roles counts for nothing: not in `onDuty` (its hours are a gap),
   * listed in `notCounted` with the reason, so the console can say why.
   */
  @Roles(...CENTER_ROLES)
  @Get('now')
  async now() {
    const at = new Date();
    const to = new Date(at.getTime() + this.config.notifications.rosterLookaheadHours * 3600_000);
    const gaps = (await this.roster.gaps(at, to)).map(({ dutyRole, from, to: end }) => ({ dutyRole, from, to: end }));
    const { onDuty, notCounted } = await this.roster.onDuty(at);
    return { at: at.toISOString(), onDuty, notCounted, gaps };
  }

  /** The duty roster's gaps (a role with nobody on duty) in the next `hours` (default notifications.rosterLookaheadHours). */
  @Roles(...CENTER_ROLES)
  @Get('gaps')
  async gaps(@Query() q: GapQuery) {
    const at = new Date();
    const hours = q.hours ?? this.config.notifications.rosterLookaheadHours;
    const gaps = await this.roster.gaps(at, new Date(at.getTime() + hours * 3600_000));
    return { from: at.toISOString(), hours, gaps: gaps.map(({ dutyRole, from, to }) => ({ dutyRole, from, to })) };
  }

  /** Everyone who may hold a duty (operators, supervisors, admins; not disabled), for the roster's pickers: `{ items: DutyPerson[] }`. */
  @Roles(...ROSTER_ROLES)
  @Get('people')
  async people() {
    return { items: await this.roster.dutyPeople() };
  }

  /** Lists duty shifts (值班表) by role, person and time window. */
  @Roles(...CENTER_ROLES)
  @Get('shifts')
  list(@Query() q: ShiftQuery) {
    return this.roster.list(q);
  }

  /** One duty shift by id. */
  @Roles(...CENTER_ROLES)
  @Get('shifts/:id')
  get(@UuidParam() id: string) {
    return this.roster.get(id);
  }

  /**
   * Adds a duty shift: a person on a duty role (operator desk, duty supervisor, bureau leader) over a time window (Asia/Shanghai). Audited.
   * Not ended already (400 on endsAt), starting at most notifications.rosterMaxBackdateMinutes in the past (400 on startsAt).
   */
  @Roles(...ROSTER_ROLES)
  @Post('shifts')
  create(@Body() dto: CreateShiftDto, @CurrentUser() user: AuthUser) {
    return this.roster.create(dto, user.id);
  }

  /**
   * Changes a duty shift. Audited. One not yet begun: anything (its start at most notifications.rosterMaxBackdateMinutes
   * in the past). One on duty now: its end (not in the past) and note; its start or person: 409 DUTY_SHIFT.STARTED
   * (hand it over). One that has ended is the record: its note only, else 409 DUTY_SHIFT.ENDED.
   */
  @Roles(...ROSTER_ROLES)
  @Patch('shifts/:id')
  update(@UuidParam() id: string, @Body() dto: UpdateShiftDto) {
    return this.roster.update(id, dto);
  }

  /** Deletes a duty shift not yet begun. Audited. One that has begun is part of the record: 409 DUTY_SHIFT.STARTED (end it or hand it over) / ENDED. */
  @Roles(...ROSTER_ROLES)
  @Delete('shifts/:id')
  @HttpCode(204)
  async remove(@UuidParam() id: string) {
    await this.roster.remove(id);
  }

  /** 交接班: the shift on duty now ends now and the incoming person takes the role until its planned end. */
  @Roles(...ROSTER_ROLES)
  @Post('shifts/:id/handover')
  @HttpCode(200)
  handover(@UuidParam() id: string, @Body() dto: HandoverDto) {
    return this.roster.handover(id, dto);
  }
}

@ApiTags('notifications')
@ApiBearerAuth()
@Controller('notifications')
export class NotificationsController {
  constructor(
    private readonly channels: ChannelsService,
    private readonly policy: PolicyService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Lists notification channels (WeCom, DingTalk, Feishu, SMS/voice gateway) with their state (ok, failing, silenced); webhook keys masked, never the secret. */
  @Roles(...CENTER_ROLES)
  @Get('channels')
  listChannels() {
    return this.channels.list();
  }

  /** Creates a notification channel: kind, name, webhook URL, signing secret, SMS template. Audited. */
  @Roles('admin')
  @Post('channels')
  createChannel(@Body() dto: CreateChannelDto) {
    return this.channels.create(dto);
  }

  /**
   * Changes a notification channel. Audited. Disabling one that escalation policy levels name is refused as a delete is
   * (409 NOTIFICATION_CHANNEL.IN_USE naming the levels; `?detach=true` also takes it out of them; 409
   * NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE when a level would be left unable to notify, as with the last enabled
   * channel while a level uses every enabled channel): a maintenance window is a silence.
   */
  @Roles('admin')
  @Patch('channels/:id')
  updateChannel(@UuidParam() id: string, @Body() dto: UpdateChannelDto, @Query() q: ChannelReleaseQuery, @CurrentUser() user: AuthUser) {
    return this.channels.update(id, dto, q.detach ?? false, user.id);
  }

  /**
   * Deletes a notification channel. Audited. One that escalation policy levels name (a level's channel list or a group
   * target; defaults from the configuration name none) is refused: 409 NOTIFICATION_CHANNEL.IN_USE, `details.levels`
   * `[{ priority, level, usedAs, onlyChannel, allEnabledChannels, leftUnreachable }]`. With `?detach=true` it is also taken
   * out of those levels in the same transaction (audited, naming them), unless a level would then notify nobody, or its
   * people would have no channel left in its list: 409 NOTIFICATION_CHANNEL.LEVEL_LEFT_UNREACHABLE, same details (a level
   * that reaches its people through every enabled channel keeps them, unless this is the last enabled channel: then those
   * levels are listed too, with `usedAs` empty, and the answer is LEVEL_LEFT_UNREACHABLE with or without `detach` — IN_USE
   * first when levels also name the channel and `detach` is not given).
   */
  @Roles('admin')
  @Delete('channels/:id')
  @HttpCode(204)
  async removeChannel(@UuidParam() id: string, @Query() q: ChannelReleaseQuery, @CurrentUser() user: AuthUser) {
    await this.channels.remove(id, q.detach ?? false, user.id);
  }

  /** Sends a test message now and answers the provider's reply (`ok`, `code`, `detail`). */
  @Roles('admin')
  @Post('channels/:id/test')
  @HttpCode(200)
  testChannel(@UuidParam() id: string) {
    return this.channels.test(id);
  }

  /** A maintenance window: messages due meanwhile are recorded as suppressed; the console is never silenced. */
  @Roles(...ROSTER_ROLES)
  @Post('channels/:id/silence')
  @HttpCode(200)
  silence(@UuidParam() id: string, @Body() dto: SilenceChannelDto) {
    return this.channels.silence(id, dto);
  }

  /** Ends a channel's silence now. Audited. */
  @Roles(...ROSTER_ROLES)
  @Delete('channels/:id/silence')
  unsilence(@UuidParam() id: string) {
    return this.channels.unsilence(id);
  }

  /** The escalation policy of each priority: per level, after how many seconds, whom to notify and through which channels (stored, or the configuration's default). */
  @Roles(...CENTER_ROLES)
  @Get('policies')
  policies() {
    return this.policy.list();
  }

  /** Sets the escalation policy of one priority: one level per escalation delay (alarms.escalationSeconds), each naming targets (duty role, user, group channel) and channels. Audited. */
  @Roles('admin')
  @Put('policies/:priority')
  @ApiParam({ name: 'priority', enum: PRIORITIES }) // validated as a whole object (PriorityParam), which the document cannot see
  updatePolicy(@Param() p: PriorityParam, @Body() dto: UpdatePolicyDto, @CurrentUser() user: AuthUser) {
    return this.policy.update(p.priority, dto, user.id);
  }

  /**
   * Resolves the link of a message (after login): the incident it opens. 400 NOTIFICATION_LINK.INVALID,
   * 410 NOTIFICATION_LINK.EXPIRED (notifications.linkTtlSeconds).
   */
  @Roles(...CENTER_ROLES)
  @Get('links/:token')
  link(@Param('token') token: string) {
    const r = verifyLink(this.config.notifications.linkSecret, String(token));
    if (!r.ok && r.reason === 'expired') throw Errors.gone(ErrorCode.NOTIFICATION_LINK.EXPIRED, 'This link has expired: find the incident on the console');
    if (!r.ok) throw Errors.badRequest(ErrorCode.NOTIFICATION_LINK.INVALID, 'Not a valid incident link');
    return { incidentId: r.incidentId, expiresAt: r.expiresAt.toISOString() };
  }
}

/** The messages sent about one incident (who, how, whether it arrived), within the caller's scope. */
@ApiTags('incidents')
@ApiBearerAuth()
@Controller('incidents')
export class IncidentNotificationsController {
  constructor(
    private readonly deliveries: DeliveriesService,
    private readonly incidents: IncidentQueriesService,
  ) {}

  /** The messages sent about one incident: level, channel, recipient, status (queued, sent, failed, retrying, suppressed) and the provider's answer. */
  @Roles(...CENTER_ROLES)
  @Get(':id/notifications')
  async list(@UuidParam() id: string, @CurrentUser() user: AuthUser) {
    await this.incidents.get(user, id); // 404 / scope, as the incident itself
    return { items: await this.deliveries.forIncident(id) };
  }
}
