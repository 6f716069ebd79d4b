import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { type DeviceStatus, DeviceStatusService, RegistryService, WatchedDeviceKind } from '../registry';
import { DeviceHealthService } from './device-health.service';
import { MaintenanceWindowsService } from './maintenance-windows.service';
import type { OutageRow } from './device-transitions.service';

type Counts = { online: number; offline: number; unknown: number; fault: number; total: number; onlineRate: number | null };
const emptyCounts = (): Counts => ({ online: 0, offline: 0, unknown: 0, fault: 0, total: 0, onlineRate: null });
function addCount(c: Counts, status: DeviceStatus, n: number): void {
  c[status] += n;
  c.total += n;
}
const finish = <T extends Counts>(c: T): T => ({ ...c, onlineRate: c.total ? round4(c.online / c.total) : null });
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/** Read side of device liveness: summaries and pages (never the whole fleet), history, faults, maintenance windows (online time: OnlineTimeService). */
@Injectable()
export class DeviceHealthQueries {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly statuses: DeviceStatusService,
    private readonly health: DeviceHealthService,
    private readonly maintenance: MaintenanceWindowsService,
  ) {}

  /** District (or one school's) counts with online rate per zone and a page of schools, worst first. */
  async summary(filter: { schoolId?: string; zoneId?: string }, limit = 50, offset = 0) {
    const rows = await this.statuses.deviceStatusCounts({ schoolId: filter.schoolId });
    const total = emptyCounts();
    const zones = new Map<string, Counts & { zoneId: string | null }>();
    const schools = new Map<string, Counts & { schoolId: string; name: string; zoneId: string | null }>();
    for (const r of rows) {
      if (filter.zoneId && r.zoneId !== filter.zoneId) continue;
      addCount(total, r.status, r.n);
      const zk = r.zoneId ?? '';
      if (!zones.has(zk)) zones.set(zk, { ...emptyCounts(), zoneId: r.zoneId });
      addCount(zones.get(zk)!, r.status, r.n);
      if (!schools.has(r.schoolId)) schools.set(r.schoolId, { ...emptyCounts(), schoolId: r.schoolId, name: r.schoolName, zoneId: r.zoneId });
      addCount(schools.get(r.schoolId)!, r.status, r.n);
    }
    const schoolList = [...schools.values()].map(finish).sort((a, b) => (a.onlineRate ?? 1) - (b.onlineRate ?? 1) || a.name.localeCompare(b.name));
    const [{ open }] = await this.db.query(
      `SELECT count(*)::int AS open FROM device_outages WHERE closed_at IS NULL AND ($1::uuid IS NULL OR school_id = $1)`,
      [filter.schoolId ?? null],
    );
    const inForce = await this.maintenance.inForce(filter.schoolId ?? null, 20);
    return {
      totals: finish(total),
      openOutages: open as number,
      /** Windows in force now (the first 20, ending soonest first) and the devices offline under them (maintenance, not outages). */
      maintenance: { windows: inForce.windows, windowsTotal: inForce.total, devicesOffline: inForce.devicesOffline },
      zones: [...zones.values()].map(finish),
      schools: { items: schoolList.slice(offset, offset + limit), total: schoolList.length, limit, offset },
    };
  }

  /** One school: counts, its open outage with the offline devices, devices flagged as flapping. */
  async school(schoolId: string) {
    await this.registry.school(schoolId);
    const summary = await this.summary({ schoolId }, 1, 0);
    const [outage]: OutageRow[] = await this.db.query(`SELECT * FROM device_outages WHERE school_id = $1 AND closed_at IS NULL`, [schoolId]);
    const flapping: FlappingView[] = await this.db.query(
      `SELECT device_id AS "deviceId", kind, since, last_bounce_at AS "lastBounceAt", bounces FROM device_flapping WHERE school_id = $1 ORDER BY since LIMIT 500`,
      [schoolId],
    );
    return {
      schoolId,
      counts: summary.totals,
      openOutage: outage ? await this.outageWithFaults(outage) : null,
      flapping,
    };
  }

  async devices(filter: { schoolId?: string; status?: DeviceStatus; kind?: WatchedDeviceKind }, limit = 50, offset = 0) {
    const page = await this.statuses.deviceStatusPage(filter, limit, offset);
    const [seen, maint] = await Promise.all([
      this.health.lastSeen(page.items),
      this.maintenance.offlineUnderMaintenance(page.items.filter((d) => d.status !== 'online').map((d) => d.id)),
    ]);
    return {
      items: page.items.map((d, i) => ({ ...d, lastHeartbeatAt: seen[i], maintenance: maint.has(d.id) })),
      total: page.total,
      limit,
      offset,
    };
  }

  async device(id: string) {
    const d = await this.statuses.deviceStatus(id);
    if (!d) throw Errors.notFound(ErrorCode.DEVICE.NOT_FOUND, id);
    const [seen] = await this.health.lastSeen([d]);
    const [flap]: { since: Date; bounces: number }[] = await this.db.query(`SELECT since, bounces FROM device_flapping WHERE device_id = $1`, [id]);
    const [fault]: { outageId: string; since: Date; overdueAt: Date | null }[] = await this.db.query(
      `SELECT outage_id AS "outageId", since, overdue_at AS "overdueAt" FROM device_faults WHERE device_id = $1 AND recovered_at IS NULL`,
      [id],
    );
    return { ...d, lastHeartbeatAt: seen, flapping: flap ?? null, openFault: fault ?? null };
  }

  async transitions(f: { deviceId?: string; schoolId?: string; from?: string; to?: string }, limit = 50, offset = 0): Promise<Page<TransitionView>> {
    const where = `WHERE ($1::uuid IS NULL OR device_id = $1) AND ($2::uuid IS NULL OR school_id = $2)
                     AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)`;
    const params = [f.deviceId ?? null, f.schoolId ?? null, f.from ?? null, f.to ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(
        `SELECT id::text, device_id AS "deviceId", kind, school_id AS "schoolId", from_status AS "from", to_status AS "to", at
           FROM device_transitions ${where} ORDER BY at DESC, id DESC LIMIT $5 OFFSET $6`,
        [...params, limit, offset],
      ),
      this.db.query(`SELECT count(*)::int AS total FROM device_transitions ${where}`, params),
    ]);
    return { items, total, limit, offset };
  }

  async outages(f: { schoolId?: string; status?: 'open' | 'closed'; overdue?: boolean }, limit = 50, offset = 0): Promise<Page<OutageView>> {
    const where = `WHERE ($1::uuid IS NULL OR school_id = $1)
                     AND ($2::text IS NULL OR ($2 = 'open') = (closed_at IS NULL))
                     AND ($3::boolean IS NULL OR $3 = (overdue_at IS NOT NULL))`;
    const params = [f.schoolId ?? null, f.status ?? null, f.overdue ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT * FROM device_outages ${where} ORDER BY opened_at DESC LIMIT $4 OFFSET $5`, [...params, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM device_outages ${where}`, params),
    ]);
    return { items: (items as OutageRow[]).map(outageDto), total, limit, offset };
  }

  async outage(id: string): Promise<OutageWithFaults> {
    const [o]: OutageRow[] = await this.db.query(`SELECT * FROM device_outages WHERE id = $1`, [id]);
    if (!o) throw Errors.notFound(ErrorCode.OUTAGE.NOT_FOUND, id);
    return this.outageWithFaults(o);
  }

  private async outageWithFaults(o: OutageRow): Promise<OutageWithFaults> {
    const faults: FaultView[] = await this.db.query(
      `SELECT device_id AS "deviceId", kind, since, recovered_at AS "recoveredAt", overdue_at AS "overdueAt"
         FROM device_faults WHERE outage_id = $1 ORDER BY (recovered_at IS NULL) DESC, since LIMIT 1000`,
      [o.id],
    );
    return { ...outageDto(o), faults };
  }

  /** Devices offline longer than faultOverdueHours: to be rectified (the patrol capability turns them into tasks). */
  async overdueFaults(f: { schoolId?: string }, limit = 50, offset = 0): Promise<Page<OverdueFaultView>> {
    const where = `WHERE recovered_at IS NULL AND overdue_at IS NOT NULL AND ($1::uuid IS NULL OR school_id = $1)`;
    const [items, [{ total }]] = await Promise.all([
      this.db.query(
        `SELECT device_id AS "deviceId", kind, school_id AS "schoolId", outage_id AS "outageId", since, overdue_at AS "overdueAt"
           FROM device_faults ${where} ORDER BY since LIMIT $2 OFFSET $3`,
        [f.schoolId ?? null, limit, offset],
      ),
      this.db.query(`SELECT count(*)::int AS total FROM device_faults ${where}`, [f.schoolId ?? null]),
    ]);
    return { items, total, limit, offset };
  }

  /**
   * All open faults past liveness.faultOverdueHours at `now` (devices offline > 24 h by default),
   * optionally for some schools; does not wait for the sweep to have flagged them.
   */
  overdueFaultRows(now: Date, schoolIds?: string[]): Promise<{ deviceId: string; kind: WatchedDeviceKind; schoolId: string; since: Date }[]> {
    const cutoff = new Date(now.getTime() - this.health.cfg.faultOverdueHours * 3_600_000);
    return this.db.query(
      `SELECT device_id AS "deviceId", kind, school_id AS "schoolId", since FROM device_faults
        WHERE recovered_at IS NULL AND since <= $1 AND ($2::uuid[] IS NULL OR school_id = ANY($2)) ORDER BY since`,
      [cutoff, schoolIds ?? null],
    );
  }
}

function outageDto(o: OutageRow): OutageView {
  return {
    id: o.id,
    schoolId: o.school_id,
    status: o.closed_at ? 'closed' : 'open',
    openedAt: o.opened_at,
    closedAt: o.closed_at,
    offline: o.offline_count,
    peak: o.peak_count,
    affected: o.affected_count,
    overdue: o.overdue_at !== null,
    overdueAt: o.overdue_at,
  };
}

/** A school's outage: some of its devices offline at once (device_outages). */
export interface OutageView {
  id: string;
  schoolId: string;
  status: 'open' | 'closed';
  openedAt: Date;
  closedAt: Date | null;
  /** Devices offline now / at most at once / ever during the outage. */
  offline: number;
  peak: number;
  affected: number;
  overdue: boolean;
  overdueAt: Date | null;
}

/** A device's stretch offline within an outage (device_faults). */
export interface FaultView {
  deviceId: string;
  kind: WatchedDeviceKind;
  since: Date;
  recoveredAt: Date | null;
  overdueAt: Date | null;
}

export interface OutageWithFaults extends OutageView {
  faults: FaultView[];
}

/** A device that went up and down too often (device_flapping). */
export interface FlappingView {
  deviceId: string;
  kind: WatchedDeviceKind;
  since: Date;
  lastBounceAt: Date;
  bounces: number;
}

/** One status change of a device (device_transitions); the id is a 64-bit serial, as a string. */
export interface TransitionView {
  id: string;
  deviceId: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  from: DeviceStatus;
  to: DeviceStatus;
  at: Date;
}

/** An open fault past liveness.faultOverdueHours. */
export interface OverdueFaultView {
  deviceId: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  outageId: string;
  since: Date;
  overdueAt: Date;
}
