import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log/audit.service';
import { AlarmDevice } from './entities/alarm-device.entity';
import { Camera } from './entities/camera.entity';
import { ProtectionPost } from './entities/protection-post.entity';
import { School } from './entities/school.entity';
import type { DeviceStatus } from './registry.constants';

export type { TermCalendar, Timetable } from './entities/school.entity';
export type { PostWindow } from './entities/protection-post.entity';

/** The two kinds of registered device whose liveness is watched. */
export type WatchedDeviceKind = 'camera' | 'alarm_device';
const DEVICE_TABLE: Record<WatchedDeviceKind, string> = { camera: 'cameras', alarm_device: 'alarm_devices' };

/** What the liveness index needs of every device (external ids → uuid, school, interval). */
export interface DeviceIndexRow {
  id: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  /** Cameras: GB/T 28181 device id + channel id; alarm devices: code. */
  deviceId: string | null;
  channelId: string | null;
  code: string | null;
  keepaliveSeconds: number | null;
  status: DeviceStatus;
  updatedAt: Date;
}

export interface AlarmDeviceSpot {
  id: string;
  schoolId: string;
  schoolName: string;
  zoneId: string | null;
  location: string;
  areaKind: string;
  linkedCameraIds: string[];
  cameras: { id: string; name: string; location: string; areaKind: string; streamUrl: string; status: DeviceStatus }[];
}

export interface DeviceStatusRow {
  id: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  name: string;
  status: DeviceStatus;
  lastSeenAt: Date | null;
  keepaliveSeconds: number | null;
}

const STATUS_SELECT = (kind: WatchedDeviceKind) =>
  kind === 'camera'
    ? `SELECT id, 'camera' AS kind, school_id AS "schoolId", name, status, last_seen_at AS "lastSeenAt", keepalive_seconds AS "keepaliveSeconds" FROM cameras`
    : `SELECT id, 'alarm_device' AS kind, school_id AS "schoolId", code || CASE WHEN location <> '' THEN ' ' || location ELSE '' END AS name, status, last_seen_at AS "lastSeenAt", keepalive_seconds AS "keepaliveSeconds" FROM alarm_devices`;

/**
 * What other capabilities may read from the registry. They go through here, never through
 * the registry's tables, so the registry can change its storage without breaking them.
 */
@Injectable()
export class RegistryService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  async school(id: string): Promise<School> {
    const s = await this.db.getRepository(School).findOneBy({ id });
    if (!s) throw Errors.notFound(ErrorCode.SCHOOL.NOT_FOUND, id);
    return s;
  }

  cameras(filter: { schoolId?: string; ids?: string[]; areaKinds?: string[] }): Promise<Camera[]> {
    const qb = this.db.getRepository(Camera).createQueryBuilder('c').orderBy('c.name');
    if (filter.schoolId) qb.andWhere('c.school_id = :s', { s: filter.schoolId });
    if (filter.ids) qb.andWhere('c.id = ANY(:ids)', { ids: filter.ids });
    if (filter.areaKinds) qb.andWhere('c.area_kind = ANY(:k)', { k: filter.areaKinds });
    return qb.getMany();
  }

  async alarmDevice(id: string): Promise<AlarmDevice> {
    const d = await this.db.getRepository(AlarmDevice).findOneBy({ id });
    if (!d) throw Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, id);
    return d;
  }

  /**
   * Where an alarm button is, for alarm intake, in one round trip: its school (name, zone), its
   * location and area, and the cameras at that spot — its linked cameras, then the cameras in
   * the same area of its school, each once, by name (as `cameras()` orders them).
   */
  async alarmDeviceSpot(id: string): Promise<AlarmDeviceSpot> {
    const [row] = await this.db.query(
      `SELECT d.id, d.school_id AS "schoolId", s.name AS "schoolName", s.zone_id AS "zoneId", d.location, d.area_kind AS "areaKind",
              d.linked_camera_ids AS "linkedCameraIds",
              coalesce((SELECT jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name, 'location', c.location, 'areaKind', c.area_kind,
                                                            'streamUrl', c.stream_url, 'status', c.status)
                                         ORDER BY c.id = ANY(d.linked_camera_ids) DESC, c.name)
                        FROM cameras c
                        WHERE c.id = ANY(d.linked_camera_ids) OR (c.school_id = d.school_id AND c.area_kind = d.area_kind)), '[]') AS cameras
       FROM alarm_devices d JOIN schools s ON s.id = d.school_id WHERE d.id = $1`,
      [id],
    );
    if (!row) throw Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, id);
    return row as AlarmDeviceSpot;
  }

  // ---- Device liveness (used by device-health; the registry owns the status columns) ----

  /**
   * Streams every watched device in keyset-paged chunks (bounded memory at a million devices).
   * With `updatedSince`, only rows created or edited since then (incremental index refresh).
   * Ordered by external key (GB/T 28181 device + channel id, alarm code) — the order in which a
   * gateway reports its channels — so an in-memory index built from it keeps one gateway's
   * devices together (device-health's hot path is bound by memory locality at that scale).
   */
  async *deviceIndexRows(opts: { updatedSince?: Date; batch?: number } = {}): AsyncGenerator<DeviceIndexRow[]> {
    const batch = opts.batch ?? 50_000;
    for (const kind of ['camera', 'alarm_device'] as const) {
      // Keyset on the unique external key (cameras: UNIQUE (device_id, channel_id); alarms: UNIQUE code).
      const camera = kind === 'camera';
      const sql = camera
        ? `SELECT id, school_id, device_id, channel_id, NULL::text AS code, keepalive_seconds, status, updated_at FROM cameras
            WHERE (device_id, channel_id) > ($2, $3) AND ($1::timestamptz IS NULL OR updated_at >= $1) ORDER BY device_id, channel_id LIMIT $4`
        : `SELECT id, school_id, NULL::text AS device_id, NULL::text AS channel_id, code, keepalive_seconds, status, updated_at FROM alarm_devices
            WHERE code > $2 AND ($1::timestamptz IS NULL OR updated_at >= $1) ORDER BY code LIMIT $3`;
      let after: string[] = camera ? ['', ''] : [''];
      for (;;) {
        const rows: Record<string, unknown>[] = await this.db.query(sql, [opts.updatedSince ?? null, ...after, batch]);
        if (rows.length === 0) break;
        const last = rows[rows.length - 1];
        after = camera ? [last.device_id as string, last.channel_id as string] : [last.code as string];
        yield rows.map((r) => ({
          id: r.id as string,
          kind,
          schoolId: r.school_id as string,
          deviceId: r.device_id as string | null,
          channelId: r.channel_id as string | null,
          code: r.code as string | null,
          keepaliveSeconds: r.keepalive_seconds as number | null,
          status: r.status as DeviceStatus,
          updatedAt: r.updated_at as Date,
        }));
        if (rows.length < batch) break;
      }
    }
  }

  /** Locks devices for a status change (in id order, so concurrent callers never deadlock) and returns their current state. */
  async lockDevices(manager: EntityManager, kind: WatchedDeviceKind, ids: string[]): Promise<{ id: string; schoolId: string; status: DeviceStatus }[]> {
    if (ids.length === 0) return [];
    return manager.query(`SELECT id, school_id AS "schoolId", status FROM ${DEVICE_TABLE[kind]} WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, [ids]);
  }

  /**
   * Sets the current status of many devices in one statement; only rows whose status differs
   * change (so a repeated call is a no-op). `lastSeenAt` moves forward only; null keeps it.
   * Returns the ids that changed.
   */
  async setDeviceStatuses(manager: EntityManager, kind: WatchedDeviceKind, changes: { id: string; lastSeenAt: Date | null }[], status: DeviceStatus): Promise<string[]> {
    if (changes.length === 0) return [];
    const rows = returningRows<{ id: string }>(
      await manager.query(
      `UPDATE ${DEVICE_TABLE[kind]} t SET status = $3, last_seen_at = GREATEST(t.last_seen_at, v.seen)
         FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, seen)
        WHERE t.id = v.id AND t.status <> $3
        RETURNING t.id`,
      [changes.map((c) => c.id), changes.map((c) => c.lastSeenAt), status],
      ),
    );
    return rows.map((r) => r.id);
  }

  /** Device counts by school and status (with the school's zone), for district summaries. */
  deviceStatusCounts(filter: { schoolId?: string } = {}): Promise<{ schoolId: string; schoolName: string; zoneId: string | null; status: DeviceStatus; n: number }[]> {
    return this.db.query(
      `SELECT s.id AS "schoolId", s.name AS "schoolName", s.zone_id AS "zoneId", d.status, count(*)::int AS n
         FROM (SELECT school_id, status FROM cameras UNION ALL SELECT school_id, status FROM alarm_devices) d
         JOIN schools s ON s.id = d.school_id
        WHERE ($1::uuid IS NULL OR s.id = $1)
        GROUP BY s.id, s.name, s.zone_id, d.status`,
      [filter.schoolId ?? null],
    );
  }

  /** A page of devices with their current status (never the whole fleet). */
  async deviceStatusPage(
    filter: { schoolId?: string; status?: DeviceStatus; kind?: WatchedDeviceKind; ids?: string[] },
    limit: number,
    offset: number,
  ): Promise<{ items: DeviceStatusRow[]; total: number }> {
    const kinds = filter.kind ? [filter.kind] : (['camera', 'alarm_device'] as const);
    const union = kinds.map((k) => STATUS_SELECT(k)).join(' UNION ALL ');
    const where = `WHERE ($1::uuid IS NULL OR "schoolId" = $1) AND ($2::text IS NULL OR status = $2) AND ($3::uuid[] IS NULL OR id = ANY($3))`;
    const params = [filter.schoolId ?? null, filter.status ?? null, filter.ids ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT * FROM (${union}) d ${where} ORDER BY "schoolId", kind, name, id LIMIT $4 OFFSET $5`, [...params, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM (${union}) d ${where}`, params),
    ]);
    return { items, total };
  }

  /** One device of either kind with its current status, or null. */
  async deviceStatus(id: string): Promise<DeviceStatusRow | null> {
    const { items } = await this.deviceStatusPage({ ids: [id] }, 1, 0);
    return items[0] ?? null;
  }
  // ---- Read models for patrol audits and compliance (issue 6) ----

  /** Schools in a scope (any of zones, groups, ids; nothing = the whole registry), by code. */
  /**
   * Schools in a scope, ordered by code. Plain rows with the entity's fields (no entity
   * hydration: a district of 5,000 schools is read by audits and compliance in one go).
   */
  schoolsIn(scope: { zoneIds?: string[]; groupIds?: string[]; ids?: string[] } = {}): Promise<School[]> {
    return this.db.query(
      `SELECT ${SCHOOL_ROW_COLS} FROM schools
        WHERE ($1::uuid[] IS NULL OR zone_id = ANY($1)) AND ($2::uuid[] IS NULL OR group_id = ANY($2)) AND ($3::uuid[] IS NULL OR id = ANY($3))
        ORDER BY code`,
      [scope.zoneIds ?? null, scope.groupIds ?? null, scope.ids ?? null],
    );
  }

  /** Full-time, active guards per school (schools without any are absent from the map). */
  async fullTimeGuardCounts(schoolIds?: string[]): Promise<Map<string, number>> {
    const rows: { school_id: string; n: number }[] = await this.db.query(
      `SELECT school_id, count(*)::int AS n FROM guards WHERE full_time AND active AND ($1::uuid[] IS NULL OR school_id = ANY($1)) GROUP BY school_id`,
      [schoolIds ?? null],
    );
    return new Map(rows.map((r) => [r.school_id, r.n]));
  }

  /** Protection posts of some schools (all when omitted). */
  posts(schoolIds?: string[]): Promise<ProtectionPost[]> {
    return this.db.query(
      `SELECT id, code, school_id AS "schoolId", gate, windows, required_headcount AS "requiredHeadcount", qr_token AS "qrToken", created_at AS "createdAt", updated_at AS "updatedAt"
         FROM protection_posts WHERE ($1::uuid[] IS NULL OR school_id = ANY($1)) ORDER BY code`,
      [schoolIds ?? null],
    );
  }

  async post(id: string): Promise<ProtectionPost> {
    const p = await this.db.getRepository(ProtectionPost).findOneBy({ id });
    if (!p) throw Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND, id);
    return p;
  }

  /** The post whose printed QR code carries this token, or null. */
  postByQrToken(token: string): Promise<ProtectionPost | null> {
    return this.db.getRepository(ProtectionPost).findOneBy({ qrToken: token });
  }

  /**
   * Cameras for an audit without shipping the whole fleet: the count per school, and only the
   * cameras whose online time can be short of the window — those not online now, and those in
   * `changedIds` (devices with a status transition in the period). Every other camera has been
   * online throughout. `schoolIds` narrows it.
   */
  async cameraCensus(schoolIds: string[] | undefined, changedIds: string[]): Promise<{ counts: Map<string, number>; watch: DeviceStateRow[] }> {
    const [counts, watch] = await Promise.all([
      this.db.query(`SELECT school_id, count(*)::int AS n FROM cameras WHERE ($1::uuid[] IS NULL OR school_id = ANY($1)) GROUP BY school_id`, [schoolIds ?? null]) as Promise<{ school_id: string; n: number }[]>,
      this.db.query(
        `SELECT id, 'camera' AS kind, school_id AS "schoolId", name, area_kind AS "areaKind", status, NULL::boolean AS "policeLinked", NULL::timestamptz AS "lastTestAt"
           FROM cameras WHERE ($1::uuid[] IS NULL OR school_id = ANY($1)) AND (status <> 'online' OR id = ANY($2::uuid[]))`,
        [schoolIds ?? null, changedIds],
      ) as Promise<DeviceStateRow[]>,
    ]);
    return { counts: new Map(counts.map((r) => [r.school_id, r.n])), watch };
  }

  /** Alarm buttons with what audits need (status, police link, last test); `schoolIds` narrows it. */
  alarmDeviceStates(schoolIds?: string[]): Promise<DeviceStateRow[]> {
    return this.db.query(
      `SELECT id, 'alarm_device' AS kind, school_id AS "schoolId", code || CASE WHEN location <> '' THEN ' ' || location ELSE '' END AS name, area_kind AS "areaKind",
              status, police_linked AS "policeLinked", last_test_at AS "lastTestAt"
         FROM alarm_devices WHERE ($1::uuid[] IS NULL OR school_id = ANY($1))`,
      [schoolIds ?? null],
    );
  }

  /** Names of some devices (cameras and alarm buttons) by id. */
  async deviceNames(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows: { id: string; name: string }[] = await this.db.query(
      `SELECT id, name FROM cameras WHERE id = ANY($1)
       UNION ALL
       SELECT id, code || CASE WHEN location <> '' THEN ' ' || location ELSE '' END FROM alarm_devices WHERE id = ANY($1)`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  /** Cameras as patrol rounds pick them: id, school, zone, area kind (the whole fleet, light rows). */
  cameraPicks(filter: { zoneId?: string; schoolId?: string } = {}): Promise<{ id: string; schoolId: string; zoneId: string | null; areaKind: string }[]> {
    return this.db.query(
      `SELECT c.id, c.school_id AS "schoolId", s.zone_id AS "zoneId", c.area_kind AS "areaKind"
         FROM cameras c JOIN schools s ON s.id = c.school_id
        WHERE ($1::uuid IS NULL OR s.zone_id = $1) AND ($2::uuid IS NULL OR c.school_id = $2)`,
      [filter.zoneId ?? null, filter.schoolId ?? null],
    );
  }

  // ---- GB/T 28181 (used by the SIP front end) ----

  /** The cameras (channels) registered under a GB/T 28181 device id. */
  gbDeviceCameras(deviceId: string): Promise<{ id: string; channelId: string; schoolId: string }[]> {
    return this.db.query(`SELECT id, channel_id AS "channelId", school_id AS "schoolId" FROM cameras WHERE device_id = $1 ORDER BY channel_id`, [deviceId]);
  }

  /**
   * Creates cameras for channels a device reported (idempotent on device id + channel id: an
   * existing camera is kept as the operators edited it). Returns every channel's camera id and
   * whether it was created now. Audited in the caller's transaction when given.
   */
  async provisionGbCameras(
    schoolId: string,
    channels: { deviceId: string; channelId: string; name: string; vendor: string; model: string; areaKind?: string; location?: string }[],
    manager?: EntityManager,
  ): Promise<{ id: string; deviceId: string; channelId: string; created: boolean }[]> {
    if (channels.length === 0) return [];
    const run = async (m: EntityManager) => {
      const [school] = await m.query(`SELECT id FROM schools WHERE id = $1`, [schoolId]);
      if (!school) throw Errors.notFound(ErrorCode.SCHOOL.NOT_FOUND, schoolId);
      const created = returningRows<{ id: string; device_id: string; channel_id: string; name: string }>(
        await m.query(
          `INSERT INTO cameras (school_id, device_id, channel_id, name, location, area_kind, vendor, model)
           SELECT $1, v.d, v.c, v.n, v.l, v.k, v.v, v.m
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS v(d, c, n, l, k, v, m)
           ON CONFLICT (device_id, channel_id) DO NOTHING
           RETURNING id, device_id, channel_id, name`,
          [
            schoolId,
            channels.map((c) => c.deviceId),
            channels.map((c) => c.channelId),
            channels.map((c) => (c.name.trim() || c.channelId).slice(0, 200)),
            channels.map((c) => c.location ?? ''),
            channels.map((c) => c.areaKind ?? 'other'),
            channels.map((c) => c.vendor.slice(0, 100)),
            channels.map((c) => c.model.slice(0, 100)),
          ],
        ),
      );
      await this.audit.record(
        m,
        created.map((r) => ({ action: 'create', entity: 'camera', entityId: r.id, schoolId, after: { deviceId: r.device_id, channelId: r.channel_id, name: r.name, source: 'gb28181' } })),
      );
      const all: { id: string; device_id: string; channel_id: string }[] = await m.query(
        `SELECT c.id, c.device_id, c.channel_id FROM cameras c JOIN unnest($1::text[], $2::text[]) AS v(d, ch) ON c.device_id = v.d AND c.channel_id = v.ch`,
        [channels.map((c) => c.deviceId), channels.map((c) => c.channelId)],
      );
      const fresh = new Set(created.map((r) => r.id));
      return all.map((r) => ({ id: r.id, deviceId: r.device_id, channelId: r.channel_id, created: fresh.has(r.id) }));
    };
    return manager ? run(manager) : this.db.transaction(run);
  }
}

const SCHOOL_ROW_COLS = `id, district_id AS "districtId", zone_id AS "zoneId", group_id AS "groupId", code, name, type, address, lat, lng, student_count AS "studentCount",
  staff_count AS "staffCount", boarding, timetable, calendar, created_at AS "createdAt", updated_at AS "updatedAt"`;

export interface DeviceStateRow {
  id: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  name: string;
  areaKind: string;
  status: DeviceStatus;
  policeLinked: boolean | null;
  lastTestAt: Date | null;
}
