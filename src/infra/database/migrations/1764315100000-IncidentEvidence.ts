import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Evidence taken by jobs (issue 15 phase 2: at an alarm's raise and +10 s, at a post check-in):
 * `dedup_key` names the moment and camera (`alarm.raise:<incident>:<camera>` …), unique, so a
 * retried job finds the picture it already took instead of taking another. Manual captures have
 * none.
 */
export class IncidentEvidence1764315100000 implements MigrationInterface {
  name = 'IncidentEvidence1764315100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE video_evidence ADD COLUMN dedup_key text`);
    await q.query(`CREATE UNIQUE INDEX video_evidence_dedup_uq ON video_evidence (dedup_key) WHERE dedup_key IS NOT NULL`);
    await q.query(`CREATE INDEX video_evidence_ref_idx ON video_evidence (ref_id) WHERE ref_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX video_evidence_ref_idx`);
    await q.query(`DROP INDEX video_evidence_dedup_uq`);
    await q.query(`ALTER TABLE video_evidence DROP COLUMN dedup_key`);
  }
}
