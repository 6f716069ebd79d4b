import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { AuditService } from '../audit-log';
import type { AuthUser } from '../../infra/access/roles';
import { assertRecordInScope, effectiveSchoolFilter } from '../../infra/access/scope';
import { type ConsoleEventInput, ConsoleEventsService } from '../console-events';
import { CHECK_LABEL, RECTIFICATION_PHOTO_PURPOSE } from './patrols.constants';
import type { FindingView, RectificationTaskItem, RectificationTaskView } from './views';

/** A problem found by an audit, a video round or a post check, before it is stored. */
export interface NewFinding {
  source: 'audit' | 'round' | 'post';
  check: string;
  schoolId: string | null;
  subjectKind?: 'camera' | 'alarm_device' | 'post' | 'gate' | 'school';
  subjectId?: string | null;
  subjectLabel?: string;
  message: string;
  detail?: Record<string, unknown>;
  runId?: string | null;
  roundId?: string | null;
  /** Set where the same finding must never be recorded twice (a post window, a gate event). */
  dedupKey?: string | null;
  at: Date;
}

/** What the video module needs of a task to store a photo for it (POST /rectification-tasks/:id/photos). */
export interface TaskForPhotos {
  id: string;
  schoolId: string;
  status: 'open' | 'closed';
  /**
   * When the current closing round began: the last time the task was sent back (null: never, the round is the
   * task's whole life). Photos taken before it belong to a closing that was not accepted: they neither count toward
   * video.photosPerTask nor close the task again.
   */
  roundStart: Date | null;
}

export interface StoredFinding {
  id: string;
  schoolId: string | null;
  check: string;
  message: string;
  subjectLabel: string;
  taskId: string | null;
}

/** At most this many findings listed in one console event (the event carries the total). */
const EVENT_FINDINGS_CAP = 50;
/** Schools summarised in one audit-run console event. */
const SCHOOLS_PER_EVENT = 500;

const TASK_COLS = `id, school_id AS "schoolId", subject_key AS "subjectKey", check_name AS "check", title, status, deadline, finding_count AS "findingCount",
  closed_at AS "closedAt", closed_by AS "closedBy", close_note AS "closeNote", evidence_ref AS "evidenceRef", close_photo_ids AS "closePhotoIds",
  reopened_at AS "reopenedAt", reopened_by AS "reopenedBy", reopen_reason AS "reopenReason", reopen_count AS "reopenCount", created_at AS "createdAt", updated_at AS "updatedAt"`;
const FINDING_COLS = `id, source, check_name AS "check", school_id AS "schoolId", subject_kind AS "subjectKind", subject_id AS "subjectId", subject_label AS "subjectLabel",
  message, detail, run_id AS "runId", round_id AS "roundId", task_id AS "taskId", at, created_at AS "createdAt"`;

/**
 * Findings and rectification tasks. Every source records findings here, in its own
 * transaction: each school's problem opens a task (or joins the task still open for the same
 * subject), findings are inserted in one statement with their task, and console events go out
 * with the batch (see consoleEvents).
 */
@Injectable()
export class FindingsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
  ) {}

  /**
   * Stores findings in the caller's transaction. Findings with a dedup key go in first (those
   * already stored are dropped); then each school's problems open or join their tasks; then the
   * rest go in with their task id already set, so no finding is written twice. Ids are made
   * here, so the result keeps the input's order. Returns the findings stored.
   */
  async record(m: EntityManager, findings: NewFinding[], now: Date): Promise<StoredFinding[]> {
    if (findings.length === 0) return [];
    const rows = findings.map((f) => ({
      f,
      id: randomUUID(),
      subjectKey: `${f.schoolId ?? '-'}:${f.check}:${f.subjectId ?? f.subjectLabel ?? ''}`,
      taskId: null as string | null,
    }));

    // 1. Deduplicated findings (a post window, a gate event): only those not yet stored count.
    const dedup = rows.filter((r) => r.f.dedupKey);
    let kept = rows;
    if (dedup.length) {
      const ins = returningRows<{ id: string }>(await this.insert(m, dedup, 'ON CONFLICT (dedup_key) DO NOTHING RETURNING id'));
      const stored = new Set(ins.map((r) => r.id));
      kept = rows.filter((r) => !r.f.dedupKey || stored.has(r.id));
      if (kept.length === 0) return [];
    }

    // 2. Tasks: one open task per subject; a repeat finding adds to its count instead of a new task.
    const bySubject = new Map<string, { schoolId: string; check: string; title: string; n: number }>();
    for (const r of kept) {
      if (r.f.schoolId === null) continue;
      const cur = bySubject.get(r.subjectKey);
      if (cur) cur.n++;
      else bySubject.set(r.subjectKey, { schoolId: r.f.schoolId, check: r.f.check, title: r.f.message, n: 1 });
    }
    if (bySubject.size) {
      const keys = [...bySubject.keys()];
      const vals = [...bySubject.values()];
      const deadline = new Date(now.getTime() + this.config.patrols.taskDeadlineHours * 3_600_000);
      const tasks: { id: string; subject_key: string }[] = await m.query(
        `INSERT INTO rectification_tasks (school_id, subject_key, check_name, title, deadline, finding_count, created_at, updated_at)
         SELECT school_id, subject_key, check_name, title, $6, n, $7, $7 FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int[]) AS v(subject_key, school_id, check_name, title, n)
         ON CONFLICT (subject_key) WHERE status = 'open' DO UPDATE SET finding_count = rectification_tasks.finding_count + EXCLUDED.finding_count, updated_at = EXCLUDED.updated_at
         RETURNING id, subject_key`,
        [keys, vals.map((v) => v.schoolId), vals.map((v) => v.check), vals.map((v) => v.title), vals.map((v) => v.n), deadline, now],
      );
      const taskOf = new Map(tasks.map((t) => [t.subject_key, t.id]));
      for (const r of kept) if (r.f.schoolId !== null) r.taskId = taskOf.get(r.subjectKey) ?? null;
    }

    // 3. The other findings, task id included; the deduplicated ones (few) get theirs now.
    const plain = kept.filter((r) => !r.f.dedupKey);
    if (plain.length) await this.insert(m, plain, '');
    const linked = kept.filter((r) => r.f.dedupKey && r.taskId);
    if (linked.length)
      await m.query(`UPDATE patrol_findings f SET task_id = v.task_id FROM unnest($1::uuid[], $2::uuid[]) AS v(id, task_id) WHERE f.id = v.id`, [
        linked.map((r) => r.id),
        linked.map((r) => r.taskId),
      ]);

    const stored: StoredFinding[] = kept.map((r) => ({
      id: r.id,
      schoolId: r.f.schoolId,
      check: r.f.check,
      message: r.f.message,
      subjectLabel: r.f.subjectLabel ?? '',
      taskId: r.taskId,
    }));
    await this.events.append(m, this.consoleEvents(findings[0], stored));
    return stored;
  }

  /** One statement, the rows as one JSON document (parsed by Postgres much faster than a dozen array literals). */
  private insert(m: EntityManager, rows: { f: NewFinding; id: string; subjectKey: string; taskId: string | null }[], tail: string) {
    const doc = rows.map((r) => ({
      id: r.id,
      source: r.f.source,
      check_name: r.f.check,
      school_id: r.f.schoolId,
      subject_kind: r.f.subjectKind ?? null,
      subject_id: r.f.subjectId ?? null,
      subject_label: r.f.subjectLabel ?? '',
      subject_key: r.subjectKey,
      message: r.f.message,
      detail: r.f.detail ?? {},
      run_id: r.f.runId ?? null,
      round_id: r.f.roundId ?? null,
      dedup_key: r.f.dedupKey ?? null,
      task_id: r.taskId,
      at: r.f.at,
    }));
    return m.query(
      `INSERT INTO patrol_findings (id, source, check_name, school_id, subject_kind, subject_id, subject_label, subject_key, message, detail, run_id, round_id, dedup_key, task_id, at)
       SELECT id, source, check_name, school_id, subject_kind, subject_id, subject_label, subject_key, message, detail, run_id, round_id, dedup_key, task_id, at
         FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, source text, check_name text, school_id uuid, subject_kind text, subject_id uuid, subject_label text, subject_key text,
                                                 message text, detail jsonb, run_id uuid, round_id uuid, dedup_key text, task_id uuid, at timestamptz)
       ${tail}`,
      [JSON.stringify(doc)],
    );
  }

  /**
   * Console events for stored findings. An audit run sends a few district events, each covering
   * up to SCHOOLS_PER_EVENT schools (every school with its count per check, the first findings
   * listed): a district run finds thousands of schools, and the console wants a summary, not
   * an event per school; each school's staff get their own as `patrol.school_findings`.
   * Rounds and post checks send one event per school (district and school both see it).
   */
  private consoleEvents(first: NewFinding, stored: StoredFinding[]): ConsoleEventInput<'patrol.finding' | 'patrol.school_findings'>[] {
    const bySchool = new Map<string | null, StoredFinding[]>();
    for (const f of stored) (bySchool.get(f.schoolId) ?? bySchool.set(f.schoolId, []).get(f.schoolId)!).push(f);
    const listed = (list: StoredFinding[]) =>
      list.slice(0, EVENT_FINDINGS_CAP).map((f) => ({ findingId: f.id, check: f.check, message: f.message, subjectLabel: f.subjectLabel, taskId: f.taskId }));
    const base = { source: first.source, runId: first.runId ?? null };
    if (first.source !== 'audit')
      return [...bySchool].map(([schoolId, list]): ConsoleEventInput<'patrol.finding'> => ({
        type: 'patrol.finding',
        schoolId,
        payload: { schoolId, ...base, total: list.length, findings: listed(list) },
      }));

    const schools = [...bySchool];
    const of = Math.ceil(schools.length / SCHOOLS_PER_EVENT);
    const events: ConsoleEventInput<'patrol.finding' | 'patrol.school_findings'>[] = [];
    // Each school's staff get their own findings live (school room only; the district has the summaries).
    for (const [schoolId, list] of schools) {
      if (schoolId)
        events.push({
          type: 'patrol.school_findings',
          schoolId,
          payload: { schoolId, source: 'audit', runId: base.runId, total: list.length, findings: listed(list) },
        });
    }
    for (let i = 0; i < schools.length; i += SCHOOLS_PER_EVENT) {
      const chunk = schools.slice(i, i + SCHOOLS_PER_EVENT);
      const all = chunk.flatMap(([, list]) => list);
      const perSchool = chunk.map(([schoolId, list]) => {
        const checks: Record<string, number> = {};
        for (const f of list) checks[f.check] = (checks[f.check] ?? 0) + 1;
        return { schoolId, total: list.length, checks };
      });
      events.push({
        type: 'patrol.finding',
        schoolId: null,
        payload: { schoolId: null, ...base, total: all.length, chunk: { index: i / SCHOOLS_PER_EVENT + 1, of }, schools: perSchool, findings: listed(all) },
      });
    }
    return events;
  }

  // ------------------------------------------------------------------ reads and task closing

  async findings(
    user: AuthUser,
    f: { schoolId?: string; check?: string; source?: string; runId?: string; from?: string; to?: string },
    limit: number,
    offset: number,
  ): Promise<Page<FindingView>> {
    const schoolId = effectiveSchoolFilter(user, f.schoolId);
    const where = `WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::text IS NULL OR check_name = $2) AND ($3::text IS NULL OR source = $3)
                     AND ($4::uuid IS NULL OR run_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)`;
    const params = [schoolId ?? null, f.check ?? null, f.source ?? null, f.runId ?? null, f.from ?? null, f.to ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${FINDING_COLS} FROM patrol_findings ${where} ORDER BY at DESC, id LIMIT $7 OFFSET $8`, [...params, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_findings ${where}`, params),
    ]);
    return { items, total, limit, offset };
  }

  /**
   * Tasks by school, status and overdue, with their school's name. `order`: 'deadline' (default) open first, the
   * nearest deadline first; 'newest' the most recently opened (or sent back) first — the operator's panel of open findings.
   */
  async tasks(
    user: AuthUser,
    f: { schoolId?: string; status?: 'open' | 'closed'; overdue?: boolean; order?: 'deadline' | 'newest'; id?: string },
    limit: number,
    offset: number,
    now = new Date(),
  ): Promise<Page<RectificationTaskItem>> {
    const schoolId = effectiveSchoolFilter(user, f.schoolId);
    // `id`: one task (a link to it); another school's is simply not listed.
    const where = `WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::text IS NULL OR status = $2)
                     AND ($3::boolean IS NULL OR $3 = (status = 'open' AND deadline < $4)) AND ($5::uuid IS NULL OR id = $5)`;
    const params = [schoolId ?? null, f.status ?? null, f.overdue ?? null, now, f.id ?? null];
    const order = (x: string) =>
      f.order === 'newest' ? `coalesce(${x}reopened_at, ${x}created_at) DESC, ${x}id` : `(${x}status = 'open') DESC, ${x}deadline, ${x}id`;
    const outer = (x: string) =>
      f.order === 'newest' ? `coalesce(${x}"reopenedAt", ${x}"createdAt") DESC, ${x}id` : `(${x}status = 'open') DESC, ${x}deadline, ${x}id`;
    const [items, [{ total }]] = await Promise.all([
      // The page first, then its schools' names (joined outside, so the columns stay those of the task).
      this.db.query(
        `SELECT x.*, s.name AS "schoolName" FROM (SELECT ${TASK_COLS} FROM rectification_tasks ${where} ORDER BY ${order('')} LIMIT $6 OFFSET $7) x
           LEFT JOIN schools s ON s.id = x."schoolId" ORDER BY ${outer('x.')}`,
        [...params, limit, offset],
      ),
      this.db.query(`SELECT count(*)::int AS total FROM rectification_tasks ${where}`, params),
    ]);
    return { items: (items as RectificationTaskItem[]).map((t) => ({ ...t, checkLabel: CHECK_LABEL[t.check] ?? t.check })), total, limit, offset };
  }

  /**
   * Every finding the list's filters match (newest first) with its school's name, for an export; more than `maxRows`
   * matching is a 400 on `from` (narrow the range).
   */
  async findingsForExport(
    user: AuthUser,
    f: { schoolId?: string; check?: string; source?: string; runId?: string; from?: string; to?: string },
    maxRows: number,
  ): Promise<(FindingView & { schoolName: string | null })[]> {
    const page = await this.findings(user, f, 0, 0);
    if (page.total > maxRows)
      throw Errors.validation([{ field: 'from', reason: `${page.total} findings match, more than ${maxRows} (patrols.exportMaxRows): narrow the time range` }]);
    const schoolId = effectiveSchoolFilter(user, f.schoolId);
    // The list's own columns, then the school's name (joined outside, so the columns stay those of the list).
    return this.db.query(
      `SELECT x.*, s.name AS "schoolName" FROM (
         SELECT ${FINDING_COLS} FROM patrol_findings
          WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::text IS NULL OR check_name = $2) AND ($3::text IS NULL OR source = $3)
            AND ($4::uuid IS NULL OR run_id = $4) AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
          ORDER BY at DESC, id LIMIT $7) x
       LEFT JOIN schools s ON s.id = x."schoolId" ORDER BY x.at DESC, x.id`,
      [schoolId ?? null, f.check ?? null, f.source ?? null, f.runId ?? null, f.from ?? null, f.to ?? null, maxRows],
    );
  }

  /**
   * Every task the list's filters match (open first, by deadline) with its school's name, for an export; more than
   * `maxRows` matching is a 400 on `status` (narrow the filter).
   */
  async tasksForExport(
    user: AuthUser,
    f: { schoolId?: string; status?: 'open' | 'closed'; overdue?: boolean },
    maxRows: number,
    now = new Date(),
  ): Promise<(RectificationTaskView & { schoolName: string | null })[]> {
    const page = await this.tasks(user, f, 0, 0, now);
    if (page.total > maxRows)
      throw Errors.validation([{ field: 'status', reason: `${page.total} tasks match, more than ${maxRows} (patrols.exportMaxRows): narrow the filter` }]);
    const schoolId = effectiveSchoolFilter(user, f.schoolId);
    return this.db.query(
      `SELECT x.*, s.name AS "schoolName" FROM (
         SELECT ${TASK_COLS} FROM rectification_tasks
          WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::text IS NULL OR status = $2)
            AND ($3::boolean IS NULL OR $3 = (status = 'open' AND deadline < $4))
          ORDER BY (status = 'open') DESC, deadline, id LIMIT $5) x
       LEFT JOIN schools s ON s.id = x."schoolId" ORDER BY (x.status = 'open') DESC, x.deadline, x.id`,
      [schoolId ?? null, f.status ?? null, f.overdue ?? null, now, maxRows],
    );
  }

  async task(user: AuthUser, id: string): Promise<RectificationTaskItem & { findings: FindingView[] }> {
    const [t]: RectificationTaskItem[] = await this.db.query(
      `SELECT x.*, s.name AS "schoolName" FROM (SELECT ${TASK_COLS} FROM rectification_tasks WHERE id = $1) x LEFT JOIN schools s ON s.id = x."schoolId"`,
      [id],
    );
    const missing = () => Errors.notFound(ErrorCode.RECTIFICATION_TASK.NOT_FOUND, id);
    if (!t) throw missing();
    assertRecordInScope(user, t.schoolId, missing);
    const findings: FindingView[] = await this.db.query(`SELECT ${FINDING_COLS} FROM patrol_findings WHERE task_id = $1 ORDER BY at DESC LIMIT 100`, [id]);
    return { ...t, checkLabel: CHECK_LABEL[t.check] ?? t.check, findings };
  }

  /**
   * A task as the photo upload sees it (video's RectificationPhotosService): 404 RECTIFICATION_TASK.NOT_FOUND when
   * missing or another school's (no existence oracle). Inside a transaction (`m`) the row is held FOR SHARE until
   * commit, so a closing waits for the upload (and an upload after a closing sees it closed).
   */
  async taskForPhotos(user: AuthUser, id: string, m?: EntityManager): Promise<TaskForPhotos> {
    const [t]: TaskForPhotos[] = await (m ?? this.db).query(
      `SELECT id, school_id AS "schoolId", status, reopened_at AS "roundStart" FROM rectification_tasks WHERE id = $1${m ? ' FOR SHARE' : ''}`,
      [id],
    );
    const missing = () => Errors.notFound(ErrorCode.RECTIFICATION_TASK.NOT_FOUND, id);
    if (!t) throw missing();
    assertRecordInScope(user, t.schoolId, missing);
    return t;
  }

  /**
   * Closes a task with what was done (`note`) and the photos that show it (`photoIds`: 1–CLOSE_PHOTOS_MAX evidence
   * ids, each a photo uploaded for this task — POST /rectification-tasks/:id/photos, purpose
   * RECTIFICATION_PHOTO_PURPOSE, ref the task, the task's school). A closing without a photo, or naming anything else
   * (another task's photo, a camera's picture, an unknown id), is a field-level 400 on `photoIds` (the DTO checks the
   * count; this the ownership): the school proves the fix, the supervisor sees it. The ids are kept on the task
   * (`closePhotoIds`) and stay when it is sent back, like the note. `evidenceRef` (free text) is still taken and kept
   * for older clients. 404 as for the task; 409 RECTIFICATION_TASK.ALREADY_CLOSED. Audited ('close').
   */
  async closeTask(
    user: AuthUser,
    id: string,
    dto: { note: string; evidenceRef?: string; photoIds: string[] },
    now = new Date(),
  ): Promise<RectificationTaskView> {
    return this.db.transaction(async (m) => {
      const [before] = await m.query(`SELECT ${TASK_COLS} FROM rectification_tasks WHERE id = $1 FOR UPDATE`, [id]);
      const missing = () => Errors.notFound(ErrorCode.RECTIFICATION_TASK.NOT_FOUND, id);
      if (!before) throw missing();
      assertRecordInScope(user, before.schoolId, missing);
      if (before.status === 'closed') throw Errors.conflict(ErrorCode.RECTIFICATION_TASK.ALREADY_CLOSED, '该整改任务已关闭');
      const photoIds = [...new Set(dto.photoIds.map((p) => p.toLowerCase()))];
      // The photos live in the video module's evidence table (a higher layer, so read here by SQL like a round
      // verdict's picture, rounds.service): ids, purpose, task and school must all match.
      const found = new Set(
        (
          (await m.query(`SELECT id FROM video_evidence WHERE id = ANY($1::uuid[]) AND purpose = $2 AND ref_id = $3 AND school_id = $4`, [
            photoIds,
            RECTIFICATION_PHOTO_PURPOSE,
            before.id,
            before.schoolId,
          ])) as { id: string }[]
        ).map((r) => r.id),
      );
      const foreign = photoIds.filter((p) => !found.has(p));
      if (foreign.length)
        throw Errors.validation([
          { field: 'photoIds', reason: `not photos of this task (POST /rectification-tasks/${before.id}/photos): ${foreign.join(', ')}` },
        ]);
      // A task sent back is closed again with photos taken since (the round's): the rejected closing's photos
      // (or any older one) do not prove the new fix. captured_at is stamped in the upload's transaction, which holds
      // the task row, so a photo is never dated before the reopening it follows.
      if (before.reopenedAt) {
        const old: { id: string }[] = await m.query(`SELECT id FROM video_evidence WHERE id = ANY($1::uuid[]) AND captured_at < $2 ORDER BY id`, [
          photoIds,
          before.reopenedAt,
        ]);
        if (old.length)
          throw Errors.validation([{ field: 'photoIds', reason: `须上传退回后的新照片（退回前拍的照片不能再用）: ${old.map((r) => r.id).join(', ')}` }]);
      }
      const [after] = returningRows<RectificationTaskView>(
        await m.query(
          `UPDATE rectification_tasks SET status = 'closed', closed_at = $2, closed_by = $3, close_note = $4, evidence_ref = $5, close_photo_ids = $6::uuid[], updated_at = $2
            WHERE id = $1 RETURNING ${TASK_COLS}`,
          [id, now, user.id, dto.note.trim(), dto.evidenceRef ?? null, photoIds],
        ),
      );
      await this.audit.record(m, { action: 'close', entity: 'rectification_task', entityId: id, schoolId: before.schoolId, before, after });
      return after;
    });
  }

  /**
   * Sends a closed task back to its school (issue 13: follow tasks to closure, reopen with a reason): open again
   * with a new deadline (patrols.taskDeadlineHours from now), the reason and who sent it back recorded, the count
   * raised. The last closing note, evidence reference and photos (`closePhotoIds`) stay, so the school and the
   * supervisor see what was not accepted. 404 as
   * for the task; 409 RECTIFICATION_TASK.NOT_CLOSED on an open task; 409 RECTIFICATION_TASK.OPEN_TASK_EXISTS when
   * the same problem already has an open task (found again since), `details.openTaskId`. Audited ('reopen').
   */
  async reopenTask(user: AuthUser, id: string, dto: { reason: string }, now = new Date()): Promise<RectificationTaskView> {
    return this.db.transaction(async (m) => {
      const [before] = await m.query(`SELECT ${TASK_COLS} FROM rectification_tasks WHERE id = $1 FOR UPDATE`, [id]);
      const missing = () => Errors.notFound(ErrorCode.RECTIFICATION_TASK.NOT_FOUND, id);
      if (!before) throw missing();
      assertRecordInScope(user, before.schoolId, missing);
      if (before.status !== 'closed') throw Errors.conflict(ErrorCode.RECTIFICATION_TASK.NOT_CLOSED, '该整改任务尚未完成，无需退回');
      // One open task per subject (rectification_tasks_open_uq): a finding since the closing may have opened another.
      const [open] = await m.query(`SELECT id FROM rectification_tasks WHERE subject_key = $1 AND status = 'open'`, [before.subjectKey]);
      if (open) throw Errors.conflict(ErrorCode.RECTIFICATION_TASK.OPEN_TASK_EXISTS, '同一问题已有未完成的整改任务，请跟进该任务', { openTaskId: open.id });
      const deadline = new Date(now.getTime() + this.config.patrols.taskDeadlineHours * 3_600_000);
      const [after] = returningRows<RectificationTaskView>(
        await m.query(
          `UPDATE rectification_tasks SET status = 'open', closed_at = NULL, closed_by = NULL, deadline = $2, reopened_at = $3, reopened_by = $4,
                  reopen_reason = $5, reopen_count = reopen_count + 1, updated_at = $3 WHERE id = $1 RETURNING ${TASK_COLS}`,
          [id, deadline, now, user.id, dto.reason.trim()],
        ),
      );
      await this.audit.record(m, { action: 'reopen', entity: 'rectification_task', entityId: id, schoolId: before.schoolId, before, after });
      return after;
    });
  }
}
