import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { Roles } from '../../infra/access/decorators';
import { GB_ID_PATTERN, RegistryService } from '../registry';
import { ha1 } from './digest';
import { AssignChannelsDto, GbChannelQuery, GbDeviceQuery, UpdateGbDeviceDto } from './dto';
import { GbCameras } from './gb-cameras';
import { GbCatalog } from './gb-catalog';
import { GbDeviceStates } from './gb-device-states';
import { Gb28181Store } from './gb28181.store';

const GbIdParam = () =>
  Param('deviceId', {
    transform: (v: string) => {
      if (!GB_ID_PATTERN.test(v)) throw Errors.validation([{ field: 'deviceId', reason: 'must be a 20-digit GB/T 28181 id' }]);
      return v;
    },
  });

/** Administration of GB/T 28181 devices: registration state, passwords, schools, channel placement. Admins only. */
@ApiTags('gb28181')
@ApiBearerAuth()
@Controller('gb28181')
export class Gb28181Controller {
  constructor(
    private readonly states: GbDeviceStates,
    private readonly cameras: GbCameras,
    private readonly catalog: GbCatalog,
    private readonly store: Gb28181Store,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

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
}
