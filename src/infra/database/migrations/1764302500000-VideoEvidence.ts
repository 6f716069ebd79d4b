import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Evidence snapshots (video module): each picture's storage key, SHA-256 and where it came from.
 * The bytes live in the evidence store (a directory by default); the checksum recorded here
 * proves a picture read back is the one taken. Retention: video.evidenceRetentionDays (GB/T 29315).
 */
export class VideoEvidence1764302500000 implements MigrationInterface {
  name = 'VideoEvidence1764302500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE video_evidence (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        camera_id uuid NOT NULL,
        school_id uuid NOT NULL,
        storage_key text NOT NULL UNIQUE,
        sha256 char(64) NOT NULL,
        bytes integer NOT NULL,
        width integer NOT NULL,
        height integer NOT NULL,
        purpose text NOT NULL,
        ref_id text,
        captured_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX video_evidence_captured_at_idx ON video_evidence (captured_at)`);
    await q.query(`CREATE INDEX video_evidence_camera_idx ON video_evidence (camera_id, captured_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE video_evidence`);
  }
}
