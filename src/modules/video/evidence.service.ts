import { HttpStatus, Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError, Errors } from '../../infra/http/errors';
import { returningRows } from '../../infra/database/returning';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import type { AuthUser } from '../../infra/access/roles';
import { assertRecordInScope } from '../../infra/access/scope';
import { RECTIFICATION_PHOTO_PURPOSE } from '../patrols';
import { EvidenceNotFound, EvidenceStore, FileEvidenceStore, sha256 } from './evidence-store';
import { jpegSize } from './media/jpeg';
import type { SnapshotSource } from './snapshot-uri';
import { videoConfig } from './video.config';
import { VideoErrors } from './video.errors';
import { VideoService } from './video.service';

export const EVIDENCE_PURGE_SCHEDULER = 'video.evidence-purge';
/** Purposes of an incident's pictures (incident-evidence.service.ts: `alarm.raise`, `alarm.raise+10s`…): kept with the incident. */
export const INCIDENT_PURPOSE_PREFIX = 'alarm.raise';
/** A photo a person attached to an alarm (incident-photos.service.ts): kept with the incident too. */
export const ALARM_PHOTO_PURPOSE = 'alarm.photo';
/** A video patrol verdict's picture (patrols rounds.service ROUND_EVIDENCE_PURPOSE): the proof of a "normal" verdict, kept as long as patrol results. */
export const ROUND_VERDICT_PURPOSE = 'round.verdict';
/**
 * Day directories the stray-file sweep walks: the week before the cutoff. Each daily run sees the
 * days that just passed it; a job stopped for longer leaves those days' strays (bytes only: no row
 * names them, nothing reads them).
 */
export const STRAY_SWEEP_DAYS = 7;
const UUID_RE = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/**
 * Where an evidence picture came from (video_evidence.source, CHECK-ed by its migration): a camera's
 * own JPEG from its ONVIF snapshot URI ('snapshot_uri'), a frame of its stream ('stream': ffmpeg over
 * RTSP, or GB/T 28181 INVITE), a photo a person sent from a phone ('upload'), or 'unknown' for a
 * picture kept before sources were recorded. The camera values are shouhu_video_snapshot_sources_total's.
 */
export type EvidenceSource = SnapshotSource | 'upload' | 'unknown';

export interface EvidenceRecord {
  id: string;
  /** null: a photo a person attached (an alarm photo from the guard's phone), not a camera's picture. */
  cameraId: string | null;
  schoolId: string;
  sha256: string;
  bytes: number;
  width: number;
  height: number;
  /** What it was taken for: `manual`, later `alarm.raise`, `alarm.raise+10s`, `alarm.photo`, `round.verdict`, `post.checkin`, `rectification.photo`. */
  purpose: string;
  /** The record it belongs to (incident, round, check-in, rectification task id), when there is one. */
  refId: string | null;
  capturedAt: Date;
  /** Where the picture came from (kept with it): see EvidenceSource. */
  source: EvidenceSource;
  /**
   * Set on the answer of a capture that took the picture (not on records read back): when the
   * stream stood in for a failed snapshot URI, that failure's code (VIDEO.SNAPSHOT_URI_TIMEOUT…).
   */
  snapshotUriError?: string;
}

/** The columns of an evidence record as answered (an allow-list: storage_key, dedup_key, uploaded_by and upload_sha256 stay out). */
export const EVIDENCE_COLS = `id, camera_id AS "cameraId", school_id AS "schoolId", sha256, bytes, width, height, purpose, ref_id AS "refId", captured_at AS "capturedAt", source`;
const COLS = EVIDENCE_COLS;

/**
 * Evidence snapshots: a JPEG of a camera at a moment, stored (video.evidenceDir by default) with
 * its SHA-256 recorded here, read back only if it still matches, and purged after
 * video.evidenceRetentionDays (GB/T 29315: 30 days) by a daily job. Phase 2 calls `capture`
 * from alarms (at raise and +10 s), patrol verdicts and post check-ins.
 */
@Injectable()
export class EvidenceService {
  private readonly logger = new Logger('Evidence');
  readonly store: EvidenceStore;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly video: VideoService,
    @Inject(QueueService) queue: QueueService,
  ) {
    this.store = new FileEvidenceStore(videoConfig(config).evidenceDir);
    queue.handle(JobName.VideoEvidencePurge, () => this.purge());
  }

  /**
   * Takes a snapshot of a camera now and keeps it as evidence (scope checked when a user asks).
   * With a `dedupKey` (jobs: `alarm.raise:<incident>:<camera>` …) it is taken once: a second call
   * answers the first picture, and a race between two calls keeps one picture (the loser's file is
   * removed). Errors: those of `VideoService.snapshot` (offline, busy, timeout… as DomainErrors).
   */
  async capture(
    user: AuthUser | null,
    cameraId: string,
    purpose: string,
    refId: string | null = null,
    dedupKey: string | null = null,
  ): Promise<EvidenceRecord> {
    if (dedupKey) {
      const before = await this.byDedupKey(dedupKey);
      if (before) return before;
    }
    const shot = await this.video.snapshot(user, cameraId);
    const size = jpegSize(shot.jpeg)!;
    const put = await this.store.put(shot.takenAt, shot.jpeg, 'jpg');
    const [row] = returningRows<EvidenceRecord>(
      await this.db.query(
        `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, dedup_key, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING RETURNING ${COLS}`,
        [shot.cameraId, shot.schoolId, put.key, put.sha256, put.bytes, size.width, size.height, purpose, refId, shot.takenAt, dedupKey, shot.source],
      ),
    );
    if (row) return { ...row, ...(shot.snapshotUriError ? { snapshotUriError: shot.snapshotUriError } : {}) };
    await this.store.delete(put.key);
    const first = await this.byDedupKey(dedupKey!);
    if (!first) throw new Error(`evidence ${dedupKey} conflicted but cannot be read back`);
    return first;
  }

  /**
   * `capture` for jobs (no user), bounded by video.snapshotTimeoutMs + 2 s (the store and Postgres
   * on top of the snapshot's own bound): a camera that gives no picture is an answer (`code`: the
   * video error code — offline, busy, no answer, timeout), never a hang. Throws only what is not
   * the camera's answer (Postgres, the store): the job retries.
   */
  async captureBounded(
    cameraId: string,
    purpose: string,
    refId: string,
    dedupKey: string,
  ): Promise<{ record: EvidenceRecord; code?: undefined; message?: undefined } | { record?: undefined; code: string; message: string }> {
    const limitMs = this.video.cfg.snapshotTimeoutMs + 2000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const record = await Promise.race([
        this.capture(null, cameraId, purpose, refId, dedupKey),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(VideoErrors.snapshotTimeout(limitMs)), limitMs);
        }),
      ]);
      return { record };
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      return { code: e.code, message: e.message };
    } finally {
      clearTimeout(timer);
    }
  }

  private async byDedupKey(key: string): Promise<EvidenceRecord | null> {
    const rows: EvidenceRecord[] = await this.db.query(`SELECT ${COLS} FROM video_evidence WHERE dedup_key = $1`, [key]);
    return rows[0] ?? null;
  }

  /** Evidence records by id (no scope check: for modules that show pictures of their own records). */
  async records(ids: string[]): Promise<EvidenceRecord[]> {
    if (ids.length === 0) return [];
    return this.db.query(`SELECT ${COLS} FROM video_evidence WHERE id = ANY($1::uuid[]) ORDER BY captured_at`, [ids]);
  }

  /** An evidence picture, verified against its recorded SHA-256 (409 when it no longer matches). */
  async read(user: AuthUser, id: string): Promise<{ record: EvidenceRecord; jpeg: Buffer }> {
    const rows: (EvidenceRecord & { storageKey: string })[] = await this.db.query(
      `SELECT ${COLS}, storage_key AS "storageKey" FROM video_evidence WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) throw Errors.notFound(ErrorCode.EVIDENCE.NOT_FOUND, id);
    assertRecordInScope(user, row.schoolId, () => Errors.notFound(ErrorCode.EVIDENCE.NOT_FOUND, id)); // another school's: as missing (A10)
    let jpeg: Buffer;
    try {
      jpeg = await this.store.get(row.storageKey);
    } catch (e) {
      if (e instanceof EvidenceNotFound)
        throw new DomainError(HttpStatus.GONE, ErrorCode.VIDEO.EVIDENCE_MISSING, `the picture of evidence ${id} is no longer in the store`);
      throw e;
    }
    if (sha256(jpeg) !== row.sha256)
      throw new DomainError(
        HttpStatus.CONFLICT,
        ErrorCode.VIDEO.EVIDENCE_CHECKSUM_MISMATCH,
        `evidence ${id} does not match its recorded SHA-256: it was altered or damaged`,
      );
    const { storageKey: _k, ...record } = row;
    return { record, jpeg };
  }

  /**
   * Deletes evidence past retention. A picture with an owner follows it (by `ref_id`): an
   * incident's pictures (purpose `alarm.raise…`, and the photos people attached to it,
   * `alarm.photo`) are kept while the incident is kept
   * (retention.incidentsDays counts from its close, and an open incident is never deleted — Civil
   * Code §188: an auditor reading a 2-year-old alarm sees what the cameras showed), a patrol
   * verdict's picture (`round.verdict`) while its round is kept (retention.patrolResultsDays), a
   * rectification task's photos (`rectification.photo`, patrols' RECTIFICATION_PHOTO_PURPOSE) while
   * the task is (tasks have no retention period today: a closing's proof stays with it); once
   * the owner is gone its pictures go (after video.evidenceRetentionDays at least). By capture time
   * they went with an incident raised long ago but closed yesterday, or still open. A picture
   * whose ref_id names no record (not a uuid) keeps the owner kind's period from its capture; every
   * other picture video.evidenceRetentionDays (GB/T 29315: 30 days).
   *
   * Files first, then their rows: a crash between leaves rows without files (the next run deletes
   * them), never files no row names that the sweep below would not find. The sweep (a crash
   * between a capture's file and its row) walks only the day directories of the last
   * STRAY_SWEEP_DAYS before the cutoff — the days that passed it since about a week of runs — not
   * the whole tree (years of kept incident pictures). Idempotent; walks candidates once per run
   * (by capture time and id), so kept pictures never stall it.
   */
  async purge(now = new Date()): Promise<{ rows: number; files: number }> {
    const days = videoConfig(this.config).evidenceRetentionDays;
    const cutoff = new Date(now.getTime() - days * 86_400_000);
    const incidentCutoff = new Date(now.getTime() - Math.max(days, this.config.retention.incidentsDays) * 86_400_000);
    const roundCutoff = new Date(now.getTime() - Math.max(days, this.config.retention.patrolResultsDays) * 86_400_000);
    let rows = 0;
    let files = 0;
    let after: { at: Date; id: string } | null = null;
    for (;;) {
      const batch: { id: string; storage_key: string; captured_at: Date }[] = await this.db.query(
        `SELECT id, storage_key, captured_at FROM video_evidence
          WHERE captured_at < $1 AND ($6::timestamptz IS NULL OR (captured_at, id) > ($6::timestamptz, $7::uuid))
            AND CASE
              WHEN purpose LIKE $3 OR purpose = $9 THEN CASE WHEN ref_id ~* $8 THEN NOT EXISTS (SELECT 1 FROM incidents i WHERE i.id = ref_id::uuid) ELSE captured_at < $2 END
              WHEN purpose = $5 THEN CASE WHEN ref_id ~* $8 THEN NOT EXISTS (SELECT 1 FROM patrol_rounds r WHERE r.id = ref_id::uuid) ELSE captured_at < $4 END
              WHEN purpose = $10 THEN CASE WHEN ref_id ~* $8 THEN NOT EXISTS (SELECT 1 FROM rectification_tasks t WHERE t.id = ref_id::uuid) ELSE captured_at < $4 END
              ELSE true END
          ORDER BY captured_at, id LIMIT 1000`,
        [
          cutoff,
          incidentCutoff,
          `${INCIDENT_PURPOSE_PREFIX}%`,
          roundCutoff,
          ROUND_VERDICT_PURPOSE,
          after?.at ?? null,
          after?.id ?? null,
          UUID_RE,
          ALARM_PHOTO_PURPOSE,
          RECTIFICATION_PHOTO_PURPOSE,
        ],
      );
      if (batch.length === 0) break;
      for (const g of batch) await this.store.delete(g.storage_key);
      await this.db.query(`DELETE FROM video_evidence WHERE id = ANY($1::uuid[])`, [batch.map((g) => g.id)]);
      rows += batch.length;
      const last = batch[batch.length - 1];
      after = { at: last.captured_at, id: last.id };
      if (batch.length < 1000) break;
    }
    // Files without a row, in the recent day directories only; a file a kept row names stays.
    const since = new Date(cutoff.getTime() - STRAY_SWEEP_DAYS * 86_400_000);
    let afterKey: string | undefined;
    for (;;) {
      const keys = await this.store.listExpired(cutoff, 1000, afterKey, since);
      if (keys.length === 0) break;
      const named = new Set(
        ((await this.db.query(`SELECT storage_key FROM video_evidence WHERE storage_key = ANY($1)`, [keys])) as { storage_key: string }[]).map(
          (r) => r.storage_key,
        ),
      );
      for (const k of keys) if (!named.has(k)) await this.store.delete(k);
      files += keys.filter((k) => !named.has(k)).length;
      afterKey = keys[keys.length - 1];
      if (keys.length < 1000) break;
    }
    if (rows || files) this.logger.log(`purged ${rows} evidence record(s) and ${files} stray file(s) older than ${days} days`);
    return { rows, files };
  }
}
