import { personName, personNameKey } from '../../infra/text/person-name';
import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { DomainError, ErrorCode, Errors } from '../../infra/http/errors';
import { parsePostQr, postQrKey, postQrSignatureOk, qrWindowBounds, qrWindowOf, signPostQr } from './post-qr';
import type { Page } from '../../infra/http/pagination';
import { AuditService } from '../audit-log';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { assertRecordInScope, assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { ProtectionPostsService, RegistryService } from '../registry';
import { FindingsService, NewFinding } from './findings.service';
import { addDays, dayStart, postWindows, PostWindowOnDay, schoolHours, shanghaiDate } from '../school-day';
import type { GateEventView, GuardPatrolView, PostCheckinView } from './views';

type SchoolLike = Awaited<ReturnType<RegistryService['schoolsIn']>>[number];
type PostLike = Awaited<ReturnType<ProtectionPostsService['posts']>>[number];

/** One post window on a day, with the head count found at its deadline (window start + grace). */
export interface PostWindowStatus {
  postId: string;
  postCode: string;
  schoolId: string;
  gate: string;
  kind: string;
  start: Date;
  end: Date;
  deadline: Date;
  required: number;
  present: number;
  staffed: boolean;
}

/** A gate seen open in school hours: from gate events (open longer than the tolerance) or a video-round verdict. */
export interface GateOpening {
  schoolId: string;
  gate: string;
  at: Date;
  source: 'gate_event' | 'round';
  eventId?: string;
  findingId?: string;
}

/** The unique index on open check-ins, one per (post, person) (migration OpenCheckinPerPerson). */
const OPEN_CHECKIN_INDEX = 'post_checkins_open_person_uq';

const CHECKIN_COLS = `id, post_id AS "postId", school_id AS "schoolId", person_name AS "personName", person_role AS "personRole", recorded_by AS "recordedBy",
  on_behalf AS "onBehalf", checked_in_at AS "checkedInAt", checked_out_at AS "checkedOutAt",
  camera_id AS "cameraId", evidence_id AS "evidenceId", evidence_status AS "evidenceStatus", evidence_error AS "evidenceError",
  (SELECT e.source FROM video_evidence e WHERE e.id = post_checkins.evidence_id) AS "evidenceSource"`;

/** A check-in as the gate-camera snapshot job reads it (src/modules/video). */
export interface CheckinForSnapshot {
  id: string;
  schoolId: string;
  postId: string;
  cameraId: string | null;
  checkedInAt: Date;
  evidenceStatus: 'none' | 'pending' | 'taken' | 'failed';
}

/**
 * What people on the ground report: protection-post check-ins and check-outs (护学岗), guard
 * patrol check-ins (GB/T 29315-2022: ≥ 5 a day) and gate open/closed events, plus the day
 * views that audits and compliance read from them.
 */
@Injectable()
export class FieldService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly protectionPosts: ProtectionPostsService,
    private readonly findingsSvc: FindingsService,
    private readonly audit: AuditService,
    private readonly queue: QueueService,
  ) {}

  private get cfg() {
    return this.config.patrols;
  }

  private key?: Buffer;
  /** The HMAC key of post QR codes (patrols.postQrSecret, or derived from auth.jwtSecret). */
  private get qrKey(): Buffer {
    return (this.key ??= postQrKey(this.cfg.postQrSecret, this.config.auth.jwtSecret));
  }

  // ------------------------------------------------------------------ protection posts

  /**
   * Checks a person in at a post. School security identify the post by its QR code (their own
   * school only) and check in themselves; the control center may name the post by id and record
   * on someone's behalf.
   *
   * Who is checked in (attack F8a: a guard checked in invented people to fill the head count):
   * - school security: the authenticated user, by their shown name (a different `personName`:
   *   400), as a guard or school staff (`personRole` police/volunteer: 400 — those are checked in
   *   by the control center);
   * - on behalf, as a guard (the default role): a guard on the school's roster (active guards
   *   table row of that name), else 400 `personName`; police, staff and volunteers are not on the
   *   roster and are taken by name.
   * Plausibility (attack F8c): the same account checking in again within
   * patrols.checkinMinGapSeconds is refused (429 POST_CHECKIN.TOO_FREQUENT); a person is at one
   * gate at a time, so a check-in checks them out of any other post of the school they were still
   * checked in at (one person never fills two posts' head counts).
   *
   * One person (names compared by personNameKey: "Li Lei" is "li lei"), one open check-in per post (attack: six parallel on-behalf check-ins of one
   * volunteer all 201), for self and on-behalf check-ins alike, serialised per (school, person)
   * by an advisory lock and backed by a unique index on open check-ins:
   * - the same person at the same post less than patrols.checkinMinGapSeconds after their last
   *   check-in there → 429 POST_CHECKIN.TOO_FREQUENT;
   * - still checked in there for the same window (open, less than postEarlyMinutes +
   *   postGraceMinutes old — two instants further apart never count for one window) → 409
   *   POST_CHECKIN.ALREADY_CHECKED_IN with `details.checkinId` (not answered idempotently: the
   *   caller must see the check-in was not taken now, its time and picture are the first one's);
   * - an older open check-in there (a check-out forgotten since an earlier window) is ended at
   *   this check-in's time, as a move to another post is, and the new one is taken.
   */
  async checkIn(
    user: AuthUser,
    dto: { qrToken?: string; postId?: string; personName?: string; personRole?: string },
    at = new Date(),
  ): Promise<PostCheckinView & { postCode: string; gate: string }> {
    let post: PostLike | null = null;
    if (dto.qrToken) post = await this.postOfQr(user, dto.qrToken, at);
    else if (dto.postId) {
      if (user.role === 'school_security') throw Errors.validation([{ field: 'qrToken', reason: 'school security check in by scanning the post QR code' }]);
      post = await this.protectionPosts.post(dto.postId).catch(() => null);
    } else throw Errors.validation([{ field: 'qrToken', reason: 'qrToken or postId is required' }]);
    const missing = () => Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND, dto.postId);
    if (!post) throw missing();
    assertRecordInScope(user, post.schoolId, missing); // a QR token of another school is as unknown as a wrong one
    const onBehalf = user.role !== 'school_security';
    const personRole = dto.personRole ?? 'guard';
    const personName = await this.checkinPerson(user, post.schoolId, onBehalf, dto.personName, personRole);
    const cameraId = post.gateCameraId ?? null;
    const row = await this.db.transaction(async (m) => {
      if (!onBehalf) await this.assertCheckinSpacing(m, user, at);
      const staleBefore = await this.assertNotCheckedIn(m, post, personName, at);
      // Moving to this post ends the person's open check-ins at the school's other posts, and a
      // forgotten one at this post from an earlier window.
      const moved: { id: string }[] = returningRows(
        await m.query(
          `UPDATE post_checkins SET checked_out_at = GREATEST($4, checked_in_at)
            WHERE school_id = $1 AND person_key = lower($2) AND checked_out_at IS NULL AND checked_in_at <= $4
              AND (post_id <> $3 OR checked_in_at <= $5) RETURNING id`,
          [post.schoolId, personName, post.id, at, staleBefore],
        ),
      );
      for (const x of moved)
        await this.audit.record(m, { action: 'check_out', entity: 'post_checkin', entityId: x.id, schoolId: post.schoolId, after: { movedTo: post.id } });
      const [r] = await m
        .query(
          `INSERT INTO post_checkins (post_id, school_id, person_name, person_role, recorded_by, on_behalf, checked_in_at, camera_id, evidence_status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${CHECKIN_COLS}`,
          [post.id, post.schoolId, personName, personRole, user.id, onBehalf, at, cameraId, cameraId ? 'pending' : 'none'],
        )
        .catch((e: { code?: string; constraint?: string }) => {
          // The unique index on open check-ins: unreachable under the lock above, kept as the guarantee.
          if (e.code === '23505' && e.constraint === OPEN_CHECKIN_INDEX) throw Errors.conflict(ErrorCode.POST_CHECKIN.ALREADY_CHECKED_IN, '此人已在该岗位签到');
          throw e;
        });
      await this.audit.record(m, { action: 'check_in', entity: 'post_checkin', entityId: r.id, schoolId: post.schoolId, after: r });
      return r as PostCheckinView;
    });
    // The gate camera's picture of this moment (src/modules/video takes it). Redis down: the
    // check-in stands and says the picture could not be asked for (never a pending one forever).
    if (cameraId) {
      try {
        await this.queue.add(JobName.VideoCheckinSnapshot, { checkinId: row.id }, { jobId: `checkin-snap-${row.id}` });
      } catch {
        await this.recordCheckinSnapshot(row.id, { evidenceId: null, error: 'QUEUE_UNAVAILABLE' }).catch(() => undefined);
        Object.assign(row, { evidenceStatus: 'failed', evidenceError: 'QUEUE_UNAVAILABLE' });
      }
    }
    return { ...row, postCode: post.code, gate: post.gate };
  }

  /**
   * The post a scanned QR payload names (post-qr.ts): 404 PROTECTION_POST.NOT_FOUND when it is
   * not one of ours, its signature is wrong, it names a post of another school (as unknown as a
   * wrong code) or a window not yet begun; 400 PROTECTION_POST.QR_EXPIRED when its window is
   * over (older than patrols.postQrGraceWindows).
   */
  private async postOfQr(user: AuthUser, text: string, at: Date): Promise<PostLike> {
    const missing = () => Errors.notFound(ErrorCode.PROTECTION_POST.NOT_FOUND);
    const claim = parsePostQr(text);
    if (!claim) throw missing();
    const post = await this.protectionPosts.post(claim.postId).catch(() => null);
    if (!post || !postQrSignatureOk(this.qrKey, claim, post.qrToken)) throw missing();
    assertRecordInScope(user, post.schoolId, missing);
    const now = qrWindowOf(at, this.cfg.postQrWindowMinutes);
    if (claim.window > now) throw missing();
    if (claim.window < now - this.cfg.postQrGraceWindows)
      throw new DomainError(HttpStatus.BAD_REQUEST, ErrorCode.PROTECTION_POST.QR_EXPIRED, '岗位二维码已过期', {
        fields: [{ field: 'qrToken', reason: 'this QR code has expired: scan the one now shown at the post' }],
      });
    return post;
  }

  /**
   * The QR code of a post to print or show at the gate (bureau roles; post-qr.ts): the payload of
   * the window `at` falls in, when it starts being valid and until when a check-in takes it (its
   * window plus patrols.postQrGraceWindows), and when the next one is due. Never the post's token.
   */
  async postQr(postId: string, at = new Date()) {
    const post = await this.protectionPosts.post(postId);
    const minutes = this.cfg.postQrWindowMinutes;
    const window = qrWindowOf(at, minutes);
    const { from, until } = qrWindowBounds(window, minutes);
    return {
      postId: post.id,
      postCode: post.code,
      schoolId: post.schoolId,
      gate: post.gate,
      payload: signPostQr(this.qrKey, post.id, window, post.qrToken),
      validFrom: from.toISOString(),
      validUntil: qrWindowBounds(window + this.cfg.postQrGraceWindows, minutes).until.toISOString(),
      nextAt: until.toISOString(),
      windowMinutes: minutes,
    };
  }

  /**
   * Replaces a post's secret token (bureau roles): every code printed for it so far is refused
   * from now on (404, as a wrong code); answers the new code as postQr does. Audited (without the token).
   */
  async rotatePostQr(user: AuthUser, postId: string, at = new Date()) {
    await this.db.transaction(async (m) => {
      const post = await this.protectionPosts.rotateQrToken(m, postId);
      await this.audit.record(m, {
        action: 'qr_rotate',
        entity: 'protection_post',
        entityId: post.id,
        schoolId: post.schoolId,
        after: { by: shownName(user) },
      });
    });
    return this.postQr(postId, at);
  }

  /** The name a check-in records (see checkIn: the user themselves, or a roster guard / a named non-guard on behalf); 400 otherwise. */
  private async checkinPerson(user: AuthUser, schoolId: string, onBehalf: boolean, given: string | undefined, role: string): Promise<string> {
    const name = personName(given ?? ''); // one person, one spelling (李 + U+3000 + 四 is 李四)
    if (!onBehalf) {
      const self = personName(shownName(user));
      if (name && personNameKey(name) !== personNameKey(self))
        throw Errors.validation([
          { field: 'personName', reason: 'school security check in themselves; others are checked in with their own account or by the control center' },
        ]);
      if (role !== 'guard' && role !== 'staff') throw Errors.validation([{ field: 'personRole', reason: 'school security check in as guard or staff' }]);
      return self;
    }
    if (!name) throw Errors.validation([{ field: 'personName', reason: 'required when checking in on behalf of someone' }]);
    if (role === 'guard' && !(await this.registry.isActiveGuard(schoolId, name)))
      throw Errors.validation([{ field: 'personName', reason: "not an active guard on the school's guard roster" }]);
    return name;
  }

  /**
   * The per-(post, person) rules of checkIn, under a per-(school, person) transaction lock (the
   * move to another post is decided under it too): 429 when the person checked in at this post
   * less than patrols.checkinMinGapSeconds from `at`, 409 when still checked in there for the
   * same window. Answers the instant before which an open check-in there is stale (to be ended).
   */
  private async assertNotCheckedIn(m: EntityManager, post: PostLike, personName: string, at: Date): Promise<Date> {
    await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`checkin-person:${post.schoolId}:${personNameKey(personName)}`]);
    const gapMs = this.cfg.checkinMinGapSeconds * 1000;
    const sameWindowMs = Math.max((this.cfg.postEarlyMinutes + this.cfg.postGraceMinutes) * 60_000, gapMs);
    const staleBefore = new Date(at.getTime() - sameWindowMs);
    const rows = (await m.query(
      `SELECT id, checked_in_at AS "checkedInAt", checked_out_at AS "checkedOutAt" FROM post_checkins
        WHERE post_id = $1 AND person_key = lower($2) AND checked_in_at > $3 ORDER BY checked_in_at DESC`,
      [post.id, personName, staleBefore],
    )) as { id: string; checkedInAt: Date; checkedOutAt: Date | null }[];
    const near = rows.find((r) => Math.abs(new Date(r.checkedInAt).getTime() - at.getTime()) < gapMs);
    if (near) {
      const wait = Math.max(1, Math.ceil((new Date(near.checkedInAt).getTime() + gapMs - at.getTime()) / 1000));
      throw Errors.tooMany(ErrorCode.POST_CHECKIN.TOO_FREQUENT, '该人员在此岗位签到过于频繁', wait);
    }
    const open = rows.find((r) => !r.checkedOutAt);
    if (open) throw Errors.conflict(ErrorCode.POST_CHECKIN.ALREADY_CHECKED_IN, '此人已在该岗位签到', { checkinId: open.id });
    return staleBefore;
  }

  /** 429 when this account checked in less than patrols.checkinMinGapSeconds before `at` (serialised per account). */
  private async assertCheckinSpacing(m: EntityManager, user: AuthUser, at: Date): Promise<void> {
    const gapMs = this.cfg.checkinMinGapSeconds * 1000;
    if (gapMs <= 0) return;
    await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`checkin:${user.id}`]);
    const [last] = (await m.query(`SELECT max(checked_in_at) AS at FROM post_checkins WHERE recorded_by = $1 AND checked_in_at > $2 AND checked_in_at < $3`, [
      user.id,
      new Date(at.getTime() - gapMs),
      new Date(at.getTime() + gapMs),
    ])) as { at: Date | null }[];
    if (last?.at) {
      const wait = Math.max(1, Math.ceil((new Date(last.at).getTime() + gapMs - at.getTime()) / 1000));
      throw Errors.tooMany(ErrorCode.POST_CHECKIN.TOO_FREQUENT, '签到过于频繁', wait);
    }
  }

  /** A check-in for the gate-camera snapshot job, or null when it is gone. */
  async checkinForSnapshot(id: string): Promise<CheckinForSnapshot | null> {
    const [row] = await this.db.query(
      `SELECT id, school_id AS "schoolId", post_id AS "postId", camera_id AS "cameraId", checked_in_at AS "checkedInAt", evidence_status AS "evidenceStatus"
         FROM post_checkins WHERE id = $1`,
      [id],
    );
    return (row as CheckinForSnapshot | undefined) ?? null;
  }

  /** Stores the gate-camera picture (evidence id) or why there is none (video error code) with a pending check-in; false when it was not pending. */
  async recordCheckinSnapshot(id: string, r: { evidenceId: string | null; error: string | null }): Promise<boolean> {
    const rows = returningRows(
      await this.db.query(
        `UPDATE post_checkins SET evidence_id = $2, evidence_status = $3, evidence_error = $4 WHERE id = $1 AND evidence_status = 'pending' RETURNING id`,
        [id, r.evidenceId, r.evidenceId ? 'taken' : 'failed', r.evidenceId ? null : r.error],
      ),
    );
    return rows.length > 0;
  }

  async checkOut(user: AuthUser, id: string, at = new Date()): Promise<PostCheckinView> {
    return this.db.transaction(async (m) => {
      const [before] = await m.query(`SELECT ${CHECKIN_COLS} FROM post_checkins WHERE id = $1 FOR UPDATE`, [id]);
      const missing = () => Errors.notFound(ErrorCode.POST_CHECKIN.NOT_FOUND, id);
      if (!before) throw missing();
      assertRecordInScope(user, before.schoolId, missing);
      if (before.checkedOutAt) throw Errors.conflict(ErrorCode.POST_CHECKIN.ALREADY_CHECKED_OUT, '已签退');
      const [after] = returningRows<PostCheckinView>(
        await m.query(`UPDATE post_checkins SET checked_out_at = GREATEST($2, checked_in_at) WHERE id = $1 RETURNING ${CHECKIN_COLS}`, [id, at]),
      );
      await this.audit.record(m, { action: 'check_out', entity: 'post_checkin', entityId: id, schoolId: before.schoolId, before, after });
      return after;
    });
  }

  async checkins(user: AuthUser, f: { schoolId?: string; postId?: string; date?: string }, limit: number, offset: number): Promise<Page<PostCheckinView>> {
    const schoolId = effectiveSchoolFilter(user, f.schoolId);
    const from = f.date ? dayStart(f.date) : null;
    const to = f.date ? dayStart(addDays(f.date, 1)) : null;
    const where = `WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::uuid IS NULL OR post_id = $2) AND ($3::timestamptz IS NULL OR (checked_in_at >= $3 AND checked_in_at < $4))`;
    const params = [schoolId ?? null, f.postId ?? null, from, to];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${CHECKIN_COLS} FROM post_checkins ${where} ORDER BY checked_in_at DESC LIMIT $5 OFFSET $6`, [...params, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM post_checkins ${where}`, params),
    ]);
    return { items, total, limit, offset };
  }

  /**
   * Every post window of `date` whose deadline has passed by `asOf`, with the head count at the
   * deadline: people checked in no earlier than patrols.postEarlyMinutes before the window and
   * not checked out before the deadline.
   */
  async postWindowStatus(schools: SchoolLike[], date: string, asOf: Date, posts?: PostLike[]): Promise<PostWindowStatus[]> {
    const bySchool = new Map(schools.map((s) => [s.id, s]));
    posts ??= await this.protectionPosts.posts(schools.map((s) => s.id));
    const due: (PostWindowOnDay & { post: PostLike })[] = [];
    for (const p of posts) {
      const s = bySchool.get(p.schoolId);
      if (!s) continue;
      for (const w of postWindows(s.timetable, s.calendar, p.windows, date, this.cfg.postGraceMinutes)) if (w.deadline <= asOf) due.push({ ...w, post: p });
    }
    if (due.length === 0) return [];
    const early = this.cfg.postEarlyMinutes * 60_000;
    const counts: { i: number; n: number }[] = await this.db.query(
      `SELECT v.i, count(DISTINCT c.person_key)::int AS n
         FROM unnest($1::int[], $2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS v(i, post_id, earliest, deadline)
         LEFT JOIN post_checkins c ON c.post_id = v.post_id AND c.checked_in_at >= v.earliest AND c.checked_in_at <= v.deadline
                                  AND (c.checked_out_at IS NULL OR c.checked_out_at > v.deadline)
        GROUP BY v.i`,
      [due.map((_, i) => i), due.map((d) => d.post.id), due.map((d) => new Date(d.start.getTime() - early)), due.map((d) => d.deadline)],
    );
    const present = new Map(counts.map((c) => [c.i, c.n]));
    return due.map((d, i) => {
      const n = present.get(i) ?? 0;
      return {
        postId: d.post.id,
        postCode: d.post.code,
        schoolId: d.post.schoolId,
        gate: d.post.gate,
        kind: d.kind,
        start: d.start,
        end: d.end,
        deadline: d.deadline,
        required: d.post.requiredHeadcount,
        present: n,
        staffed: n >= d.post.requiredHeadcount,
      };
    });
  }

  /**
   * The scheduled post check: every window whose deadline passed within the last
   * `lookbackMinutes` and is understaffed becomes a finding and a console event, once per post
   * and window (dedup key), however often the check runs.
   */
  async checkPosts(now = new Date(), lookbackMinutes = 180): Promise<{ windows: number; findings: number }> {
    const date = shanghaiDate(now);
    const schools = await this.registry.schoolsIn();
    const statuses = (await this.postWindowStatus(schools, date, now)).filter((w) => w.deadline.getTime() > now.getTime() - lookbackMinutes * 60_000);
    const findings = statuses.filter((w) => !w.staffed).map((w) => unstaffedFinding(w, 'post', null));
    if (findings.length === 0) return { windows: statuses.length, findings: 0 };
    const stored = await this.db.transaction((m) => this.findingsSvc.record(m, findings, now));
    return { windows: statuses.length, findings: stored.length };
  }

  // ------------------------------------------------------------------ guard patrols and gates

  /**
   * A guard patrol check-in (GB/T 29315-2022: ≥ 5 a day, counted per school). Who patrolled
   * (attack F8a/F8c): school security record their own patrols (a different `guardName`: 400);
   * the control center names a guard on the school's roster (400 otherwise). The same guard's
   * patrols at a school are at least patrols.guardPatrolMinGapMinutes apart (429
   * GUARD_PATROL.TOO_FREQUENT with Retry-After): five records in 0.4 s are not five patrols.
   */
  async recordGuardPatrol(
    user: AuthUser,
    dto: { schoolId?: string; guardName?: string; route?: string; note?: string },
    at = new Date(),
  ): Promise<GuardPatrolView> {
    const schoolId = dto.schoolId ?? scopedSchoolId(user);
    if (!schoolId) throw Errors.validation([{ field: 'schoolId', reason: 'required' }]);
    assertSchoolScope(user, schoolId);
    await this.registry.school(schoolId).catch(() => {
      throw Errors.validation([{ field: 'schoolId', reason: 'no such school' }]);
    });
    const given = dto.guardName?.trim() ?? '';
    let guardName: string;
    if (user.role === 'school_security') {
      guardName = shownName(user).trim();
      if (given && given !== guardName) throw Errors.validation([{ field: 'guardName', reason: 'school security record their own patrols' }]);
    } else {
      if (!given) throw Errors.validation([{ field: 'guardName', reason: 'required when recording a patrol on behalf of a guard' }]);
      if (!(await this.registry.isActiveGuard(schoolId, given)))
        throw Errors.validation([{ field: 'guardName', reason: "not an active guard on the school's guard roster" }]);
      guardName = given;
    }
    const gapMs = this.cfg.guardPatrolMinGapMinutes * 60_000;
    return this.db.transaction(async (m) => {
      if (gapMs > 0) {
        // Serialised per guard and school, so a burst of parallel requests cannot all see "none yet".
        await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`guard-patrol:${schoolId}:${guardName}`]);
        const [near] = (await m.query(`SELECT max(at) AS at FROM guard_patrols WHERE school_id = $1 AND guard_name = $2 AND at > $3 AND at < $4`, [
          schoolId,
          guardName,
          new Date(at.getTime() - gapMs),
          new Date(at.getTime() + gapMs),
        ])) as { at: Date | null }[];
        if (near?.at) {
          const wait = Math.max(1, Math.ceil((new Date(near.at).getTime() + gapMs - at.getTime()) / 1000));
          throw Errors.tooMany(ErrorCode.GUARD_PATROL.TOO_FREQUENT, '距同一保安上次巡查时间太短', wait);
        }
      }
      const [row] = await m.query(
        `INSERT INTO guard_patrols (school_id, recorded_by, guard_name, route, note, at) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, school_id AS "schoolId", guard_name AS "guardName", route, note, at`,
        [schoolId, user.id, guardName, dto.route?.trim() ?? '', dto.note?.trim() ?? '', at],
      );
      await this.audit.record(m, { action: 'create', entity: 'guard_patrol', entityId: row.id, schoolId, after: row });
      return row;
    });
  }

  /** Guard patrol check-ins per school on a Shanghai date. */
  async guardPatrolCounts(schoolIds: string[], date: string): Promise<Map<string, number>> {
    const rows: { school_id: string; n: number }[] = await this.db.query(
      `SELECT school_id, count(*)::int AS n FROM guard_patrols WHERE at >= $1 AND at < $2 AND school_id = ANY($3) GROUP BY school_id`,
      [dayStart(date), dayStart(addDays(date, 1)), schoolIds],
    );
    return new Map(rows.map((r) => [r.school_id, r.n]));
  }

  async recordGateEvent(
    user: AuthUser,
    dto: { schoolId?: string; gate: string; state: 'open' | 'closed'; at?: string },
    now = new Date(),
  ): Promise<GateEventView> {
    const schoolId = dto.schoolId ?? scopedSchoolId(user);
    if (!schoolId) throw Errors.validation([{ field: 'schoolId', reason: 'required' }]);
    assertSchoolScope(user, schoolId);
    await this.registry.school(schoolId).catch(() => {
      throw Errors.validation([{ field: 'schoolId', reason: 'no such school' }]);
    });
    const at = dto.at ? new Date(dto.at) : now;
    if (at.getTime() > now.getTime() + 60_000) throw Errors.validation([{ field: 'at', reason: 'must not be in the future' }]);
    return this.db.transaction(async (m) => {
      const [row] = await m.query(
        `INSERT INTO gate_events (school_id, gate, state, at, recorded_by) VALUES ($1, $2, $3, $4, $5) RETURNING id, school_id AS "schoolId", gate, state, at`,
        [schoolId, dto.gate.trim(), dto.state, at, user.id],
      );
      await this.audit.record(m, { action: 'create', entity: 'gate_event', entityId: row.id, schoolId, after: row });
      return row;
    });
  }

  /**
   * Gates open in school hours on `date` up to `asOf`: an 'open' event not followed by 'closed'
   * for the same gate within patrols.gateOpenToleranceMinutes, and gate_open verdicts of video rounds.
   */
  async gateOpenings(schools: SchoolLike[], date: string, asOf: Date): Promise<GateOpening[]> {
    const hours = new Map<string, { start: Date; end: Date }>();
    for (const s of schools) {
      const h = schoolHours(s.timetable, s.calendar, date);
      if (h) hours.set(s.id, h);
    }
    if (hours.size === 0) return [];
    const ids = [...hours.keys()];
    const tol = this.cfg.gateOpenToleranceMinutes * 60_000;
    const events: { id: string; school_id: string; gate: string; at: Date; closed_at: Date | null }[] = await this.db.query(
      `SELECT id, school_id, gate, at, closed_at FROM (
         SELECT id, school_id, gate, state, at,
                (SELECT min(c.at) FROM gate_events c WHERE c.school_id = e.school_id AND c.gate = e.gate AND c.state = 'closed' AND c.at >= e.at) AS closed_at
           FROM gate_events e WHERE e.at >= $1 AND e.at < $2 AND e.school_id = ANY($3) AND e.state = 'open') x`,
      [dayStart(date), asOf, ids],
    );
    const out: GateOpening[] = [];
    for (const e of events) {
      const h = hours.get(e.school_id)!;
      const at = new Date(e.at);
      if (at < h.start || at >= h.end) continue;
      const closedAt = e.closed_at ? new Date(e.closed_at).getTime() : Infinity;
      // Judged once the tolerance has run out (or the gate closed); an open gate still within tolerance is not yet a violation.
      if (closedAt - at.getTime() > tol && at.getTime() + tol <= asOf.getTime())
        out.push({ schoolId: e.school_id, gate: e.gate, at, source: 'gate_event', eventId: e.id });
    }
    const verdicts: { id: string; school_id: string; subject_label: string; at: Date }[] = await this.db.query(
      `SELECT id, school_id, subject_label, at FROM patrol_findings WHERE check_name = 'gate_open' AND source = 'round' AND at >= $1 AND at < $2 AND school_id = ANY($3)`,
      [dayStart(date), asOf, ids],
    );
    for (const v of verdicts) {
      const h = hours.get(v.school_id)!;
      const at = new Date(v.at);
      if (at >= h.start && at < h.end) out.push({ schoolId: v.school_id, gate: v.subject_label, at, source: 'round', findingId: v.id });
    }
    return out;
  }
}

/** An understaffed post window as audit results and compliance reasons list it. */
export function windowReason(w: PostWindowStatus) {
  return { postId: w.postId, post: w.postCode, gate: w.gate, window: w.kind, start: w.start, required: w.required, present: w.present };
}

/** The finding an understaffed post window becomes (dedup per post and window). */
export function unstaffedFinding(w: PostWindowStatus, source: 'post' | 'audit', runId: string | null): NewFinding {
  const kind = w.kind === 'arrival' ? '上学' : '放学';
  return {
    source,
    check: 'post_unstaffed',
    schoolId: w.schoolId,
    subjectKind: 'post',
    subjectId: w.postId,
    subjectLabel: `${w.postCode} ${w.gate}`,
    message: `护学岗 ${w.gate}（${w.postCode}）${kind}时段在岗 ${w.present} 人，应到 ${w.required} 人`,
    detail: { window: w.kind, start: w.start, deadline: w.deadline, required: w.required, present: w.present },
    runId,
    dedupKey: source === 'post' ? `post:${w.postId}:${w.start.toISOString()}` : null,
    at: w.deadline,
  };
}
