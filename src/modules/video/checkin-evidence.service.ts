import { Injectable, Logger } from '@nestjs/common';
import { JobName, JobPayloads } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { FieldService } from '../patrols';
import { EvidenceService } from './evidence.service';

/** Purpose of a check-in's gate picture in video_evidence. */
export const CHECKIN_PURPOSE = 'post.checkin';

/**
 * Protection-post check-ins carry a gate picture (issue 15; none of the peer systems does this):
 * the VideoCheckinSnapshot job patrols adds after a check-in at a post with a gate camera grabs
 * that camera (bounded: video.snapshotTimeoutMs + 2 s) and stores the evidence id on the check-in,
 * or the video error code when the camera gives none (offline, busy, no answer). Idempotent: the
 * picture is keyed `post.checkin:<checkin>:<camera>`, and only a pending check-in is written.
 * Runs in the api processes (QueueName.Video).
 */
@Injectable()
export class CheckinEvidenceService {
  private readonly logger = new Logger('CheckinEvidence');

  constructor(
    private readonly evidence: EvidenceService,
    private readonly field: FieldService,
    queue: QueueService,
  ) {
    queue.handle(JobName.VideoCheckinSnapshot, (p) => this.run(p));
  }

  async run(p: JobPayloads[JobName.VideoCheckinSnapshot]): Promise<{ status: 'taken' | 'failed' | 'skipped'; code?: string }> {
    const c = await this.field.checkinForSnapshot(p.checkinId);
    if (!c || !c.cameraId || c.evidenceStatus !== 'pending') return { status: 'skipped' };
    const r = await this.evidence.captureBounded(c.cameraId, CHECKIN_PURPOSE, c.id, `${CHECKIN_PURPOSE}:${c.id}:${c.cameraId}`);
    await this.field.recordCheckinSnapshot(c.id, { evidenceId: r.record?.id ?? null, error: r.code ?? null });
    if (!r.record) this.logger.warn(`check-in ${c.id}: no gate picture from camera ${c.cameraId} (${r.code})`);
    return r.record ? { status: 'taken' } : { status: 'failed', code: r.code };
  }
}
