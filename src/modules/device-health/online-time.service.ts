import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Errors } from '../../infra/http/errors';
import { type DeviceStatus, DeviceStatusService, RegistryService, WatchedDeviceKind } from '../registry';
import { addDays, dayStart, Interval, SchoolCalendar, schoolHours, shanghaiDate, TZ } from '../school-day';
import { changesByDevice, countedWindow, onlineWithin, StatusChange, subtractIntervals } from './online-time';

/** One device's online time in the counted window (milliseconds). */
export interface DeviceOnlineTime {
  id: string;
  kind: WatchedDeviceKind;
  /** Camera name, or alarm button code + location. */
  name: string;
  onlineMs: number;
  windowMs: number;
}

/** A school's devices' online time in school hours on one date, as of an instant. */
export interface SchoolOnlineTime {
  schoolId: string;
  /** School hours that date (Asia/Shanghai); null on a day without school. */
  hours: Interval | null;
  /**
   * What was counted: school hours up to `asOf`; before school hours have begun or without
   * school, the zero-length window at `asOf` (devices are then judged by their state at `asOf`).
   */
  window: Interval;
  /** Devices of each requested kind (0 for a kind not requested). */
  devices: Record<WatchedDeviceKind, number>;
  /** Online milliseconds summed over the devices of each kind; at most devices × window length. */
  onlineMs: Record<WatchedDeviceKind, number>;
  /**
   * Devices not online throughout the window outside declared maintenance windows (theirs, their
   * school's, the district's), in registry order, uncapped. For a zero-length window: not online
   * at `asOf` and not under maintenance then.
   */
  notAlwaysOnline: DeviceOnlineTime[];
  /**
   * Devices of each kind excused by maintenance (维护中): not online throughout the window, but
   * online whenever no maintenance window covered them (or covered all the window). Not in
   * notAlwaysOnline; still in `devices`.
   */
  inMaintenance: Record<WatchedDeviceKind, number>;
  /** Device-time of each kind covered by maintenance windows (of the devices read one by one), left out of the rate: online / (devices × window − this). */
  maintenanceMs: Record<WatchedDeviceKind, number>;
}

/** The online rate of one school on one day, as the online-rate report gives it. */
export interface DailyOnlineRate {
  date: string;
  schoolDay: boolean;
  /** School hours counted (up to now, minus maintenance windows), in seconds. */
  countedSeconds: number;
  devices: number;
  /** Online device-time / (counted time × devices), 4 decimals; null when nothing was counted. */
  onlineRate: number | null;
}

type TransitionRow = StatusChange & { deviceId: string; schoolId: string; from: DeviceStatus; to: DeviceStatus };

const DAY_MS = 86_400_000;
/** Days one online-rate export may span: each day is one batched pass over the district's devices and transitions. */
export const ONLINE_EXPORT_MAX_DAYS = 31;
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/**
 * The one owner of "online time in school hours" (cameras and alarm buttons): patrol audits,
 * compliance and the online-rate report all count it here, with the same reconstruction
 * (src/modules/device-health/online-time.ts) and the same window (school hours from the
 * school-day kernel, never past the instant judged).
 */
@Injectable()
export class OnlineTimeService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly statuses: DeviceStatusService,
  ) {}

  /**
   * Online time in school hours on `date` (Asia/Shanghai) of every device of `kinds` in
   * `schools`, counted up to `asOf` (see SchoolOnlineTime.window). One result per school.
   *
   * Batched for a district: a handful of queries whatever the number of schools. Only devices
   * that can fall short are read one by one — those not online now and those with a transition
   * since the day began (read up to `now`, so the current status closes each history); every
   * other device was online throughout and is counted per school in SQL. `wholeDistrict`: the
   * schools are the whole registry (no id list is shipped to Postgres). Declared maintenance
   * windows (a device's own, its school's, district-wide) are left out of each device's time, as
   * the online-rate report does: a device offline only while under maintenance is counted in
   * inMaintenance (维护中), not in notAlwaysOnline, and the covered time in maintenanceMs.
   */
  async inSchoolHours(
    schools: (SchoolCalendar & { id: string })[],
    date: string,
    asOf: Date,
    opts: { kinds: readonly WatchedDeviceKind[]; wholeDistrict?: boolean; now?: Date },
  ): Promise<Map<string, SchoolOnlineTime>> {
    const out = new Map<string, SchoolOnlineTime>();
    if (schools.length === 0 || opts.kinds.length === 0) return out;
    const filter = opts.wholeDistrict ? undefined : schools.map((s) => s.id);
    const until = new Date(Math.max(asOf.getTime(), (opts.now ?? new Date()).getTime()) + 1);
    const [changes, buttons, maintenance] = await Promise.all([
      this.transitionsBetween(dayStart(date), until).then((rows) => changesByDevice(rows)),
      opts.kinds.includes('alarm_device') ? this.statuses.alarmDeviceStates(filter) : [],
      this.db.query(
        `SELECT school_id AS "schoolId", device_id AS "deviceId", starts_at AS "startsAt", ends_at AS "endsAt" FROM maintenance_windows
          WHERE starts_at < $2 AND ends_at > $1 AND ($3::uuid[] IS NULL OR school_id IS NULL OR school_id = ANY($3))`,
        [dayStart(date), until, filter ?? null],
      ) as Promise<{ schoolId: string | null; deviceId: string | null; startsAt: Date; endsAt: Date }[]>,
    ]);
    // Maintenance spans: district-wide, per school (device_id null), per device.
    const span = (w: { startsAt: Date; endsAt: Date }): [number, number] => [new Date(w.startsAt).getTime(), new Date(w.endsAt).getTime()];
    const district: [number, number][] = [];
    const bySchool = new Map<string, [number, number][]>();
    const byDevice = new Map<string, [number, number][]>();
    const add = (m: Map<string, [number, number][]>, k: string, s: [number, number]) => (m.get(k) ?? m.set(k, []).get(k)!).push(s);
    for (const w of maintenance) {
      if (w.deviceId) add(byDevice, w.deviceId, span(w));
      else if (w.schoolId) add(bySchool, w.schoolId, span(w));
      else district.push(span(w));
    }
    const census = opts.kinds.includes('camera') ? await this.statuses.cameraCensus(filter, [...changes.keys()]) : null;

    for (const s of schools) {
      const hours = schoolHours(s.timetable, s.calendar, date);
      out.set(s.id, {
        schoolId: s.id,
        hours,
        window: countedWindow(hours, asOf),
        devices: { camera: census?.counts.get(s.id) ?? 0, alarm_device: 0 },
        onlineMs: { camera: 0, alarm_device: 0 },
        notAlwaysOnline: [],
        inMaintenance: { camera: 0, alarm_device: 0 },
        maintenanceMs: { camera: 0, alarm_device: 0 },
      });
    }
    const watched = new Map<string, Record<WatchedDeviceKind, number>>();
    const watch = (d: { id: string; kind: WatchedDeviceKind; schoolId: string; name: string; status: string }) => {
      const o = out.get(d.schoolId);
      if (!o) return;
      const history = changes.get(d.id) ?? [];
      const r = onlineWithin(d.status, history, o.window.start, o.window.end);
      const w = watched.get(d.schoolId) ?? watched.set(d.schoolId, { camera: 0, alarm_device: 0 }).get(d.schoolId)!;
      w[d.kind]++;
      const holes = [...district, ...(bySchool.get(d.schoolId) ?? []), ...(byDevice.get(d.id) ?? [])];
      if (r.onlineThroughout || holes.length === 0) {
        o.onlineMs[d.kind] += r.onlineMs;
        if (!r.onlineThroughout) o.notAlwaysOnline.push({ id: d.id, kind: d.kind, name: d.name, onlineMs: r.onlineMs, windowMs: r.windowMs });
        return;
      }
      // Fell short: judged on the time outside maintenance only (a zero-length window: covered when a window holds `asOf`).
      const [ws, we] = [o.window.start.getTime(), o.window.end.getTime()];
      const parts: [number, number][] = ws === we ? (holes.some(([a, b]) => a <= ws && ws < b) ? [] : [[ws, we]]) : subtractIntervals([[ws, we]], holes);
      let onlineMs = 0;
      let windowMs = 0;
      let throughout = true;
      for (const [a, b] of parts) {
        const p = onlineWithin(d.status, history, new Date(a), new Date(b));
        onlineMs += p.onlineMs;
        windowMs += p.windowMs;
        throughout &&= p.onlineThroughout;
      }
      o.onlineMs[d.kind] += onlineMs;
      o.maintenanceMs[d.kind] += we - ws - windowMs;
      if (throughout) o.inMaintenance[d.kind]++;
      else o.notAlwaysOnline.push({ id: d.id, kind: d.kind, name: d.name, onlineMs, windowMs });
    };
    for (const d of census?.watch ?? []) watch(d);
    for (const b of buttons) {
      const o = out.get(b.schoolId);
      if (o) o.devices.alarm_device++;
      if (b.status !== 'online' || changes.has(b.id)) watch(b);
    }
    // Devices not read one by one were online throughout: each adds the whole window.
    for (const o of out.values()) {
      const w = watched.get(o.schoolId);
      const windowMs = o.window.end.getTime() - o.window.start.getTime();
      for (const k of ['camera', 'alarm_device'] as const) o.onlineMs[k] += (o.devices[k] - (w?.[k] ?? 0)) * windowMs;
    }
    return out;
  }

  /**
   * Online rate of one school per day from `from` to `to` (Asia/Shanghai, inclusive, at most 62
   * days apart): online device-time / device-time over school hours on school days, up to `now`
   * and outside declared maintenance windows (the school's and district-wide ones). Every
   * camera and alarm button of the school counts; a status other than online counts as not
   * online. Days with nothing to count (no school, not yet begun) have rate null.
   * Errors: 404 unknown school; 400 `to` before `from` or more than 62 days after it.
   */
  async dailyRate(
    schoolId: string,
    from: string,
    to: string,
    now = new Date(),
  ): Promise<{ schoolId: string; timezone: string; schoolHours: { start: string; end: string }; days: DailyOnlineRate[] }> {
    const school = await this.registry.school(schoolId);
    const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS;
    if (!(span >= 0)) throw Errors.validation([{ field: 'to', reason: 'must not be before from' }]);
    if (span > 62) throw Errors.validation([{ field: 'to', reason: 'at most 62 days after from' }]);
    const rangeStart = dayStart(from);
    const rangeEnd = dayStart(addDays(to, 1));

    const devices = (await this.statuses.deviceStatusPage({ schoolId }, 100_000, 0)).items;
    const ids = devices.map((d) => d.id);
    const [during, after, maintenance] = await Promise.all([
      this.db.query(
        `SELECT device_id AS "deviceId", from_status AS "from", to_status AS "to", at FROM device_transitions
          WHERE device_id = ANY($1::uuid[]) AND at >= $2 AND at < $3 ORDER BY at, id`,
        [ids, rangeStart, rangeEnd],
      ) as Promise<(StatusChange & { deviceId: string })[]>,
      // The state at the range's end: the `from` of each device's first later transition (else its current status).
      this.db.query(
        `SELECT d.id AS "deviceId", t.from_status AS "from"
           FROM unnest($1::uuid[]) AS d(id)
           CROSS JOIN LATERAL (SELECT from_status FROM device_transitions WHERE device_id = d.id AND at >= $2 ORDER BY at, id LIMIT 1) t`,
        [ids, rangeEnd],
      ) as Promise<{ deviceId: string; from: DeviceStatus }[]>,
      this.db.query(
        `SELECT device_id, starts_at, ends_at FROM maintenance_windows WHERE (school_id = $1 OR school_id IS NULL) AND starts_at < $3 AND ends_at > $2`,
        [schoolId, rangeStart, rangeEnd],
      ) as Promise<{ device_id: string | null; starts_at: Date; ends_at: Date }[]>,
    ]);
    const changes = changesByDevice(during);
    const statusAtEnd = new Map(after.map((r) => [r.deviceId, r.from]));
    const spanOf = (w: { starts_at: Date; ends_at: Date }) => [new Date(w.starts_at).getTime(), new Date(w.ends_at).getTime()] as [number, number];
    // The school's and the district's windows leave the time out for every device; a device's own window for that device.
    const holes = maintenance.filter((w) => w.device_id === null).map(spanOf);
    const deviceHoles = new Map<string, [number, number][]>();
    for (const w of maintenance) if (w.device_id) (deviceHoles.get(w.device_id) ?? deviceHoles.set(w.device_id, []).get(w.device_id)!).push(spanOf(w));

    const days: DailyOnlineRate[] = [];
    for (let date = from; date <= to; date = addDays(date, 1)) {
      const hours = schoolHours(school.timetable, school.calendar, date);
      const w = countedWindow(hours, now);
      const counted = w.end > w.start ? subtractIntervals([[w.start.getTime(), w.end.getTime()]], holes) : [];
      const countedMs = counted.reduce((s, [a, b]) => s + (b - a), 0);
      let onlineMs = 0;
      let denominator = 0;
      if (countedMs > 0)
        for (const d of devices) {
          const own = deviceHoles.get(d.id);
          const mine = own ? subtractIntervals(counted, own) : counted;
          for (const [a, b] of mine) {
            denominator += b - a;
            onlineMs += onlineWithin(statusAtEnd.get(d.id) ?? d.status, changes.get(d.id) ?? [], new Date(a), new Date(b)).onlineMs;
          }
        }
      days.push({
        date,
        schoolDay: hours !== null,
        countedSeconds: Math.round(countedMs / 1000),
        devices: devices.length,
        onlineRate: denominator > 0 ? round4(onlineMs / denominator) : null,
      });
    }
    return { schoolId, timezone: TZ, schoolHours: school.timetable.schoolHours, days };
  }

  /**
   * The online rate of every school of `scope` per day from `from` to `to` (Asia/Shanghai, inclusive, at most
   * ONLINE_EXPORT_MAX_DAYS days; days after today are left out): the online-rate report's figure for many schools at
   * once — online device-time / device-time over school hours up to `now`, maintenance windows left out, cameras and
   * alarm buttons — counted by inSchoolHours (the audits' and compliance's one reconstruction), one batched pass per day.
   * Errors: 400 `to` before `from` or too far after it.
   */
  async dailyRates(
    scope: { zoneId?: string; schoolId?: string },
    from: string,
    to: string,
    now = new Date(),
  ): Promise<{ date: string; school: { id: string; code: string; name: string; zoneId: string | null }; rate: DailyOnlineRate }[]> {
    const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS;
    if (!(span >= 0)) throw Errors.validation([{ field: 'to', reason: 'must not be before from' }]);
    if (span >= ONLINE_EXPORT_MAX_DAYS) throw Errors.validation([{ field: 'to', reason: `at most ${ONLINE_EXPORT_MAX_DAYS} days from from` }]);
    const schools = await this.registry.schoolsIn({ zoneIds: scope.zoneId ? [scope.zoneId] : undefined, ids: scope.schoolId ? [scope.schoolId] : undefined });
    const whole = !scope.zoneId && !scope.schoolId;
    const today = shanghaiDate(now);
    const out: { date: string; school: { id: string; code: string; name: string; zoneId: string | null }; rate: DailyOnlineRate }[] = [];
    // One day at a time: each is a handful of queries over the whole scope, never one per school.
    for (let date = from; date <= to && date <= today; date = addDays(date, 1)) {
      const asOf = date === today ? now : dayStart(addDays(date, 1));
      const day = await this.inSchoolHours(schools, date, asOf, { kinds: ['camera', 'alarm_device'], wholeDistrict: whole, now });
      for (const s of schools) {
        const o = day.get(s.id)!;
        const windowMs = o.window.end.getTime() - o.window.start.getTime();
        const devices = o.devices.camera + o.devices.alarm_device;
        const denominator = devices * windowMs - o.maintenanceMs.camera - o.maintenanceMs.alarm_device;
        out.push({
          date,
          school: { id: s.id, code: s.code, name: s.name, zoneId: s.zoneId ?? null },
          rate: {
            date,
            schoolDay: o.hours !== null,
            countedSeconds: Math.round(windowMs / 1000),
            devices,
            onlineRate: denominator > 0 ? round4((o.onlineMs.camera + o.onlineMs.alarm_device) / denominator) : null,
          },
        });
      }
    }
    return out;
  }

  /** Every status transition in [from, to), oldest first (a day's are bounded by fleet churn, never one row per heartbeat). */
  private transitionsBetween(from: Date, to: Date): Promise<TransitionRow[]> {
    return this.db.query(
      `SELECT device_id AS "deviceId", school_id AS "schoolId", from_status AS "from", to_status AS "to", at
         FROM device_transitions WHERE at >= $1 AND at < $2 ORDER BY at, id`,
      [from, to],
    );
  }
}
