import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode } from '../../infra/http/error-codes';
import { Errors } from '../../infra/http/errors';
import type { AuthUser } from '../../infra/access/roles';
import { AuditService } from '../audit-log';
import { FindingsService, RECTIFICATION_PHOTO_PURPOSE } from '../patrols';
import { EVIDENCE_COLS, EvidenceService, type EvidenceRecord } from './evidence.service';
import { PhotoUploadsService } from './photo-uploads.service';
import { videoConfig } from './video.config';

/** A closed task is the school's answer as given: no photo is added to it (a supervisor sends it back first). */
function refuseClosed(status: string): void {
  if (status === 'closed') throw Errors.conflict(ErrorCode.RECTIFICATION_TASK.ALREADY_CLOSED, '该整改任务已关闭，不能再添加照片');
}

/**
 * Photos of a rectification task's fix (issue 13: the school closes its tasks "with photo evidence"), taken on the
 * guard's phone before closing: POST /rectification-tasks/:id/photos, then POST …/close names 1–6 of them
 * (patrols' FindingsService.closeTask checks they are this task's). The task — its school, the caller's scope (404
 * for another school's), whether it is open — is patrols' (FindingsService.taskForPhotos; video sits above patrols,
 * patrols never imports video). The upload is PhotoUploadsService's, as for alarm photos: JPEG checks, re-encoding
 * without EXIF/GPS, size caps, Idempotency-Key retries. Stored with purpose `rectification.photo` and the task as
 * ref, the task's school as the record's school (so GET /video/evidence/:id serves it to that school's staff and the
 * district, 404 to other schools), kept as long as the task (EvidenceService.purge). Open tasks only (409
 * RECTIFICATION_TASK.ALREADY_CLOSED), at most video.photosPerTask per closing round (409 EVIDENCE.PHOTO_LIMIT): the
 * round is the task's life until it is first sent back, then the time since it was last sent back — the photos of a
 * closing that was not accepted neither count nor close it again (FindingsService.closeTask). The round's photos are
 * listed (`list`: the phone shows them after a reload) and the sender may withdraw one of theirs (`remove`) while
 * the task is open. Each upload and removal is an audit entry (`attach_photo` / `remove_photo` on the task).
 */
@Injectable()
export class RectificationPhotosService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly uploads: PhotoUploadsService,
    private readonly findings: FindingsService,
    private readonly audit: AuditService,
    private readonly evidence: EvidenceService,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  /**
   * The photos of the task's current closing round (oldest first) — those a closing may name — and the round's limit.
   * 404 as for the upload.
   */
  async list(user: AuthUser, taskId: string): Promise<{ items: EvidenceRecord[]; limit: number; roundStart: Date | null }> {
    const task = await this.findings.taskForPhotos(user, taskId);
    const items: EvidenceRecord[] = await this.db.query(
      `SELECT ${EVIDENCE_COLS} FROM video_evidence WHERE purpose = $1 AND ref_id = $2 AND school_id = $3 AND ($4::timestamptz IS NULL OR captured_at >= $4)
        ORDER BY captured_at, id`,
      [RECTIFICATION_PHOTO_PURPOSE, task.id, task.schoolId, task.roundStart],
    );
    return { items, limit: videoConfig(this.config).photosPerTask, roundStart: task.roundStart };
  }

  /**
   * Withdraws a photo the caller uploaded in the task's current round while the task is open (a wrong picture): the
   * record and the stored file go, and it no longer counts toward the limit. Anything else — another person's photo,
   * an earlier round's, another task's, an unknown id — is 404 EVIDENCE.NOT_FOUND; a closed task 409
   * RECTIFICATION_TASK.ALREADY_CLOSED. Audited (`remove_photo`).
   */
  async remove(user: AuthUser, taskId: string, photoId: string): Promise<void> {
    const found = await this.findings.taskForPhotos(user, taskId);
    const key = await this.db.transaction(async (m) => {
      // The upload's lock (PhotoUploadsService.store): the count and the removal never interleave.
      await m.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${RECTIFICATION_PHOTO_PURPOSE}:${found.id}`]);
      const task = await this.findings.taskForPhotos(user, found.id, m);
      refuseClosed(task.status);
      const [row] = returningRows<{ id: string; storageKey: string; sha256: string }>(
        await m.query(
          `DELETE FROM video_evidence WHERE id = $1 AND purpose = $2 AND ref_id = $3 AND school_id = $4 AND uploaded_by = $5
            AND ($6::timestamptz IS NULL OR captured_at >= $6)
          RETURNING id, storage_key AS "storageKey", sha256`,
          [photoId, RECTIFICATION_PHOTO_PURPOSE, task.id, task.schoolId, user.id, task.roundStart],
        ),
      );
      if (!row) throw Errors.notFound(ErrorCode.EVIDENCE.NOT_FOUND, photoId);
      await this.audit.record(m, {
        action: 'remove_photo',
        entity: 'rectification_task',
        entityId: task.id,
        schoolId: task.schoolId,
        before: { evidenceId: row.id, sha256: row.sha256 },
      });
      return row.storageKey;
    });
    await this.evidence.store.delete(key);
  }

  async attach(user: AuthUser, taskId: string, jpeg: Buffer, clientKey?: string): Promise<{ record: EvidenceRecord; created: boolean }> {
    const limit = videoConfig(this.config).photosPerTask;
    const task = await this.findings.taskForPhotos(user, taskId);
    refuseClosed(task.status);
    return this.uploads.store(
      user,
      {
        purpose: RECTIFICATION_PHOTO_PURPOSE,
        refId: task.id,
        schoolId: task.schoolId,
        limit,
        limitMessage: `每次整改最多上传 ${limit} 张照片（可移除不用的照片）`,
        // Closed while the photo was decoded: refused the same way (the task row is held until commit).
        recheck: async (m) => {
          const now = await this.findings.taskForPhotos(user, task.id, m);
          refuseClosed(now.status);
          return { countSince: now.roundStart };
        },
        recorded: async (m, record) => {
          const after = { evidenceId: record.id, sha256: record.sha256, bytes: record.bytes, width: record.width, height: record.height };
          await this.audit.record(m, { action: 'attach_photo', entity: 'rectification_task', entityId: task.id, schoolId: task.schoolId, after });
        },
      },
      jpeg,
      clientKey,
    );
  }
}
