import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A guard's phone alarm carries the phone's position when the guard allows it (latitude, longitude,
 * accuracy in metres; all three or none, in range) and may have photos attached: those are evidence
 * records without a camera (video_evidence.camera_id becomes optional; `uploaded_by` says who sent one).
 */
export class AlarmPhotoPosition1764321900000 implements MigrationInterface {
  name = 'AlarmPhotoPosition1764321900000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE incidents
        ADD COLUMN reporter_latitude double precision,
        ADD COLUMN reporter_longitude double precision,
        ADD COLUMN reporter_accuracy_m real,
        ADD CONSTRAINT incidents_reporter_position_ck CHECK (
          (reporter_latitude IS NULL AND reporter_longitude IS NULL AND reporter_accuracy_m IS NULL)
          OR (reporter_latitude BETWEEN -90 AND 90 AND reporter_longitude BETWEEN -180 AND 180 AND reporter_accuracy_m >= 0))`);
    await q.query(`ALTER TABLE video_evidence ALTER COLUMN camera_id DROP NOT NULL, ADD COLUMN uploaded_by uuid`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM video_evidence WHERE camera_id IS NULL`);
    await q.query(`ALTER TABLE video_evidence ALTER COLUMN camera_id SET NOT NULL, DROP COLUMN uploaded_by`);
    await q.query(
      `ALTER TABLE incidents DROP CONSTRAINT incidents_reporter_position_ck, DROP COLUMN reporter_latitude, DROP COLUMN reporter_longitude, DROP COLUMN reporter_accuracy_m`,
    );
  }
}
