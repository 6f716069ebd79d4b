import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { AuditService } from '../audit-log';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { RegistryService } from '../registry';
import { FindingsService } from './findings.service';
import { GATE_AREA_KINDS, Verdict, VERDICT_CHECK, VERDICT_LABEL } from './patrols.constants';
import { addDays, dayStart, gateWindows, shanghaiDate } from '../school-day';
import type { PatrolRoundItemView, PatrolRoundSummary, PatrolRoundView } from './views';

export interface Candidate {
  id: string;
  schoolId: string;
  areaKind: string;
  lastPatrolledAt: Date | null;
  /** A gate camera of a school now in its arrival/dismissal window, not yet looked at in this window. */
  favoured: boolean;
}

/**
 * Orders cameras for a round: favoured gate cameras first, then least recently patrolled
 * (never patrolled first), ties by id so the order is stable. Pure.
 */
export function pickCameras(candidates: Candidate[], n: number): Candidate[] {
  return [...candidates]
    .sort(
      (a, b) =>
        Number(b.favoured) - Number(a.favoured) ||
        (a.lastPatrolledAt?.getTime() ?? -Infinity) - (b.lastPatrolledAt?.getTime() ?? -Infinity) ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    )
    .slice(0, n);
}

/** The evidence purpose the video wall takes a verdict's picture under (RoundsSurface.vue). */
export const ROUND_EVIDENCE_PURPOSE = 'round.verdict';

/** snapshotSource: the verdict picture's evidence source (older verdicts may name something that is no evidence id: null then). */
const ITEM_COLS = `i.camera_id AS "cameraId", i.school_id AS "schoolId", i.position, i.favoured, i.verdict, i.note, i.snapshot_ref AS "snapshotRef", i.verdict_at AS "verdictAt", i.finding_id AS "findingId",
  (SELECT e.source FROM video_evidence e WHERE e.id = CASE WHEN i.snapshot_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN i.snapshot_ref::uuid END) AS "snapshotSource"`;

/**
 * Video patrol rounds: an operator looks at N cameras and records a verdict per camera. The
 * cameras are chosen so that the whole fleet is looked at within patrols.coveragePeriodDays
 * (least recently patrolled first), with gate cameras favoured while their school's
 * arrival/dismissal window is on. Cameras handed to an unfinished round are held back from
 * other operators for patrols.roundReservationMinutes.
 */
@Injectable()
export class RoundsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly findingsSvc: FindingsService,
    private readonly audit: AuditService,
  ) {}

  private get cfg() {
    return this.config.patrols;
  }

  async start(user: AuthUser, dto: { size?: number; zoneId?: string; schoolId?: string }, now = new Date()): Promise<PatrolRoundView> {
    const size = Math.min(dto.size ?? this.cfg.roundDefaultSize, this.cfg.roundMaxSize);
    const [cams, marks, held, schools] = await Promise.all([
      this.registry.cameraPicks({ zoneId: dto.zoneId, schoolId: dto.schoolId }),
      this.db.query(`SELECT camera_id, last_patrolled_at FROM camera_patrol_marks`) as Promise<{ camera_id: string; last_patrolled_at: Date }[]>,
      this.db.query(
        `SELECT i.camera_id FROM patrol_round_items i JOIN patrol_rounds r ON r.id = i.round_id WHERE i.verdict IS NULL AND r.finished_at IS NULL AND r.started_at > $1`,
        [new Date(now.getTime() - this.cfg.roundReservationMinutes * 60_000)],
      ) as Promise<{ camera_id: string }[]>,
      this.registry.schoolsIn(),
    ]);
    const last = new Map(marks.map((m) => [m.camera_id, new Date(m.last_patrolled_at)]));
    const busy = new Set(held.map((h) => h.camera_id));
    // Schools in an arrival or dismissal window right now, and when that window started.
    const date = shanghaiDate(now);
    const windowStart = new Map<string, Date>();
    for (const s of schools) for (const w of gateWindows(s.timetable, s.calendar, date)) if (w.start <= now && now < w.end) windowStart.set(s.id, w.start);
    const candidates: Candidate[] = cams
      .filter((c) => !busy.has(c.id))
      .map((c) => {
        const lp = last.get(c.id) ?? null;
        const ws = windowStart.get(c.schoolId);
        return {
          id: c.id,
          schoolId: c.schoolId,
          areaKind: c.areaKind,
          lastPatrolledAt: lp,
          favoured: !!ws && GATE_AREA_KINDS.includes(c.areaKind) && (!lp || lp < ws),
        };
      });
    const picked = pickCameras(candidates, size);
    if (picked.length === 0) throw Errors.conflict(ErrorCode.PATROL_ROUND.NO_CAMERAS, '没有可巡查的摄像机');
    const id = await this.db.transaction(async (m) => {
      const [r] = await m.query(`INSERT INTO patrol_rounds (operator_id, operator_name, size, started_at) VALUES ($1, $2, $3, $4) RETURNING id`, [
        user.id,
        shownName(user),
        picked.length,
        now,
      ]);
      await m.query(
        `INSERT INTO patrol_round_items (round_id, camera_id, school_id, position, favoured) SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::int[], $5::boolean[])`,
        [r.id, picked.map((c) => c.id), picked.map((c) => c.schoolId), picked.map((_, i) => i + 1), picked.map((c) => c.favoured)],
      );
      await this.audit.record(m, {
        action: 'start',
        entity: 'patrol_round',
        entityId: r.id,
        after: { size: picked.length, zoneId: dto.zoneId ?? null, schoolId: dto.schoolId ?? null },
      });
      return r.id as string;
    });
    return this.round(id);
  }

  async round(id: string): Promise<PatrolRoundView> {
    const [r]: PatrolRoundSummary[] = await this.db.query(
      `SELECT id, operator_id AS "operatorId", operator_name AS "operatorName", size, started_at AS "startedAt", finished_at AS "finishedAt" FROM patrol_rounds WHERE id = $1`,
      [id],
    );
    if (!r) throw Errors.notFound(ErrorCode.PATROL_ROUND.NOT_FOUND, id);
    const items: Omit<PatrolRoundItemView, 'camera'>[] = await this.db.query(
      `SELECT ${ITEM_COLS} FROM patrol_round_items i WHERE i.round_id = $1 ORDER BY i.position`,
      [id],
    );
    const cams = new Map((await this.registry.cameras({ ids: items.map((i) => i.cameraId) })).map((c) => [c.id, c]));
    return {
      ...r,
      items: items.map((i) => {
        const c = cams.get(i.cameraId);
        return { ...i, camera: c ? { name: c.name, location: c.location, areaKind: c.areaKind, streamUrl: c.streamUrl, status: c.status } : null };
      }),
    };
  }

  async rounds(f: { operatorId?: string; from?: string; to?: string }, limit: number, offset: number): Promise<Page<PatrolRoundSummary>> {
    const where = `WHERE ($1::uuid IS NULL OR operator_id = $1) AND ($2::timestamptz IS NULL OR started_at >= $2) AND ($3::timestamptz IS NULL OR started_at < $3)`;
    const params = [f.operatorId ?? null, f.from ?? null, f.to ?? null];
    const [items, [{ total }]] = await Promise.all([
      this.db.query(
        `SELECT id, operator_id AS "operatorId", operator_name AS "operatorName", size, started_at AS "startedAt", finished_at AS "finishedAt" FROM patrol_rounds ${where} ORDER BY started_at DESC LIMIT $4 OFFSET $5`,
        [...params, limit, offset],
      ),
      this.db.query(`SELECT count(*)::int AS total FROM patrol_rounds ${where}`, params),
    ]);
    return { items, total, limit, offset };
  }

  /** Records the verdict on one camera of a round; anything but normal becomes a finding (and a task for the school). */
  /**
   * 429 PATROL_ROUND.TOO_FAST when this user's rounds got a verdict less than
   * patrols.roundVerdictMinSeconds before `now` (attack F8c: cameras "looked at" faster than a
   * picture arrives). Serialised per user (advisory lock), so parallel verdicts cannot all pass.
   */
  private async assertVerdictSpacing(m: EntityManager, user: AuthUser, now: Date): Promise<void> {
    const gapMs = this.cfg.roundVerdictMinSeconds * 1000;
    if (gapMs <= 0) return;
    await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`round-verdict:${user.id}`]);
    const [last] = (await m.query(
      `SELECT max(i.verdict_at) AS at FROM patrol_round_items i JOIN patrol_rounds r ON r.id = i.round_id
        WHERE r.operator_id = $1 AND i.verdict_at > $2 AND i.verdict_at < $3`,
      [user.id, new Date(now.getTime() - gapMs), new Date(now.getTime() + gapMs)],
    )) as { at: Date | null }[];
    if (last?.at) {
      const wait = Math.max(1, Math.ceil((new Date(last.at).getTime() + gapMs - now.getTime()) / 1000));
      throw Errors.tooMany(ErrorCode.PATROL_ROUND.TOO_FAST, '巡查结论提交过快', wait);
    }
  }

  /**
   * A verdict is made on a picture the service took (attack: a "normal" verdict on an offline
   * camera, "proved" by any URL): snapshotRef must be an evidence record of this camera, purpose
   * round.verdict, taken for this round (refId) — else 400 on snapshotRef. "normal" needs one
   * (400 PATROL_ROUND.NORMAL_NEEDS_PICTURE); other verdicts (offline, obstructed…) may be made
   * without, since a camera that gives no picture is exactly what they report.
   */
  private async assertEvidence(m: EntityManager, roundId: string, cameraId: string, dto: { verdict: Verdict; snapshotRef?: string }): Promise<void> {
    if (dto.snapshotRef === undefined) {
      if (dto.verdict === 'normal')
        throw Errors.badRequest(ErrorCode.PATROL_ROUND.NORMAL_NEEDS_PICTURE, '没有该摄像机本轮的画面，不能判定为正常', { field: 'snapshotRef' });
      return;
    }
    const found = (await m.query(`SELECT 1 FROM video_evidence WHERE id = $1 AND camera_id = $2::uuid AND purpose = $3 AND lower(ref_id) = lower($4)`, [
      dto.snapshotRef,
      cameraId,
      ROUND_EVIDENCE_PURPOSE,
      roundId,
    ])) as unknown[];
    if (found.length === 0)
      throw Errors.validation([
        {
          field: 'snapshotRef',
          reason: `must be an evidence record of this camera taken for this round (purpose ${ROUND_EVIDENCE_PURPOSE}, refId the round id)`,
        },
      ]);
  }

  async verdict(
    user: AuthUser,
    roundId: string,
    cameraId: string,
    dto: { verdict: Verdict; note?: string; snapshotRef?: string },
    now = new Date(),
  ): Promise<PatrolRoundView> {
    await this.db.transaction(async (m) => {
      const [r] = await m.query(`SELECT operator_id, finished_at FROM patrol_rounds WHERE id = $1 FOR UPDATE`, [roundId]);
      if (!r) throw Errors.notFound(ErrorCode.PATROL_ROUND.NOT_FOUND, roundId);
      if (r.operator_id !== user.id && user.role === 'operator') throw Errors.forbidden(ErrorCode.PATROL_ROUND.NOT_YOURS, '这是其他值班员的巡查轮次');
      const [item] = await m.query(`SELECT camera_id, school_id, verdict FROM patrol_round_items WHERE round_id = $1 AND camera_id = $2`, [roundId, cameraId]);
      if (!item) throw Errors.notFound(ErrorCode.PATROL_ROUND_ITEM.NOT_FOUND, cameraId);
      if (item.verdict) throw Errors.conflict(ErrorCode.PATROL_ROUND.ALREADY_JUDGED, '该摄像机已记录巡查结论');
      await this.assertEvidence(m, roundId, cameraId, dto);
      await this.assertVerdictSpacing(m, user, now);
      let findingId: string | null = null;
      if (dto.verdict !== 'normal') {
        const [cam] = await this.registry.cameras({ ids: [cameraId] });
        const label = cam?.name ?? cameraId;
        const gate = dto.verdict === 'gate_open' ? cam?.location || cam?.name || '校门' : label;
        const [stored] = await this.findingsSvc.record(
          m,
          [
            {
              source: 'round',
              check: VERDICT_CHECK[dto.verdict],
              schoolId: item.school_id,
              subjectKind: dto.verdict === 'gate_open' ? 'gate' : 'camera',
              subjectId: dto.verdict === 'gate_open' ? null : cameraId,
              subjectLabel: gate,
              message: `视频巡查 ${label}：${VERDICT_LABEL[dto.verdict]}${dto.note ? `（${dto.note.trim()}）` : ''}`,
              detail: { cameraId, verdict: dto.verdict, note: dto.note ?? '', snapshotRef: dto.snapshotRef ?? null, operator: shownName(user) },
              roundId,
              at: now,
            },
          ],
          now,
        );
        findingId = stored?.id ?? null;
      }
      await m.query(
        `UPDATE patrol_round_items SET verdict = $3, note = $4, snapshot_ref = $5, verdict_at = $6, finding_id = $7 WHERE round_id = $1 AND camera_id = $2`,
        [roundId, cameraId, dto.verdict, dto.note?.trim() ?? '', dto.snapshotRef ?? null, now, findingId],
      );
      await m.query(
        `INSERT INTO camera_patrol_marks (camera_id, school_id, last_patrolled_at, last_verdict) VALUES ($1, $2, $3, $4)
         ON CONFLICT (camera_id) DO UPDATE SET last_patrolled_at = GREATEST(camera_patrol_marks.last_patrolled_at, EXCLUDED.last_patrolled_at), last_verdict = EXCLUDED.last_verdict`,
        [cameraId, item.school_id, now, dto.verdict],
      );
      await m.query(
        `UPDATE patrol_rounds SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM patrol_round_items WHERE round_id = $1 AND verdict IS NULL)`,
        [roundId, now],
      );
      await this.audit.record(m, {
        action: 'verdict',
        entity: 'patrol_round',
        entityId: roundId,
        schoolId: item.school_id,
        after: { cameraId, ...dto, findingId },
      });
    });
    return this.round(roundId);
  }

  /**
   * Coverage over the last `periodDays` (default patrols.coveragePeriodDays) up to `now`: share
   * of cameras patrolled, per school and per zone, and rounds per operator per day (Asia/Shanghai).
   */
  async coverage(f: { zoneId?: string; periodDays?: number }, now = new Date()) {
    const days = f.periodDays ?? this.cfg.coveragePeriodDays;
    const since = new Date(now.getTime() - days * 86_400_000);
    const [cams, marks, schools] = await Promise.all([
      this.registry.cameraPicks({ zoneId: f.zoneId }),
      this.db.query(`SELECT camera_id FROM camera_patrol_marks WHERE last_patrolled_at >= $1 AND last_patrolled_at <= $2`, [since, now]) as Promise<
        { camera_id: string }[]
      >,
      this.registry.schoolsIn(f.zoneId ? { zoneIds: [f.zoneId] } : {}),
    ]);
    const seen = new Set(marks.map((m) => m.camera_id));
    const name = new Map(schools.map((s) => [s.id, s.name]));
    const per = <K>(key: (c: (typeof cams)[number]) => K) => {
      const m = new Map<K, { cameras: number; patrolled: number }>();
      for (const c of cams) {
        const k = key(c);
        const e = m.get(k) ?? m.set(k, { cameras: 0, patrolled: 0 }).get(k)!;
        e.cameras++;
        if (seen.has(c.id)) e.patrolled++;
      }
      return m;
    };
    const share = (e: { cameras: number; patrolled: number }) => (e.cameras ? Math.round((e.patrolled / e.cameras) * 10_000) / 10_000 : null);
    const total = { cameras: cams.length, patrolled: cams.filter((c) => seen.has(c.id)).length };
    const bySchool = [...per((c) => c.schoolId)]
      .map(([schoolId, e]) => ({ schoolId, name: name.get(schoolId) ?? '', ...e, share: share(e) }))
      .sort((a, b) => (a.share ?? 1) - (b.share ?? 1) || a.name.localeCompare(b.name));
    const byZone = [...per((c) => c.zoneId)].map(([zoneId, e]) => ({ zoneId, ...e, share: share(e) }));
    const fromDate = shanghaiDate(since);
    const operators: { operatorId: string; operatorName: string; date: string; rounds: number; cameras: number }[] = await this.db.query(
      `SELECT operator_id AS "operatorId", operator_name AS "operatorName", to_char(started_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') AS date,
              count(*)::int AS rounds, sum(size)::int AS cameras
         FROM patrol_rounds WHERE started_at >= $1 AND started_at < $2 GROUP BY 1, 2, 3 ORDER BY 3 DESC, 2`,
      [dayStart(fromDate), dayStart(addDays(shanghaiDate(now), 1))],
    );
    return {
      periodDays: days,
      since,
      until: now,
      total: { ...total, share: share(total) },
      zones: byZone,
      schools: bySchool,
      roundsPerOperatorPerDay: operators,
    };
  }
}
