import { createHash } from 'node:crypto';
import { HttpStatus, Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError, Errors } from '../../infra/http/errors';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { assertRecordInScope } from '../../infra/access/scope';
import { AuditService } from '../audit-log';
import { IncidentNoticesService, OPEN_STATUSES } from '../alarms';
import { ConsoleEventsService } from '../console-events';
import { ALARM_PHOTO_PURPOSE, EVIDENCE_COLS, EvidenceService, type EvidenceRecord } from './evidence.service';
import { jpegHasScan, jpegSize } from './media/jpeg';
import { PhotoCleaner, PhotoUndecodable } from './media/photo-cleaner';
import { videoConfig } from './video.config';

/** What an alarm photo's timeline entry (`photo`) carries. */
export interface AlarmPhotoEntry {
  evidenceId: string;
  sha256: string;
  bytes: number;
  width: number;
  height: number;
  capturedAt: string;
  /** Always 'upload' (a person's photo, not a camera's picture): said as the cameras' `evidence` entries say theirs. */
  source: 'upload';
}

const COLS = EVIDENCE_COLS;

/** Quality of the re-encoded photo (jpeg-js 1–100): the phone sends ~0.85 already. */
const PHOTO_QUALITY = 85;

const notJpeg = () => new DomainError(HttpStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.EVIDENCE.PHOTO_NOT_JPEG, '照片须为可解码的 JPEG 图片');

/** A resolved or cancelled incident is part of the record: no photos are added to it. */
function refuseClosed(status: string, incidentId: string): void {
  if (!(OPEN_STATUSES as string[]).includes(status))
    throw Errors.conflict(ErrorCode.EVIDENCE.INCIDENT_CLOSED, '报警已结束，不能再添加照片', { incidentId, status });
}

/** What was sent for a stored photo (rows from before upload_sha256: the stored bytes are what was sent). */
const UPLOAD_SHA = `COALESCE(upload_sha256, sha256) AS "uploadSha256"`;
type WithUpload = EvidenceRecord & { uploadSha256: string };

/** A retry's answer: the first upload when the bytes are the same; another photo under a used key is 409. */
function sameUpload(prev: WithUpload, uploadSha256: string): EvidenceRecord {
  const { uploadSha256: sent, ...record } = prev;
  if (sent !== uploadSha256)
    throw Errors.conflict(ErrorCode.EVIDENCE.PHOTO_KEY_REUSED, '该上传编号已用于另一张照片；每张照片须用新的编号', { evidenceId: prev.id });
  return record;
}

/**
 * Photos attached to an alarm (the guard's phone: taken with the phone camera, re-encoded to JPEG
 * by the console). Stored like the cameras' evidence pictures (EvidenceStore, SHA-256 recorded,
 * read back through GET /video/evidence/:id) with purpose `alarm.photo` and the incident as ref,
 * so they are kept as long as the incident. Each is a `photo` timeline entry by its sender, an
 * audit entry and an `incident.updated` console event (change `photo`), in one transaction.
 * JPEG only, at most video.photoMaxBytes / photoMaxPixels, video.photosPerIncident per incident,
 * open incidents only (409 EVIDENCE.INCIDENT_CLOSED). The upload is decoded for real (PhotoCleaner,
 * a worker thread) and what is stored is its pixels encoded anew: a header without a picture, a
 * made-up size or a cut scan is 415; the stored width/height are the decoded ones; EXIF (the
 * phone's GPS position, its make, the time), comments and anything after the first picture never
 * reach the store.
 * With a client key (`Idempotency-Key`) a retry answers the first upload (no second picture); the
 * same key with other bytes (SHA-256 of what was sent, `upload_sha256`) is another photo: 409
 * EVIDENCE.PHOTO_KEY_REUSED naming the first, never a silently dropped picture.
 */
@Injectable()
export class IncidentPhotosService implements OnModuleDestroy {
  private readonly cleaner: PhotoCleaner;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly evidence: EvidenceService,
    private readonly notices: IncidentNoticesService,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
  ) {
    this.cleaner = new PhotoCleaner({ maxPixels: videoConfig(config).photoMaxPixels, quality: PHOTO_QUALITY, timeoutMs: 20_000 });
  }

  async onModuleDestroy(): Promise<void> {
    await this.cleaner.close();
  }

  async attach(user: AuthUser, incidentId: string, jpeg: Buffer, clientKey?: string): Promise<{ record: EvidenceRecord; created: boolean }> {
    const cfg = videoConfig(this.config);
    const inc = (await this.notices.summaries([incidentId])).get(incidentId);
    if (!inc) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, incidentId);
    assertRecordInScope(user, inc.schoolId, () => Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, incidentId));
    // An unplaced device alarm (no school) is the district's: nobody on site takes its photos.
    if (!inc.schoolId) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, incidentId);
    refuseClosed(inc.status, incidentId);
    const dedupKey = clientKey ? `${ALARM_PHOTO_PURPOSE}:${incidentId}:${user.id}:${clientKey}` : null;
    const uploadSha256 = createHash('sha256').update(jpeg).digest('hex');
    if (dedupKey) {
      const before = await this.byDedupKey(dedupKey);
      if (before) return { record: sameUpload(before, uploadSha256), created: false };
    }
    if (jpeg.length > cfg.photoMaxBytes) throw Errors.payloadTooLarge(`照片超过 ${cfg.photoMaxBytes} 字节的上限`);
    // The header first (cheap): what is no JPEG, or says it is too large, is not decoded at all.
    const header = jpegSize(jpeg);
    if (!header || header.width === 0 || header.height === 0) throw notJpeg();
    if (header.width * header.height > cfg.photoMaxPixels)
      throw Errors.payloadTooLarge(`照片像素（${header.width}×${header.height}）超过 ${cfg.photoMaxPixels} 的上限`);
    if (!jpegHasScan(jpeg)) throw notJpeg();
    const clean = await this.cleaner.clean(jpeg).catch((e: unknown) => {
      throw e instanceof PhotoUndecodable ? notJpeg() : e;
    });
    const size = { width: clean.width, height: clean.height };

    const at = new Date();
    const put = await this.evidence.store.put(at, clean.jpeg, 'jpg');
    try {
      const out = await this.db.transaction(async (m) => {
        // One upload of an incident at a time: the count below is then exact.
        await m.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${ALARM_PHOTO_PURPOSE}:${incidentId}`]);
        // Closed while the photo was decoded: refused the same way (the row is locked until commit).
        const locked = (await this.notices.summaries([incidentId], m, { lock: true })).get(incidentId);
        refuseClosed(locked?.status ?? inc.status, incidentId);
        if (dedupKey) {
          const [prev] = (await m.query(`SELECT ${COLS}, ${UPLOAD_SHA} FROM video_evidence WHERE dedup_key = $1`, [dedupKey])) as WithUpload[];
          if (prev) return { record: sameUpload(prev, uploadSha256), created: false };
        }
        const [{ n }] = (await m.query(`SELECT count(*)::int AS n FROM video_evidence WHERE purpose = $1 AND ref_id = $2`, [
          ALARM_PHOTO_PURPOSE,
          incidentId,
        ])) as {
          n: number;
        }[];
        if (n >= cfg.photosPerIncident)
          throw Errors.conflict(ErrorCode.EVIDENCE.PHOTO_LIMIT, `每条报警最多附 ${cfg.photosPerIncident} 张照片`, { limit: cfg.photosPerIncident });
        const [record] = returningRows<EvidenceRecord>(
          await m.query(
            `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, dedup_key, uploaded_by, upload_sha256, source)
             VALUES (NULL, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'upload') RETURNING ${COLS}`,
            [inc.schoolId, put.key, put.sha256, put.bytes, size.width, size.height, ALARM_PHOTO_PURPOSE, incidentId, at, dedupKey, user.id, uploadSha256],
          ),
        );
        const data: AlarmPhotoEntry = {
          evidenceId: record.id,
          sha256: record.sha256,
          bytes: record.bytes,
          width: record.width,
          height: record.height,
          capturedAt: at.toISOString(),
          source: 'upload',
        };
        await this.notices.appendByUser(m, { id: user.id, name: shownName(user) }, { incidentId, action: 'photo', note: '现场照片', data });
        await this.audit.record(m, { action: 'attach_photo', entity: 'incident', entityId: incidentId, schoolId: inc.schoolId, after: data });
        const now = (await this.notices.summaries([incidentId], m, { lock: true })).get(incidentId) ?? inc;
        await this.events.append(m, { type: 'incident.updated', schoolId: now.schoolId, payload: { ...now, change: 'photo' } });
        return { record, created: true };
      });
      if (!out.created) await this.evidence.store.delete(put.key);
      return out;
    } catch (e) {
      await this.evidence.store.delete(put.key);
      throw e;
    }
  }

  private async byDedupKey(key: string): Promise<WithUpload | null> {
    const rows: WithUpload[] = await this.db.query(`SELECT ${COLS}, ${UPLOAD_SHA} FROM video_evidence WHERE dedup_key = $1`, [key]);
    return rows[0] ?? null;
  }
}
