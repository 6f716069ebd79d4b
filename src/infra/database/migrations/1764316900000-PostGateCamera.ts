import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Protection posts and their gate camera (issue 15 phase 2): a post may name the camera that sees
 * its gate; a check-in at such a post gets that camera's picture of the moment (taken by a job,
 * stored as video evidence). `evidence_status`: none (no gate camera), pending (job queued),
 * taken (evidence_id set) or failed (evidence_error: the video error code).
 */
export class PostGateCamera1764316900000 implements MigrationInterface {
  name = 'PostGateCamera1764316900000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE protection_posts ADD COLUMN gate_camera_id uuid REFERENCES cameras(id) ON DELETE SET NULL`);
    await q.query(`
      ALTER TABLE post_checkins
        ADD COLUMN camera_id uuid,
        ADD COLUMN evidence_id uuid,
        ADD COLUMN evidence_status text NOT NULL DEFAULT 'none' CHECK (evidence_status IN ('none', 'pending', 'taken', 'failed')),
        ADD COLUMN evidence_error text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE post_checkins DROP COLUMN evidence_error, DROP COLUMN evidence_status, DROP COLUMN evidence_id, DROP COLUMN camera_id`);
    await q.query(`ALTER TABLE protection_posts DROP COLUMN gate_camera_id`);
  }
}
