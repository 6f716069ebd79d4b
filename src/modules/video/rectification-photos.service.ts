import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode } from '../../infra/http/error-codes';
import { Errors } from '../../infra/http/errors';
import type { AuthUser } from '../../infra/access/roles';
import { AuditService } from '../audit-log';
import { FindingsService, RECTIFICATION_PHOTO_PURPOSE } from '../patrols';
import type { EvidenceRecord } from './evidence.service';
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
 * RECTIFICATION_TASK.ALREADY_CLOSED), at most video.photosPerTask over the task's life (409 EVIDENCE.PHOTO_LIMIT).
 * Each upload is an audit entry (`attach_photo` on the task).
 */
@Injectable()
export class RectificationPhotosService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly uploads: PhotoUploadsService,
    private readonly findings: FindingsService,
    private readonly audit: AuditService,
  ) {}

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
        limitMessage: `每个整改任务最多上传 ${limit} 张照片`,
        // Closed while the photo was decoded: refused the same way (the task row is held until commit).
        recheck: async (m) => refuseClosed((await this.findings.taskForPhotos(user, task.id, m)).status),
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
