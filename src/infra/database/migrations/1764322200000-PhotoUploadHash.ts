import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An alarm photo remembers the SHA-256 of the bytes the phone sent (`upload_sha256`; the stored
 * picture may differ once it is cleaned), so a retry with the same Idempotency-Key and another
 * file is told apart from a true retry (409 EVIDENCE.PHOTO_KEY_REUSED instead of a silently
 * lost second photo). Older rows have none: their stored bytes are what was sent.
 */
export class PhotoUploadHash1764322200000 implements MigrationInterface {
  name = 'PhotoUploadHash1764322200000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE video_evidence ADD COLUMN upload_sha256 char(64)`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE video_evidence DROP COLUMN upload_sha256`);
  }
}
