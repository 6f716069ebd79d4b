import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { LivenessConfig } from '../../config/sections';
import { returningRows } from '../../infra/database/returning';
import { type ConsoleEventInput, type ConsoleEventMap, ConsoleEventsService } from '../console-events';
import type { DeviceStatus, WatchedDeviceKind } from '../registry';

/** A device's recorded status change (the registry row has already been updated). */
export interface Transition {
  deviceId: string;
  kind: WatchedDeviceKind;
  schoolId: string;
  from: DeviceStatus;
  to: DeviceStatus;
  at: Date;
}

/** A maintenance window in force (the columns transitions need). */
interface WindowRow {
  id: string;
  school_id: string | null;
  device_id: string | null;
  starts_at: Date;
  ends_at: Date;
}

/** The window covering a device at `at` (its own, its school's or a district-wide one; the one ending last), if any. */
export function coveringWindow(windows: WindowRow[], d: { deviceId: string; schoolId: string }, at: Date): WindowRow | undefined {
  let best: WindowRow | undefined;
  for (const w of windows) {
    if (!(w.starts_at <= at && at < w.ends_at)) continue;
    const covers = w.device_id ? w.device_id === d.deviceId : w.school_id === null || w.school_id === d.schoolId;
    if (covers && (!best || w.ends_at > best.ends_at)) best = w;
  }
  return best;
}

/**
 * What follows from device status transitions, in Postgres: the history rows, per-school outages
 * (open / update / auto-close, overdue faults), flapping, and the console events that report
 * them — one per school, never one per device. The liveness hot path and the sweep decide the
 * transitions (DeviceHealthService); this records them in the caller's transaction.
 * A device going offline inside a maintenance window (its own, its school's, the district's) opens
 * no fault and no outage: it is held in `device_maintenance_offline` (the console shows it as
 * maintenance), and housekeeping opens its fault once no window covers it and it is still offline.
 */
@Injectable()
export class DeviceTransitionsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly consoleEvents: ConsoleEventsService,
  ) {}

  private get cfg(): LivenessConfig {
    return this.config.liveness;
  }

  /**
   * Records transitions with everything that follows from them, in the caller's transaction:
   * history rows, per-school outages (open / update / auto-close), flapping detection and one
   * console event per school — never one per device.
   */
  async applyTransitions(m: EntityManager, ts: Transition[], now: Date): Promise<void> {
    if (ts.length === 0) return;
    await m.query(
      `INSERT INTO device_transitions (device_id, kind, school_id, from_status, to_status, at)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])`,
      [ts.map((t) => t.deviceId), ts.map((t) => t.kind), ts.map((t) => t.schoolId), ts.map((t) => t.from), ts.map((t) => t.to), ts.map((t) => t.at)],
    );
    const offline = ts.filter((t) => t.to === 'offline');
    const up = ts.filter((t) => t.to === 'online');
    const touched = new Set<string>();
    // Inside a maintenance window: held aside, no fault (windows in force are few: read once, matched here).
    const inWindow = new Map<string, string>();
    if (offline.length) {
      const times = offline.map((t) => t.at.getTime());
      const windows: WindowRow[] = await m.query(
        `SELECT id, school_id, device_id, starts_at, ends_at FROM maintenance_windows WHERE starts_at <= $2 AND ends_at > $1`,
        [new Date(Math.min(...times)), new Date(Math.max(...times))],
      );
      if (windows.length)
        for (const t of offline) {
          const w = coveringWindow(windows, t, t.at);
          if (w) inWindow.set(t.deviceId, w.id);
        }
    }
    const held = offline.filter((t) => inWindow.has(t.deviceId));
    const down = offline.filter((t) => !inWindow.has(t.deviceId));
    if (held.length)
      await m.query(
        `INSERT INTO device_maintenance_offline (device_id, kind, school_id, since, window_id)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::uuid[])
         ON CONFLICT (device_id) DO UPDATE SET since = EXCLUDED.since, window_id = EXCLUDED.window_id`,
        [held.map((t) => t.deviceId), held.map((t) => t.kind), held.map((t) => t.schoolId), held.map((t) => t.at), held.map((t) => inWindow.get(t.deviceId))],
      );
    if (down.length) for (const id of await this.openFaults(m, down, now)) touched.add(id);
    if (up.length) {
      await m.query(`DELETE FROM device_maintenance_offline WHERE device_id = ANY($1::uuid[])`, [up.map((t) => t.deviceId)]);
      const rows = returningRows<{ outage_id: string }>(
        await m.query(
          `UPDATE device_faults f SET recovered_at = v.at FROM unnest($1::uuid[], $2::timestamptz[]) AS v(device_id, at)
          WHERE f.device_id = v.device_id AND f.recovered_at IS NULL RETURNING f.outage_id`,
          [up.map((t) => t.deviceId), up.map((t) => t.at)],
        ),
      );
      for (const r of rows) touched.add(r.outage_id);
    }
    const outages = await this.refreshOutages(m, touched, now);
    const flapping = await this.detectFlapping(m, ts, now);

    const events: ConsoleEventInput[] = [];
    const bySchool = new Map<string, Transition[]>();
    for (const t of ts) (bySchool.get(t.schoolId) ?? bySchool.set(t.schoolId, []).get(t.schoolId)!).push(t);
    for (const [schoolId, list] of bySchool) {
      events.push({
        type: 'device.status_batch',
        schoolId,
        payload: {
          changes: list.map((t) => ({
            deviceId: t.deviceId,
            kind: t.kind,
            schoolId,
            from: t.from,
            to: t.to,
            at: t.at.toISOString(),
            ...(inWindow.has(t.deviceId) ? { maintenance: true } : {}),
          })),
        },
      });
    }
    for (const o of outages) {
      const mine = ts.filter((t) => t.schoolId === o.school_id);
      events.push({
        type: 'device.outage',
        schoolId: o.school_id,
        payload: {
          ...outagePayload(o),
          wentOffline: mine.filter((t) => t.to === 'offline').map((t) => t.deviceId),
          recovered: mine.filter((t) => t.to === 'online').map((t) => t.deviceId),
        },
      });
    }
    for (const [schoolId, devices] of flapping) events.push({ type: 'device.flapping', schoolId, payload: { schoolId, devices } });
    await this.consoleEvents.append(m, events);
  }

  /** Opens faults (and the school's outage when none is open) for devices gone offline; the outages touched. */
  private async openFaults(m: EntityManager, down: { deviceId: string; kind: string; schoolId: string; at: Date }[], now: Date): Promise<string[]> {
    const schools = [...new Set(down.map((t) => t.schoolId))];
    await m.query(
      `INSERT INTO device_outages (school_id, opened_at) SELECT s, $2 FROM unnest($1::uuid[]) s
       ON CONFLICT (school_id) WHERE closed_at IS NULL DO NOTHING`,
      [schools, now],
    );
    const rows: { outage_id: string }[] = await m.query(
      `INSERT INTO device_faults (outage_id, device_id, kind, school_id, since)
       SELECT o.id, v.device_id, v.kind, v.school_id, v.at
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[]) AS v(device_id, kind, school_id, at)
         JOIN device_outages o ON o.school_id = v.school_id AND o.closed_at IS NULL
       ON CONFLICT (device_id) WHERE recovered_at IS NULL DO NOTHING
       RETURNING outage_id`,
      [down.map((t) => t.deviceId), down.map((t) => t.kind), down.map((t) => t.schoolId), down.map((t) => t.at)],
    );
    return rows.map((r) => r.outage_id);
  }

  /** Recounts the outages touched (offline / affected / peak), closing those with nothing offline. */
  private async refreshOutages(m: EntityManager, touched: Set<string>, now: Date): Promise<OutageRow[]> {
    if (touched.size === 0) return [];
    return returningRows<OutageRow>(
      await m.query(
        `UPDATE device_outages o
          SET offline_count = c.open, affected_count = c.total, peak_count = GREATEST(o.peak_count, c.open), updated_at = $2,
              closed_at = CASE WHEN c.open = 0 THEN GREATEST($2, o.opened_at) ELSE NULL END
         FROM (SELECT outage_id, count(*) FILTER (WHERE recovered_at IS NULL)::int AS open, count(*)::int AS total
                 FROM device_faults WHERE outage_id = ANY($1::uuid[]) GROUP BY outage_id) c
        WHERE o.id = c.outage_id
        RETURNING o.*`,
        [[...touched], now],
      ),
    );
  }

  /**
   * Devices that went offline inside a maintenance window and are offline still when no window covers
   * them any more (it ended, was ended early or deleted): their faults open now — from the window's end
   * when it ended on time, else from now — with the school's outage and a `device.outage` event.
   * Locks the rows it converts (a device coming online meanwhile deletes its row first: it is skipped).
   */
  private async maintenanceOver(m: EntityManager, now: Date): Promise<ConsoleEventInput[]> {
    const over = returningRows<{ device_id: string; kind: string; school_id: string; since: Date }>(
      await m.query(
        `DELETE FROM device_maintenance_offline d USING (
           SELECT o.device_id, LEAST($1::timestamptz, COALESCE((SELECT w.ends_at FROM maintenance_windows w WHERE w.id = o.window_id), $1::timestamptz)) AS since
             FROM device_maintenance_offline o
            WHERE NOT EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.starts_at <= $1 AND w.ends_at > $1
                                AND (w.device_id = o.device_id OR (w.device_id IS NULL AND (w.school_id IS NULL OR w.school_id = o.school_id))))
            ORDER BY o.device_id LIMIT 10000 FOR UPDATE OF o) x
          WHERE d.device_id = x.device_id
          RETURNING d.device_id, d.kind, d.school_id, x.since`,
        [now],
      ),
    );
    if (over.length === 0) return [];
    const down = over.map((r) => ({ deviceId: r.device_id, kind: r.kind, schoolId: r.school_id, at: new Date(r.since) }));
    const outages = await this.refreshOutages(m, new Set(await this.openFaults(m, down, now)), now);
    return outages.map((o): ConsoleEventInput<'device.outage'> => ({
      type: 'device.outage',
      schoolId: o.school_id,
      payload: { ...outagePayload(o), wentOffline: down.filter((d) => d.schoolId === o.school_id).map((d) => d.deviceId), recovered: [] },
    }));
  }

  /**
   * A device that went offline more than flapCount times within flapWindowMinutes is flagged;
   * only the first detection of an episode is returned (and reported), later bounces just
   * update the flag. The flag clears once the device stays quiet for a window (housekeeping).
   */
  private async detectFlapping(m: EntityManager, ts: Transition[], now: Date): Promise<Map<string, { deviceId: string; kind: string; bounces: number }[]>> {
    const out = new Map<string, { deviceId: string; kind: string; bounces: number }[]>();
    const ids = [...new Set(ts.map((t) => t.deviceId))];
    const windowStart = new Date(now.getTime() - this.cfg.flapWindowMinutes * 60_000);
    const rows: { device_id: string; kind: string; school_id: string; bounces: number; last: Date; inserted: boolean }[] = await m.query(
      `INSERT INTO device_flapping (device_id, kind, school_id, since, last_bounce_at, bounces)
       SELECT device_id, min(kind), min(school_id::text)::uuid, $4, max(at), count(*)::int
         FROM device_transitions
        WHERE device_id = ANY($1::uuid[]) AND to_status = 'offline' AND at > $2
        GROUP BY device_id HAVING count(*) > $3
       ON CONFLICT (device_id) DO UPDATE SET last_bounce_at = EXCLUDED.last_bounce_at, bounces = EXCLUDED.bounces
       RETURNING device_id, kind, school_id, bounces, (xmax = 0) AS inserted`,
      [ids, windowStart, this.cfg.flapCount, now],
    );
    for (const r of rows) {
      if (!r.inserted) continue;
      (out.get(r.school_id) ?? out.set(r.school_id, []).get(r.school_id)!).push({ deviceId: r.device_id, kind: r.kind, bounces: r.bounces });
    }
    return out;
  }

  /**
   * Flags faults open past faultOverdueHours (GB/T 29315), forgets flapping that calmed down, and
   * opens the faults of devices still offline after their maintenance window.
   */
  async housekeeping(now: Date): Promise<number> {
    return this.db.transaction(async (m) => {
      const windowStart = new Date(now.getTime() - this.cfg.flapWindowMinutes * 60_000);
      await m.query(`DELETE FROM device_flapping WHERE last_bounce_at < $1`, [windowStart]);
      await this.consoleEvents.append(m, await this.maintenanceOver(m, now));
      const overdueBefore = new Date(now.getTime() - this.cfg.faultOverdueHours * 3_600_000);
      const faults = returningRows<{ outage_id: string; device_id: string; kind: string }>(
        await m.query(
          `UPDATE device_faults SET overdue_at = $1 WHERE recovered_at IS NULL AND overdue_at IS NULL AND since <= $2 RETURNING outage_id, device_id, kind`,
          [now, overdueBefore],
        ),
      );
      if (faults.length === 0) return 0;
      const outages = returningRows<OutageRow>(
        await m.query(`UPDATE device_outages SET overdue_at = COALESCE(overdue_at, $2), updated_at = $2 WHERE id = ANY($1::uuid[]) RETURNING *`, [
          [...new Set(faults.map((f) => f.outage_id))],
          now,
        ]),
      );
      await this.consoleEvents.append(
        m,
        outages.map((o): ConsoleEventInput<'device.outage'> => ({
          type: 'device.outage',
          schoolId: o.school_id,
          payload: {
            ...outagePayload(o),
            newlyOverdue: faults.filter((f) => f.outage_id === o.id).map((f) => ({ deviceId: f.device_id, kind: f.kind })),
          },
        })),
      );
      return faults.length;
    });
  }
}

export interface OutageRow {
  id: string;
  school_id: string;
  opened_at: Date;
  closed_at: Date | null;
  offline_count: number;
  peak_count: number;
  affected_count: number;
  overdue_at: Date | null;
}

function outagePayload(o: OutageRow): ConsoleEventMap['device.outage'] {
  return {
    schoolId: o.school_id,
    outageId: o.id,
    status: (o.closed_at ? 'closed' : 'open') as 'open' | 'closed',
    offline: o.offline_count,
    peak: o.peak_count,
    affected: o.affected_count,
    openedAt: new Date(o.opened_at).toISOString(),
    closedAt: o.closed_at ? new Date(o.closed_at).toISOString() : null,
    overdue: o.overdue_at !== null,
  };
}
