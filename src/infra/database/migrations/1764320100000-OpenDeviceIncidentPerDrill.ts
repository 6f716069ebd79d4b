import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One open device incident per button, type AND drill flag: a real press after a drill window
 * opens its own real incident beside the still-open drill (adversarial pass F11) — with the old
 * index it could only fold into the drill, where it stayed a drill and never escalated.
 */
export class OpenDeviceIncidentPerDrill1764320100000 implements MigrationInterface {
  name = 'OpenDeviceIncidentPerDrill1764320100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX incidents_open_device_uq`);
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type, drill) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX incidents_open_device_uq`);
    await q.query(
      `CREATE UNIQUE INDEX incidents_open_device_uq ON incidents (alarm_device_id, type) WHERE source = 'device' AND alarm_device_id IS NOT NULL AND status IN ('raised','acknowledged','dispatched','on_scene')`,
    );
  }
}
