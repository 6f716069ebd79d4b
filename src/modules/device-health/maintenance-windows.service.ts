import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AuthUser } from '../../infra/access/roles';
import { effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode, Errors, type FieldError } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { AuditService } from '../audit-log';
import { ConsoleEventsService } from '../console-events';
import { DeviceStatusService, RegistryService } from '../registry';
import type { CreateMaintenanceWindowDto, MaintenanceQuery, UpdateMaintenanceWindowDto } from './dto';

/** A district-wide window silences every device of the district: the admin's call, not an operator's. */
function districtByAdmin(user: AuthUser): void {
  if (user.role !== 'admin') throw Errors.forbidden(ErrorCode.MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY, '全区维护时段须由管理员设置');
}

export type MaintenanceStatus = 'upcoming' | 'active' | 'ended';

/** A maintenance window as the API shows it. */
export interface MaintenanceWindowView {
  id: string;
  /** null: district-wide. */
  schoolId: string | null;
  /** Set: one device's window (its school in schoolId). */
  deviceId: string | null;
  deviceKind: 'camera' | 'alarm_device' | null;
  startsAt: Date;
  endsAt: Date;
  reason: string;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** Ended before its planned end (by whom: endedBy). */
  endedEarlyAt: Date | null;
  endedBy: string | null;
  status: MaintenanceStatus;
}

const COLS = `id, school_id AS "schoolId", device_id AS "deviceId", device_kind AS "deviceKind", starts_at AS "startsAt", ends_at AS "endsAt", reason,
  created_by AS "createdBy", created_at AS "createdAt", updated_at AS "updatedAt", ended_early_at AS "endedEarlyAt", ended_by AS "endedBy",
  CASE WHEN ends_at <= now() THEN 'ended' WHEN starts_at <= now() THEN 'active' ELSE 'upcoming' END AS status`;

const STATUS_SQL: Record<MaintenanceStatus, string> = {
  upcoming: 'starts_at > now()',
  active: 'starts_at <= now() AND ends_at > now()',
  ended: 'ends_at <= now()',
};

/**
 * Maintenance windows (维护时段): a device, a school or the whole district under declared
 * maintenance for a bounded time. A device going offline inside one is maintenance, not an outage
 * (DeviceTransitionsService); the online-rate report leaves the time out. Control-center users
 * (admin, operator) declare, change, end and delete them; everyone reads those of their scope.
 * Bounds (liveness.maintenance*): at most maintenanceMaxHours long, starting at most
 * maintenanceMaxLeadDays ahead and no earlier than maintenanceMaxStartPastMinutes ago — a window
 * declared after the fact must not turn an outage that happened into maintenance. For the same
 * reason a started window is not deleted (ended instead) and its start is not moved. Every change
 * is audited and told to consoles (`device.maintenance`).
 *
 * Windows covering the same device (that device's, its school's, the district's) never overlap and
 * are at least maintenanceMinGapMinutes apart (409 MAINTENANCE_WINDOW.OVERLAP naming the other):
 * else chained or stacked windows kept a school silent far past maintenanceMaxHours (5 × 71 h
 * apart, 72 h each: 355 h). A window ended early counts with its real end, so ending one and
 * declaring the next at once is refused too. Writes take one advisory lock, so two declared at once
 * cannot both pass the check. A district-wide window silences every device: admin only (403
 * MAINTENANCE_WINDOW.DISTRICT_ADMIN_ONLY to declare or change one; ending or deleting one only
 * brings alerting back, so operators may).
 */
@Injectable()
export class MaintenanceWindowsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly statuses: DeviceStatusService,
    private readonly audit: AuditService,
    private readonly events: ConsoleEventsService,
  ) {}

  async list(user: AuthUser, q: MaintenanceQuery): Promise<Page<MaintenanceWindowView>> {
    const schoolId = effectiveSchoolFilter(user, q.schoolId) ?? null;
    const where = [
      // A school sees its own windows (device ones too) and the district-wide ones.
      `($1::uuid IS NULL OR school_id = $1 OR school_id IS NULL)`,
      `($2::uuid IS NULL OR device_id = $2)`,
      q.status ? STATUS_SQL[q.status] : 'true',
    ].join(' AND ');
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const order = q.status === 'ended' ? 'ends_at DESC' : 'starts_at ASC';
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${COLS} FROM maintenance_windows WHERE ${where} ORDER BY ${order}, id LIMIT $3 OFFSET $4`, [
        schoolId,
        q.deviceId ?? null,
        limit,
        offset,
      ]),
      this.db.query(`SELECT count(*)::int AS total FROM maintenance_windows WHERE ${where}`, [schoolId, q.deviceId ?? null]),
    ]);
    return { items, total, limit, offset };
  }

  async get(user: AuthUser, id: string): Promise<MaintenanceWindowView> {
    const row = await this.row(this.db, id);
    const own = scopedSchoolId(user);
    if (own && row.schoolId !== null && row.schoolId !== own) throw Errors.notFound(ErrorCode.MAINTENANCE_WINDOW.NOT_FOUND, id);
    return row;
  }

  /** Windows in force now (the console's status), at most `limit`, ending soonest first, and how many devices are offline under them. */
  async inForce(schoolId: string | null, limit = 50): Promise<{ windows: MaintenanceWindowView[]; total: number; devicesOffline: number }> {
    const where = `starts_at <= now() AND ends_at > now() AND ($1::uuid IS NULL OR school_id = $1 OR school_id IS NULL)`;
    const [windows, [{ total }], [{ n }]] = await Promise.all([
      this.db.query(`SELECT ${COLS} FROM maintenance_windows WHERE ${where} ORDER BY ends_at, id LIMIT $2`, [schoolId, limit]),
      this.db.query(`SELECT count(*)::int AS total FROM maintenance_windows WHERE ${where}`, [schoolId]),
      this.db.query(`SELECT count(*)::int AS n FROM device_maintenance_offline WHERE $1::uuid IS NULL OR school_id = $1`, [schoolId]),
    ]);
    return { windows, total, devicesOffline: n };
  }

  /** Of these devices, those offline under maintenance (went offline inside a window that still covers them or just ended). */
  async offlineUnderMaintenance(deviceIds: string[]): Promise<Set<string>> {
    if (deviceIds.length === 0) return new Set();
    const rows: { device_id: string }[] = await this.db.query(`SELECT device_id FROM device_maintenance_offline WHERE device_id = ANY($1::uuid[])`, [
      deviceIds,
    ]);
    return new Set(rows.map((r) => r.device_id));
  }

  async create(user: AuthUser, dto: CreateMaintenanceWindowDto): Promise<MaintenanceWindowView> {
    const now = Date.now();
    const errors: FieldError[] = [];
    let schoolId = dto.schoolId ?? null;
    let deviceKind: 'camera' | 'alarm_device' | null = null;
    if (dto.deviceId) {
      const d = await this.statuses.deviceStatus(dto.deviceId);
      if (!d) errors.push({ field: 'deviceId', reason: 'no such device' });
      else if (schoolId && d.schoolId !== schoolId) errors.push({ field: 'deviceId', reason: 'not a device of schoolId' });
      else {
        schoolId = d.schoolId;
        deviceKind = d.kind;
      }
    } else if (schoolId) {
      const known = await this.registry.school(schoolId).then(
        () => true,
        () => false,
      );
      if (!known) errors.push({ field: 'schoolId', reason: 'no such school' });
    }
    errors.push(...this.bounds(dto.startsAt, dto.endsAt, now, { checkStart: true }));
    if (errors.length) throw Errors.validation(errors);
    if (schoolId === null) districtByAdmin(user);
    return this.db.transaction(async (m) => {
      await this.lockWrites(m);
      await this.refuseOverlap(m, { schoolId, deviceId: dto.deviceId ?? null, startsAt: dto.startsAt, endsAt: dto.endsAt });
      const [row] = (await m.query(
        `INSERT INTO maintenance_windows (school_id, device_id, device_kind, starts_at, ends_at, reason, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLS}`,
        [schoolId, dto.deviceId ?? null, deviceKind, dto.startsAt, dto.endsAt, dto.reason.trim(), user.id],
      )) as MaintenanceWindowView[];
      await this.audit.record(m, { action: 'create', entity: 'maintenance_window', entityId: row.id, schoolId: row.schoolId, after: row });
      await this.tell(m, row, 'created');
      return row;
    });
  }

  /**
   * Changes a window that is not over: its reason any time; its start only before it has begun (and
   * not into the past beyond the tolerance); its end to no earlier than now (ending it early: `end`).
   */
  async update(user: AuthUser, id: string, dto: UpdateMaintenanceWindowDto): Promise<MaintenanceWindowView> {
    return this.db.transaction(async (m) => {
      await this.lockWrites(m);
      const before = await this.row(m, id, true);
      if (before.schoolId === null) districtByAdmin(user);
      const now = Date.now();
      if (new Date(before.endsAt).getTime() <= now)
        throw Errors.conflict(ErrorCode.MAINTENANCE_WINDOW.OVER, '维护时段已结束，不能修改', { endsAt: before.endsAt });
      const started = new Date(before.startsAt).getTime() <= now;
      const startsAt = dto.startsAt ?? new Date(before.startsAt).toISOString();
      const endsAt = dto.endsAt ?? new Date(before.endsAt).toISOString();
      const errors: FieldError[] = [];
      if (dto.startsAt !== undefined && started && Date.parse(dto.startsAt) !== new Date(before.startsAt).getTime())
        errors.push({ field: 'startsAt', reason: 'the window has started: its start cannot change' });
      errors.push(...this.bounds(startsAt, endsAt, now, { checkStart: dto.startsAt !== undefined && !started }));
      if (dto.endsAt !== undefined && Date.parse(dto.endsAt) < now - 1000) errors.push({ field: 'endsAt', reason: 'must not be in the past (end it instead)' });
      if (errors.length) throw Errors.validation(errors);
      if (dto.startsAt !== undefined || dto.endsAt !== undefined)
        await this.refuseOverlap(m, { schoolId: before.schoolId, deviceId: before.deviceId, startsAt, endsAt, except: id });
      const [row] = returningRows<MaintenanceWindowView>(
        await m.query(`UPDATE maintenance_windows SET starts_at = $2, ends_at = $3, reason = $4, updated_at = now() WHERE id = $1 RETURNING ${COLS}`, [
          id,
          startsAt,
          endsAt,
          dto.reason?.trim() ?? before.reason,
        ]),
      );
      await this.audit.record(m, { action: 'update', entity: 'maintenance_window', entityId: id, schoolId: row.schoolId, before, after: row });
      await this.tell(m, row, 'updated');
      return row;
    });
  }

  /** Ends a window now (a window not yet begun is deleted instead; one over: 409). */
  async end(user: AuthUser, id: string): Promise<MaintenanceWindowView> {
    return this.db.transaction(async (m) => {
      const before = await this.row(m, id, true);
      if (before.status === 'ended') throw Errors.conflict(ErrorCode.MAINTENANCE_WINDOW.OVER, '维护时段已结束', { endsAt: before.endsAt });
      if (before.status === 'upcoming')
        throw Errors.conflict(ErrorCode.MAINTENANCE_WINDOW.NOT_STARTED, '维护时段尚未开始：请删除或修改', { startsAt: before.startsAt });
      const [row] = returningRows<MaintenanceWindowView>(
        await m.query(
          `UPDATE maintenance_windows SET ends_at = GREATEST(now(), starts_at + interval '1 millisecond'), ended_early_at = now(), ended_by = $2, updated_at = now()
            WHERE id = $1 RETURNING ${COLS}`,
          [id, user.id],
        ),
      );
      await this.audit.record(m, { action: 'end', entity: 'maintenance_window', entityId: id, schoolId: row.schoolId, before, after: row });
      await this.tell(m, row, 'ended');
      return row;
    });
  }

  /** Deletes a window that has not begun (one that has is part of the record: 409, end it instead). */
  async delete(id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const before = await this.row(m, id, true);
      if (before.status !== 'upcoming')
        throw Errors.conflict(ErrorCode.MAINTENANCE_WINDOW.STARTED, '维护时段已开始，不能删除；请提前结束', { startsAt: before.startsAt });
      await m.query(`DELETE FROM maintenance_windows WHERE id = $1`, [id]);
      await this.audit.record(m, { action: 'delete', entity: 'maintenance_window', entityId: id, schoolId: before.schoolId, before });
      await this.tell(m, before, 'deleted');
    });
  }

  /** One writer of windows at a time: the overlap check then sees every window committed before it. */
  private async lockWrites(m: EntityManager): Promise<void> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtext('maintenance_windows'))`);
  }

  /**
   * 409 OVERLAP when another window covering any of the same devices overlaps [startsAt, endsAt) or
   * comes within maintenanceMinGapMinutes of it: a district window meets every window; a school's
   * meets the district's, its own and its devices'; a device's meets the district's, its school's
   * and its own. Windows over before (startsAt − gap) do not matter, ended-early ones count to their real end.
   */
  private async refuseOverlap(
    m: EntityManager,
    w: { schoolId: string | null; deviceId: string | null; startsAt: string; endsAt: string; except?: string },
  ): Promise<void> {
    const gap = this.config.liveness.maintenanceMinGapMinutes;
    const [other] = (await m.query(
      `SELECT id, school_id AS "schoolId", device_id AS "deviceId", starts_at AS "startsAt", ends_at AS "endsAt" FROM maintenance_windows
        WHERE ($1::uuid IS NULL OR school_id IS NULL OR (school_id = $1 AND ($2::uuid IS NULL OR device_id IS NULL OR device_id = $2)))
          AND starts_at < $4::timestamptz + make_interval(mins => $5) AND ends_at > $3::timestamptz - make_interval(mins => $5)
          AND ($6::uuid IS NULL OR id <> $6)
        ORDER BY starts_at LIMIT 1`,
      [w.schoolId, w.deviceId, w.startsAt, w.endsAt, gap, w.except ?? null],
    )) as { id: string; schoolId: string | null; deviceId: string | null; startsAt: Date; endsAt: Date }[];
    if (other)
      throw Errors.conflict(
        ErrorCode.MAINTENANCE_WINDOW.OVERLAP,
        `与维护时段 ${other.id} 重叠或相隔不足 ${gap} 分钟（同一设备的维护不得连续超过 ${this.config.liveness.maintenanceMaxHours} 小时）：请修改该时段`,
        { windowId: other.id, schoolId: other.schoolId, deviceId: other.deviceId, startsAt: other.startsAt, endsAt: other.endsAt, minGapMinutes: gap },
      );
  }

  /** Field errors of a window's times against the configured bounds. */
  private bounds(startsAt: string, endsAt: string, now: number, opts: { checkStart: boolean }): FieldError[] {
    const cfg = this.config.liveness;
    const s = Date.parse(startsAt);
    const e = Date.parse(endsAt);
    const out: FieldError[] = [];
    if (opts.checkStart) {
      if (s < now - cfg.maintenanceMaxStartPastMinutes * 60_000)
        out.push({ field: 'startsAt', reason: `must not be more than ${cfg.maintenanceMaxStartPastMinutes} minutes in the past` });
      if (s > now + cfg.maintenanceMaxLeadDays * 86_400_000) out.push({ field: 'startsAt', reason: `at most ${cfg.maintenanceMaxLeadDays} days ahead` });
    }
    if (e <= s) out.push({ field: 'endsAt', reason: 'must be after startsAt' });
    else if (e - s > cfg.maintenanceMaxHours * 3_600_000) out.push({ field: 'endsAt', reason: `at most ${cfg.maintenanceMaxHours} hours after startsAt` });
    return out;
  }

  private async row(m: EntityManager | DataSource, id: string, lock = false): Promise<MaintenanceWindowView> {
    const [row] = (await m.query(`SELECT ${COLS} FROM maintenance_windows WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])) as MaintenanceWindowView[];
    if (!row) throw Errors.notFound(ErrorCode.MAINTENANCE_WINDOW.NOT_FOUND, id);
    return row;
  }

  private tell(m: EntityManager, w: MaintenanceWindowView, change: 'created' | 'updated' | 'ended' | 'deleted') {
    return this.events.append(m, {
      type: 'device.maintenance',
      schoolId: w.schoolId,
      payload: { windowId: w.id, schoolId: w.schoolId, deviceId: w.deviceId, change },
    });
  }
}
