import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { AuditService } from '../audit-log/audit.service';
import type { AuthUser } from '../auth/roles';
import { assertSchoolScope, effectiveSchoolFilter } from '../auth/scope';
import { ConsoleEventsService } from '../console/console-events.service';
import type { ConsoleEventInput } from '../console/console-events';
import { CHECK_LABEL, patrolsConfig } from './patrols.constants';

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

const TASK_COLS = `id, school_id AS "schoolId", subject_key AS "subjectKey", check_name AS "check", title, status, deadline, finding_count AS "findingCount",
  closed_at AS "closedAt", closed_by AS "closedBy", close_note AS "closeNote", evidence_ref AS "evidenceRef", created_at AS "createdAt", updated_at AS "updatedAt"`;
const FINDING_COLS = `id, source, check_name AS "check", school_id AS "schoolId", subject_kind AS "subjectKind", subject_id AS "subjectId", subject_label AS "subjectLabel",
  message, detail, run_id AS "runId", round_id AS "roundId", task_id AS "taskId", at, created_at AS "createdAt"`;

/**
 * Findings and rectification tasks. Every source records findings here, in its own
 * transaction: findings are inserted in one statement, each school's problem opens a task
 * (or joins the task still open for the same subject), and one console event per school goes
 * out with the batch.
 */
@Injectable()
export class FindingsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
  ) {}

  async record(m: EntityManager, findings: NewFinding[], now: Date): Promise<StoredFinding[]> {
    if (findings.length === 0) return [];
    const subjectKey = (f: NewFinding) => `${f.schoolId ?? '-'}:${f.check}:${f.subjectId ?? f.subjectLabel ?? ''}`;
    const inserted = returningRows<{ id: string; school_id: string | null; check_name: string; message: string; subject_label: string; subject_key: string }>(
      await m.query(
        `INSERT INTO patrol_findings (source, check_name, school_id, subject_kind, subject_id, subject_label, subject_key, message, detail, run_id, round_id, dedup_key, at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::uuid[], $11::uuid[], $12::text[], $13::timestamptz[])
         ON CONFLICT (dedup_key) DO NOTHING
         RETURNING id, school_id, check_name, message, subject_label, subject_key`,
        [
          findings.map((f) => f.source),
          findings.map((f) => f.check),
          findings.map((f) => f.schoolId),
          findings.map((f) => f.subjectKind ?? null),
          findings.map((f) => f.subjectId ?? null),
          findings.map((f) => f.subjectLabel ?? ''),
          findings.map(subjectKey),
          findings.map((f) => f.message),
          findings.map((f) => JSON.stringify(f.detail ?? {})),
          findings.map((f) => f.runId ?? null),
          findings.map((f) => f.roundId ?? null),
          findings.map((f) => f.dedupKey ?? null),
          findings.map((f) => f.at),
        ],
      ),
    );
    if (inserted.length === 0) return [];

    // Tasks: one open task per subject; a repeat finding adds to its count instead of a new task.
    const forSchool = inserted.filter((f) => f.school_id !== null);
    const taskOf = new Map<string, string>();
    if (forSchool.length) {
      const bySubject = new Map<string, { schoolId: string; check: string; title: string; n: number }>();
      for (const f of forSchool) {
        const cur = bySubject.get(f.subject_key);
        if (cur) cur.n++;
        else bySubject.set(f.subject_key, { schoolId: f.school_id!, check: f.check_name, title: f.message, n: 1 });
      }
      const keys = [...bySubject.keys()];
      const deadline = new Date(now.getTime() + patrolsConfig(this.config).taskDeadlineHours * 3_600_000);
      const rows: { id: string; subject_key: string }[] = await m.query(
        `WITH v AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int[]) AS v(subject_key, school_id, check_name, title, n)),
         ins AS (
           INSERT INTO rectification_tasks (school_id, subject_key, check_name, title, deadline, finding_count, created_at, updated_at)
           SELECT school_id, subject_key, check_name, title, $6, n, $7, $7 FROM v
           ON CONFLICT (subject_key) WHERE status = 'open' DO UPDATE SET finding_count = rectification_tasks.finding_count + EXCLUDED.finding_count, updated_at = EXCLUDED.updated_at
           RETURNING id, subject_key)
         SELECT id, subject_key FROM ins`,
        [keys, keys.map((k) => bySubject.get(k)!.schoolId), keys.map((k) => bySubject.get(k)!.check), keys.map((k) => bySubject.get(k)!.title), keys.map((k) => bySubject.get(k)!.n), deadline, now],
      );
      for (const r of rows) taskOf.set(r.subject_key, r.id);
      await m.query(
        `UPDATE patrol_findings f SET task_id = v.task_id FROM unnest($1::uuid[], $2::uuid[]) AS v(id, task_id) WHERE f.id = v.id`,
        [forSchool.map((f) => f.id), forSchool.map((f) => taskOf.get(f.subject_key) ?? null)],
      );
    }

    const stored: StoredFinding[] = inserted.map((f) => ({
      id: f.id,
      schoolId: f.school_id,
      check: f.check_name,
      message: f.message,
      subjectLabel: f.subject_label,
      taskId: f.school_id ? (taskOf.get(f.subject_key) ?? null) : null,
    }));

    // Console: one event per school (and one district-level event for findings without a school).
    const first = findings[0];
    const bySchool = new Map<string | null, StoredFinding[]>();
    for (const f of stored) (bySchool.get(f.schoolId) ?? bySchool.set(f.schoolId, []).get(f.schoolId)!).push(f);
    const events: ConsoleEventInput<'patrol.finding'>[] = [...bySchool].map(([schoolId, list]) => ({
      type: 'patrol.finding',
      schoolId,
      payload: {
        schoolId,
        source: first.source,
        runId: first.runId ?? null,
        total: list.length,
        findings: list.slice(0, EVENT_FINDINGS_CAP).map((f) => ({ findingId: f.id, check: f.check, message: f.message, subjectLabel: f.subjectLabel, taskId: f.taskId })),
      },
    }));
    await this.events.append(m, events);
    return stored;
  }

  // ------------------------------------------------------------------ reads and task closing

  async findings(user: AuthUser, f: { schoolId?: string; check?: string; source?: string; runId?: string; from?: string; to?: string }, limit: number, offset: number): Promise<Page<unknown>> {
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

  async tasks(user: AuthUser, f: { schoolId?: string; status?: 'open' | 'closed'; overdue?: boolean }, limit: number, offset: number, now = new Date()): Promise<Page<unknown>> {
    const schoolId = effectiveSchoolFilter(user, f.schoolId);
    const where = `WHERE ($1::uuid IS NULL OR school_id = $1) AND ($2::text IS NULL OR status = $2)
                     AND ($3::boolean IS NULL OR $3 = (status = 'open' AND deadline < $4))`;
    const params = [schoolId ?? null, f.status ?? null, f.overdue ?? null, now];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(`SELECT ${TASK_COLS} FROM rectification_tasks ${where} ORDER BY (status = 'open') DESC, deadline, id LIMIT $5 OFFSET $6`, [...params, limit, offset]),
      this.db.query(`SELECT count(*)::int AS total FROM rectification_tasks ${where}`, params),
    ]);
    return { items: items.map((t: Record<string, unknown>) => ({ ...t, checkLabel: CHECK_LABEL[t.check as string] ?? t.check })), total, limit, offset };
  }

  async task(user: AuthUser, id: string) {
    const [t] = await this.db.query(`SELECT ${TASK_COLS} FROM rectification_tasks WHERE id = $1`, [id]);
    if (!t) throw Errors.notFound('rectification_task', id);
    assertSchoolScope(user, t.schoolId);
    const findings = await this.db.query(`SELECT ${FINDING_COLS} FROM patrol_findings WHERE task_id = $1 ORDER BY at DESC LIMIT 100`, [id]);
    return { ...t, checkLabel: CHECK_LABEL[t.check] ?? t.check, findings };
  }

  async closeTask(user: AuthUser, id: string, dto: { note: string; evidenceRef?: string }, now = new Date()) {
    return this.db.transaction(async (m) => {
      const [before] = await m.query(`SELECT ${TASK_COLS} FROM rectification_tasks WHERE id = $1 FOR UPDATE`, [id]);
      if (!before) throw Errors.notFound('rectification_task', id);
      assertSchoolScope(user, before.schoolId);
      if (before.status === 'closed') throw Errors.conflict('RECTIFICATION_TASK.ALREADY_CLOSED', '该整改任务已关闭');
      const [after] = returningRows<Record<string, unknown>>(
        await m.query(
          `UPDATE rectification_tasks SET status = 'closed', closed_at = $2, closed_by = $3, close_note = $4, evidence_ref = $5, updated_at = $2 WHERE id = $1 RETURNING ${TASK_COLS}`,
          [id, now, user.id, dto.note.trim(), dto.evidenceRef ?? null],
        ),
      );
      await this.audit.record(m, { action: 'close', entity: 'rectification_task', entityId: id, schoolId: before.schoolId, before, after });
      return after;
    });
  }
}
