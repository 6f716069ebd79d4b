import { Body, Controller, Get, HttpCode, Inject, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { CurrentUser, Roles } from '../../infra/access/decorators';
import type { AuthUser, UserRole } from '../../infra/access/roles';
import { GB_ID_PATTERN, RegistryService } from '../registry';
import { ha1 } from './digest';
import {
  AssignChannelsDto,
  GbChannelQuery,
  GbDeviceQuery,
  GbGuardDto,
  GbRecordDto,
  GbRecordInfoQuery,
  GbResetAlarmDto,
  GbStatusQuery,
  UpdateGbDeviceDto,
} from './dto';
import { GbCameras } from './gb-cameras';
import { GbCascade } from './gb-cascade';
import { GbCatalog } from './gb-catalog';
import { ControlCommand, GbCommands } from './gb-commands';
import { GbDeviceStates } from './gb-device-states';
import { Gb28181Store } from './gb28181.store';

/** Who may command a device (reboot, arm, reset its alarm, record): the control center's operators and admins (issue 16 §6). */
const CONTROL_ROLES: UserRole[] = ['admin', 'operator'];
/** Who may look at what a device holds (its recordings): the control center's operators, supervisors and admins. */
const DEVICE_READ_ROLES: UserRole[] = ['admin', 'operator', 'supervisor'];

const GbIdParam = (name = 'deviceId') =>
  Param(name, {
    transform: (v: string) => {
      if (!GB_ID_PATTERN.test(v)) throw Errors.validation([{ field: name, reason: 'must be a 20-digit GB/T 28181 id' }]);
      return v;
    },
  });

/**
 * GB/T 28181 devices: administration (registration state, passwords, schools, channel placement;
 * admins) and what operators ask of a device (issue 16 §6: reboot, arm / disarm, alarm reset,
 * recording, its keepalive settings, its recordings).
 */
@ApiTags('gb28181')
@ApiBearerAuth()
@Controller('gb28181')
export class Gb28181Controller {
  /** gb28181.recordInfoMaxRangeHours in ms: the longest range one RecordInfo may ask for. */
  private readonly maxRecordRangeMs: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly states: GbDeviceStates,
    private readonly cameras: GbCameras,
    private readonly catalog: GbCatalog,
    private readonly commands: GbCommands,
    private readonly cascadeLinks: GbCascade,
    private readonly store: Gb28181Store,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
    @InjectDataSource() private readonly db: DataSource,
  ) {
    this.maxRecordRangeMs = config.gb28181.recordInfoMaxRangeHours * 3_600_000;
  }

  /** Devices with their registration state (live where this process runs the SIP server). */
  @Roles('admin')
  @Get('devices')
  async devices(@Query() q: GbDeviceQuery) {
    await this.states.flushRegistrations().catch(() => undefined);
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const page = await this.store.listDevices({ schoolId: q.schoolId, registered: q.registered, limit, offset });
    const items = page.items.map((d) => {
      const live = this.states.live(d.deviceId as string);
      return live ? { ...d, registered: live.registered, expiresAt: live.expiresAt, lastKeepaliveAt: live.lastKeepaliveAt ?? d.lastKeepaliveAt } : d;
    });
    return { items, total: page.total, limit, offset };
  }

  /**
   * Sets a device's own password, its school and/or its charset (auto / GB18030 / UTF-8, for firmware
   * that declares one encoding and sends another); with a school, its unplaced channels become cameras there.
   */
  @Roles('admin')
  @Patch('devices/:deviceId')
  async update(@GbIdParam() deviceId: string, @Body() dto: UpdateGbDeviceDto) {
    if (dto.password === undefined && dto.schoolId === undefined && dto.charset === undefined && dto.authUsername === undefined)
      throw Errors.validation([{ field: 'password', reason: 'password, authUsername, schoolId or charset is required' }]);
    if (dto.schoolId)
      await this.registry.school(dto.schoolId).catch(() => {
        throw Errors.validation([{ field: 'schoolId', reason: 'no such school' }]);
      });
    // The HA1 is bound to the digest username (RFC 2617 §3.2.2.2): a new username on a device with its own password needs the password again.
    const current = await this.store.device(deviceId);
    const username = (dto.authUsername !== undefined ? dto.authUsername : current?.authUsername) ?? deviceId;
    if (dto.authUsername !== undefined && dto.authUsername !== (current?.authUsername ?? null) && current?.passwordHa1 && dto.password === undefined)
      throw Errors.validation([{ field: 'password', reason: 'password is required with a new authUsername (the stored digest is bound to the username)' }]);
    const h1 = dto.password === undefined ? undefined : dto.password === null ? null : ha1(username, this.states.domain, dto.password);
    await this.states.flushRegistrations().catch(() => undefined);
    await this.db.transaction(async (m) => {
      const { before } = await this.store.setDevice(m, deviceId, {
        ha1: h1,
        realm: this.states.domain,
        authUsername: dto.authUsername,
        schoolId: dto.schoolId,
        charset: dto.charset,
      });
      await this.audit.record(m, {
        action: before ? 'update' : 'create',
        entity: 'gb_device',
        entityId: null,
        schoolId: dto.schoolId ?? before?.schoolId ?? null,
        before: before ? { deviceId, ...before } : null,
        after: {
          deviceId,
          ...(dto.schoolId !== undefined ? { schoolId: dto.schoolId } : {}),
          ...(dto.password !== undefined ? { password: dto.password === null ? null : 'set' } : {}),
          ...(dto.charset !== undefined ? { charset: dto.charset } : {}),
          ...(dto.authUsername !== undefined ? { authUsername: dto.authUsername } : {}),
        },
      });
    });
    this.states.applyAdminChange(deviceId, { ha1: h1, authUsername: dto.authUsername, schoolId: dto.schoolId, charset: dto.charset });
    const placed = dto.schoolId ? await this.cameras.placeChannels(deviceId, dto.schoolId) : [];
    return {
      deviceId,
      schoolId: dto.schoolId,
      ownPassword: h1 === undefined ? undefined : h1 !== null,
      charset: dto.charset,
      authUsername: dto.authUsername,
      placed,
    };
  }

  /** Asks a registered device for its Catalog and DeviceInfo again. */
  @Roles('admin')
  @Post('devices/:deviceId/query')
  @HttpCode(202)
  async query(@GbIdParam() deviceId: string) {
    const r = await this.catalog.requery(deviceId);
    if (!r) throw Errors.conflict(ErrorCode.GB28181.NOT_REGISTERED, '设备未注册，无法查询');
    return r;
  }

  /**
   * A device's organisation tree as its Catalog reports it (GB/T 28181-2016 §A.2.6.3, Appendix D):
   * civil codes (GB/T 2260, 2–8 digits), business groups (215), virtual organisations (216) and the
   * channels under them. A node's parent: the last ParentID segment that is a node of the tree, else
   * its BusinessGroupID, else the longest civil code its id starts with; nodes with none are roots.
   * Removed items are left out. 404 when the device reported nothing.
   */
  @Roles('admin')
  @Get('devices/:deviceId/organisation')
  async organisation(@GbIdParam() deviceId: string) {
    const rows = await this.store.catalogTree(deviceId);
    if (rows.length === 0) throw Errors.notFound(ErrorCode.GB28181.NOT_FOUND, deviceId);
    type Node = { id: string; name: string; kind: string; cameraId: string | null; children: Node[] };
    const nodes = new Map<string, Node>(rows.map((r) => [r.id, { id: r.id, name: r.name, kind: r.kind, cameraId: r.cameraId, children: [] }]));
    const parentOf = (r: (typeof rows)[number]): string | null => {
      const segs = r.parentId.split('/').map((s) => s.trim());
      for (let i = segs.length - 1; i >= 0; i--) if (segs[i] !== r.id && nodes.has(segs[i])) return segs[i];
      if (r.businessGroupId && r.businessGroupId !== r.id && nodes.has(r.businessGroupId)) return r.businessGroupId;
      for (const n of [8, 6, 4, 2]) if (n < r.id.length && nodes.has(r.id.slice(0, n))) return r.id.slice(0, n);
      return null;
    };
    const roots: Node[] = [];
    for (const r of rows) {
      const p = parentOf(r);
      (p ? nodes.get(p)!.children : roots).push(nodes.get(r.id)!);
    }
    return { deviceId, roots };
  }

  /** Reported channels; `unassigned=true`: those waiting for an admin to place them in a school. */
  @Roles('admin')
  @Get('channels')
  channels(@Query() q: GbChannelQuery) {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    return this.store.listChannels({ deviceId: q.deviceId, unassigned: q.unassigned, limit, offset }).then((p) => ({ ...p, limit, offset }));
  }

  /** Places reported channels as cameras of a school. */
  @Roles('admin')
  @Post('channels/assign')
  @HttpCode(200)
  async assign(@Body() dto: AssignChannelsDto) {
    await this.registry.school(dto.schoolId).catch(() => {
      throw Errors.validation([{ field: 'schoolId', reason: 'no such school' }]);
    });
    const byDevice = new Map<string, AssignChannelsDto['channels']>();
    for (const c of dto.channels) (byDevice.get(c.deviceId) ?? byDevice.set(c.deviceId, []).get(c.deviceId)!).push(c);
    const placed = [];
    for (const [deviceId, list] of byDevice) placed.push(...(await this.cameras.placeChannels(deviceId, dto.schoolId, list)));
    const done = new Set(placed.map((p) => p.deviceId + p.channelId));
    const notFound = dto.channels.filter((c) => !done.has(c.deviceId + c.channelId)).map((c) => ({ deviceId: c.deviceId, channelId: c.channelId }));
    return { placed, notFound };
  }

  // ------------------------------------------------------------ commands and queries (issue 16 §6)

  /** 400 / 404 before anything is sent: the device is known here, and the channel (when named) is one it reported. */
  private async target(deviceId: string, channelId: string | undefined): Promise<{ schoolId: string | null; targetId: string }> {
    const row = await this.store.device(deviceId);
    if (!row && !this.states.devices.has(deviceId)) throw Errors.notFound(ErrorCode.GB28181.NOT_FOUND, deviceId);
    if (channelId && channelId !== deviceId && !(await this.store.hasChannel(deviceId, channelId)))
      throw Errors.notFound(ErrorCode.GB28181.NOT_FOUND, channelId);
    return { schoolId: row?.schoolId ?? this.states.devices.get(deviceId)?.schoolId ?? null, targetId: channelId ?? deviceId };
  }

  /**
   * A command to a device, audited twice: the request before anything is sent (who asked what of
   * which device: a device that never answers, or a process that dies while waiting, still leaves
   * the record — a request that cannot be audited is not sent), then its outcome (OK, SENT, or the
   * error code: refused, timeout…). Both carry the HTTP request's id (audit_log.request_id).
   */
  private async audited<R extends object>(
    deviceId: string,
    targetId: string,
    schoolId: string | null,
    command: object,
    user: AuthUser,
    send: () => Promise<R>,
  ): Promise<R> {
    const entry = (action: string, after: object) =>
      this.db.transaction((m) => this.audit.record(m, { action, entity: 'gb_device', entityId: null, schoolId, after }));
    await entry('device_control_requested', { deviceId, targetId, command, by: user.username });
    let outcome: string = 'error';
    try {
      const r = await send();
      outcome = 'result' in r && typeof r.result === 'string' ? r.result : 'OK';
      return r;
    } catch (e) {
      outcome = (e as { code?: string }).code ?? 'error';
      throw e;
    } finally {
      await entry('device_control', { deviceId, targetId, command, outcome, by: user.username }).catch(() => undefined);
    }
  }

  /** Sends a DeviceControl command (audited: see `audited`). */
  private async control(deviceId: string, channelId: string | undefined, cmd: ControlCommand, user: AuthUser) {
    const { schoolId, targetId } = await this.target(deviceId, channelId);
    return this.audited(deviceId, targetId, schoolId, cmd, user, () => this.commands.control(deviceId, targetId, cmd));
  }

  /** Remote reboot (DeviceControl TeleBoot, GB/T 28181-2016 §A.2.3.1.2). The device answers nothing but its 200: `result: SENT`. Audited. */
  @Roles(...CONTROL_ROLES)
  @Post('devices/:deviceId/reboot')
  @HttpCode(200)
  reboot(@GbIdParam() deviceId: string, @CurrentUser() user: AuthUser) {
    return this.control(deviceId, undefined, { kind: 'teleboot' }, user);
  }

  /** Arm (SetGuard) or disarm (ResetGuard) the device or one of its channels (DeviceControl GuardCmd, §A.2.3.1.3). Audited. */
  @Roles(...CONTROL_ROLES)
  @Post('devices/:deviceId/guard')
  @HttpCode(200)
  guard(@GbIdParam() deviceId: string, @Body() dto: GbGuardDto, @CurrentUser() user: AuthUser) {
    return this.control(deviceId, dto.channelId, { kind: 'guard', arm: dto.arm }, user);
  }

  /** Reset the device's alarm (DeviceControl AlarmCmd ResetAlarm, §A.2.3.1.4), optionally of one AlarmMethod / AlarmType. Audited. */
  @Roles(...CONTROL_ROLES)
  @Post('devices/:deviceId/alarm-reset')
  @HttpCode(200)
  resetAlarm(@GbIdParam() deviceId: string, @Body() dto: GbResetAlarmDto, @CurrentUser() user: AuthUser) {
    if (dto.alarmType && !dto.alarmMethod) throw Errors.validation([{ field: 'alarmType', reason: 'alarmType needs alarmMethod' }]);
    return this.control(deviceId, dto.channelId, { kind: 'reset_alarm', alarmMethod: dto.alarmMethod, alarmType: dto.alarmType }, user);
  }

  /** Start or stop recording on the device (DeviceControl RecordCmd Record / StopRecord, §A.2.3.1.5). Audited. */
  @Roles(...CONTROL_ROLES)
  @Post('devices/:deviceId/record')
  @HttpCode(200)
  record(@GbIdParam() deviceId: string, @Body() dto: GbRecordDto, @CurrentUser() user: AuthUser) {
    return this.control(deviceId, dto.channelId, { kind: 'record', start: dto.start }, user);
  }

  /**
   * Asks the device for its keepalive settings (ConfigDownload BasicParam, §A.2.4.7) and applies
   * them: its cameras are offline after HeartBeatInterval × HeartBeatCount of silence (at most
   * gb28181.heartbeatMaxOfflineSeconds) instead of the district default. Also asked after each registration. Audited.
   */
  @Roles(...CONTROL_ROLES)
  @Post('devices/:deviceId/basic-param')
  @HttpCode(200)
  async basicParam(@GbIdParam() deviceId: string, @CurrentUser() user: AuthUser) {
    const { schoolId } = await this.target(deviceId, undefined);
    // Audited like the controls: what the device reports changes when its cameras are marked offline.
    return this.audited(deviceId, deviceId, schoolId, { kind: 'basic_param' }, user, () => this.commands.basicParam(deviceId));
  }

  /**
   * One device as the console's device panel shows it to the control center (operators,
   * supervisors, admins): its registration (live where this process runs the SIP server), last
   * keepalive, what it reported of itself and its keepalive settings — not its password, digest
   * username or address (admins have those in the list). 404 for a device never seen.
   */
  @Roles(...DEVICE_READ_ROLES)
  @Get('devices/:deviceId')
  async device(@GbIdParam() deviceId: string) {
    await this.states.flushRegistrations().catch(() => undefined);
    const [d] = (await this.store.listDevices({ deviceId, limit: 1, offset: 0 })).items;
    if (!d) throw Errors.notFound(ErrorCode.GB28181.NOT_FOUND, deviceId);
    const live = this.states.live(deviceId);
    return {
      deviceId,
      schoolId: d.schoolId,
      name: d.name,
      manufacturer: d.manufacturer,
      model: d.model,
      firmware: d.firmware,
      transport: live?.transport ?? d.transport,
      registered: live ? live.registered : d.registered,
      registeredAt: d.registeredAt,
      expiresAt: live ? live.expiresAt : d.expiresAt,
      lastKeepaliveAt: live ? (live.lastKeepaliveAt ?? d.lastKeepaliveAt) : d.lastKeepaliveAt,
      channels: d.channels,
      heartbeatInterval: d.heartbeatInterval,
      heartbeatCount: d.heartbeatCount,
      offlineAfterSeconds: d.offlineAfterSeconds,
    };
  }

  /**
   * DeviceStatus (GB/T 28181-2016 §9.5.2, §A.2.4.4 / §A.2.6.5): asks the device — or one of its
   * channels (`channelId`) — how it is now (online, working, encoding, recording, its clock, each
   * alarm input's duty status) and answers what it said. A query, like the recordings: read roles,
   * not audited. Errors as the commands: 409 GB28181.NOT_REGISTERED, 504 DEVICE_TIMEOUT (no answer
   * within gb28181.commandTimeoutMs), 502 DEVICE_REFUSED (Result not OK), 404 unknown device or channel.
   */
  @Roles(...DEVICE_READ_ROLES)
  @Get('devices/:deviceId/status')
  async status(@GbIdParam() deviceId: string, @Query() q: GbStatusQuery) {
    const { targetId } = await this.target(deviceId, q.channelId);
    return this.commands.deviceStatus(deviceId, targetId);
  }

  /**
   * The recordings on the device for one of its channels (RecordInfo, §A.2.4.5) between `start`
   * and `end`, from every part of its answer; `complete: false` when parts were still missing at
   * gb28181.recordInfoTimeoutMs. For the video issue's playback.
   */
  @Roles(...DEVICE_READ_ROLES)
  @Get('devices/:deviceId/channels/:channelId/records')
  async records(@Param('deviceId') deviceId: string, @Param('channelId') channelId: string, @Query() q: GbRecordInfoQuery) {
    // Ids checked here, after the query's own validation, so that every field's error comes in one 400.
    const fields: { field: string; reason: string }[] = [];
    if (!GB_ID_PATTERN.test(deviceId)) fields.push({ field: 'deviceId', reason: 'must be a 20-digit GB/T 28181 id' });
    if (!GB_ID_PATTERN.test(channelId)) fields.push({ field: 'channelId', reason: 'must be a 20-digit GB/T 28181 id' });
    const start = new Date(q.start);
    const end = new Date(q.end);
    if (!(end.getTime() > start.getTime())) fields.push({ field: 'end', reason: 'end must be after start' });
    else if (end.getTime() - start.getTime() > this.maxRecordRangeMs)
      fields.push({ field: 'end', reason: `at most ${this.maxRecordRangeMs / 3_600_000} hours after start` });
    if (fields.length) throw Errors.validation(fields);
    await this.target(deviceId, channelId);
    return this.commands.recordInfo(deviceId, channelId, { start, end, type: q.type ?? 'all' });
  }

  /**
   * The cascade to higher-level platforms (issue 16 §7): per superior, whether we are registered, the
   * last keepalive and its answer, the last error and counts; alarms forwarded by state. `running`
   * is false in a process that does not run the SIP server (the live state is in the one that does).
   */
  @Roles('admin')
  @Get('cascade')
  async cascade() {
    return {
      enabled: this.cascadeLinks.enabled,
      running: this.cascadeLinks.active,
      superiors: this.cascadeLinks.status(),
      alarms: await this.cascadeLinks.alarmCounts(),
    };
  }
}
