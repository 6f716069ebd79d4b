import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returningRows } from '../../infra/database/returning';
import { turnBatch } from '../../infra/database/turn-batch';
import type { Charset } from './charset';
import type { ChannelKind } from './gb-codes';

/** A gb_devices row as the SIP front end uses it. */
export interface GbDeviceRow {
  deviceId: string;
  passwordHa1: string | null;
  ha1Realm: string | null;
  schoolId: string | null;
  registered: boolean;
  callId: string | null;
  transport: 'UDP' | 'TCP' | null;
  contactAddress: string | null;
  contactPort: number | null;
  registeredAt: Date | null;
  expiresAt: Date | null;
  lastKeepaliveAt: Date | null;
  charset: Charset;
  /** The digest username when it is not the device id (issue 16 §5); null = the device id. */
  authUsername: string | null;
}

/** A device as the control center's list shows it (admins: listDevices' own SELECT); never its password. */
export interface GbDeviceListItem {
  deviceId: string;
  schoolId: string | null;
  /** Registered and the registration not expired. */
  registered: boolean;
  transport: 'UDP' | 'TCP' | null;
  contactAddress: string | null;
  contactPort: number | null;
  registeredAt: Date | null;
  expiresAt: Date | null;
  lastKeepaliveAt: Date | null;
  name: string;
  manufacturer: string;
  model: string;
  firmware: string;
  channelCount: number | null;
  catalogAt: Date | null;
  heartbeatInterval: number | null;
  heartbeatCount: number | null;
  offlineAfterSeconds: number | null;
  basicParamAt: Date | null;
  /** Whether the device has a password of its own (else the district's). */
  ownPassword: boolean;
  charset: Charset;
  authUsername: string | null;
  /** Channels reported (not organisation nodes), and camera channels not yet assigned to a camera. */
  channels: number;
  unassigned: number;
}

/** A channel as the control center's list shows it (listChannels' SELECT). */
export interface GbChannelListItem {
  deviceId: string;
  channelId: string;
  name: string;
  manufacturer: string;
  model: string;
  status: string;
  parentId: string;
  longitude: number | null;
  latitude: number | null;
  cameraId: string | null;
  reportedAt: Date;
  kind: ChannelKind;
  /** Gone from the device's latest Catalog. */
  removed: boolean;
}

/** Registration state written behind the SIP hot path, many devices per statement. */
export type RegistrationWrite = Omit<GbDeviceRow, 'passwordHa1' | 'ha1Realm' | 'charset' | 'authUsername'>;

export interface CatalogItem {
  channelId: string;
  kind: ChannelKind;
  /** BusinessGroupID of a virtual-organisation item or channel (§A.2.6.3, 2016), '' when none. */
  businessGroupId: string;
  name: string;
  manufacturer: string;
  model: string;
  status: string;
  parentId: string;
  longitude: number | null;
  latitude: number | null;
}

const DEVICE_COLS = `device_id AS "deviceId", password_ha1 AS "passwordHa1", ha1_realm AS "ha1Realm", school_id AS "schoolId", registered,
  call_id AS "callId", transport, contact_address AS "contactAddress", contact_port AS "contactPort", registered_at AS "registeredAt",
  expires_at AS "expiresAt", last_keepalive_at AS "lastKeepaliveAt", charset, auth_username AS "authUsername"`;

/** The module's own tables (gb_devices, gb_channels). */
@Injectable()
export class Gb28181Store {
  constructor(@InjectDataSource() readonly db: DataSource) {}

  async device(deviceId: string): Promise<GbDeviceRow | null> {
    const [row] = await this.db.query(`SELECT ${DEVICE_COLS} FROM gb_devices WHERE device_id = $1`, [deviceId]);
    return row ?? null;
  }

  /** Whether the device reported this channel (in a Catalog it has not since removed). */
  async hasChannel(deviceId: string, channelId: string): Promise<boolean> {
    const rows = await this.db.query(`SELECT 1 FROM gb_channels WHERE device_id = $1 AND channel_id = $2 AND removed_at IS NULL`, [deviceId, channelId]);
    return rows.length > 0;
  }

  /** Devices whose registration was still running when the process stopped (reloaded at boot). */
  async *registered(batch = 10_000): AsyncGenerator<GbDeviceRow[]> {
    let after = '';
    for (;;) {
      const rows: GbDeviceRow[] = await this.db.query(
        `SELECT ${DEVICE_COLS} FROM gb_devices WHERE registered AND expires_at > now() AND device_id > $1 ORDER BY device_id LIMIT $2`,
        [after, batch],
      );
      if (rows.length === 0) return;
      after = rows[rows.length - 1].deviceId;
      yield rows;
      if (rows.length < batch) return;
    }
  }

  /** Every known device id (the restart grace covers them all: registered, or expired while the platform was down). */
  async deviceIds(): Promise<string[]> {
    const rows: { deviceId: string }[] = await this.db.query(`SELECT device_id AS "deviceId" FROM gb_devices`);
    return rows.map((r) => r.deviceId);
  }

  /** Devices that registered with the default password: rows that ever registered without their own password for this realm (A11). */
  async countDefaultPasswordDevices(realm: string): Promise<number> {
    const [r] = await this.db.query(
      `SELECT count(*)::int AS n FROM gb_devices WHERE registered_at IS NOT NULL AND (password_ha1 IS NULL OR ha1_realm IS DISTINCT FROM $1)`,
      [realm],
    );
    return r.n;
  }

  async writeRegistrations(rows: RegistrationWrite[]): Promise<void> {
    if (rows.length === 0) return;
    const col = <K extends keyof RegistrationWrite>(k: K) => rows.map((r) => r[k]);
    await this.db.query(
      `INSERT INTO gb_devices (device_id, school_id, registered, call_id, transport, contact_address, contact_port, registered_at, expires_at, last_keepalive_at)
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::boolean[], $4::text[], $5::text[], $6::text[], $7::int[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
       ON CONFLICT (device_id) DO UPDATE SET
         school_id = COALESCE(gb_devices.school_id, EXCLUDED.school_id),
         registered = EXCLUDED.registered, call_id = EXCLUDED.call_id, transport = EXCLUDED.transport,
         contact_address = EXCLUDED.contact_address, contact_port = EXCLUDED.contact_port,
         registered_at = EXCLUDED.registered_at, expires_at = EXCLUDED.expires_at,
         last_keepalive_at = GREATEST(gb_devices.last_keepalive_at, EXCLUDED.last_keepalive_at), updated_at = now()`,
      [
        col('deviceId'),
        col('schoolId'),
        col('registered'),
        col('callId'),
        col('transport'),
        col('contactAddress'),
        col('contactPort'),
        col('registeredAt'),
        col('expiresAt'),
        col('lastKeepaliveAt'),
      ],
    );
  }

  async setDeviceInfo(
    deviceId: string,
    info: { name: string; manufacturer: string; model: string; firmware: string; channelCount: number | null },
  ): Promise<void> {
    await this.db.query(
      `INSERT INTO gb_devices (device_id, name, manufacturer, model, firmware, channel_count) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (device_id) DO UPDATE SET name = $2, manufacturer = $3, model = $4, firmware = $5, channel_count = COALESCE($6, gb_devices.channel_count), updated_at = now()`,
      [deviceId, info.name, info.manufacturer, info.model, info.firmware, info.channelCount],
    );
  }

  /**
   * A device's keepalive settings from its BasicParam (issue 16 §6) and the liveness threshold made
   * of them; true when the threshold changed (its cameras' liveness must follow).
   */
  async setHeartbeat(deviceId: string, hb: { interval: number; count: number; offlineAfterSeconds: number }): Promise<boolean> {
    const [row] = returningRows<{ changed: boolean }>(
      await this.db.query(
        // Upserted: a device's row is written behind its registration and may not exist yet.
        `WITH old AS (SELECT offline_after_seconds FROM gb_devices WHERE device_id = $1)
         INSERT INTO gb_devices (device_id, heartbeat_interval, heartbeat_count, offline_after_seconds, basic_param_at) VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (device_id) DO UPDATE SET heartbeat_interval = $2, heartbeat_count = $3, offline_after_seconds = $4, basic_param_at = now(), updated_at = now()
         RETURNING (SELECT offline_after_seconds FROM old) IS DISTINCT FROM $4::int AS changed`,
        [deviceId, hb.interval, hb.count, hb.offlineAfterSeconds],
      ),
    );
    return !!row?.changed;
  }

  /**
   * Records the items of one Catalog (new ones added, known ones updated; camera links kept). With
   * `replace` (a complete Catalog: every part of its SumNum arrived), items it no longer lists are
   * marked removed; returns their ids (newly removed only). One transaction; at most `rowsPerStatement`
   * channels per statement (attack notes F10: a 10,000-item Catalog is ten statements, not one).
   * The device row is locked first, so saves of one device never interleave.
   */
  async saveCatalog(deviceId: string, items: CatalogItem[], replace: boolean, rowsPerStatement: number): Promise<string[]> {
    const chunks = <T>(list: T[]): T[][] => {
      const out: T[][] = [];
      for (let i = 0; i < list.length; i += rowsPerStatement) out.push(list.slice(i, i + rowsPerStatement));
      return out;
    };
    return this.db.transaction(async (m) => {
      await m.query(
        `INSERT INTO gb_devices (device_id, catalog_at) VALUES ($1, now()) ON CONFLICT (device_id) DO UPDATE SET catalog_at = now(), updated_at = now()`,
        [deviceId],
      );
      for (const part of chunks(items)) {
        const col = <K extends keyof CatalogItem>(k: K) => part.map((i) => i[k]);
        await m.query(
          `INSERT INTO gb_channels (device_id, channel_id, name, manufacturer, model, status, parent_id, longitude, latitude, kind, business_group_id)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::float8[], $10::text[], $11::text[])
           ON CONFLICT (device_id, channel_id) DO UPDATE SET name = EXCLUDED.name, manufacturer = EXCLUDED.manufacturer, model = EXCLUDED.model,
             status = EXCLUDED.status, parent_id = EXCLUDED.parent_id, longitude = EXCLUDED.longitude, latitude = EXCLUDED.latitude,
             kind = EXCLUDED.kind, business_group_id = EXCLUDED.business_group_id, removed_at = NULL, reported_at = now()`,
          [
            deviceId,
            col('channelId'),
            col('name'),
            col('manufacturer'),
            col('model'),
            col('status'),
            col('parentId'),
            col('longitude'),
            col('latitude'),
            col('kind'),
            col('businessGroupId'),
          ],
        );
      }
      if (!replace) return [];
      // What it no longer lists, worked out here (the device row is locked: no other save of it meanwhile), then marked in chunks.
      const listed = new Set(items.map((i) => i.channelId));
      const known: { channelId: string }[] = await m.query(`SELECT channel_id AS "channelId" FROM gb_channels WHERE device_id = $1 AND removed_at IS NULL`, [
        deviceId,
      ]);
      const gone = known.map((r) => r.channelId).filter((c) => !listed.has(c));
      const removed: string[] = [];
      for (const part of chunks(gone)) {
        const rows: { channelId: string }[] = returningRows(
          await m.query(
            `UPDATE gb_channels SET removed_at = now() WHERE device_id = $1 AND removed_at IS NULL AND channel_id = ANY($2::text[]) RETURNING channel_id AS "channelId"`,
            [deviceId, part],
          ),
        );
        for (const r of rows) removed.push(r.channelId);
      }
      return removed;
    });
  }

  /** A device's organisation nodes and channels not removed (for its organisation tree). */
  catalogTree(
    deviceId: string,
  ): Promise<{ id: string; name: string; kind: ChannelKind; parentId: string; businessGroupId: string; cameraId: string | null }[]> {
    return this.db.query(
      `SELECT channel_id AS id, name, kind, parent_id AS "parentId", business_group_id AS "businessGroupId", camera_id AS "cameraId"
         FROM gb_channels WHERE device_id = $1 AND removed_at IS NULL ORDER BY channel_id`,
      [deviceId],
    );
  }

  /**
   * Channels of a device whose last reported status is down (GB/T 28181 Status OFF, Event OFF/VLOST/DEFECT).
   * One query for the look-ups of one event-loop turn (a registration storm: see GbProvisioningService.gbDeviceCameras).
   */
  readonly downChannels = turnBatch<string, string[]>(
    async (deviceIds) => {
      const rows: { deviceId: string; channelId: string }[] = await this.db.query(
        `SELECT device_id AS "deviceId", channel_id AS "channelId" FROM gb_channels
          WHERE device_id = ANY($1::bpchar[]) AND (removed_at IS NOT NULL OR upper(status) IN ('OFF', 'OFFLINE', 'VLOST', 'DEFECT'))`,
        [deviceIds],
      );
      const byDevice = new Map<string, string[]>();
      for (const r of rows) {
        const list = byDevice.get(r.deviceId);
        if (list) list.push(r.channelId);
        else byDevice.set(r.deviceId, [r.channelId]);
      }
      return byDevice;
    },
    () => [],
  );

  /** Records channels' status as reported by a Catalog notification (channels not in gb_channels yet are skipped). */
  async setChannelStatuses(deviceId: string, changes: { channelId: string; status: string }[]): Promise<void> {
    if (changes.length === 0) return;
    await this.db.query(
      `UPDATE gb_channels g SET status = v.s, reported_at = now() FROM unnest($2::text[], $3::text[]) AS v(c, s) WHERE g.device_id = $1 AND g.channel_id = v.c`,
      [deviceId, changes.map((c) => c.channelId), changes.map((c) => c.status.slice(0, 20))],
    );
  }

  /** Channels of the given devices not yet placed as cameras (optionally only some channel ids). */
  unplacedChannels(deviceId: string, channelIds?: string[], m: EntityManager = this.db.manager): Promise<(CatalogItem & { deviceId: string })[]> {
    return m.query(
      `SELECT device_id AS "deviceId", channel_id AS "channelId", name, manufacturer, model, status, parent_id AS "parentId", longitude, latitude
         FROM gb_channels WHERE device_id = $1 AND camera_id IS NULL AND kind = 'camera' AND removed_at IS NULL AND ($2::text[] IS NULL OR channel_id = ANY($2)) ORDER BY channel_id`,
      [deviceId, channelIds ?? null],
    );
  }

  async linkCameras(m: EntityManager, links: { deviceId: string; channelId: string; cameraId: string }[]): Promise<void> {
    if (links.length === 0) return;
    await m.query(
      `UPDATE gb_channels g SET camera_id = v.cam FROM unnest($1::text[], $2::text[], $3::uuid[]) AS v(d, c, cam)
        WHERE g.device_id = v.d AND g.channel_id = v.c`,
      [links.map((l) => l.deviceId), links.map((l) => l.channelId), links.map((l) => l.cameraId)],
    );
  }

  // ---- admin reads ----

  async listDevices(f: {
    /** One device (the console's device panel). */
    deviceId?: string;
    schoolId?: string;
    registered?: boolean;
    limit: number;
    offset: number;
  }): Promise<{ items: GbDeviceListItem[]; total: number }> {
    const where = `WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::boolean IS NULL OR (registered AND expires_at > now()) = $2) AND ($3::text IS NULL OR device_id = $3)`;
    const params = [f.schoolId ?? null, f.registered ?? null, f.deviceId ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(
        `SELECT device_id AS "deviceId", school_id AS "schoolId", registered AND expires_at > now() AS registered, transport,
                contact_address AS "contactAddress", contact_port AS "contactPort", registered_at AS "registeredAt", expires_at AS "expiresAt",
                last_keepalive_at AS "lastKeepaliveAt", name, manufacturer, model, firmware, channel_count AS "channelCount", catalog_at AS "catalogAt",
                heartbeat_interval AS "heartbeatInterval", heartbeat_count AS "heartbeatCount", offline_after_seconds AS "offlineAfterSeconds",
                basic_param_at AS "basicParamAt",
                password_ha1 IS NOT NULL AS "ownPassword", charset, auth_username AS "authUsername",
                (SELECT count(*)::int FROM gb_channels c WHERE c.device_id = d.device_id AND c.kind <> 'organisation' AND c.removed_at IS NULL) AS channels,
                (SELECT count(*)::int FROM gb_channels c WHERE c.device_id = d.device_id AND c.camera_id IS NULL AND c.kind = 'camera' AND c.removed_at IS NULL) AS unassigned
           FROM gb_devices d ${where} ORDER BY device_id LIMIT $4 OFFSET $5`,
        [...params, f.limit, f.offset],
      ),
      this.db.query(`SELECT count(*)::int AS total FROM gb_devices ${where}`, params),
    ]);
    return { items, total };
  }

  async listChannels(f: { deviceId?: string; unassigned?: boolean; limit: number; offset: number }): Promise<{ items: GbChannelListItem[]; total: number }> {
    // Organisation nodes (civil codes, type codes 200-299) are never cameras: not listed (see catalogTree); alarm inputs/outputs are, with their kind.
    const where = `WHERE ($1::text IS NULL OR device_id = $1) AND ($2::boolean IS NULL OR (camera_id IS NULL AND kind = 'camera' AND removed_at IS NULL) = $2)
                     AND kind <> 'organisation'`;
    const params = [f.deviceId ?? null, f.unassigned ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(
        `SELECT device_id AS "deviceId", channel_id AS "channelId", name, manufacturer, model, status, parent_id AS "parentId",
                longitude, latitude, camera_id AS "cameraId", reported_at AS "reportedAt", kind, removed_at IS NOT NULL AS removed
           FROM gb_channels ${where} ORDER BY device_id, channel_id LIMIT $3 OFFSET $4`,
        [...params, f.limit, f.offset],
      ),
      this.db.query(`SELECT count(*)::int AS total FROM gb_channels ${where}`, params),
    ]);
    return { items, total };
  }

  /** Sets a device's password (as HA1), digest username, school and/or charset, creating its row if needed; returns the row before. */
  async setDevice(
    m: EntityManager,
    deviceId: string,
    change: { ha1?: string | null; realm?: string; authUsername?: string | null; schoolId?: string | null; charset?: Charset },
  ): Promise<{ before: { schoolId: string | null; ownPassword: boolean; charset: Charset; authUsername: string | null } | null }> {
    const [before] = await m.query(
      `SELECT school_id AS "schoolId", password_ha1 IS NOT NULL AS "ownPassword", charset, auth_username AS "authUsername" FROM gb_devices WHERE device_id = $1 FOR UPDATE`,
      [deviceId],
    );
    await m.query(`INSERT INTO gb_devices (device_id) VALUES ($1) ON CONFLICT DO NOTHING`, [deviceId]);
    if (change.ha1 !== undefined)
      await m.query(`UPDATE gb_devices SET password_ha1 = $2, ha1_realm = $3, updated_at = now() WHERE device_id = $1`, [
        deviceId,
        change.ha1,
        change.ha1 ? change.realm : null,
      ]);
    if (change.schoolId !== undefined)
      await m.query(`UPDATE gb_devices SET school_id = $2, updated_at = now() WHERE device_id = $1`, [deviceId, change.schoolId]);
    if (change.charset !== undefined) await m.query(`UPDATE gb_devices SET charset = $2, updated_at = now() WHERE device_id = $1`, [deviceId, change.charset]);
    if (change.authUsername !== undefined)
      await m.query(`UPDATE gb_devices SET auth_username = $2, updated_at = now() WHERE device_id = $1`, [deviceId, change.authUsername]);
    return { before: before ?? null };
  }
}
