import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AuthUser } from '../../infra/access/roles';
import { assertRecordInScope, effectiveSchoolFilter } from '../../infra/access/scope';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { assertRole, READ_ROLES } from './alarms.access';
import type { IncidentStatus, IncidentType, Outcome, Priority } from './alarms.constants';
import { IncidentRow, IncidentView, toView } from './incident-row';
import type { TimelineEntryView } from './incident-timeline';

export interface IncidentListQuery {
  schoolId?: string;
  zoneId?: string;
  status?: IncidentStatus[];
  type?: IncidentType;
  priority?: Priority;
  outcome?: Outcome[];
  /** Words searched in school name, place, notes (also those added later), cancel reason and people's names; every word must match. */
  q?: string;
  drill?: boolean;
  from?: string;
  to?: string;
  limit?: number;
  offset?: number;
}

/** An incident as a forwarder upward reads it (IncidentQueriesService.forForwarding). */
/** A row of GET /incidents/stats (by school, zone or day; the other keys null): durations in ms from the first press, null without data. */
export interface IncidentStatsRow {
  schoolId: string | null;
  schoolName: string | null;
  zoneId: string | null;
  day: string | null;
  count: number;
  closed: number;
  falseAlarms: number;
  toConsoleP50: number | null;
  toConsoleP90: number | null;
  toAcknowledgedP50: number | null;
  toAcknowledgedP90: number | null;
  toRelayedP50: number | null;
  toRelayedP90: number | null;
  toOnSceneP50: number | null;
  toOnSceneP90: number | null;
  toResolvedP50: number | null;
  toResolvedP90: number | null;
}

export interface ForwardedIncident {
  id: string;
  type: string;
  priority: string;
  source: string;
  firstPressAt: Date;
  note: string;
  schoolName: string;
  location: string;
  channelId: string | null;
}

/** Reads of incidents within the user's school scope: one with its timeline, pages, response-time statistics. */
@Injectable()
export class IncidentQueriesService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * How well alarms are getting out (for the console's degraded-state banner): `queueBehind`, outbox
   * jobs (escalation timers, police relay, notices) due more than `behindSeconds` ago and not done; `policeRelayFailing`, alarms of the last day the police endpoint has not taken
   * after a failed attempt (or flagged late). District-wide counts, no access check: callers decide who sees them.
   */
  async deliveryHealth(behindSeconds: number): Promise<{ queueBehind: number; policeRelayFailing: number }> {
    const [r] = (await this.db.query(
      `SELECT (SELECT count(*)::int FROM alarm_outbox WHERE done_at IS NULL AND available_at < now() - make_interval(secs => $1)) AS "queueBehind",
              (SELECT count(*)::int FROM incidents WHERE relay_required AND relay_delivered_at IS NULL AND status <> 'cancelled'
                 AND (relay_attempts >= 2 OR relay_late) AND first_press_at > now() - interval '1 day') AS "policeRelayFailing"`,
      [behindSeconds],
    )) as { queueBehind: number; policeRelayFailing: number }[];
    return r;
  }

  /**
   * Incidents raised (first press) after `since`, and after `after` in (first press, id) order when
   * given (a keyset, so a caller walks a burst page by page), not drills, of these sources — oldest
   * first, at most `limit`: for forwarders that keep their own record of what they sent (the GB/T
   * 28181 cascade to a superior platform, issue 16 §7). District-wide, no access check.
   */
  async raisedSince(since: Date, after: { at: Date; id: string } | null, sources: string[], limit: number): Promise<{ id: string; firstPressAt: Date }[]> {
    return this.db.query(
      `SELECT id, first_press_at AS "firstPressAt" FROM incidents
        WHERE first_press_at > $1 AND ($2::timestamptz IS NULL OR (first_press_at, id) > ($2, $3::uuid)) AND NOT drill AND source = ANY($4::text[])
        ORDER BY first_press_at, id LIMIT $5`,
      [since, after?.at ?? null, after?.id ?? null, sources, limit],
    );
  }

  /** What an alarm forwarded upward says of these incidents (the camera's GB/T 28181 channel id when raised by one). */
  async forForwarding(ids: string[]): Promise<ForwardedIncident[]> {
    if (ids.length === 0) return [];
    return this.db.query(
      `SELECT i.id, i.type, i.priority, i.source, i.first_press_at AS "firstPressAt", i.note, i.school_name AS "schoolName", i.location,
              c.channel_id AS "channelId"
         FROM incidents i LEFT JOIN cameras c ON c.id = i.camera_id WHERE i.id = ANY($1::uuid[])`,
      [ids],
    );
  }

  async get(user: AuthUser, id: string) {
    assertRole(user, READ_ROLES);
    const [row] = (await this.db.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
    const missing = () => Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    if (!row) throw missing();
    assertRecordInScope(user, row.school_id, missing);
    const timeline: TimelineEntryView[] = await this.db.query(
      `SELECT at, actor_type AS "actorType", actor_id AS "actorId", actor_name AS "actorName", action, note, data FROM incident_timeline WHERE incident_id = $1 ORDER BY id`,
      [id],
    );
    return { ...toView(row), timeline };
  }

  async list(user: AuthUser, q: IncidentListQuery, maxPage: number, defaultPage: number): Promise<Page<IncidentView>> {
    assertRole(user, READ_ROLES);
    const [w, params] = this.filter(user, q);
    const limit = Math.min(q.limit ?? defaultPage, maxPage);
    const offset = q.offset ?? 0;
    const [{ total }] = await this.db.query(`SELECT count(*)::int AS total FROM incidents ${w}`, params);
    const rows = (await this.db.query(
      `SELECT * FROM incidents ${w} ORDER BY first_press_at DESC, id LIMIT ${limit} OFFSET ${offset}`,
      params,
    )) as IncidentRow[];
    return { items: rows.map(toView), total, limit, offset };
  }

  /**
   * Every incident the filters match (oldest first), for an export: at most `maxRows`, else a
   * field-level 400 on `from` asking for a narrower range (a partial file would pass for a whole one).
   */
  async all(user: AuthUser, q: IncidentListQuery, maxRows: number): Promise<IncidentView[]> {
    assertRole(user, READ_ROLES);
    const [w, params] = this.filter(user, q);
    const [{ total }] = await this.db.query(`SELECT count(*)::int AS total FROM incidents ${w}`, params);
    if (total > maxRows)
      throw Errors.validation([{ field: 'from', reason: `${total} incidents match, more than ${maxRows} (alarms.exportMaxRows): narrow the time range` }]);
    const rows = (await this.db.query(`SELECT * FROM incidents ${w} ORDER BY first_press_at, id`, params)) as IncidentRow[];
    return rows.map(toView);
  }

  /** The WHERE clause and parameters of a list query, within the user's school scope. */
  private filter(user: AuthUser, q: IncidentListQuery): [string, unknown[]] {
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (schoolId) add('school_id = ?', schoolId);
    if (q.zoneId) add('zone_id = ?', q.zoneId);
    if (q.status?.length) add('status = ANY(?)', q.status);
    if (q.type) add('type = ?', q.type);
    if (q.priority) add('priority = ?', q.priority);
    if (q.outcome?.length) add('outcome = ANY(?)', q.outcome);
    if (q.drill !== undefined) add('drill = ?', q.drill);
    if (q.from) add('first_press_at >= ?', q.from);
    if (q.to) add('first_press_at < ?', q.to);
    for (const word of (q.q ?? '').split(/\s+/).filter(Boolean).slice(0, 8)) {
      // LIKE wildcards in what was typed are literal text; notes added later (the timeline) count too.
      params.push(`%${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      const p = `$${params.length}`;
      where.push(
        `(concat_ws(' ', school_name, location, note, cancel_reason, raised_by_name, acknowledged_by_name, resolved_by_name) ILIKE ${p} ESCAPE '\\'` +
          ` OR EXISTS (SELECT 1 FROM incident_timeline t WHERE t.incident_id = incidents.id AND t.note ILIKE ${p} ESCAPE '\\'))`,
      );
    }
    return [where.length ? `WHERE ${where.join(' AND ')}` : '', params];
  }

  /**
   * Per-step durations (ms from the first press) at p50/p90, per school, per zone and per day
   * (Asia/Shanghai), with `count` (alarms), `closed` (resolved with an outcome) and `falseAlarms`
   * (outcome false_alarm): the false-alarm rate is falseAlarms / closed. Drills and test alarms stay out.
   */
  async stats(user: AuthUser, q: { from?: string; to?: string; schoolId?: string }) {
    assertRole(user, READ_ROLES);
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    const from = q.from ?? new Date(Date.now() - 30 * 86400_000).toISOString();
    const to = q.to ?? new Date(Date.now() + 60_000).toISOString();
    const steps = {
      toConsole: 'shown_at',
      toAcknowledged: 'acknowledged_at',
      toRelayed: 'relay_delivered_at',
      toOnScene: 'on_scene_at',
      toResolved: 'resolved_at',
    };
    const cols = Object.entries(steps)
      .map(([k, c]) => `EXTRACT(EPOCH FROM ${c} - first_press_at) * 1000 AS "${k}"`)
      .join(', ');
    const aggs = Object.keys(steps)
      .map((k) => `percentile_cont(0.5) WITHIN GROUP (ORDER BY "${k}") AS "${k}P50", percentile_cont(0.9) WITHIN GROUP (ORDER BY "${k}") AS "${k}P90"`)
      .join(', ');
    const rows: Record<string, unknown>[] = await this.db.query(
      `WITH d AS (
         SELECT school_id, zone_id, school_name, (first_press_at AT TIME ZONE 'Asia/Shanghai')::date::text AS day, outcome, ${cols}
         FROM incidents
         WHERE NOT drill AND coalesce(outcome, '') NOT IN ('drill', 'test')
           AND first_press_at >= $1 AND first_press_at < $2 AND ($3::uuid IS NULL OR school_id = $3)
       )
       SELECT CASE WHEN GROUPING(school_id, school_name) = 0 THEN 'school' WHEN GROUPING(zone_id) = 0 THEN 'zone' ELSE 'day' END AS dim,
              school_id AS "schoolId", school_name AS "schoolName", zone_id AS "zoneId", day, count(*)::int AS count,
              count(*) FILTER (WHERE outcome IS NOT NULL)::int AS closed, count(*) FILTER (WHERE outcome = 'false_alarm')::int AS "falseAlarms", ${aggs}
       FROM d GROUP BY GROUPING SETS ((school_id, school_name), (zone_id), (day))
       ORDER BY dim, "schoolName", day`,
      [from, to, schoolId ?? null],
    );
    const pick = (dim: string): IncidentStatsRow[] =>
      rows
        .filter((r) => r.dim === dim)
        .map(
          ({ dim: _d, ...r }) =>
            Object.fromEntries(
              Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /P[59]0$/.test(k) ? Number(v) : v]),
            ) as unknown as IncidentStatsRow,
        );
    return { from, to, unit: 'ms' as const, bySchool: pick('school'), byZone: pick('zone'), byDay: pick('day') };
  }
}
