import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AlarmDevice } from './entities/alarm-device.entity';
import { Camera } from './entities/camera.entity';
import { Guard } from './entities/guard.entity';
import { School } from './entities/school.entity';
import type { DeviceStatus } from './registry.constants';

export type { TermCalendar, Timetable } from './entities/school.entity';
export type { PostWindow } from './entities/protection-post.entity';

export interface AlarmDeviceSpot {
  id: string;
  schoolId: string;
  schoolName: string;
  zoneId: string | null;
  location: string;
  areaKind: string;
  code: string;
  linkedCameraIds: string[];
  /** Wired to the public-security platform (一键报警联网): only such a button's presses are relayed to the police. */
  policeLinked: boolean;
  cameras: { id: string; name: string; location: string; areaKind: string; streamUrl: string; status: DeviceStatus }[];
}

/** A button with its school and the cameras covering its spot (linked first, then those of its area); callers add the WHERE. */
const ALARM_DEVICE_SPOT_SQL = `SELECT d.id, d.code, d.school_id AS "schoolId", s.name AS "schoolName", s.zone_id AS "zoneId", d.location, d.area_kind AS "areaKind",
              d.linked_camera_ids AS "linkedCameraIds", d.police_linked AS "policeLinked",
              coalesce((SELECT jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name, 'location', c.location, 'areaKind', c.area_kind,
                                                            'streamUrl', c.stream_url, 'status', c.status)
                                         ORDER BY c.id = ANY(d.linked_camera_ids) DESC, c.name)
                        FROM cameras c
                        WHERE c.id = ANY(d.linked_camera_ids) OR (c.school_id = d.school_id AND c.area_kind = d.area_kind)), '[]') AS cameras
       FROM alarm_devices d JOIN schools s ON s.id = d.school_id`;

/**
 * What other capabilities may read from the registry: schools, cameras and alarm buttons, the
 * spot of an alarm, guards. They go through the registry's services, never through its tables,
 * so the registry can change its storage without breaking them. Device status lives in
 * DeviceStatusService, protection posts in ProtectionPostsService, GB/T 28181 channel
 * provisioning in GbProvisioningService.
 */
@Injectable()
export class RegistryService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

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
    const [row] = (await this.db.query(`${ALARM_DEVICE_SPOT_SQL} WHERE d.id = $1`, [id])) as AlarmDeviceSpot[];
    if (!row) throw Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, id);
    return row;
  }

  /** Many buttons' spots in one query (the intake batches the presses that arrive together); an unknown id is absent from the map. */
  async alarmDeviceSpots(ids: string[]): Promise<Map<string, AlarmDeviceSpot>> {
    const rows = (await this.db.query(`${ALARM_DEVICE_SPOT_SQL} WHERE d.id = ANY($1::uuid[])`, [ids])) as AlarmDeviceSpot[];
    return new Map(rows.map((r) => [r.id, r]));
  }

  // ---- Alarm-button self-tests and police relays (issue 11 §3; written by src/modules/alarms) ----

  /** A button's self-test at `at` by `byName` (last_test_at only moves forward), in the caller's transaction. */
  async recordButtonTest(m: EntityManager, id: string, at: Date, byName: string): Promise<void> {
    await m.query(
      `UPDATE alarm_devices SET last_test_at = $2, last_test_by_name = $3, updated_at = now() WHERE id = $1 AND (last_test_at IS NULL OR last_test_at <= $2)`,
      [id, at, byName],
    );
  }

  /** A delivery to the police endpoint succeeded for this button (police-linked ones only), in the caller's transaction. */
  async recordButtonPoliceRelay(m: EntityManager, id: string): Promise<void> {
    await m.query(`UPDATE alarm_devices SET last_police_relay_at = now() WHERE id = $1 AND police_linked`, [id]);
  }

  /** Test mode until `until` (null: ended); returns the button's school, or 404. */
  async setButtonTestMode(m: EntityManager, id: string, until: Date | null, byName: string | null): Promise<{ schoolId: string; testModeUntil: Date | null }> {
    const [[row]] = (await m.query(
      `UPDATE alarm_devices SET test_mode_until = $2, test_mode_by_name = $3, updated_at = now() WHERE id = $1
       RETURNING school_id AS "schoolId", test_mode_until AS "testModeUntil"`,
      [id, until, byName],
    )) as [{ schoolId: string; testModeUntil: Date | null }[]];
    if (!row) throw Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, id);
    return row;
  }

  /** Buttons in test mode now, with the end of it. */
  async buttonsInTestMode(): Promise<{ id: string; until: Date; by: string | null }[]> {
    return this.db.query(`SELECT id, test_mode_until AS until, test_mode_by_name AS by FROM alarm_devices WHERE test_mode_until > now()`);
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

  /**
   * Full-time, active guards per school that the bureau has verified (schools without any are
   * absent from the map), and those only declared by the school (attack F8e: an import of
   * invented guards does not by itself meet the target; resources.ts stampGuardVerification).
   */
  async fullTimeGuardCounts(schoolIds?: string[]): Promise<Map<string, { verified: number; declared: number }>> {
    const rows: { school_id: string; verified: number; declared: number }[] = await this.db.query(
      `SELECT school_id, count(*) FILTER (WHERE verified_at IS NOT NULL)::int AS verified, count(*) FILTER (WHERE verified_at IS NULL)::int AS declared
         FROM guards WHERE full_time AND active AND ($1::uuid[] IS NULL OR school_id = ANY($1)) GROUP BY school_id`,
      [schoolIds ?? null],
    );
    return new Map(rows.map((r) => [r.school_id, { verified: r.verified, declared: r.declared }]));
  }

  /**
   * The bureau verifies a guard a school declared (attack F8e): from now on they count for the
   * full-time-guards target. In the caller's transaction; the row before and after, or null when
   * there is no such guard.
   */
  async verifyGuard(m: EntityManager, id: string, byName: string): Promise<{ before: Guard; after: Guard } | null> {
    const repo = m.getRepository(Guard);
    const before = await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } });
    if (!before) return null;
    if (before.verifiedAt) return { before, after: before };
    const after = await repo.save({ ...before, verifiedAt: new Date(), verifiedByName: byName });
    return { before, after };
  }

  /**
   * Is `name` an active guard on the school's roster (guards table, exact name after trimming)?
   * Check-ins and patrols recorded on someone's behalf must name a guard who exists (attack F8a).
   */
  async isActiveGuard(schoolId: string, name: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query(`SELECT 1 FROM guards WHERE school_id = $1 AND active AND btrim(name) = $2 LIMIT 1`, [schoolId, name.trim()]);
    return rows.length > 0;
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

  /**
   * What the district reports to a superior GB/T 28181 platform (gb28181 cascade, issue 16 §7): the
   * first district's name, the zones, the schools with their zone, and every camera with its school,
   * channel id, name, place, status (device health) and make. Light rows, the whole district.
   */
  async cascadeInventory(): Promise<{
    districtName: string;
    zones: { id: string; name: string; code: string }[];
    schools: { id: string; name: string; code: string; zoneId: string | null }[];
    cameras: { schoolId: string; channelId: string; name: string; location: string; status: string; vendor: string; model: string }[];
  }> {
    const [district] = (await this.db.query(`SELECT name FROM districts ORDER BY created_at, code LIMIT 1`)) as { name: string }[];
    const zones = (await this.db.query(`SELECT id, name, code FROM school_zones ORDER BY code`)) as { id: string; name: string; code: string }[];
    const schools = (await this.db.query(`SELECT id, name, code, zone_id AS "zoneId" FROM schools ORDER BY code`)) as {
      id: string;
      name: string;
      code: string;
      zoneId: string | null;
    }[];
    const cameras = (await this.db.query(
      `SELECT school_id AS "schoolId", channel_id AS "channelId", name, location, status, vendor, model FROM cameras ORDER BY school_id, channel_id, id`,
    )) as { schoolId: string; channelId: string; name: string; location: string; status: string; vendor: string; model: string }[];
    return { districtName: district?.name ?? '', zones, schools, cameras };
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
}

const SCHOOL_ROW_COLS = `id, district_id AS "districtId", zone_id AS "zoneId", group_id AS "groupId", code, name, type, address, lat, lng, student_count AS "studentCount",
  staff_count AS "staffCount", boarding, timetable, calendar, created_at AS "createdAt", updated_at AS "updatedAt"`;
