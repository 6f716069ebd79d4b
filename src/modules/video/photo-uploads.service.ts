import { createHash } from 'node:crypto';
import { HttpStatus, Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { returningRows } from '../../infra/database/returning';
import { ErrorCode } from '../../infra/http/error-codes';
import { DomainError, Errors } from '../../infra/http/errors';
import type { AuthUser } from '../../infra/access/roles';
import { EVIDENCE_COLS, EvidenceService, type EvidenceRecord } from './evidence.service';
import { jpegHasScan, jpegSize } from './media/jpeg';
import { PhotoCleaner, PhotoUndecodable } from './media/photo-cleaner';
import { videoConfig } from './video.config';

const COLS = EVIDENCE_COLS;

/** Quality of the re-encoded photo (jpeg-js 1–100): the phone sends ~0.85 already. */
const PHOTO_QUALITY = 85;

const notJpeg = () => new DomainError(HttpStatus.UNSUPPORTED_MEDIA_TYPE, ErrorCode.EVIDENCE.PHOTO_NOT_JPEG, '照片须为可解码的 JPEG 图片');

/** "照片超过 5 MB 的上限": the size limit as people say it (MB, one decimal when not whole; KB under 1 MB). */
export function photoTooLarge(maxBytes: number): string {
  const mb = maxBytes / 1_048_576;
  const size = mb >= 1 ? `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB` : `${Math.floor(maxBytes / 1024)} KB`;
  return `照片超过 ${size} 的上限`;
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
 * The record a person's photo is kept for (an alarm, a rectification task), as the module that owns the record
 * describes it. The caller has found the record and checked the user's scope before `store`.
 */
export interface PhotoOwner {
  /** video_evidence.purpose (stored in data: never renamed), e.g. `alarm.photo`, `rectification.photo`. */
  purpose: string;
  /** The record (video_evidence.ref_id): the purge keeps the photo while the record is kept. */
  refId: string;
  /** The record's school: the photo is read back by whoever may see that school (GET /video/evidence/:id). */
  schoolId: string;
  /**
   * At most this many photos per record (those taken since the time `recheck` answers, when it answers one); the
   * next is 409 EVIDENCE.PHOTO_LIMIT (`details.limit`) with `limitMessage`.
   */
  limit: number;
  limitMessage: string;
  /**
   * Runs first in the upload's transaction: lock the record and refuse it if it takes no photo any more (closed while
   * the photo was decoded). Throw the record's own DomainError. May answer `countSince`: only the record's photos
   * taken since then count toward `limit` (a rectification task's current closing round).
   */
  recheck(m: EntityManager): Promise<{ countSince: Date | null } | void>;
  /** Runs in the same transaction after the row is written: what the record keeps of it (timeline entry, audit, event). */
  recorded(m: EntityManager, record: EvidenceRecord, at: Date): Promise<void>;
}

/**
 * Photos people send from a phone, for any record (IncidentPhotosService, RectificationPhotosService): the one
 * pipeline from upload to evidence. JPEG only, at most video.photoMaxBytes (413) and video.photoMaxPixels (413, from
 * the header, before decoding); decoded for real and encoded anew in a worker thread (PhotoCleaner): a header
 * without a picture, a made-up size or a cut scan is 415 EVIDENCE.PHOTO_NOT_JPEG, the stored width/height are the
 * decoded ones, and EXIF (the phone's GPS position, its make, the time), comments and anything after the first
 * picture never reach the store. Stored through the EvidenceStore (SHA-256 recorded, read back through
 * GET /video/evidence/:id) as a `video_evidence` row without a camera, source `upload`, `uploaded_by` the sender.
 * With a client key (`Idempotency-Key`) a retry answers the first upload (no second picture); the same key with
 * other bytes (SHA-256 of what was sent, `upload_sha256`) is 409 EVIDENCE.PHOTO_KEY_REUSED naming the first.
 */
@Injectable()
export class PhotoUploadsService implements OnModuleDestroy {
  private readonly cleaner: PhotoCleaner;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly evidence: EvidenceService,
  ) {
    this.cleaner = new PhotoCleaner({ maxPixels: videoConfig(config).photoMaxPixels, quality: PHOTO_QUALITY, timeoutMs: 20_000 });
  }

  async onModuleDestroy(): Promise<void> {
    await this.cleaner.close();
  }

  /** Stores `jpeg` for `owner`; `created` false when a retry (same key, same bytes) answered the first upload. */
  async store(user: AuthUser, owner: PhotoOwner, jpeg: Buffer, clientKey?: string): Promise<{ record: EvidenceRecord; created: boolean }> {
    const cfg = videoConfig(this.config);
    const dedupKey = clientKey ? `${owner.purpose}:${owner.refId}:${user.id}:${clientKey}` : null;
    const uploadSha256 = createHash('sha256').update(jpeg).digest('hex');
    if (dedupKey) {
      const before = await this.byDedupKey(dedupKey);
      if (before) return { record: sameUpload(before, uploadSha256), created: false };
    }
    if (jpeg.length > cfg.photoMaxBytes) throw Errors.payloadTooLarge(photoTooLarge(cfg.photoMaxBytes));
    // The header first (cheap): what is no JPEG, or says it is too large, is not decoded at all.
    const header = jpegSize(jpeg);
    if (!header || header.width === 0 || header.height === 0) throw notJpeg();
    if (header.width * header.height > cfg.photoMaxPixels)
      throw Errors.payloadTooLarge(`照片像素（${header.width}×${header.height}）超过 ${cfg.photoMaxPixels} 的上限`);
    if (!jpegHasScan(jpeg)) throw notJpeg();
    const clean = await this.cleaner.clean(jpeg).catch((e: unknown) => {
      throw e instanceof PhotoUndecodable ? notJpeg() : e;
    });

    const put = await this.evidence.store.put(new Date(), clean.jpeg, 'jpg');
    try {
      const out = await this.db.transaction(async (m) => {
        // One upload per record at a time: the count below is then exact.
        await m.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${owner.purpose}:${owner.refId}`]);
        const since = (await owner.recheck(m))?.countSince ?? null;
        // Dated here, with the record held: a photo is never dated before a change of the record it waited for.
        const at = new Date();
        if (dedupKey) {
          const [prev] = (await m.query(`SELECT ${COLS}, ${UPLOAD_SHA} FROM video_evidence WHERE dedup_key = $1`, [dedupKey])) as WithUpload[];
          if (prev) return { record: sameUpload(prev, uploadSha256), created: false };
        }
        const [{ n }] = (await m.query(
          `SELECT count(*)::int AS n FROM video_evidence WHERE purpose = $1 AND ref_id = $2 AND ($3::timestamptz IS NULL OR captured_at >= $3)`,
          [owner.purpose, owner.refId, since],
        )) as { n: number }[];
        if (n >= owner.limit) throw Errors.conflict(ErrorCode.EVIDENCE.PHOTO_LIMIT, owner.limitMessage, { limit: owner.limit });
        const [record] = returningRows<EvidenceRecord>(
          await m.query(
            `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at, dedup_key, uploaded_by, upload_sha256, source)
             VALUES (NULL, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'upload') RETURNING ${COLS}`,
            [owner.schoolId, put.key, put.sha256, put.bytes, clean.width, clean.height, owner.purpose, owner.refId, at, dedupKey, user.id, uploadSha256],
          ),
        );
        await owner.recorded(m, record, at);
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
