import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors, type FieldError } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { UsersService, type UserChanged, type UserFacts } from '../auth';
import { ConsoleEventsService } from '../console-events';
import { CreateShiftDto, HandoverDto, UpdateShiftDto } from './dto';
import { DUTY_ROLES, DutyRole } from './notifications.constants';
import { assertDutyPerson, DUTY_USER_ROLES, dutyRefusal, type DutyRefusal, maskPhone, people, personName } from './users';

interface ShiftRow {
  id: string;
  duty_role: DutyRole;
  user_id: string;
  starts_at: Date;
  ends_at: Date;
  note: string;
  handed_over_from_id: string | null;
  created_at: Date;
}

export interface ShiftView {
  id: string;
  dutyRole: DutyRole;
  userId: string;
  userName: string;
  /** Masked ('138****5678'). */
  phone: string | null;
  startsAt: string;
  endsAt: string;
  note: string;
  handedOverFromId: string | null;
  /**
   * Why this shift covers nothing, null when it counts: its person was deleted, disabled or is no longer in a
   * control-center role since it was planned. Such a shift is not on duty, leaves a gap and reaches nobody.
   */
  notCounted: DutyRefusal | null;
}

/** Who is on duty at an instant, per role (every role present), and the shifts covering it that do not count. */
export interface OnDuty {
  onDuty: Record<DutyRole, ShiftView[]>;
  /** Shifts covering the instant whose person may no longer hold a duty (see ShiftView.notCounted): shown, never counted. */
  notCounted: ShiftView[];
}

/** Someone who may hold a duty (a control-center user, not disabled), as the roster's person pickers list them. */
export interface DutyPerson {
  id: string;
  /** Display name, else the username. */
  name: string;
  role: 'operator' | 'supervisor' | 'admin';
}

/** Hours in which nobody holds a duty role. `from`/`to` clipped to the window asked about; `to` null = beyond it. */
export interface RosterGap {
  dutyRole: DutyRole;
  from: string;
  to: string | null;
}

const MAX_RANGE_MS = 62 * 86400_000;
/** A client's clock a little behind ours: an end "now" sent by it is not refused as past. */
const CLOCK_SLACK_MS = 1000;

/**
 * The duty roster (值班表): who holds each duty role — operator desk, duty supervisor, bureau
 * leader — from when to when (stored UTC, entered and shown in Asia/Shanghai). Shifts of one role
 * may overlap (a handover, two supervisors): everyone on duty is told. Hours nobody covers are
 * gaps: listed on request and reported once each to the console by a scheduled check.
 *
 * The roster is the record of who was on duty, so what has happened stays as it was (attack finding F3;
 * the same rules as maintenance windows):
 * - a shift that has ended is not changed or deleted (409 DUTY_SHIFT.ENDED) — only its note may be
 *   corrected (who and when stay; the audit log keeps the note it had);
 * - a shift on duty now keeps its start and its person (409 DUTY_SHIFT.STARTED: hand it over); its end
 *   may move, not into the past; it is not deleted (409 STARTED: end it or hand it over);
 * - a shift not yet begun may change in every way; a new or moved start lies at most
 *   notifications.rosterMaxBackdateMinutes in the past (entering a shift begun this hour is normal,
 *   a week back is rewriting the record): else a field-level 400 on startsAt.
 * Times are stored to the millisecond, as the API shows them (a DB check holds it).
 *
 * A shift counts as cover only while its person may hold a duty (dutyRefusal in ./users, the rule that
 * admitted them): one whose person was disabled or demoted since is not on duty, leaves a gap and
 * reaches nobody (attack finding F4).
 */
@Injectable()
export class RosterService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly events: ConsoleEventsService,
  ) {}

  private async views(rows: ShiftRow[]): Promise<ShiftView[]> {
    const who = await people(
      this.users,
      rows.map((r) => r.user_id),
    );
    return rows.map((r) => ({
      id: r.id,
      dutyRole: r.duty_role,
      userId: r.user_id,
      userName: who.get(r.user_id)?.name ?? '—',
      phone: maskPhone(who.get(r.user_id)?.phone ?? null),
      startsAt: new Date(r.starts_at).toISOString(),
      endsAt: new Date(r.ends_at).toISOString(),
      note: r.note,
      handedOverFromId: r.handed_over_from_id,
      notCounted: dutyRefusal(who.get(r.user_id)),
    }));
  }

  /** Of these shifts, those whose person may hold a duty now (dutyRefusal): the only ones that cover anything. */
  private async counting<T extends { user_id: string }>(rows: T[]): Promise<T[]> {
    const who = await people(
      this.users,
      rows.map((r) => r.user_id),
    );
    return rows.filter((r) => dutyRefusal(who.get(r.user_id)) === null);
  }

  async list(q: { from?: string; to?: string; dutyRole?: DutyRole }): Promise<ShiftView[]> {
    const from = q.from ? new Date(q.from) : new Date(Date.now() - 86400_000);
    const to = q.to ? new Date(q.to) : new Date(from.getTime() + 8 * 86400_000);
    if (to <= from) throw Errors.validation([{ field: 'to', reason: 'must be after from' }]);
    if (to.getTime() - from.getTime() > MAX_RANGE_MS) throw Errors.validation([{ field: 'to', reason: 'at most 62 days after from' }]);
    const rows = (await this.db.query(
      `SELECT * FROM duty_shifts WHERE ends_at > $1 AND starts_at < $2 AND ($3::text IS NULL OR duty_role = $3) ORDER BY starts_at, duty_role LIMIT 2000`,
      [from, to, q.dutyRole ?? null],
    )) as ShiftRow[];
    return this.views(rows);
  }

  /** Everyone who may hold a duty (dutyRefusal: DUTY_USER_ROLES, not disabled), by role then name: what the roster's pickers offer. */
  async dutyPeople(): Promise<DutyPerson[]> {
    const out: DutyPerson[] = [];
    for (const role of DUTY_USER_ROLES) {
      const { items } = await this.users.list({ role, limit: 10_000, offset: 0 });
      for (const u of items) if (dutyRefusal(u) === null) out.push({ id: u.id, name: personName(u), role: role as DutyPerson['role'] });
    }
    return out;
  }

  async get(id: string): Promise<ShiftView> {
    const [row] = (await this.db.query(`SELECT * FROM duty_shifts WHERE id = $1`, [id])) as ShiftRow[];
    if (!row) throw Errors.notFound(ErrorCode.DUTY_SHIFT.NOT_FOUND, id);
    return (await this.views([row]))[0];
  }

  /** Who is on duty at `at`, per role (every role present, possibly with nobody); shifts that do not count apart. */
  async onDuty(at = new Date()): Promise<OnDuty> {
    const rows = (await this.db.query(`SELECT * FROM duty_shifts WHERE starts_at <= $1 AND ends_at > $1 ORDER BY starts_at`, [at])) as ShiftRow[];
    const views = await this.views(rows);
    const counted = views.filter((v) => v.notCounted === null);
    return {
      onDuty: Object.fromEntries(DUTY_ROLES.map((r) => [r, counted.filter((v) => v.dutyRole === r)])) as Record<DutyRole, ShiftView[]>,
      notCounted: views.filter((v) => v.notCounted !== null),
    };
  }

  /** The user ids on duty in a role at `at` (the escalation's recipients): only people who may hold a duty. */
  async onDutyUserIds(role: DutyRole, at = new Date()): Promise<string[]> {
    const rows: { user_id: string }[] = await this.db.query(
      `SELECT DISTINCT user_id FROM duty_shifts WHERE duty_role = $1 AND starts_at <= $2 AND ends_at > $2`,
      [role, at],
    );
    return (await this.counting(rows)).map((r) => r.user_id);
  }

  private window(startsAt: Date, endsAt: Date): void {
    if (Number.isNaN(startsAt.getTime())) throw Errors.validation([{ field: 'startsAt', reason: 'must be a date-time' }]);
    if (Number.isNaN(endsAt.getTime())) throw Errors.validation([{ field: 'endsAt', reason: 'must be a date-time' }]);
    if (endsAt <= startsAt) throw Errors.validation([{ field: 'endsAt', reason: 'must be after startsAt' }]);
    if (endsAt.getTime() - startsAt.getTime() > 31 * 86400_000) throw Errors.validation([{ field: 'endsAt', reason: 'a shift lasts at most 31 days' }]);
  }

  /**
   * A person holds one duty role at most once at any instant: a shift overlapping another of the same
   * person and role (except `exceptId`) is 409 DUTY_SHIFT.OVERLAP naming the other (attack pass 7 F4:
   * two overlapping shifts counted one person twice and hid a gap). Serialised per person and role by a
   * transaction advisory lock, so two requests at once cannot both pass.
   */
  private async assertNoOverlap(
    m: EntityManager,
    shift: { dutyRole: DutyRole; userId: string; startsAt: Date; endsAt: Date },
    exceptId: string | null,
  ): Promise<void> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtext('duty_shift:' || $1 || ':' || $2))`, [shift.userId, shift.dutyRole]);
    const [other] = (await m.query(
      `SELECT id, starts_at, ends_at FROM duty_shifts
        WHERE user_id = $1 AND duty_role = $2 AND starts_at < $4 AND ends_at > $3 AND ($5::uuid IS NULL OR id <> $5::uuid)
        ORDER BY starts_at LIMIT 1`,
      [shift.userId, shift.dutyRole, shift.startsAt, shift.endsAt, exceptId],
    )) as { id: string; starts_at: Date; ends_at: Date }[];
    if (other)
      throw Errors.conflict(ErrorCode.DUTY_SHIFT.OVERLAP, 'The same person already holds this duty role for part of that time', {
        shiftId: other.id,
        startsAt: new Date(other.starts_at).toISOString(),
        endsAt: new Date(other.ends_at).toISOString(),
      });
  }

  /** A shift planned must not have ended already: a roster entry wholly in the past changes nobody's duty (attack pass 7 F4). */
  private notEnded(endsAt: Date): void {
    if (endsAt.getTime() <= Date.now())
      throw Errors.validation([{ field: 'endsAt', reason: 'must be in the future: a shift that has ended cannot be planned' }]);
  }

  /** A start entered or moved lies at most rosterMaxBackdateMinutes in the past: beyond that it rewrites the record (attack finding F3). */
  private backdated(startsAt: Date, now: number): FieldError | null {
    const max = this.config.notifications.rosterMaxBackdateMinutes;
    return startsAt.getTime() < now - max * 60_000 ? { field: 'startsAt', reason: `must not be more than ${max} minutes in the past` } : null;
  }

  private async changed(m: EntityManager, shiftId: string, change: 'created' | 'updated' | 'deleted' | 'handover'): Promise<void> {
    await this.events.append(m, { type: 'duty.roster_changed', schoolId: null, payload: { shiftId, change } });
  }

  /**
   * A user changed (auth's UsersService.onChanged, inside that change's transaction). When the roster would show them
   * otherwise — they may no longer hold a duty or may again (disabled, enabled, demoted, promoted: dutyRefusal), another
   * name, another phone — and they hold a shift now or later, consoles are told (`duty.roster_changed`, change
   * `person`): "on duty now" follows at once, not at its next reload. A change the roster does not show (a password, a
   * move between two control-center roles) or of someone with no shift ahead (an ended shift is the record) tells nobody.
   */
  async personChanged(m: EntityManager, c: UserChanged): Promise<void> {
    const shown = (u: UserFacts) => [dutyRefusal(u), personName(u), maskPhone(u.phone)].join('\n');
    if (shown(c.before) === shown(c.after)) return;
    const [next] = (await m.query(`SELECT id FROM duty_shifts WHERE user_id = $1 AND ends_at > now() ORDER BY starts_at LIMIT 1`, [c.userId])) as {
      id: string;
    }[];
    if (next) await this.events.append(m, { type: 'duty.roster_changed', schoolId: null, payload: { shiftId: next.id, change: 'person', userId: c.userId } });
  }

  async create(dto: CreateShiftDto, actorId: string | null): Promise<ShiftView> {
    const [startsAt, endsAt] = [new Date(dto.startsAt), new Date(dto.endsAt)];
    this.window(startsAt, endsAt);
    this.notEnded(endsAt);
    const tooEarly = this.backdated(startsAt, Date.now());
    if (tooEarly) throw Errors.validation([tooEarly]);
    await assertDutyPerson(this.users, dto.userId, 'userId');
    const row = await this.db.transaction(async (m) => {
      await this.assertNoOverlap(m, { dutyRole: dto.dutyRole, userId: dto.userId, startsAt, endsAt }, null);
      const [row] = (await m.query(
        `INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at, note, created_by_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [dto.dutyRole, dto.userId, startsAt, endsAt, dto.note ?? '', actorId],
      )) as ShiftRow[];
      await this.audit.record(m, { action: 'create', entity: 'duty_shift', entityId: row.id, after: row });
      await this.changed(m, row.id, 'created');
      return row;
    });
    return (await this.views([row]))[0];
  }

  /** Where a shift stands at `now`: ended (the record), on duty (started, not ended) or ahead. */
  private static phase(row: ShiftRow, now: number): 'ended' | 'on_duty' | 'ahead' {
    if (new Date(row.ends_at).getTime() <= now) return 'ended';
    return new Date(row.starts_at).getTime() <= now ? 'on_duty' : 'ahead';
  }

  private static ended(row: ShiftRow): never {
    throw Errors.conflict(ErrorCode.DUTY_SHIFT.ENDED, 'The shift has ended: it is part of the record of who was on duty', {
      endsAt: new Date(row.ends_at).toISOString(),
    });
  }

  private static started(row: ShiftRow, what: string): never {
    throw Errors.conflict(ErrorCode.DUTY_SHIFT.STARTED, `The shift is on duty now: ${what}`, { startsAt: new Date(row.starts_at).toISOString() });
  }

  /**
   * Changes a shift, by where it stands (see the class comment): ended — its note only; on duty — its end
   * (not into the past) and note, its start and person given again unchanged are no change; ahead — anything,
   * its start at most rosterMaxBackdateMinutes in the past. A new person must be one who may hold a duty.
   */
  async update(id: string, dto: UpdateShiftDto): Promise<ShiftView> {
    const row = await this.db.transaction(async (m) => {
      const [before] = (await m.query(`SELECT * FROM duty_shifts WHERE id = $1 FOR UPDATE`, [id])) as ShiftRow[];
      if (!before) throw Errors.notFound(ErrorCode.DUTY_SHIFT.NOT_FOUND, id);
      const now = Date.now();
      const phase = RosterService.phase(before, now);
      if (phase === 'ended' && (dto.userId !== undefined || dto.startsAt !== undefined || dto.endsAt !== undefined)) RosterService.ended(before);
      const movesStart = dto.startsAt !== undefined && new Date(dto.startsAt).getTime() !== new Date(before.starts_at).getTime();
      const changesPerson = dto.userId !== undefined && dto.userId !== before.user_id;
      if (phase === 'on_duty' && changesPerson) RosterService.started(before, 'its person cannot change (hand it over instead)');
      if (phase === 'on_duty' && movesStart) RosterService.started(before, 'its start cannot change');
      const startsAt = dto.startsAt ? new Date(dto.startsAt) : new Date(before.starts_at);
      const endsAt = dto.endsAt ? new Date(dto.endsAt) : new Date(before.ends_at);
      const movesEnd = endsAt.getTime() !== new Date(before.ends_at).getTime();
      if (movesStart || movesEnd) this.window(startsAt, endsAt);
      const errors: FieldError[] = [];
      const tooEarly = movesStart ? this.backdated(startsAt, now) : null;
      if (tooEarly) errors.push(tooEarly);
      if (dto.endsAt !== undefined && endsAt.getTime() < now - CLOCK_SLACK_MS)
        errors.push({ field: 'endsAt', reason: 'must not be in the past (a shift that has ended is part of the record)' });
      if (errors.length) throw Errors.validation(errors);
      if (changesPerson) await assertDutyPerson(this.users, dto.userId!, 'userId');
      // A note alone changes nobody's hours: a shift kept from before the overlap rule can still have it corrected.
      if (movesStart || movesEnd || changesPerson)
        await this.assertNoOverlap(m, { dutyRole: before.duty_role, userId: dto.userId ?? before.user_id, startsAt, endsAt }, id);
      const [[row]] = (await m.query(
        `UPDATE duty_shifts SET user_id = $2, starts_at = $3, ends_at = $4, note = $5, updated_at = now() WHERE id = $1 RETURNING *`,
        [id, dto.userId ?? before.user_id, startsAt, endsAt, dto.note ?? before.note],
      )) as [ShiftRow[]];
      await this.audit.record(m, { action: 'update', entity: 'duty_shift', entityId: id, before, after: row });
      await this.changed(m, id, 'updated');
      return row;
    });
    return (await this.views([row]))[0];
  }

  /** Deletes a shift not yet begun (one that has is part of the record: 409 ENDED, or STARTED — end it or hand it over). */
  async remove(id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const [before] = (await m.query(`SELECT * FROM duty_shifts WHERE id = $1 FOR UPDATE`, [id])) as ShiftRow[];
      if (!before) throw Errors.notFound(ErrorCode.DUTY_SHIFT.NOT_FOUND, id);
      const phase = RosterService.phase(before, Date.now());
      if (phase === 'ended') RosterService.ended(before);
      if (phase === 'on_duty') RosterService.started(before, 'it cannot be deleted (end it or hand it over)');
      const [[row]] = (await m.query(`DELETE FROM duty_shifts WHERE id = $1 RETURNING *`, [id])) as [ShiftRow[]];
      await this.audit.record(m, { action: 'delete', entity: 'duty_shift', entityId: id, before: row });
      await this.changed(m, id, 'deleted');
    });
  }

  /**
   * 交接班: the shift on duty now ends now; the incoming person holds the role from now to the
   * shift's planned end, with the handover note. One transaction, audited.
   */
  async handover(id: string, dto: HandoverDto): Promise<{ ended: ShiftView; started: ShiftView }> {
    await assertDutyPerson(this.users, dto.toUserId, 'toUserId');
    const [ended, started] = await this.db.transaction(async (m) => {
      const [cur] = (await m.query(`SELECT * FROM duty_shifts WHERE id = $1 FOR UPDATE`, [id])) as ShiftRow[];
      if (!cur) throw Errors.notFound(ErrorCode.DUTY_SHIFT.NOT_FOUND, id);
      const [{ now }] = (await m.query(`SELECT now() AS now`)) as { now: Date }[];
      if (!(new Date(cur.starts_at) <= now && new Date(cur.ends_at) > now))
        throw Errors.conflict(ErrorCode.DUTY_SHIFT.NOT_ON_DUTY, 'Only a shift on duty now can be handed over', {
          startsAt: new Date(cur.starts_at).toISOString(),
          endsAt: new Date(cur.ends_at).toISOString(),
        });
      if (cur.user_id === dto.toUserId) throw Errors.validation([{ field: 'toUserId', reason: 'is already on this shift' }]);
      await this.assertNoOverlap(m, { dutyRole: cur.duty_role, userId: dto.toUserId, startsAt: now, endsAt: new Date(cur.ends_at) }, null);
      // Ends now, to the millisecond as every shift time is stored (what the API shows, the next shift's start);
      // a shift that started this very millisecond would become empty: it ends a millisecond after it starts instead.
      const [[ended]] = (await m.query(
        `UPDATE duty_shifts SET ends_at = greatest(date_trunc('milliseconds', now()), starts_at + interval '1 millisecond'), updated_at = now()
          WHERE id = $1 RETURNING *`,
        [id],
      )) as [ShiftRow[]];
      const [started] = (await m.query(
        `INSERT INTO duty_shifts (duty_role, user_id, starts_at, ends_at, note, handed_over_from_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [cur.duty_role, dto.toUserId, ended.ends_at, cur.ends_at, dto.note ?? '', id],
      )) as ShiftRow[];
      await this.audit.record(m, [
        { action: 'handover', entity: 'duty_shift', entityId: id, before: cur, after: ended },
        { action: 'create', entity: 'duty_shift', entityId: started.id, after: started },
      ]);
      await this.changed(m, started.id, 'handover');
      return [ended, started];
    });
    const [a, b] = await this.views([ended, started]);
    return { ended: a, started: b };
  }

  /** Uncovered hours per role in [from, to): merged shift intervals, subtracted from the window. */
  async gaps(from: Date, to: Date): Promise<(RosterGap & { realFrom: Date | null; realTo: Date | null })[]> {
    const shifts: { duty_role: DutyRole; user_id: string; starts_at: Date; ends_at: Date }[] = await this.db.query(
      `SELECT duty_role, user_id, starts_at, ends_at FROM duty_shifts WHERE ends_at > $1 AND starts_at < $2 ORDER BY duty_role, starts_at`,
      [from, to],
    );
    // A shift whose person may not hold a duty (deleted, disabled, demoted: dutyRefusal) covers nothing: nobody is told
    // through it, so the roster must say the role is uncovered (attack pass 7 F1; finding F4 for a demoted person).
    const rows = await this.counting(shifts);
    const edges = await this.edges(from, to);
    const out: (RosterGap & { realFrom: Date | null; realTo: Date | null })[] = [];
    for (const role of DUTY_ROLES) {
      const edge = edges.find((e) => e.duty_role === role);
      let cursor = from.getTime();
      let realFrom: Date | null = edge?.before ? new Date(edge.before) : null;
      const push = (end: number, realTo: Date | null) =>
        out.push({
          dutyRole: role,
          from: new Date(cursor).toISOString(),
          to: realTo ? new Date(end).toISOString() : null,
          realFrom,
          realTo,
        });
      for (const r of rows.filter((x) => x.duty_role === role)) {
        const s = new Date(r.starts_at).getTime();
        const e = new Date(r.ends_at).getTime();
        if (s > cursor) push(s, new Date(s));
        if (e > cursor) {
          cursor = e;
          realFrom = new Date(e);
        }
      }
      if (cursor < to.getTime()) push(to.getTime(), edge?.after ? new Date(edge.after) : null);
    }
    return out;
  }

  /**
   * Per role, the end of the last counting shift before `from` and the start of the first after `to`: a gap's real
   * bounds (a gap is reported once per bounds). Shifts that do not count are skipped: the edge query is asked again
   * without the people found not to count, so a few rounds at most (one when everyone on the roster may hold a duty).
   */
  private async edges(from: Date, to: Date): Promise<{ duty_role: DutyRole; before: Date | null; after: Date | null }[]> {
    const skip = new Set<string>();
    for (;;) {
      const edges: { duty_role: DutyRole; before: Date | null; before_user: string | null; after: Date | null; after_user: string | null }[] =
        await this.db.query(
          `SELECT r AS duty_role, b.ends_at AS before, b.user_id AS before_user, a.starts_at AS after, a.user_id AS after_user
             FROM unnest($3::text[]) AS r
             LEFT JOIN LATERAL (SELECT ends_at, user_id FROM duty_shifts
                                 WHERE duty_role = r AND ends_at <= $1 AND user_id <> ALL($4::uuid[]) ORDER BY ends_at DESC LIMIT 1) b ON true
             LEFT JOIN LATERAL (SELECT starts_at, user_id FROM duty_shifts
                                 WHERE duty_role = r AND starts_at >= $2 AND user_id <> ALL($4::uuid[]) ORDER BY starts_at LIMIT 1) a ON true`,
          [from, to, [...DUTY_ROLES], [...skip]],
        );
      const users = edges.flatMap((e) => [e.before_user, e.after_user]).filter((u): u is string => u !== null);
      const counted = new Set((await this.counting(users.map((user_id) => ({ user_id })))).map((u) => u.user_id));
      const notCounted = users.filter((u) => !counted.has(u));
      if (notCounted.length === 0) return edges.map(({ duty_role, before, after }) => ({ duty_role, before, after }));
      for (const u of notCounted) skip.add(u);
    }
  }

  /**
   * The scheduled check: gaps in the next rosterLookaheadHours become console findings, each
   * (role, real start, real end) reported once. Returns the gaps found and how many were new.
   */
  async checkGaps(now = new Date()): Promise<{ gaps: RosterGap[]; reported: number }> {
    const to = new Date(now.getTime() + this.config.notifications.rosterLookaheadHours * 3600_000);
    const gaps = await this.gaps(now, to);
    if (gaps.length === 0) return { gaps: [], reported: 0 };
    return this.db.transaction(async (m) => {
      // Unbounded ends are ±infinity (a role with no shift at all before or after); compared as epoch milliseconds.
      const fresh: { duty_role: string; f: string | null; t: string | null }[] = await m.query(
        `INSERT INTO duty_roster_gaps (duty_role, gap_from, gap_to)
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[])
         ON CONFLICT DO NOTHING
         RETURNING duty_role, CASE WHEN isfinite(gap_from) THEN (extract(epoch FROM gap_from) * 1000)::bigint END AS f,
           CASE WHEN isfinite(gap_to) THEN (extract(epoch FROM gap_to) * 1000)::bigint END AS t`,
        [gaps.map((g) => g.dutyRole), gaps.map((g) => g.realFrom?.toISOString() ?? '-infinity'), gaps.map((g) => g.realTo?.toISOString() ?? 'infinity')],
      );
      const ms = (d: Date | null) => (d ? String(d.getTime()) : null);
      const isNew = (g: (typeof gaps)[number]) => fresh.some((f) => f.duty_role === g.dutyRole && f.f === ms(g.realFrom) && f.t === ms(g.realTo));
      const newGaps = gaps.filter(isNew).map(({ dutyRole, from, to }) => ({ dutyRole, from, to }));
      if (newGaps.length) await this.events.append(m, { type: 'duty.roster_gap', schoolId: null, payload: { gaps: newGaps } });
      return { gaps: gaps.map(({ dutyRole, from, to }) => ({ dutyRole, from, to })), reported: newGaps.length };
    });
  }
}
