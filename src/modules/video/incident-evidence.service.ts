import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { JobName, JobPayloads } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { IncidentNoticesService, IntakePressure, type NoticeTimelineEntry } from '../alarms';
import { ConsoleEventsService, type IncidentCamera } from '../console-events';
import { RegistryService } from '../registry';
import { EvidenceService, type EvidenceSource } from './evidence.service';

/** What one camera gave for an incident's evidence round (the timeline entry's `data`). */
export interface IncidentEvidenceEntry {
  round: number;
  afterSeconds: number;
  cameraId: string;
  cameraName: string;
  /** Taken: the evidence record (GET /api/v1/video/evidence/:id shows it). */
  evidenceId?: string;
  sha256?: string;
  width?: number;
  height?: number;
  capturedAt?: string;
  /** Where the picture came from (the evidence record's source): the camera's ONVIF snapshot URI (no stream pulled) or its stream. */
  source?: EvidenceSource;
  /** The snapshot URI's failure code (VIDEO.SNAPSHOT_URI_TIMEOUT…) when the stream stood in for it. */
  snapshotUriError?: string;
  /** Not taken: the video error code (VIDEO.DEVICE_OFFLINE, VIDEO.SNAPSHOT_TIMEOUT…) and its message. */
  code?: string;
  message?: string;
  /**
   * Set when the round started more than alarms.evidenceLateToleranceSeconds after its scheduled
   * time (e.g. held up by a Redis outage): when it was due, and how many seconds after that it ran.
   */
  scheduledAt?: string;
  lateBySeconds?: number;
}

/**
 * The cameras an evidence round pictures, at most `max`: the online ones in the incident's order
 * (linked cameras first, then the rest of the spot's), so linked+online, then other online; only
 * when none is online, the first `max` as listed (their entries then say why there is no picture).
 * An offline camera's picture cannot be taken: with a cap, picking it would leave an online
 * camera of the spot out of the evidence for nothing.
 */
export function evidenceCameras<T extends { id: string }>(cameras: T[], online: (id: string) => boolean, max: number): T[] {
  const up = cameras.filter((c) => online(c.id));
  return (up.length ? up : cameras).slice(0, max);
}

/** `alarm.raise` for the picture at the raise, `alarm.raise+10s` for the one 10 s later. */
export const incidentEvidencePurpose = (afterSeconds: number) => (afterSeconds === 0 ? 'alarm.raise' : `alarm.raise+${afterSeconds}s`);

/**
 * Evidence at an alarm (issue 15): the VideoIncidentEvidence job — written by the alarms intake
 * into its outbox, committed with the incident, one per offset of alarms.evidenceSnapshotSeconds
 * (0 and 10 s) — grabs a JPEG of each linked camera (at most alarms.evidenceMaxCameras, online ones first: evidenceCameras), in parallel, each bounded by
 * video.snapshotTimeoutMs (+ a margin for the store), and writes one timeline entry per camera:
 * `evidence` (with the evidence id) or `evidence_failed` (with the video error code: offline,
 * busy, no answer, timeout). A camera that cannot be grabbed is an answer, never a hang or a retry.
 * Idempotent: pictures are keyed `alarm.raise[+Ns]:<incident>:<camera>` (a retry reuses them), and
 * the entries are written with the outbox row marked done, in one transaction that first locks the
 * row (a done row writes nothing again). Postgres/Redis faults throw: the job retries.
 * A round that starts more than alarms.evidenceLateToleranceSeconds after its scheduled time (the
 * outbox row's due time) says so on every entry — "taken N s after the scheduled time" — and in
 * `data` (scheduledAt, lateBySeconds): a picture taken minutes late is not one "at the alarm".
 * Runs in the api processes (QueueName.Video): GB/T 28181 cameras are played where the SIP server is.
 */
@Injectable()
export class IncidentEvidenceService {
  private readonly logger = new Logger('IncidentEvidence');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly evidence: EvidenceService,
    private readonly notices: IncidentNoticesService,
    private readonly pressure: IntakePressure,
    private readonly events: ConsoleEventsService,
    private readonly registry: RegistryService,
    queue: QueueService,
  ) {
    queue.handle(JobName.VideoIncidentEvidence, (p, meta) => this.run(p, meta.jobId));
  }

  async run(p: JobPayloads[JobName.VideoIncidentEvidence], jobId: string): Promise<{ taken: number; failed: number; skipped?: boolean }> {
    // During a burst of presses every alarm taken and shown comes first (alarms.yieldToIntakeAtPerSecond); a round held
    // past alarms.evidenceLateToleranceSeconds says it was late (lateness below is measured after the wait).
    await this.pressure.yieldToIntake();
    const inc = (await this.notices.summaries([p.incidentId])).get(p.incidentId);
    if (!inc || inc.cameras.length === 0) {
      await this.notices.outboxJobsDone(this.db, [jobId]);
      return { taken: 0, failed: 0, skipped: true };
    }
    const purpose = incidentEvidencePurpose(p.afterSeconds);
    const late = await this.lateness(jobId);
    // Online now (the registry's status at the round, not at the raise: the second round is seconds later).
    const online = new Set((await this.registry.cameras({ ids: inc.cameras.map((c) => c.id) })).filter((c) => c.status === 'online').map((c) => c.id));
    const cameras = evidenceCameras(inc.cameras, (id) => online.has(id), this.config.alarms.evidenceMaxCameras);
    const results = (await Promise.all(cameras.map((c) => this.one(c, p, purpose)))).map((r) => ({ ...r, ...late }));
    const entries: NoticeTimelineEntry[] = results.map((r) => ({
      incidentId: p.incidentId,
      action: r.evidenceId ? 'evidence' : 'evidence_failed',
      note: r.evidenceId
        ? late
          ? `${r.cameraName}：已取证（计划报警后 ${p.afterSeconds} 秒，实际比计划时间晚 ${late.lateBySeconds} 秒拍摄）`
          : `${r.cameraName}：已取证（报警后 ${p.afterSeconds} 秒）`
        : `${r.cameraName}：未能取证（${r.code}${late ? `，比计划时间晚 ${late.lateBySeconds} 秒` : ''}）`,
      data: r,
    }));
    let written = false;
    await this.db.transaction(async (m) => {
      if ((await this.notices.lockOutboxJob(m, jobId)).done) return;
      await this.notices.appendTimeline(m, entries);
      await this.notices.outboxJobsDone(m, [jobId]);
      // The incident as it is now, not as it was before the pictures were taken: it may have been acknowledged meanwhile.
      const now = (await this.notices.summaries([p.incidentId], m, { lock: true })).get(p.incidentId) ?? inc;
      await this.events.append(m, { type: 'incident.updated', schoolId: now.schoolId, payload: { ...now, change: 'evidence' } });
      written = true;
    });
    const failed = results.filter((r) => !r.evidenceId).length;
    if (written && failed) this.logger.warn(`incident ${p.incidentId} round ${p.round}: ${failed} of ${results.length} camera(s) gave no picture`);
    return { taken: results.length - failed, failed };
  }

  /** How late this round starts against its outbox row's due time, when past alarms.evidenceLateToleranceSeconds (else undefined). */
  private async lateness(jobId: string): Promise<{ scheduledAt: string; lateBySeconds: number } | undefined> {
    const [row] = (await this.db.query(
      `SELECT available_at, floor(extract(epoch FROM now() - available_at))::int AS late FROM alarm_outbox WHERE job_id = $1`,
      [jobId],
    )) as { available_at: Date; late: number }[];
    if (!row || row.late <= this.config.alarms.evidenceLateToleranceSeconds) return undefined;
    return { scheduledAt: new Date(row.available_at).toISOString(), lateBySeconds: row.late };
  }

  /** One camera's picture, or why there is none. */
  private async one(c: IncidentCamera, p: JobPayloads[JobName.VideoIncidentEvidence], purpose: string): Promise<IncidentEvidenceEntry> {
    const base = { round: p.round, afterSeconds: p.afterSeconds, cameraId: c.id, cameraName: c.name };
    const r = await this.evidence.captureBounded(c.id, purpose, p.incidentId, `${purpose}:${p.incidentId}:${c.id}`);
    if (!r.record) return { ...base, code: r.code, message: r.message };
    const rec = r.record;
    return {
      ...base,
      evidenceId: rec.id,
      sha256: rec.sha256,
      width: rec.width,
      height: rec.height,
      capturedAt: new Date(rec.capturedAt).toISOString(),
      source: rec.source,
      ...(rec.snapshotUriError ? { snapshotUriError: rec.snapshotUriError } : {}),
    };
  }
}
