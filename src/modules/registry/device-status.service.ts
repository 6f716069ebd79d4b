import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returningRows } from '../../infra/database/returning';
import type { DeviceStatus } from './registry.constants';

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
  /**
   * Cameras of a GB/T 28181 device whose keepalive settings were learned (gb_devices.offline_after_seconds,
   * issue 16 §6: HeartBeatInterval × HeartBeatCount) and that have no keepalive_seconds of their own:
   * the silence after which they are offline. Null: interval × liveness.missedBeforeOffline.
   */
  offlineAfterSeconds: number | null;
  status: DeviceStatus;
  updatedAt: Date;
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

export interface DeviceStateRow {
  id: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  name: string;
  areaKind: string;
  status: DeviceStatus;
  policeLinked: boolean | null;
  lastTestAt: Date | null;
  /** Alarm buttons: the last delivery to the police endpoint that succeeded (real or test press); cameras: null. */
  lastPoliceRelayAt?: Date | null;
}

/**
 * The registry's device-status columns (cameras and alarm buttons: status, last seen) as other
 * capabilities read and change them: the liveness index feed, the locked status change of a
 * sweep or a return, status counts and pages (device health), and the device states audits and
 * compliance check. The registry owns the tables; callers never query them.
 */
@Injectable()
export class DeviceStatusService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

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
        ? // A camera's own keepalive_seconds (an admin's word) comes before what its GB/T 28181 device reported of itself.
          `SELECT c.id, c.school_id, c.device_id, c.channel_id, NULL::text AS code, c.keepalive_seconds, c.status, c.updated_at,
                  CASE WHEN c.keepalive_seconds IS NULL THEN g.offline_after_seconds END AS offline_after_seconds
             FROM cameras c LEFT JOIN gb_devices g ON g.device_id = c.device_id
            WHERE (c.device_id, c.channel_id) > ($2, $3) AND ($1::timestamptz IS NULL OR c.updated_at >= $1) ORDER BY c.device_id, c.channel_id LIMIT $4`
        : `SELECT id, school_id, NULL::text AS device_id, NULL::text AS channel_id, code, keepalive_seconds, status, updated_at, NULL::int AS offline_after_seconds FROM alarm_devices
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
          offlineAfterSeconds: (r.offline_after_seconds as number | null) ?? null,
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
  async setDeviceStatuses(
    manager: EntityManager,
    kind: WatchedDeviceKind,
    changes: { id: string; lastSeenAt: Date | null }[],
    status: DeviceStatus,
  ): Promise<string[]> {
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
  deviceStatusCounts(
    filter: { schoolId?: string } = {},
  ): Promise<{ schoolId: string; schoolName: string; zoneId: string | null; status: DeviceStatus; n: number }[]> {
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

  /**
   * Cameras for an audit without shipping the whole fleet: the count per school, and only the
   * cameras whose online time can be short of the window — those not online now, and those in
   * `changedIds` (devices with a status transition in the period). Every other camera has been
   * online throughout. `schoolIds` narrows it.
   */
  async cameraCensus(schoolIds: string[] | undefined, changedIds: string[]): Promise<{ counts: Map<string, number>; watch: DeviceStateRow[] }> {
    const [counts, watch] = await Promise.all([
      this.db.query(`SELECT school_id, count(*)::int AS n FROM cameras WHERE ($1::uuid[] IS NULL OR school_id = ANY($1)) GROUP BY school_id`, [
        schoolIds ?? null,
      ]) as Promise<{ school_id: string; n: number }[]>,
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
              status, police_linked AS "policeLinked", last_test_at AS "lastTestAt", last_police_relay_at AS "lastPoliceRelayAt"
         FROM alarm_devices WHERE ($1::uuid[] IS NULL OR school_id = ANY($1))`,
      [schoolIds ?? null],
    );
  }
}
