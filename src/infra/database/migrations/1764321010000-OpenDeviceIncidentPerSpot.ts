import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One open device incident per button, type, drill flag AND place (school, location): a button
 * moved to another school (or another spot) kept folding its presses into the open incident of its
 * old place — operators dispatched to the wrong school and the new school's guard never saw them
 * (attack A13). A press now folds only into an open incident at the button's current place, so a
 * moved button's press opens its own incident there, beside the old one.
 */
export class OpenDeviceIncidentPerSpot1764321010000 implements MigrationInterface {
  name = 'OpenDeviceIncidentPerSpot1764321010000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX incidents_open_device_uq`);
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type, drill, school_id, location) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX incidents_open_device_uq`);
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type, drill) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }
}
