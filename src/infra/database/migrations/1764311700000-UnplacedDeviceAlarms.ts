import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * GB/T 28181 alarms never vanish (issue 11 §5): an alarm from a registered device whose channel is
 * not placed in a school raises an incident at the device's school when known, otherwise an
 * "unplaced device alarm" with no school, seen by the district (school staff never see it). Only
 * such device alarms may lack a school: staff, operator and placed-device incidents keep theirs.
 */
export class UnplacedDeviceAlarms1764311700000 implements MigrationInterface {
  name = 'UnplacedDeviceAlarms1764311700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incidents ALTER COLUMN school_id DROP NOT NULL`);
    await q.query(
      `ALTER TABLE incidents ADD CONSTRAINT incidents_school_required CHECK (school_id IS NOT NULL OR (source = 'device' AND alarm_device_id IS NULL AND camera_id IS NULL))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE incidents DROP CONSTRAINT incidents_school_required`);
    await q.query(`DELETE FROM incidents WHERE school_id IS NULL`);
    await q.query(`ALTER TABLE incidents ALTER COLUMN school_id SET NOT NULL`);
  }
}
