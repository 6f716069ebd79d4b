import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { DrillsConfig } from '../../config/sections';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { ConsoleEventsService, type DrillWindowChange, type DrillWindowItem } from '../console-events';
import { RegistryService } from '../registry';
import { ACT_ROLES, assertRole, RAISE_ROLES, READ_ROLES } from './alarms.access';

export type DrillWindowView = DrillWindowItem;

const COLS = `id, school_id AS "schoolId", starts_at AS "startsAt", ends_at AS "endsAt", note, status,
  created_by_name AS "createdBy", approved_by_name AS "approvedBy", approved_at AS "approvedAt", ended_by_name AS "endedBy", ended_at AS "endedAt"`;

interface Row {
  id: string;
  schoolId: string;
  startsAt: Date;
  endsAt: Date;
  note: string;
  status: 'pending' | 'approved';
  createdBy: string;
  approvedBy: string | null;
  approvedAt: Date | null;
  endedBy: string | null;
  endedAt: Date | null;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/**
 * Drill windows (演练, issue 11 §2): an approved window marks the alarms raised at its school
 * inside it as drills at intake (they show as drills; an operator turns one real with one action,
 * IncidentLifecycleService.makeReal). Because a window silences escalation and police dispatch,
 * it is governed: control-center roles (operator, supervisor, admin) create approved windows;
 * school staff (own school) request one, which stays `pending` — and marks nothing — until a
 * control-center user approves it. A window is bounded by alarms.drills (length, how far back it
 * may start, how far ahead), can be ended early (ends_at moved to now) or deleted (pending:
 * also by the staff of its school), and every change is audited and sent to the consoles
 * (`drill.window`).
 */
@Injectable()
export class DrillWindowsService {
  private readonly cfg: DrillsConfig;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly audit: AuditService,
    private readonly events: ConsoleEventsService,
  ) {
    this.cfg = config.alarms.drills;
  }

  /**
   * Creates a window: approved when a control-center user creates it, pending when school staff
   * request it. 400 (field-level) when it is not bounded: `endsAt` not after `startsAt`, longer than
   * alarms.drills.maxWindowMinutes, `startsAt` more than maxStartPastMinutes ago or more than
   * maxLeadDays ahead, or `endsAt` already past. 409 DRILL_WINDOW.SILENCE_LIMIT when, with it, the
   * school's windows would add up to more than maxWindowMinutes within silencePeriodHours
   * (assertSilenceCap).
   */
  async createDrillWindow(user: AuthUser, dto: { schoolId: string; startsAt: string; endsAt: string; note?: string }): Promise<DrillWindowView> {
    assertRole(user, RAISE_ROLES);
    assertSchoolScope(user, dto.schoolId);
    this.assertBounded(new Date(dto.startsAt), new Date(dto.endsAt), new Date());
    const school = await this.registry.school(dto.schoolId);
    const approved = ACT_ROLES.includes(user.role);
    return this.db.transaction(async (m) => {
      await this.assertSilenceCap(m, dto.schoolId, { startsAt: new Date(dto.startsAt), endsAt: new Date(dto.endsAt) });
      const [row] = (await m.query(
        `INSERT INTO drill_windows (school_id, starts_at, ends_at, note, status, created_by_id, created_by_name, approved_by_id, approved_by_name, approved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $5 = 'approved' THEN now() END)
         RETURNING ${COLS}`,
        [
          dto.schoolId,
          dto.startsAt,
          dto.endsAt,
          dto.note ?? '',
          approved ? 'approved' : 'pending',
          user.id,
          shownName(user),
          approved ? user.id : null,
          approved ? shownName(user) : null,
        ],
      )) as Row[];
      return this.changed(m, row, school.name, approved ? 'created' : 'requested', 'create', null);
    });
  }

  /** A pending request approved by a control-center user (409 NOT_PENDING if it is not pending, OVER if its end has passed). */
  async approve(user: AuthUser, id: string): Promise<DrillWindowView> {
    assertRole(user, ACT_ROLES);
    return this.db.transaction(async (m) => {
      const before = await this.lock(m, user, id);
      if (before.status !== 'pending') throw Errors.conflict(ErrorCode.DRILL_WINDOW.NOT_PENDING, '该演练时段已批准', { status: before.status });
      if (new Date(before.endsAt) <= new Date()) throw Errors.conflict(ErrorCode.DRILL_WINDOW.OVER, '该演练时段已结束', { endsAt: iso(before.endsAt) });
      const [[row]] = (await m.query(
        `UPDATE drill_windows SET status = 'approved', approved_by_id = $2, approved_by_name = $3, approved_at = now() WHERE id = $1 RETURNING ${COLS}`,
        [id, user.id, shownName(user)],
      )) as [Row[]];
      return this.changed(m, row, await this.schoolName(row.schoolId), 'approved', 'approve', before);
    });
  }

  /** Ends an approved window now (alarms from now on are real). 409 NOT_APPROVED for a pending one (delete it), OVER if already over. */
  async end(user: AuthUser, id: string): Promise<DrillWindowView> {
    assertRole(user, ACT_ROLES);
    return this.db.transaction(async (m) => {
      const before = await this.lock(m, user, id);
      if (before.status !== 'approved') throw Errors.conflict(ErrorCode.DRILL_WINDOW.NOT_APPROVED, '该演练时段尚未批准，请直接删除', { status: before.status });
      if (new Date(before.endsAt) <= new Date()) throw Errors.conflict(ErrorCode.DRILL_WINDOW.OVER, '该演练时段已结束', { endsAt: iso(before.endsAt) });
      // starts_at too: a window planned for later and ended now never starts (ends_at > starts_at holds).
      const [[row]] = (await m.query(
        `UPDATE drill_windows SET ends_at = clock_timestamp(), starts_at = least(starts_at, clock_timestamp() - interval '1 millisecond'),
           ended_by_name = $2, ended_at = clock_timestamp() WHERE id = $1 RETURNING ${COLS}`,
        [id, shownName(user)],
      )) as [Row[]];
      return this.changed(m, row, await this.schoolName(row.schoolId), 'ended', 'end', before);
    });
  }

  /**
   * Deletes a window (control center: any; school staff: a pending request of their school, else 403).
   * Alarms already raised as drills stay drills (an operator makes one real).
   */
  async remove(user: AuthUser, id: string): Promise<void> {
    assertRole(user, RAISE_ROLES);
    await this.db.transaction(async (m) => {
      const before = await this.lock(m, user, id);
      if (!ACT_ROLES.includes(user.role) && before.status !== 'pending')
        throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, '学校只能撤回待批准的演练申请，已批准的演练时段由监控中心结束或删除');
      await m.query(`DELETE FROM drill_windows WHERE id = $1`, [id]);
      await this.changed(m, before, await this.schoolName(before.schoolId), 'deleted', 'delete', before);
    });
  }

  /** Windows (newest first, at most 500); `active`: approved and in force now; `status` filters. School staff: their own school. */
  async listDrillWindows(user: AuthUser, q: { schoolId?: string; active?: boolean; status?: 'pending' | 'approved' }): Promise<DrillWindowView[]> {
    assertRole(user, READ_ROLES);
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    const rows = (await this.db.query(
      `SELECT ${COLS}, (SELECT name FROM schools s WHERE s.id = w.school_id) AS "schoolName" FROM drill_windows w
       WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::text IS NULL OR status = $2)
         AND (NOT $3::boolean OR (status = 'approved' AND starts_at <= now() AND ends_at > now()))
       ORDER BY starts_at DESC LIMIT 500`,
      [schoolId ?? null, q.status ?? null, q.active === true],
    )) as (Row & { schoolName: string })[];
    return rows.map((r) => this.view(r, r.schoolName));
  }

  private assertBounded(startsAt: Date, endsAt: Date, now: Date): void {
    const c = this.cfg;
    const fields: { field: string; reason: string }[] = [];
    if (startsAt.getTime() < now.getTime() - c.maxStartPastMinutes * 60_000)
      fields.push({ field: 'startsAt', reason: `must not be more than ${c.maxStartPastMinutes} minutes ago` });
    else if (startsAt.getTime() > now.getTime() + c.maxLeadDays * 86_400_000)
      fields.push({ field: 'startsAt', reason: `must be within ${c.maxLeadDays} days` });
    if (endsAt <= startsAt) fields.push({ field: 'endsAt', reason: 'must be after startsAt' });
    else if (endsAt.getTime() - startsAt.getTime() > c.maxWindowMinutes * 60_000)
      fields.push({ field: 'endsAt', reason: `a drill window is at most ${c.maxWindowMinutes} minutes long` });
    if (fields.length) throw Errors.validation(fields, '演练时段超出允许范围');
  }

  /**
   * Attack F9: each window was bounded, but windows chained back to back (or overlapping) kept a
   * school's alarms drills — no escalation, no dispatch — for as long as one liked. The school's
   * windows (pending and approved, the new one included) may cover at most
   * alarms.drills.maxWindowMinutes within any alarms.drills.silencePeriodHours; otherwise 409
   * DRILL_WINDOW.SILENCE_LIMIT with `{ silencedMinutes, maxWindowMinutes, periodHours }` (a pending
   * request in the way is deleted first). Serialised per school (advisory lock), so two requests
   * at once cannot each fit alone and overflow together.
   */
  private async assertSilenceCap(m: EntityManager, schoolId: string, w: { startsAt: Date; endsAt: Date }): Promise<void> {
    const periodMs = this.cfg.silencePeriodHours * 3_600_000;
    const capMs = this.cfg.maxWindowMinutes * 60_000;
    await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`drill-silence:${schoolId}`]);
    const near = (await m.query(
      `SELECT starts_at AS "startsAt", ends_at AS "endsAt" FROM drill_windows WHERE school_id = $1 AND ends_at > $2 AND starts_at < $3`,
      [schoolId, new Date(w.startsAt.getTime() - periodMs), new Date(w.endsAt.getTime() + periodMs)],
    )) as { startsAt: Date; endsAt: Date }[];
    const silenced = maxCoveredWithin(
      [...near, w].map((x) => [new Date(x.startsAt).getTime(), new Date(x.endsAt).getTime()]),
      periodMs,
    );
    if (silenced > capMs)
      throw Errors.conflict(
        ErrorCode.DRILL_WINDOW.SILENCE_LIMIT,
        `该校演练时段连续或重叠，${this.cfg.silencePeriodHours} 小时内合计 ${Math.ceil(silenced / 60_000)} 分钟，超过 ${this.cfg.maxWindowMinutes} 分钟`,
        { silencedMinutes: Math.ceil(silenced / 60_000), maxWindowMinutes: this.cfg.maxWindowMinutes, periodHours: this.cfg.silencePeriodHours },
      );
  }

  /** The window locked for a change; 404 when missing or another school's (no existence oracle). */
  private async lock(m: EntityManager, user: AuthUser, id: string): Promise<Row> {
    const [row] = (await m.query(`SELECT ${COLS} FROM drill_windows WHERE id = $1 FOR UPDATE`, [id])) as Row[];
    const scope = scopedSchoolId(user);
    if (!row || (scope && row.schoolId !== scope)) throw Errors.notFound(ErrorCode.DRILL_WINDOW.NOT_FOUND, id);
    return row;
  }

  private async schoolName(id: string): Promise<string> {
    return (await this.registry.school(id)).name;
  }

  /** Audit entry and console event of one change, in the caller's transaction. */
  private async changed(m: EntityManager, row: Row, schoolName: string, change: DrillWindowChange, action: string, before: Row | null) {
    const view = this.view(row, schoolName);
    await this.audit.record(m, {
      action,
      entity: 'drill_window',
      entityId: row.id,
      schoolId: row.schoolId,
      before: before && this.view(before, schoolName),
      after: view,
    });
    await this.events.append(m, { type: 'drill.window', schoolId: row.schoolId, payload: { ...view, change } });
    return view;
  }

  private view(r: Row, schoolName: string): DrillWindowView {
    return {
      id: r.id,
      schoolId: r.schoolId,
      schoolName,
      startsAt: iso(r.startsAt)!,
      endsAt: iso(r.endsAt)!,
      note: r.note,
      status: r.status,
      createdBy: r.createdBy,
      approvedBy: r.approvedBy,
      approvedAt: iso(r.approvedAt),
      endedBy: r.endedBy,
      endedAt: iso(r.endedAt),
    };
  }
}

/**
 * The most time (ms) the union of `intervals` ([start, end) in ms) covers within any period of
 * `periodMs`. The maximum is reached by a period starting where a merged interval starts, so
 * only those starts are tried.
 */
export function maxCoveredWithin(intervals: [number, number][], periodMs: number): number {
  const merged: [number, number][] = [];
  for (const [s, e] of [...intervals].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  let best = 0;
  for (const [from] of merged) {
    const to = from + periodMs;
    let covered = 0;
    for (const [s, e] of merged) if (e > from && s < to) covered += Math.min(e, to) - Math.max(s, from);
    best = Math.max(best, covered);
  }
  return best;
}
